"""edgex.sysmgmt.edgex_metrics on real containers (the Docker engine of the test-bed): running, stopped and
missing services in one pass, check mode, and the health playbook collecting them (edgex_health_metrics) into
each gateway's result, the report's JSON and its page's columns."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.integration.playbook import REPO, PlayResult, ansible_env, run_play
from tests.report_schema import validate_report
from tests.testbed.fixtures_consul import free_port

pytestmark = pytest.mark.docker
GATEWAY = "metricsgw"


@pytest.fixture
def deployment(standin_container, tmp_path):
    """core-data and core-metadata running, support-scheduler stopped, device-rest never created."""
    services = {}
    for service in ("core-metadata", "core-data", "support-scheduler", "device-rest"):
        port = free_port()
        target = "%s-edgex-%s" % (GATEWAY, service)
        if service != "device-rest":
            standin_container(service, port, gateway=GATEWAY, name=target)
        services[service] = {"executor": "docker", "target": target, "address": "127.0.0.1", "port": port,
                             "health": "/api/v3/ping"}
    subprocess.run(["docker", "stop", "-t", "5", services["support-scheduler"]["target"]], check=True,
                   stdout=subprocess.DEVNULL)
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(yaml.safe_dump({"version": 1, "hosts": {GATEWAY: {"address": "127.0.0.1",
                                                                          "services": services}}}))
    return {"manifest": str(manifest), "services": services}


def metrics_task(deployment, **extra):
    args = dict({"node": GATEWAY, "registry_type": "none", "manifest_path": deployment["manifest"]}, **extra)
    return "    - edgex.sysmgmt.edgex_metrics: %s\n" % json.dumps(args)


def test_running_stopped_and_missing_services_in_one_pass(deployment, tmp_path):
    play = run_play(tmp_path, metrics_task(deployment, interval=1.0))
    assert play.returncode == 0, play.failures()
    result = play.task()
    assert result["changed"] is False
    assert result["summary"] == {"running": 2, "stopped": 1, "absent": 1, "failed": 0, "unknown": 0, "total": 4}
    by_name = result["by_service"]
    for name in ("core-data", "core-metadata"):
        running = by_name[name]
        assert running["state"] == "running" and running["reason"] is None, running
        assert isinstance(running["cpu_percent"], float) and running["cpu_percent"] >= 0
        assert running["memory_used"] > 1024 * 1024 and running["memory_limit"] >= running["memory_used"]
        assert running["restarts"] == 0 and running["uptime"] >= 0 and running["started_at"]
    stopped = by_name["support-scheduler"]
    assert stopped["state"] == "stopped" and stopped["cpu_percent"] is None and stopped["memory_used"] is None
    assert stopped["reason"] == "container %s-edgex-support-scheduler is stopped" % GATEWAY
    missing = by_name["device-rest"]
    assert missing["state"] == "absent"
    assert missing["reason"] == "container %s-edgex-device-rest does not exist on this host" % GATEWAY
    assert result["elapsed"] >= result["interval"] == 1.0
    assert [s["name"] for s in result["services"]] == ["core-data", "core-metadata", "device-rest",
                                                       "support-scheduler"]


def test_check_mode_reads_the_same_and_unknown_names_fail_like_every_module(deployment, tmp_path):
    play = run_play(tmp_path, metrics_task(deployment, name=["core-data", "support-scheduler"]), check=True)
    assert play.returncode == 0, play.failures()
    assert {s["name"]: s["state"] for s in play.task()["services"]} == {"core-data": "running",
                                                                        "support-scheduler": "stopped"}
    unknown = run_play(tmp_path, metrics_task(deployment, name=["core-dta"]))
    assert unknown.returncode != 0
    assert unknown.task()["msg"] == ("unknown service core-dta on node %s in the manifest registry; known there: "
                                     "core-data, core-metadata, device-rest, support-scheduler" % GATEWAY)


ROLE_MAIN_PLAY = """
- hosts: edgex
  gather_facts: false
  roles:
    - edgex.sysmgmt.edgex_health
  tasks:
    - ansible.builtin.include_role:
        name: edgex.sysmgmt.edgex_health
        tasks_from: report
      run_once: true
"""


# health.yml imports the entry point check_metrics; a play of the role runs main
@pytest.mark.parametrize("playbook", ["health.yml", "role main"])
def test_the_health_role_adds_metrics_to_each_gateways_result(deployment, tmp_path, playbook):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("edgex:\n  hosts:\n    %s:\n" % GATEWAY)
    variables = {"ansible_connection": "local", "edgex_registry_type": "none",
                 "edgex_manifest_path": deployment["manifest"], "edgex_health_metrics": True,
                 "edgex_report_dir": str(tmp_path / "report")}
    if playbook == "role main":
        playbook = tmp_path / "role_main.yml"
        playbook.write_text(ROLE_MAIN_PLAY)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
            os.path.join(REPO, "playbooks", str(playbook)), "-e", json.dumps(variables)]
    completed = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=600, cwd=REPO,
                               check=False)
    play = PlayResult(completed)
    facts = [t["hosts"][GATEWAY]["ansible_facts"] for p in play.json["plays"] for t in p["tasks"]
             if GATEWAY in t["hosts"] and "edgex_health_result" in t["hosts"][GATEWAY].get("ansible_facts", {})]
    assert facts, play.failures()
    result = facts[-1]["edgex_health_result"]
    assert result["metrics_error"] is None
    assert sorted(result["metrics"]) == ["core-data", "core-metadata", "device-rest", "support-scheduler"]
    assert result["metrics"]["core-data"]["state"] == "running"
    assert result["metrics"]["device-rest"]["state"] == "absent"
    assert {s["name"] for s in result["services"]} == set(result["metrics"])  # health as before, beside them

    # The report carries them per service (docs/report.schema.json), and the page shows the columns.
    report = json.loads((tmp_path / "report" / "health.json").read_text())
    validate_report(report)
    rows = {s["name"]: s for s in report["hosts"][GATEWAY]["services"]}
    assert rows["core-data"]["metrics"]["state"] == "running" and rows["core-data"]["metrics"]["memory_used"] > 0
    assert rows["device-rest"]["metrics"]["state"] == "absent"
    assert report["hosts"][GATEWAY]["metrics_error"] is None
    page = (tmp_path / "report" / "health.html").read_text()
    assert "<th>CPU %</th><th>Memory (used / limit)</th><th>Restarts</th><th>Uptime</th>" in page
