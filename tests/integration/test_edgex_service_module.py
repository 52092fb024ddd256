"""edgex.sysmgmt.edgex_service on real containers: order, idempotence, check mode, partial failure."""

import json
import subprocess

import pytest
import yaml

from tests.integration.playbook import run_play
from tests.testbed.fixtures_consul import free_port

pytestmark = pytest.mark.docker
GATEWAY = "svctest"


def inspect(name):
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["State"]


@pytest.fixture
def deployment(standin_container, tmp_path):
    """database <- core-metadata <- core-data (+ device-virtual on both), as containers, in a manifest."""
    ports = {"database": free_port(), "core-metadata": free_port(), "core-data": free_port(),
             "device-virtual": free_port()}
    deps = {"database": [], "core-metadata": ["database"], "core-data": ["core-metadata", "database"],
            "device-virtual": ["core-data", "core-metadata"]}
    services = {}

    def create(service, env=None, wait=True):
        kind = "redis" if service == "database" else "api"
        name = standin_container(service, ports[service], env=env, kind=kind, gateway=GATEWAY, wait=wait)
        services[service] = {"executor": "docker", "target": name, "address": "127.0.0.1", "port": ports[service],
                             "health": None if kind == "redis" else "/api/v3/ping", "depends_on": deps[service]}
        return name

    for service in deps:
        create(service)
    manifest = tmp_path / "manifest.yml"

    def write():
        host = {"address": "127.0.0.1", "services": services}
        manifest.write_text(yaml.safe_dump({"version": 1, "hosts": {GATEWAY: host}}))
    write()
    return {"manifest": manifest, "services": services, "create": create, "write": write}


def control(tmp_path, deployment, state, names="all", check=False, diff=False, wait_timeout=20):
    args = {"name": names, "state": state, "node": GATEWAY, "registry_type": "none",
            "manifest_path": str(deployment["manifest"]), "wait_timeout": wait_timeout, "stop_timeout": 5}
    tasks = "    - edgex.sysmgmt.edgex_service: %s\n" % json.dumps(args)
    return run_play(tmp_path, tasks, check=check, diff=diff)


def targets(deployment):
    return {k: v["target"] for k, v in deployment["services"].items()}


def test_start_all_in_dependency_order_then_idempotent(deployment, tmp_path):
    names = targets(deployment)
    subprocess.run(["docker", "stop", "-t", "5"] + list(names.values()), check=True, stdout=subprocess.DEVNULL)

    result = control(tmp_path, deployment, "started")
    assert result.returncode == 0, result.stdout
    task = result.task()
    assert task["changed"] is True and task["source"] == "manifest"
    assert task["levels"] == [["database"], ["core-metadata"], ["core-data"], ["device-virtual"]]
    assert [s["name"] for s in task["services"]] == ["database", "core-metadata", "core-data", "device-virtual"]
    assert all(s["before"] == "stopped" and s["after"] == "running" and s["changed"] for s in task["services"])
    started = {k: inspect(v)["StartedAt"] for k, v in names.items()}
    assert started["database"] < started["core-metadata"] < started["core-data"] < started["device-virtual"]

    again = control(tmp_path, deployment, "started").task()
    assert again["changed"] is False
    assert {k: inspect(v)["StartedAt"] for k, v in names.items()} == started


def test_stop_runs_in_reverse_and_check_mode_touches_nothing(deployment, tmp_path):
    names = targets(deployment)
    check = control(tmp_path, deployment, "stopped", check=True, diff=True).task()
    assert check["changed"] is True
    assert "core-data: running" in check["diff"]["before"] and "core-data: stopped" in check["diff"]["after"]
    assert all(inspect(v)["Running"] for v in names.values())

    task = control(tmp_path, deployment, "stopped").task()
    assert [s["name"] for s in task["services"]] == ["device-virtual", "core-data", "core-metadata", "database"]
    finished = {k: inspect(v)["FinishedAt"] for k, v in names.items()}
    assert finished["device-virtual"] < finished["core-data"] < finished["core-metadata"] < finished["database"]
    assert control(tmp_path, deployment, "stopped").task()["changed"] is False


def test_restart_always_changes_and_restarts_each(deployment, tmp_path):
    names = targets(deployment)
    before = {k: inspect(v)["StartedAt"] for k, v in names.items()}
    task = control(tmp_path, deployment, "restarted", names=["core-data", "core-metadata"]).task()
    assert task["changed"] is True
    assert [s["name"] for s in task["services"]] == ["core-metadata", "core-data"]
    after = {k: inspect(v) for k, v in names.items()}
    assert after["core-data"]["StartedAt"] > before["core-data"] and \
        after["core-metadata"]["StartedAt"] > before["core-metadata"]
    assert after["database"]["StartedAt"] == before["database"]
    # core-data, stopped while core-metadata restarted (the unit tests pin that order), started after it
    assert after["core-metadata"]["StartedAt"] < after["core-data"]["StartedAt"]


def test_a_failed_start_leaves_dependents_alone_and_a_rerun_converges(deployment, tmp_path):
    names = targets(deployment)
    subprocess.run(["docker", "stop", "-t", "5"] + list(names.values()), check=True, stdout=subprocess.DEVNULL)
    deployment["create"]("core-metadata", env={"STANDIN_CRASH_ON_START": "1"}, wait=False)
    subprocess.run(["docker", "stop", "-t", "1", names["core-metadata"]], stdout=subprocess.DEVNULL, check=False)

    failed = control(tmp_path, deployment, "started", wait_timeout=8)
    assert failed.returncode != 0
    task = failed.task()
    by_name = {s["name"]: s for s in task["services"]}
    assert by_name["database"]["after"] == "running"
    assert "core-metadata" in task["msg"] and by_name["core-metadata"]["error"]
    assert by_name["core-data"]["skipped"] == "not started: core-metadata failed"
    assert by_name["device-virtual"]["skipped"].startswith("not started: core-")
    assert not inspect(names["core-data"])["Running"] and not inspect(names["device-virtual"])["Running"]

    deployment["create"]("core-metadata")  # fixed
    rerun = control(tmp_path, deployment, "started")
    assert rerun.returncode == 0, rerun.stdout
    assert all(inspect(v)["Running"] for v in names.values())


def test_hostile_and_unknown_names_fail_before_any_command(deployment, tmp_path):
    hostile = control(tmp_path, deployment, "stopped", names=["core-data; docker rm -f edgex-redis"])
    assert hostile.returncode != 0
    assert hostile.task()["msg"].startswith("invalid service name 'core-data; docker rm -f edgex-redis'")
    unknown = control(tmp_path, deployment, "stopped", names=["core-dta"])
    assert unknown.task()["msg"] == ("unknown service core-dta on node %s in the manifest registry; known there: "
                                     "core-data, core-metadata, database, device-virtual" % GATEWAY)
    assert all(inspect(v)["Running"] for v in targets(deployment).values())
