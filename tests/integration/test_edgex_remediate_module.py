"""edgex.sysmgmt.edgex_remediate on real stand-in containers: a crash is restarted, a crash loop is
given up on after max_restarts, check mode restarts nothing."""

import json
import subprocess

import pytest
import yaml

from tests.integration.playbook import run_play
from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import container_state, wait_until

pytestmark = pytest.mark.docker
GATEWAY = "remtest"


def started_at(name):
    return subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", name], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def deployment(standin_container, tmp_path):
    """Factory: stand-in containers of GATEWAY listed in a manifest (registry_type none)."""
    services = {}
    manifest = tmp_path / "manifest.yml"

    def create(service, env=None, wait=True):
        port = free_port()
        name = standin_container(service, port, env=env, gateway=GATEWAY, wait=wait)
        services[service] = {"executor": "docker", "target": name, "address": "127.0.0.1", "port": port,
                             "health": "/api/v3/ping"}
        host = {"address": "127.0.0.1", "services": services}
        manifest.write_text(yaml.safe_dump({"version": 1, "hosts": {GATEWAY: host}}))
        return name

    return {"create": create, "manifest": manifest, "ledger": tmp_path / "state" / "remediation.json"}


def remediate(tmp_path, deployment, check=False, diff=False, **args):
    module_args = {"node": GATEWAY, "registry_type": "none", "manifest_path": str(deployment["manifest"]),
                   "state_path": str(deployment["ledger"]), "grace": 0, "backoff": 1, "window": 300,
                   "wait_timeout": 10, "probe_timeout": 1, "stop_timeout": 1}
    module_args.update(args)
    play = run_play(tmp_path, "    - edgex.sysmgmt.edgex_remediate: %s\n" % json.dumps(module_args),
                    check=check, diff=diff)
    assert play.json is not None, play.stdout + play.stderr
    return play.task()


def by_name(result):
    return {s["name"]: s for s in result["services"]}


def test_a_killed_service_is_restarted_and_healthy_again(deployment, tmp_path):
    killed = deployment["create"]("core-data")
    deployment["create"]("core-metadata")
    subprocess.run(["docker", "kill", killed], check=True, stdout=subprocess.DEVNULL)
    wait_until(lambda: container_state(killed) == "exited", what="the kill")

    result = remediate(tmp_path, deployment)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["restarted"] == ["core-data"]
    assert result["gave_up"] == [] and result["waiting"] == []
    assert result["healthy"] == ["core-data", "core-metadata"]
    service = by_name(result)["core-data"]
    assert service["verdict"] == "unhealthy" and service["executor_state"] == "stopped"
    assert service["action"] == "restart" and service["restarts_in_window"] == 1
    assert service["verdict_after"] == "healthy" and "error" not in service
    assert by_name(result)["core-metadata"]["action"] == "none"
    assert container_state(killed) == "running"
    ledger = json.loads(deployment["ledger"].read_text())
    assert list(ledger["services"]) == ["%s/core-data" % GATEWAY]
    assert len(ledger["services"]["%s/core-data" % GATEWAY]["restarts"]) == 1

    again = remediate(tmp_path, deployment)
    assert again["changed"] is False and again["restarted"] == []
    assert by_name(again)["core-data"]["verdict"] == "healthy"
    assert json.loads(deployment["ledger"].read_text())["services"] == {}  # healthy clears the record


def age_ledger(deployment, seconds):
    """Move the module's clock: every time in the ledger (the module's only memory between runs)
    becomes ``seconds`` older, as if that much time had passed since the last run."""
    data = json.loads(deployment["ledger"].read_text())
    for record in data["services"].values():
        for field in ("first_unhealthy", "first_critical"):
            if field in record:
                record[field] -= seconds
        if "restarts" in record:
            record["restarts"] = [t - seconds for t in record["restarts"]]
    deployment["ledger"].write_text(json.dumps(data))


# Longer than two runs can take (each is bounded by run_play's 300 s timeout): a run that comes
# "right after" another is inside the back-off, whatever the machine's load. Time past it is
# moved by age_ledger, not waited for.
BACKOFF = 900.0
WINDOW = 3600.0


def test_a_crash_loop_is_restarted_max_restarts_times_then_given_up(deployment, tmp_path):
    looping = deployment["create"]("core-command", env={"STANDIN_CRASH_ON_START": "1"}, wait=False)
    wait_until(lambda: container_state(looping) == "exited", what="the crash on start")
    policy = dict(name=["core-command"], grace=BACKOFF, max_restarts=2, backoff=BACKOFF, window=WINDOW)
    starts = [started_at(looping)]

    def run():
        result = remediate(tmp_path, deployment, **policy)
        assert result.get("failed") is not True, result
        starts.append(started_at(looping))
        return result, by_name(result)["core-command"]

    first, service = run()  # first seen unhealthy: the grace starts
    assert first["changed"] is False and service["action"] == "wait" and starts[-1] == starts[-2]
    assert first["waiting"][0]["name"] == "core-command" and 0 < first["waiting"][0]["next_eligible_in"] <= BACKOFF
    age_ledger(deployment, first["waiting"][0]["next_eligible_in"])  # the grace has passed

    second, service = run()
    assert second["changed"] is True and second["restarted"] == ["core-command"]
    assert service["executor_state"] == "failed" and service["error"] and "verdict_after" not in service
    assert any("restarting core-command did not bring it up" in w for w in second.get("warnings", []))
    assert starts[-1] != starts[-2]  # it really was restarted

    third, service = run()  # within the back-off after the first attempt
    assert third["changed"] is False and service["action"] == "wait" and service["reason"].startswith("back-off")
    assert starts[-1] == starts[-2]
    age_ledger(deployment, third["waiting"][0]["next_eligible_in"])  # the back-off has passed

    fourth, service = run()
    assert fourth["restarted"] == ["core-command"] and service["restarts_in_window"] == 2
    assert starts[-1] != starts[-2]

    fifth, service = run()
    assert fifth["changed"] is False and fifth["gave_up"] == ["core-command"] and fifth["restarted"] == []
    assert service["action"] == "give_up" and service["reason"] == "restarted 2 time(s) within %.0fs (max_restarts 2)" \
        % WINDOW
    assert service["next_eligible"]
    assert starts[-1] == starts[-2]
    record = json.loads(deployment["ledger"].read_text())["services"]["%s/core-command" % GATEWAY]
    assert record["gave_up"] is True and len(record["restarts"]) == 2


def test_check_mode_restarts_nothing_and_leaves_the_ledger_alone(deployment, tmp_path):
    killed = deployment["create"]("core-data")
    subprocess.run(["docker", "kill", killed], check=True, stdout=subprocess.DEVNULL)
    wait_until(lambda: container_state(killed) == "exited", what="the kill")

    result = remediate(tmp_path, deployment, check=True, diff=True)
    assert result["changed"] is True and result["restarted"] == ["core-data"]
    assert by_name(result)["core-data"]["action"] == "restart"
    assert '"restarts"' in result["diff"]["after"] and '"restarts"' not in result["diff"]["before"]
    assert container_state(killed) == "exited"
    assert not deployment["ledger"].parent.exists()


def test_unknown_names_and_a_corrupt_ledger_fail_before_any_restart(deployment, tmp_path):
    killed = deployment["create"]("core-data")
    subprocess.run(["docker", "kill", killed], check=True, stdout=subprocess.DEVNULL)
    wait_until(lambda: container_state(killed) == "exited", what="the kill")

    unknown = remediate(tmp_path, deployment, name=["core-dta"])
    assert unknown["failed"] is True
    assert unknown["msg"] == "unknown service core-dta on node %s in the manifest registry; known there: core-data" \
        % GATEWAY

    deployment["ledger"].parent.mkdir()
    deployment["ledger"].write_text("{garbage")
    corrupt = remediate(tmp_path, deployment)
    assert corrupt["failed"] is True
    assert corrupt["msg"].startswith("ledger %s is invalid: not JSON" % deployment["ledger"])
    assert deployment["ledger"].read_text() == "{garbage"
    assert container_state(killed) == "exited"
