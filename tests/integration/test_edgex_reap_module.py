"""edgex.sysmgmt.edgex_reap against Consul and stand-in containers: a service that crashed without
deregistering is reaped once critical long enough; one that runs, or answers, is always kept."""

import json
import subprocess
import time

import pytest
import yaml

from tests.integration.playbook import run_play
from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import container_state, wait_until

GATEWAY = "reaptest"  # container name prefix; the Consul node is the emulator's gw1


def consul_status(consul, name):
    """Status of ``name``'s own check in Consul, None when it is not registered."""
    _index, checks = consul.client().health.checks(name)
    return checks[0]["Status"] if checks else None


def write_manifest(path, host, services):
    path.write_text(yaml.safe_dump({"version": 1, "hosts": {host: {"address": "127.0.0.1", "services": services}}}))


def reap(tmp_path, check=False, diff=False, **args):
    args.setdefault("state_path", str(tmp_path / "state" / "remediation.json"))
    args.setdefault("probe_timeout", 1)
    play = run_play(tmp_path, "    - edgex.sysmgmt.edgex_reap: %s\n" % json.dumps(args), check=check, diff=diff)
    assert play.json is not None, play.stdout + play.stderr
    return play.task()


def by_name(entries):
    return {e["name"]: e for e in entries}


@pytest.fixture
def fleet(consul, standin_container, tmp_path):
    """In Consul on gw1: core-data crashed without deregistering (its container exited 1) and
    core-command running but answering its ping with 500; both critical."""
    services = {}
    for service, env in (("core-data", {"STANDIN_CRASH_AFTER": "2", "STANDIN_CRASH_NO_DEREGISTER": "1"}),
                         ("core-command", {"STANDIN_PING_STATUS": "500"})):
        port = free_port()
        name = standin_container(service, port, env=env, registry="consul", registry_port=consul.port,
                                 gateway=GATEWAY)
        services[service] = {"executor": "docker", "target": name, "port": port, "health": "/api/v3/ping"}
    wait_until(lambda: container_state(services["core-data"]["target"]) == "exited", what="the crash")
    wait_until(lambda: consul_status(consul, "core-data") == consul_status(consul, "core-command") == "critical",
               what="both checks critical")
    manifest = tmp_path / "manifest.yml"
    write_manifest(manifest, "gw1", services)
    args = {"node": "gw1", "host": consul.host, "port": consul.port, "manifest_path": str(manifest)}
    if consul.token:
        args["token"] = consul.token
    return {"args": args, "services": services}


@pytest.mark.docker
def test_a_crashed_registration_is_reaped_after_critical_for_and_a_running_one_kept(consul, fleet, tmp_path):
    args = dict(fleet["args"], critical_for=3, require_target="not_running")

    first = reap(tmp_path, **args)
    assert first.get("failed") is not True, first
    assert first["changed"] is False and first["reaped"] == [] and first["source"] == "consul"
    kept = by_name(first["kept"])
    crashed = kept["core-data"]
    assert crashed["registry_status"] == "critical" and crashed["executor_state"] == "failed"
    assert crashed["answered"] is False and crashed["reason"] == "critical for 0s of the 3s required"
    assert crashed["critical_since"] and crashed["next_eligible"]
    running = kept["core-command"]
    assert running["reason"] == "its executor says it is running" and running["answered"] is True
    assert running["target"] == fleet["services"]["core-command"]["target"]
    time.sleep(3)

    check = reap(tmp_path, check=True, diff=True, **args)
    assert check["changed"] is True and [e["id"] for e in check["reaped"]] == ["core-data"]
    assert check["reaped"][0]["reason"].startswith("critical for ") and "target is failed" in check["reaped"][0]["reason"]
    assert "core-data (core-data)" in check["diff"]["before"] and "core-data" not in check["diff"]["after"]
    assert consul_status(consul, "core-data") == "critical"  # still registered

    reaped = reap(tmp_path, **args)
    assert reaped["changed"] is True and [e["id"] for e in reaped["reaped"]] == ["core-data"]
    assert by_name(reaped["kept"])["core-command"]["reason"] == "its executor says it is running"
    assert consul_status(consul, "core-data") is None
    assert consul.client().agent.services().get("core-data") is None
    assert consul_status(consul, "core-command") == "critical"
    ledger = json.loads((tmp_path / "state" / "remediation.json").read_text())
    assert list(ledger["services"]) == ["gw1/core-command"]  # the reaped one's timer is gone

    again = reap(tmp_path, **args)
    assert again["changed"] is False and again["reaped"] == []


@pytest.mark.docker
def test_require_target_absent_waits_until_the_container_is_gone(consul, fleet, tmp_path):
    args = dict(fleet["args"], critical_for=0, name=["core-data", "device-virtual"])
    stopped = reap(tmp_path, **args)
    assert stopped["reaped"] == []
    kept = by_name(stopped["kept"])
    assert kept["core-data"]["reason"] == "its target is failed, and require_target is absent"
    assert kept["device-virtual"]["reason"] == "not registered on gw1"
    assert "core-command" not in kept  # not selected

    subprocess.run(["docker", "rm", "-f", fleet["services"]["core-data"]["target"]], check=True,
                   stdout=subprocess.DEVNULL)
    gone = reap(tmp_path, **args)
    assert [e["name"] for e in gone["reaped"]] == ["core-data"] and gone["reaped"][0]["executor_state"] == "absent"
    assert consul_status(consul, "core-data") is None


@pytest.mark.docker
def test_manifest_registry_reaps_nothing_as_it_reports_no_health(local_standin, tmp_path):
    """registry_type manifest has no checks, so nothing in it is ever critical: an entry nobody
    answers for, whose target is gone, is kept (it used to be reaped for not answering)."""
    alive = local_standin("core-data", free_port()).wait()
    manifest = tmp_path / "manifest.yml"
    write_manifest(manifest, GATEWAY, {
        "core-data": {"executor": "docker", "target": "reaptest-no-such-container", "port": alive.port},
        "device-rest": {"executor": "docker", "target": "reaptest-no-such-container", "port": free_port()}})
    before = manifest.read_text()
    args = {"node": GATEWAY, "registry_type": "manifest", "manifest_path": str(manifest), "critical_for": 0}

    result = reap(tmp_path, **args)
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["reaped"] == []
    kept = by_name(result["kept"])
    for name in ("core-data", "device-rest"):
        assert kept[name]["registry_status"] == "unknown" and kept[name]["executor_state"] == "absent"
        assert kept[name]["reason"] == "its registry reports no checks for it"
    assert kept["device-rest"]["answered"] is False and kept["core-data"]["answered"] is True
    assert manifest.read_text() == before


def test_registry_none_and_an_unreachable_registry_reap_nothing(tmp_path):
    none = reap(tmp_path, node="gw1", registry_type="none")
    assert none["failed"] is True and none["msg"].startswith("registry_type none has no registrations to reap")
    manifest = tmp_path / "manifest.yml"
    write_manifest(manifest, "gw1", {"core-data": {"executor": "docker", "port": free_port()}})
    down = reap(tmp_path, node="gw1", host="127.0.0.1", port=free_port(), timeout=1, manifest_path=str(manifest))
    assert down["failed"] is True and "unreachable" in down["msg"]
    assert "core-data" in manifest.read_text()
