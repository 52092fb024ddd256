"""playbooks/health.yml on the test-bed: the fleet report as JSON, and as HTML rendered by headless Chromium."""

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from tests.integration.playbook import REPO, PlayResult, ansible_env
from tests.integration.report_page import ReportPage, chromium_run, require_chromium
from tests.report_schema import validate_report
from tests.testbed.fixtures_docker import wait_until

pytestmark = pytest.mark.docker
CONSUL_INVENTORY = os.path.join(REPO, "inventories", "consul", "edgex.edgex.yml")
CONSUL = "http://127.0.0.1:8500"
STOPPED = "support-notifications"
# Registry data is untrusted: a registration whose check ID is markup must reach the page as text.
HOSTILE_ID = "hostile-probe"
HOSTILE_CHECK = "<img src=x id=injected onerror=alert(1)><script>document.title='pwned'</script>"
SCREENSHOT = os.path.join(REPO, "tests", "output", "health-report.png")
# The report play runs once, on the first gateway of the play (delegated to the control node), so
# that a run limited to some gateways still reports.
REPORT_HOST = "gw1"


def consul_put(path, body=None):
    request = urllib.request.Request(CONSUL + path, method="PUT",
                                     data=json.dumps(body).encode() if body is not None else None)
    urllib.request.urlopen(request, timeout=5).close()


def registered(name):
    with urllib.request.urlopen(CONSUL + "/v1/agent/services", timeout=5) as response:
        return name in json.loads(response.read())


def run_health(testbed, report_dir, **extra_vars):
    variables = {"ansible_connection": "local", "edgex_manifest_path": testbed["manifest"],
                 "edgex_report_dir": str(report_dir), "edgex_health_check_executor": True}
    variables.update(extra_vars)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", CONSUL_INVENTORY,
            os.path.join(REPO, "playbooks", "health.yml"), "-e", json.dumps(variables)]
    completed = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=600, cwd=REPO,
                               check=False)
    result = PlayResult(completed)
    assert result.json is not None, result.failures()
    return result


def task_result(result, name, host=REPORT_HOST):
    for play in result.json["plays"]:
        for task in play["tasks"]:
            # A role's tasks are named "<role> : <name>".
            if task["task"]["name"].split(" : ")[-1].startswith(name) and host in task["hosts"]:
                return task["hosts"][host]
    raise AssertionError("no task %r for %s in the run" % (name, host))


@pytest.fixture(scope="module")
def chromium():
    return require_chromium()


@pytest.fixture(scope="module")
def degraded_fleet(testbed):
    """The test-bed with one EdgeX service stopped and one hostile registration; restored afterwards."""
    subprocess.run(["docker", "stop", "-t", "5", "edgex-" + STOPPED], check=True, stdout=subprocess.DEVNULL)
    try:
        # Nothing listens on port 9: the probe fails too, so the row is unhealthy.
        consul_put("/v1/agent/service/register", {
            "ID": HOSTILE_ID, "Name": HOSTILE_ID, "Address": "127.0.0.1", "Port": 9,
            "Check": {"CheckID": HOSTILE_CHECK, "TTL": "600s", "Status": "critical"}})
        wait_until(lambda: not registered(STOPPED), what="%s deregistered on stop" % STOPPED)
        yield testbed
    finally:
        consul_put("/v1/agent/service/deregister/" + urllib.parse.quote(HOSTILE_ID, safe=""))
        subprocess.run(["docker", "start", "edgex-" + STOPPED], check=True, stdout=subprocess.DEVNULL)
        wait_until(lambda: registered(STOPPED), what="%s registered again" % STOPPED)


@pytest.fixture(scope="module")
def report(degraded_fleet, tmp_path_factory):
    """One run with the default gate: it fails on the unhealthy services, after writing the report."""
    report_dir = tmp_path_factory.mktemp("report")
    result = run_health(degraded_fleet, report_dir)
    with open(os.path.join(str(report_dir), "health.json")) as handle:
        data = json.load(handle)
    validate_report(data)
    return {"dir": str(report_dir), "result": result, "json": data}


def services_of(data, host="gw1"):
    return {s["name"]: s for s in data["hosts"][host]["services"]}


def test_health_json_names_the_stopped_service(report):
    data = report["json"]
    services = services_of(data)
    stopped = services[STOPPED]
    assert stopped["verdict"] == "unhealthy" and stopped["host"] == "gw1"
    assert "not registered in Consul" in stopped["reasons"] and "container stopped" in stopped["reasons"]
    others = {name: s["verdict"] for name, s in services.items() if name not in (STOPPED, HOSTILE_ID)}
    assert "core-data" in others and set(others.values()) == {"healthy"}, others
    assert services[HOSTILE_ID]["verdict"] == "unhealthy"

    host = data["hosts"]["gw1"]
    assert host["source"] == "consul" and host["manifest_age"] is None and host["error"] is None
    assert host["summary"]["unhealthy"] == 2
    summary = data["summary"]
    assert summary == {"hosts": 1, "hosts_without_result": 0, "total": len(services), "healthy": len(others),
                       "degraded": 0, "unhealthy": 2, "unknown": 0}
    assert data["generated_at"].endswith("Z")


def test_the_play_fails_after_writing_the_report_and_states_the_counts(report):
    result = report["result"]
    assert result.returncode == 2
    summary = task_result(result, "Summary")["msg"]
    assert "1 gateway(s), %d service(s)" % report["json"]["summary"]["total"] in summary
    assert "2 unhealthy" in summary and report["dir"] in summary
    gate = task_result(result, "Fail the run")
    assert gate["failed"] and "gw1/%s: unhealthy" % STOPPED in gate["msg"]
    assert os.path.exists(os.path.join(report["dir"], "health.html"))


def test_chromium_renders_one_row_per_host_and_service(report, chromium, tmp_path):
    url = "file://" + os.path.join(report["dir"], "health.html")
    page = ReportPage()
    page.feed(chromium_run(chromium, tmp_path / "profile", "--dump-dom", url))

    services = services_of(report["json"])
    assert sorted((row["host"], row["cells"][1]) for row in page.rows) == sorted(("gw1", n) for n in services)
    assert all(len(row["cells"]) == 8 for row in page.rows)
    rows = {row["cells"][1]: row for row in page.rows}
    stopped = rows[STOPPED]
    assert stopped["class"] == "row-unhealthy"
    host, name, verdict, reasons, latency, registry, source, age = stopped["cells"]
    assert verdict == "unhealthy" and "not registered in Consul" in reasons and "container stopped" in reasons
    assert (host, name, latency, registry, source, age) == (
        "gw1", STOPPED, "-", services[STOPPED]["registry_status"] or "-", "consul", "-")
    healthy = rows["core-data"]
    assert healthy["class"] == "row-healthy" and healthy["cells"][2] == "healthy" and healthy["cells"][3] == ""
    assert float(healthy["cells"][4]) > 0

    # The hostile check ID is shown as text; nothing of it became an element or ran.
    assert HOSTILE_CHECK in rows[HOSTILE_ID]["cells"][3]
    assert page.injected == [] and "pwned" not in page.title

    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    if os.path.exists(SCREENSHOT):
        os.remove(SCREENSHOT)
    chromium_run(chromium, tmp_path / "profile", "--screenshot=%s" % SCREENSHOT, "--window-size=1280,900", url)
    with open(SCREENSHOT, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_fail_on_as_an_extra_variable_still_reports_every_gateway(degraded_fleet, tmp_path):
    # An extra variable also reaches the role in the first play and fails gw1 there: the report
    # must still cover it, and the gate still decides.
    result = run_health(degraded_fleet, tmp_path, edgex_health_fail_on="degraded")
    assert task_result(result, "Check the health", host="gw1")["failed"] is True
    assert result.returncode == 2
    assert "gw1/%s: unhealthy" % STOPPED in task_result(result, "Fail the run")["msg"]
    with open(str(tmp_path / "health.json")) as handle:
        data = json.load(handle)
    validate_report(data)
    assert data["hosts"]["gw1"]["error"] is None and services_of(data)[STOPPED]["verdict"] == "unhealthy"


def consul_fault(mode):
    request = urllib.request.Request(CONSUL + "/_emulator/fault", method="POST",
                                     data=json.dumps({"mode": mode}).encode())
    urllib.request.urlopen(request, timeout=5).close()


def test_registry_down_the_report_says_manifest_and_its_age(degraded_fleet, chromium, tmp_path):
    consul_fault("500")  # the test-bed's registry is always the emulator
    try:
        result = run_health(degraded_fleet, tmp_path, edgex_health_fail_on="never")
    finally:
        consul_fault(None)
    assert result.returncode == 0, result.failures()
    with open(str(tmp_path / "health.json")) as handle:
        data = json.load(handle)
    validate_report(data)
    host = data["hosts"]["gw1"]
    assert host["source"] == "manifest" and host["manifest_age"] >= 0 and host["error"] is None
    assert services_of({"hosts": {"gw1": host}})["core-data"]["verdict"] == "healthy"

    page = ReportPage()
    page.feed(chromium_run(chromium, tmp_path / "profile", "--dump-dom", "file://%s" % (tmp_path / "health.html")))
    assert {row["cells"][6] for row in page.rows} == {"manifest"}
    assert {row["cells"][7] for row in page.rows} == {"%.0f s" % host["manifest_age"]}


def test_remediation_restarts_the_stopped_service_before_the_check(degraded_fleet, tmp_path):
    result = run_health(degraded_fleet, tmp_path, edgex_health_remediate=True, edgex_health_remediate_grace=0,
                        edgex_health_remediate_state_path=str(tmp_path / "ledger.json"),
                        edgex_health_services=[STOPPED], edgex_health_wait_for="healthy",
                        edgex_health_wait_timeout=30)
    try:
        assert result.returncode == 0, result.failures()
        remediation = task_result(result, "Restart the services", host="gw1")
        assert [(s["name"], s["action"]) for s in remediation["services"]] == [(STOPPED, "restart")]
        with open(str(tmp_path / "health.json")) as handle:
            data = json.load(handle)
        validate_report(data)
        assert [(s["name"], s["verdict"]) for s in data["hosts"]["gw1"]["services"]] == [(STOPPED, "healthy")]
    finally:
        subprocess.run(["docker", "stop", "-t", "5", "edgex-" + STOPPED], check=True, stdout=subprocess.DEVNULL)
        wait_until(lambda: not registered(STOPPED), what="%s deregistered on stop" % STOPPED)
