"""The collection's playbooks on the test-bed, with the dynamic inventory and with a static one."""

import json
import os
import subprocess
import sys

import pytest

from tests.integration.playbook import REPO, PlayResult, ansible_env
from tests.testbed.fixtures_docker import wait_until

pytestmark = pytest.mark.docker
CONSUL_INVENTORY = os.path.join(REPO, "inventories", "consul", "edgex.edgex.yml")


def playbook(name, inventory, testbed, **extra_vars):
    variables = {"ansible_connection": "local", "edgex_manifest_path": testbed["manifest"],
                 "edgex_wait_timeout": 30, "edgex_stop_timeout": 5}
    variables.update(extra_vars)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
            os.path.join(REPO, "playbooks", name), "-e", json.dumps(variables)]
    completed = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=600, cwd=REPO,
                               check=False)
    result = PlayResult(completed)
    assert result.returncode == 0, result.failures()
    return result


def container(name):
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["State"]


def registered(name):
    import urllib.request

    with urllib.request.urlopen("http://127.0.0.1:8500/v1/agent/services", timeout=5) as response:
        return name in json.loads(response.read())


def module_results(result, host="gw1", action="edgex.sysmgmt.edgex_service"):
    return [t["hosts"][host] for play in result.json["plays"] for t in play["tasks"]
            if host in t["hosts"] and t["hosts"][host].get("action") == action]


def test_stop_start_restart_with_the_consul_inventory(testbed):
    stopped = playbook("stop.yml", CONSUL_INVENTORY, testbed, edgex_services_names=["core-data"])
    assert module_results(stopped)[0]["changed"] is True
    assert not container("edgex-core-data")["Running"]
    wait_until(lambda: not registered("core-data"), what="core-data deregistered on stop")

    # core-data is not in Consul now: the manifest still knows it is deployed there.
    started = playbook("start.yml", CONSUL_INVENTORY, testbed)
    # The inventory's host variable edgex_services (a mapping) is not the deprecated role input.
    assert module_results(started, action="edgex.sysmgmt.deprecation_warning")[0].get("skipped") is True
    services = {s["name"]: s for s in module_results(started)[0]["services"]}
    assert services["core-data"]["changed"] is True and services["core-metadata"]["changed"] is False
    assert container("edgex-core-data")["Running"]
    wait_until(lambda: registered("core-data"), what="core-data registered again")
    assert module_results(playbook("start.yml", CONSUL_INVENTORY, testbed))[0]["changed"] is False

    before = container("edgex-core-command")["StartedAt"]
    restarted = playbook("restart.yml", CONSUL_INVENTORY, testbed, edgex_services_names=["core-command"])
    assert module_results(restarted)[0]["changed"] is True
    assert container("edgex-core-command")["StartedAt"] > before
    gate = module_results(restarted, action="edgex.sysmgmt.edgex_health")[0]
    assert gate["summary"]["healthy"] >= 1 and not gate.get("failed")


def test_static_inventory_with_the_manifest(testbed, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("edgex:\n  hosts:\n    gw1:\n      edgex_registry_type: none\n")
    # The role's deprecated input still works for one release, with a deprecation warning.
    stopped = playbook("stop.yml", str(inventory), testbed, edgex_services=["support-scheduler"])
    assert [s["name"] for s in module_results(stopped)[0]["services"]] == ["support-scheduler"]
    warned = module_results(stopped, action="edgex.sysmgmt.deprecation_warning")[0]
    deprecation, = warned["deprecations"]  # a deprecation of the collection, not a plain message
    assert "edgex_services_names" in deprecation["msg"] and deprecation["version"] == "0.2.0"
    assert deprecation["collection_name"] == "edgex.sysmgmt"
    assert not container("edgex-support-scheduler")["Running"]
    result = playbook("start.yml", str(inventory), testbed)
    assert module_results(result)[0]["source"] == "manifest"
    assert container("edgex-support-scheduler")["Running"]


def test_bounce_all_stops_in_reverse_and_starts_in_order(testbed):
    result = playbook("bounce_all.yml", CONSUL_INVENTORY, testbed)
    stop, start = module_results(result)
    assert stop["services"][-1]["name"] == "consul" and start["services"][0]["name"] == "consul"
    names = ["edgex-redis", "edgex-core-metadata", "edgex-core-data", "edgex-device-virtual"]
    started = [container(n)["StartedAt"] for n in names]
    assert started == sorted(started)
    verify = module_results(result, action="edgex.sysmgmt.edgex_health")[0]
    assert verify["summary"]["unhealthy"] == 0


def test_health_sees_a_stopped_service_the_registry_forgot(testbed, tmp_path):
    from tests.integration.playbook import run_play

    subprocess.run(["docker", "stop", "-t", "5", "edgex-app-rules-engine"], check=True, stdout=subprocess.DEVNULL)
    wait_until(lambda: not registered("app-rules-engine"), what="app-rules-engine deregistered")
    args = {"node": ["gw1"], "host": "127.0.0.1", "port": 8500, "manifest_path": testbed["manifest"],
            "check_executor": True, "fail_on": "never"}
    result = run_play(tmp_path, "    - edgex.sysmgmt.edgex_health: %s\n" % json.dumps(args)).task()
    by_name = {s["name"]: s for s in result["services"]}
    stopped = by_name["app-rules-engine"]
    assert stopped["verdict"] == "unhealthy"
    assert "not registered in Consul" in stopped["reasons"] and "container stopped" in stopped["reasons"]
    assert by_name["core-metadata"]["verdict"] == "healthy"
    assert by_name["core-metadata"]["executor_state"] == "running"
    assert by_name["database"]["verdict"] == "healthy" and by_name["database"]["probe"] == "redis-ping"
    playbook("start.yml", CONSUL_INVENTORY, testbed)
