"""playbooks/health.yml over a simulated fleet of 50 gateways x 12 services (tests/testbed/fleet.py):
each gateway checking itself through the edgex inventory plugin, the whole fleet probed from the
control node, four slices run as separate --limit runs and merged. Every report is validated
against docs/report.schema.json, every verdict against the fault the simulator gave the service,
and the page is read as headless Chromium renders it, filter included. No Docker: processes on
loopback (127.12.0.0/16) only."""

import json
import os
import shutil
import subprocess
import urllib.request

import pytest

from tests.integration.playbook import BIN, REPO, PlayResult, ansible_env
from tests.integration.report_page import rendered, require_chromium
from tests.report_schema import validate_report
from tests.testbed import fleet as fleet_

GATEWAYS = 50
BASE = "127.12.0.0"
PROBE_TIMEOUT = 2
FAULTS = {"hung": 0.05, "failing": 0.01, "wrong": 0.01, "warning": 0.01, "down": 0.01, "slow": 0.01}
# Registry data is untrusted: markup and Jinja in a check ID must reach the report as text.
HOSTILE_NODE = "gw-00001"
HOSTILE_CHECK = "{{ 7 * 7 }}<script>document.title='pwned'</script>"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    spec = fleet_.build_spec(GATEWAYS, 12, FAULTS, seed=15, base=BASE, slow_delay=0.3)
    with fleet_.Fleet(spec, str(tmp_path_factory.mktemp("fleet"))) as running:
        gateway = spec["gateways"][0]
        # nothing listens on port 9: unhealthy, with the hostile check critical
        body = {"Node": HOSTILE_NODE, "Address": gateway["address"], "SkipNodeUpdate": True,
                "Service": {"ID": "hostile", "Service": "hostile", "Port": 9, "Address": gateway["address"]},
                "Check": {"CheckID": HOSTILE_CHECK, "Name": "hostile", "ServiceID": "hostile", "Status": "critical"}}
        request = urllib.request.Request(running.consul_url + "/v1/catalog/register", method="PUT",
                                         data=json.dumps(body).encode())
        urllib.request.urlopen(request, timeout=10).close()
        yield running


def expected(fleet, hosts=None):
    verdicts = fleet_.expected_verdicts(fleet.spec)
    verdicts[(HOSTILE_NODE, "hostile")] = "unhealthy"
    return {key: verdict for key, verdict in verdicts.items() if hosts is None or key[0] in hosts}


def verdicts_of(report):
    return {(host, s["name"]): s["verdict"] for host, entry in report["hosts"].items() for s in entry["services"]}


def run(playbook, inventory, report_dir, *args, **extra_vars):
    variables = {"edgex_report_dir": str(report_dir), "edgex_health_probe_timeout": PROBE_TIMEOUT}
    variables.update(extra_vars)
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(REPO, "playbooks", playbook),
            "-f", "50", "-e", json.dumps(variables)] + list(args)
    completed = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=600, cwd=REPO,
                               check=False)
    result = PlayResult(completed)
    assert result.json is not None, result.failures()
    return result


def read(path):
    with open(str(path)) as handle:
        report = json.load(handle)
    validate_report(report)
    return report


def task_result(result, name):
    for play in result.json["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1].startswith(name):
                return list(task["hosts"].values())[0]
    raise AssertionError("no task %r in the run" % name)


@pytest.fixture(scope="module")
def gateway_run(fleet, tmp_path_factory):
    """Each gateway checks itself, with the inventory from the edgex plugin."""
    report_dir = tmp_path_factory.mktemp("report")
    result = run("health.yml", fleet.plugin_inventory_path, report_dir)
    return {"dir": report_dir, "result": result, "report": read(report_dir / "health.json")}


def test_each_gateway_checks_itself_and_the_report_has_every_verdict(fleet, gateway_run):
    report, result = gateway_run["report"], gateway_run["result"]
    assert verdicts_of(report) == expected(fleet)
    assert report["run"] == {"mode": "gateway", "part": None}
    unhealthy = sum(1 for v in expected(fleet).values() if v == "unhealthy")
    assert report["summary"] == {"hosts": GATEWAYS, "hosts_without_result": 0, "total": GATEWAYS * 12 + 1,
                                 "healthy": sum(1 for v in expected(fleet).values() if v == "healthy"),
                                 "degraded": sum(1 for v in expected(fleet).values() if v == "degraded"),
                                 "unhealthy": unhealthy, "unknown": 0}
    assert sum(counts["total"] for counts in report["by_service"].values()) == GATEWAYS * 12 + 1
    assert report["changes"]["since"] is None and len(report["history"]) == 1
    # the default gate fails the run, after the report, naming every unhealthy service
    assert result.returncode == 2
    gate = task_result(result, "Fail the run")
    assert gate["failed"] and gate["msg"].count(": unhealthy") == unhealthy
    # only the check ran on each gateway: one task per gateway (no argument check of the registry role either)
    per_gateway = [t for play in result.json["plays"] for t in play["tasks"] if "gw-00002" in t["hosts"]]
    assert len(per_gateway) == 1
    assert per_gateway[0]["task"]["name"].split(" : ")[-1].startswith("Check the health of the EdgeX services")


def test_hostile_registry_data_stays_text(gateway_run):
    hostile = [s for s in gateway_run["report"]["hosts"][HOSTILE_NODE]["services"] if s["name"] == "hostile"][0]
    assert "Consul check '%s' critical" % HOSTILE_CHECK in hostile["reasons"]  # not templated: no 49


@pytest.fixture(scope="module")
def chromium():
    return require_chromium()


def test_the_page_leads_with_the_problems_and_filters(fleet, gateway_run, chromium, tmp_path):
    url = "file://%s" % (gateway_run["dir"] / "health.html")
    page = rendered(chromium, tmp_path / "profile", url)
    assert page.injected == [] and "pwned" not in page.title
    verdicts = expected(fleet)
    assert sorted((r["host"], r["cells"][1]) for r in page.rows) == sorted(verdicts)
    assert not any(r["hidden"] for r in page.rows)
    problems = [r for r in page.rows if r["table"] == "services"]
    order = {"unhealthy": 0, "degraded": 1, "unknown": 2, "healthy": 3}
    ranks = [order[r["cells"][2]] for r in problems]
    assert ranks == sorted(ranks) and ranks[0] == 0
    # what needs attention in the open table, the healthy services in the collapsed one
    needing_attention = sorted(k for k, v in verdicts.items() if v != "healthy")
    assert sorted((r["host"], r["cells"][1]) for r in problems) == needing_attention
    healthy = sorted(k for k, v in verdicts.items() if v == "healthy")
    assert sorted((r["host"], r["cells"][1]) for r in page.rows if r["table"] == "healthy-services") == healthy

    filtered = rendered(chromium, tmp_path / "profile", url + "#filter=verdict:unhealthy")
    shown = [r for r in filtered.rows if not r["hidden"]]
    assert len(shown) == sum(1 for v in verdicts.values() if v == "unhealthy")
    assert {r["cells"][2] for r in shown} == {"unhealthy"} and filtered.root["data-shown"] == str(len(shown))
    one = rendered(chromium, tmp_path / "profile", url + "#filter=gw-00002%20core")
    assert sorted(r["cells"][1] for r in one.rows if not r["hidden"]) == ["core-command", "core-data", "core-metadata"]
    assert {r["host"] for r in one.rows if not r["hidden"]} == {"gw-00002"}


def flip(report, key, verdict):
    host, name = key
    for service in report["hosts"][host]["services"]:
        if service["name"] == name:
            service["verdict"] = verdict


def test_the_control_node_probes_the_fleet_and_the_report_says_what_changed(fleet, gateway_run, tmp_path):
    report_dir = tmp_path / "report"
    shutil.copytree(str(gateway_run["dir"]), str(report_dir))
    # the previous run, as if one service had been unhealthy and one healthy that now are not
    previous = read(report_dir / "health.json")
    verdicts = expected(fleet)
    recovering = sorted(k for k, v in verdicts.items() if v == "healthy")[0]
    breaking = sorted(k for k, v in verdicts.items() if v == "unhealthy" and k[0] != HOSTILE_NODE)[0]
    flip(previous, recovering, "unhealthy")
    flip(previous, breaking, "healthy")
    (report_dir / "health.json").write_text(json.dumps(previous))

    result = run("health.yml", fleet.static_inventory_path, report_dir, edgex_health_probe_from="controller",
                 edgex_health_fail_on="never")
    assert result.returncode == 0, result.failures()
    report = read(report_dir / "health.json")
    assert report["run"]["mode"] == "controller"
    assert verdicts_of(report) == verdicts
    assert report["changes"] == {
        "since": previous["generated_at"],
        "newly_unhealthy": [{"host": breaking[0], "name": breaking[1], "was": "healthy"}],
        "recovered": [{"host": recovering[0], "name": recovering[1], "was": "unhealthy"}]}
    assert [h["generated_at"] for h in report["history"]] == [previous["generated_at"], report["generated_at"]]
    # one probe task for the whole fleet, on the control node; no task on any gateway
    tasks = [t for play in result.json["plays"] for t in play["tasks"]]
    assert not any("gw-00002" in t["hosts"] for t in tasks)
    probe = task_result(result, "Probe every gateway's EdgeX services")
    assert len(probe["services"]) == GATEWAYS * 12 + 1


def test_four_slices_merge_into_one_fleet_report(fleet, tmp_path, chromium):
    report_dir = tmp_path / "report"
    hosts = [g["name"] for g in fleet.spec["gateways"]]
    bounds = [(0, 13), (13, 25), (25, 38), (38, 50)]
    for number, (start, end) in enumerate(bounds, 1):
        result = run("health.yml", fleet.static_inventory_path, report_dir, "--limit", ",".join(hosts[start:end]),
                     edgex_report_part="slice-%d" % number, edgex_health_fail_on="never")
        assert result.returncode == 0, result.failures()
        part = read(report_dir / "parts" / ("slice-%d.json" % number))
        assert sorted(part["hosts"]) == hosts[start:end] and part["run"]["part"] == "slice-%d" % number
    assert not (report_dir / "health.json").exists()  # slices write parts only

    merged_run = run("health_merge.yml", "localhost,", report_dir, edgex_report_parts_expected=4,
                     edgex_health_fail_on="never")
    assert merged_run.returncode == 0, merged_run.failures()
    merged = read(report_dir / "health.json")
    assert sorted(merged["hosts"]) == hosts  # nothing lost
    assert verdicts_of(merged) == expected(fleet)  # nothing duplicated or changed
    assert merged["run"]["mode"] == "merged" and merged["run"]["duplicates"] == []
    assert [(p["name"], p["hosts"]) for p in merged["run"]["parts"]] == [
        ("slice-%d" % n, end - start) for n, (start, end) in enumerate(bounds, 1)]
    assert merged["summary"]["hosts"] == GATEWAYS and merged["summary"]["total"] == GATEWAYS * 12 + 1
    assert os.listdir(str(report_dir / "parts")) == []  # merged parts are consumed
    page = rendered(chromium, tmp_path / "profile", "file://%s" % (report_dir / "health.html"))
    assert len(page.rows) == GATEWAYS * 12 + 1

    # a missing slice is an error, not a smaller fleet
    run("health.yml", fleet.static_inventory_path, report_dir, "--limit", hosts[0], edgex_report_part="late",
        edgex_health_fail_on="never")
    short = run("health_merge.yml", "localhost,", report_dir, edgex_report_parts_expected=4)
    assert short.returncode == 2 and "1 part(s)" in short.failures() and "4 expected" in short.failures()
