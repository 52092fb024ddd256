"""_report: the fleet health report built from edgex_health results, its history, merging, the gate
and the page rows; every report validated against docs/report.schema.json."""

import json
from html.parser import HTMLParser

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils import _report as report_
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import VERDICTS
from tests.report_schema import validate_report

T0, T1, T2 = "2026-11-29T10:00:00Z", "2026-11-29T11:00:00Z", "2026-11-29T12:00:00Z"


def service(name, verdict, node="gw1", reasons=None, latency=1.5):
    return {"name": name, "id": name, "node": node, "verdict": verdict, "reasons": reasons or [],
            "latency_ms": latency, "registry_status": "passing", "checks": [], "probe": "http",
            "address": "127.0.0.1", "port": 59880, "target": "http://127.0.0.1:59880/api/v3/ping",
            "http_status": 200, "executor_state": None}


def result(*services, source="consul", manifest_age=None, **extra):
    out = {"changed": False, "services": list(services), "summary": report_.counts(services), "source": source,
           "manifest_age": manifest_age}
    out.update(extra)
    return out


def entries(results):
    return {host: report_.host_entry(host, res) for host, res in results.items()}


def fleet(**verdicts_by_host):
    """{host: {service: verdict}} -> entries."""
    return entries({host: result(*[service(n, v, node=host) for n, v in sorted(svcs.items())])
                    for host, svcs in verdicts_by_host.items()})


def test_verdicts_are_edgex_health_s():
    assert report_.VERDICTS == VERDICTS


def test_host_entry_keeps_the_services_and_names_the_host():
    entry = report_.host_entry("gw1", result(service("core-data", "healthy"), service("core-command", "unhealthy")))
    assert [(s["name"], s["host"], s["verdict"]) for s in entry["services"]] == [
        ("core-data", "gw1", "healthy"), ("core-command", "gw1", "unhealthy")]
    assert entry["error"] is None and entry["source"] == "consul" and entry["summary"]["unhealthy"] == 1


def test_a_failed_check_with_services_is_a_result_not_an_error():
    failed = result(service("core-data", "unhealthy"), failed=True, msg="1 of 1 services unhealthy: ...")
    assert report_.host_entry("gw1", failed)["error"] is None


@pytest.mark.parametrize("res, error", [
    (None, report_.NO_RESULT),
    ({}, report_.NO_RESULT),
    ({"unreachable": True, "msg": "Failed to connect to the host via ssh"}, "Failed to connect to the host via ssh"),
    ({"failed": True, "msg": "node gw9 not known to the consul registry"}, "node gw9 not known to the consul registry"),
])
def test_a_gateway_without_services_is_listed_with_its_error(res, error):
    entry = report_.host_entry("gw1", res)
    assert entry["error"] == error and entry["services"] == [] and entry["summary"] == {}


def test_a_controller_side_result_is_split_by_node():
    res = result(service("core-data", "healthy", node="gw1"), service("core-data", "unhealthy", node="gw2"),
                 service("core-command", "healthy", node="node-of-gw3"))
    got = report_.entries_from_fleet_result(res, ["gw1", "gw2", "gw3", "gw4"], node_of={"gw3": "node-of-gw3"})
    assert {h: [(s["name"], s["host"], s["verdict"]) for s in e["services"]] for h, e in got.items()} == {
        "gw1": [("core-data", "gw1", "healthy")], "gw2": [("core-data", "gw2", "unhealthy")],
        "gw3": [("core-command", "gw3", "healthy")], "gw4": []}
    assert got["gw2"]["summary"] == {"healthy": 0, "degraded": 0, "unhealthy": 1, "unknown": 0, "total": 1}
    assert all(e["error"] is None for e in got.values())


def test_a_failed_controller_side_task_leaves_every_gateway_without_a_result():
    got = report_.entries_from_fleet_result({"failed": True, "msg": "Consul unreachable"}, ["gw1", "gw2"])
    assert {h: e["error"] for h, e in got.items()} == {"gw1": "Consul unreachable", "gw2": "Consul unreachable"}


def test_the_report_counts_per_verdict_and_per_service():
    built = report_.build_report(fleet(gw1={"core-data": "healthy", "core-command": "unhealthy"},
                                       gw2={"core-data": "degraded", "core-command": "healthy"},
                                       gw3={}) | {"gw4": report_.host_entry("gw4", None)}, generated_at=T0)
    validate_report(built)
    assert built["summary"] == {"hosts": 4, "hosts_without_result": 1, "total": 4, "healthy": 2, "degraded": 1,
                                "unhealthy": 1, "unknown": 0}
    assert built["by_service"] == {
        "core-command": {"healthy": 1, "degraded": 0, "unhealthy": 1, "unknown": 0, "total": 2},
        "core-data": {"healthy": 1, "degraded": 1, "unhealthy": 0, "unknown": 0, "total": 2}}
    assert built["schema_version"] == 1 and built["run"] == {"mode": "gateway", "part": None}
    assert built["changes"] == {"since": None, "newly_unhealthy": [], "recovered": []}
    assert built["history"] == [dict(built["summary"], generated_at=T0)]
    assert list(built["hosts"]) == ["gw1", "gw2", "gw3", "gw4"]


def test_changes_since_the_previous_report():
    before = report_.build_report(fleet(gw1={"a": "healthy", "b": "unhealthy", "c": "degraded", "d": "unhealthy"},
                                        gw2={"a": "healthy"}), generated_at=T0)
    now = report_.build_report(fleet(gw1={"a": "unhealthy", "b": "healthy", "c": "healthy", "d": "unhealthy",
                                          "e": "unhealthy"}), previous=before, generated_at=T1)
    validate_report(now)
    assert now["changes"] == {
        "since": T0,
        # d stayed unhealthy: not new; e was not there before
        "newly_unhealthy": [{"host": "gw1", "name": "a", "was": "healthy"}, {"host": "gw1", "name": "e", "was": None}],
        "recovered": [{"host": "gw1", "name": "b", "was": "unhealthy"}, {"host": "gw1", "name": "c", "was": "degraded"}],
    }


def test_history_keeps_the_last_k_runs_oldest_first():
    previous = None
    for stamp in (T0, T1, T2):
        previous = report_.build_report(fleet(gw1={"a": "healthy"}), previous=previous, keep=2, generated_at=stamp)
    validate_report(previous)
    assert [run["generated_at"] for run in previous["history"]] == [T1, T2]
    with pytest.raises(report_.ReportError, match="at least 1"):
        report_.build_report(fleet(gw1={}), keep=0)


def slices(count, hosts_per_slice, stamp=T1):
    parts = []
    for index in range(count):
        hosts = {"gw%03d" % (index * hosts_per_slice + n): {"core-data": "healthy", "core-command": "unhealthy"}
                 for n in range(hosts_per_slice)}
        parts.append(("slice-%d" % index, report_.build_report(fleet(**hosts), part="slice-%d" % index,
                                                               generated_at=stamp)))
    return parts


def test_merging_disjoint_slices_keeps_every_gateway_once():
    parts = slices(4, 3)
    previous = report_.build_report(fleet(gw000={"core-data": "unhealthy", "core-command": "unhealthy"}),
                                    generated_at=T0)
    merged = report_.merge_reports(parts, previous=previous, generated_at=T2)
    validate_report(merged)
    assert sorted(merged["hosts"]) == ["gw%03d" % n for n in range(12)]
    assert merged["summary"]["hosts"] == 12 and merged["summary"]["total"] == 24
    assert merged["run"]["mode"] == "merged" and merged["run"]["duplicates"] == []
    assert [(p["name"], p["hosts"]) for p in merged["run"]["parts"]] == [("slice-%d" % n, 3) for n in range(4)]
    assert merged["changes"]["recovered"] == [{"host": "gw000", "name": "core-data", "was": "unhealthy"}]
    assert [run["generated_at"] for run in merged["history"]] == [T0, T2]


def test_a_gateway_in_two_parts_keeps_the_newest_and_is_named():
    old = report_.build_report(fleet(gw1={"a": "unhealthy"}, gw2={"a": "healthy"}), part="old", generated_at=T0)
    new = report_.build_report(fleet(gw1={"a": "healthy"}), part="new", generated_at=T1)
    merged = report_.merge_reports([("new", new), ("old", old)], generated_at=T2)
    validate_report(merged)
    assert merged["hosts"]["gw1"]["services"][0]["verdict"] == "healthy"
    assert merged["run"]["duplicates"] == [{"host": "gw1", "parts": ["old", "new"]}]
    assert sorted(merged["hosts"]) == ["gw1", "gw2"]


def test_merging_refuses_nothing_and_other_schema_versions():
    with pytest.raises(report_.ReportError, match="no report parts"):
        report_.merge_reports([])
    part = report_.build_report(fleet(gw1={}), part="p", generated_at=T0)
    part["schema_version"] = 2
    with pytest.raises(report_.ReportError, match="p has schema_version 2"):
        report_.merge_reports([("p", part)])


def test_the_gate_is_what_each_gateway_s_module_matched():
    # The module decides (edgex_health's fail_on): its failing is carried, named by inventory host;
    # nothing is derived from the verdicts again, so a degraded service fails only when gw1's gate said so.
    checked = result(service("a", "unhealthy", node="gw1"), service("b", "degraded", node="gw1"),
                     service("c", "healthy", node="gw1"),
                     failing=[{"node": "gw1", "name": "a", "verdict": "unhealthy", "reasons": ["why"]}])
    built = report_.build_report({"gw1": report_.host_entry("gw1", checked),
                                  "gw2": report_.host_entry("gw2", {"unreachable": True, "msg": "no route"})},
                                 generated_at=T0)
    assert built["hosts"]["gw1"]["failing"] == [{"host": "gw1", "name": "a", "verdict": "unhealthy"}]
    assert report_.failures(built, "unhealthy") == ["gw1/a: unhealthy", "gw2: no route"]
    assert report_.failures(report_.to_json(built), "degraded") == ["gw1/a: unhealthy", "gw2: no route"]
    assert report_.failures(built, "never") == ["gw1/a: unhealthy"]  # a gateway without a result does not fail it
    with pytest.raises(report_.ReportError, match="unknown gate"):
        report_.failures(built, "sometimes")


def test_a_fleet_result_s_failing_goes_to_each_host():
    fleet_result = result(service("a", "unhealthy", node="node-1"), service("a", "healthy", node="node-2"),
                          failing=[{"node": "node-1", "name": "a", "verdict": "unhealthy", "reasons": []}])
    entries_ = report_.entries_from_fleet_result(fleet_result, ["gw1", "gw2"], {"gw1": "node-1", "gw2": "node-2"})
    assert entries_["gw1"]["failing"] == [{"host": "gw1", "name": "a", "verdict": "unhealthy"}]
    assert entries_["gw2"]["failing"] == []


class Rows(HTMLParser):
    def __init__(self):
        HTMLParser.__init__(self)
        self.rows, self.other_tags, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append({"attrs": dict(attrs), "cells": []})
        elif tag == "td":
            self._cell = []
        elif tag not in ("ul", "li", "span"):
            self.other_tags.append(tag)

    def handle_endtag(self, tag):
        if tag == "td":
            self.rows[-1]["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data + " ")


def parse_rows(markup):
    parser = Rows()
    parser.feed(markup)
    return parser


def test_the_page_puts_problems_first_and_healthy_services_apart():
    built = report_.build_report(fleet(gw1={"a": "healthy", "b": "degraded"}, gw2={"a": "healthy", "b": "healthy"},
                                       gw3={"a": "unhealthy", "b": "unknown"}), generated_at=T0)
    page = report_.page(report_.to_json(built))
    problems = parse_rows(page["problem_rows_html"]).rows
    assert [(r["attrs"]["data-host"], r["attrs"]["data-service"], r["attrs"]["class"]) for r in problems] == [
        ("gw3", "a", "row-unhealthy"), ("gw1", "b", "row-degraded"), ("gw3", "b", "row-unknown")]
    healthy = parse_rows(page["healthy_rows_html"]).rows
    assert [(r["attrs"]["data-host"], r["attrs"]["data-service"]) for r in healthy] == [
        ("gw1", "a"), ("gw2", "a"), ("gw2", "b")]
    assert (page["problem_count"], page["healthy_count"], page["healthy_hosts"]) == (3, 3, 1)
    assert [s["name"] for s in page["per_service"]] == ["a", "b"] and page["per_service"][0]["unhealthy"] == 1
    assert "hosts" not in page["report"] and page["report"]["summary"] == built["summary"]
    assert all(len(r["cells"]) == 8 for r in problems + healthy)


def test_page_cells_and_escaping():
    hostile = "<img src=x onerror=alert(1)><script>document.title='pwned'</script>{{ 7 * 7 }}"
    res = result(service("core-data", "unhealthy", reasons=["ping timed out after 3.0s", hostile], latency=None),
                 service(hostile, "healthy", latency=12.34), source="manifest", manifest_age=42.4)
    built = report_.build_report(entries({'gw"1': res}), generated_at=T0)
    parsed = parse_rows(report_.page(built)["problem_rows_html"])
    assert parsed.other_tags == []  # nothing of the registry's data became an element
    unhealthy, = parsed.rows
    healthy, = parse_rows(report_.page(built)["healthy_rows_html"]).rows
    assert unhealthy["cells"] == ['gw"1', "core-data", "unhealthy", "ping timed out after 3.0s %s" % hostile, "-",
                                  "passing", "manifest", "42 s"]
    assert healthy["attrs"]["data-service"] == hostile and healthy["cells"][4] == "12.3"
    assert healthy["cells"][3] == ""


def test_report_files(tmp_path):
    assert report_.load_report(str(tmp_path / "missing.json")) is None
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(report_.ReportError, match="bad.json is not a JSON health report"):
        report_.load_report(str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(report_.ReportError, match="list.json is not a health report"):
        report_.load_report(str(tmp_path / "list.json"))
    parts = tmp_path / "parts"
    parts.mkdir()
    for name, part in slices(2, 1):
        (parts / (name + ".json")).write_text(json.dumps(part))
    (parts / "notes.txt").write_text("not a part")
    assert [name for name, _part in report_.load_parts(str(parts))] == ["slice-0", "slice-1"]
    assert report_.load_parts(str(tmp_path / "none")) == []


@pytest.mark.parametrize("results, message", [
    # What the module matched, named host/service: verdict (a degraded one when its gate was degraded).
    ({"gw1": result(failing=[{"node": "gw1", "name": "core-data", "verdict": "unhealthy", "reasons": []},
                             {"node": None, "name": "core-command", "verdict": "degraded", "reasons": []}])},
     ["gw1/core-data: unhealthy", "gw1/core-command: degraded"]),
    # A gateway without a result, and one whose check failed before checking anything.
    ({"gw1": result(failing=[]), "gw2": {}}, ["gw2: no health result (the check did not run)"]),
    ({"gw1": {"failed": True, "msg": "Consul at http://127.0.0.1:8500 refused: 403"}},
     ["gw1: Consul at http://127.0.0.1:8500 refused: 403"]),
    # An unhealthy verdict the module's gate did not match (its fail_on was never): nothing fails.
    ({"gw1": result(service("core-data", "unhealthy", node="gw1"), failing=[])}, []),
])
def test_the_gate_lists_what_failed_and_the_gateways_without_a_result(results, message):
    built = report_.build_report(entries(results), generated_at=T0)
    assert report_.failures(built, "unhealthy") == message


METRICS = {"core-data": {"node": "gw1", "executor": "docker", "target": "edgex-core-data", "state": "running",
                         "cpu_percent": 1.234, "memory_used": 11653120, "memory_limit": 25276510208,
                         "memory_percent": 0.05, "restarts": 2, "uptime": 3725.0,
                         "started_at": "2026-11-29T20:29:37.433701285Z", "reason": None},
           "core-command": {"node": "gw1", "executor": "docker", "target": "edgex-core-command", "state": "absent",
                            "cpu_percent": None, "memory_used": None, "memory_limit": None,
                            "memory_percent": None, "restarts": None, "uptime": None, "started_at": None,
                            "reason": "container edgex-core-command does not exist on this host"}}


def test_metrics_of_a_gateway_go_to_its_services_rows_and_columns_appear():
    with_metrics = result(service("core-data", "healthy"), service("core-command", "unhealthy"),
                          service("support-scheduler", "healthy"), metrics=METRICS, metrics_error=None)
    built = report_.build_report(entries({"gw1": with_metrics, "gw2": result(service("core-data", "healthy"))}),
                                 generated_at=T0)
    validate_report(built)
    rows = {s["name"]: s for s in built["hosts"]["gw1"]["services"]}
    assert rows["core-data"]["metrics"]["cpu_percent"] == 1.234
    assert rows["support-scheduler"]["metrics"] is None  # edgex_metrics had nothing for it
    assert built["hosts"]["gw1"]["metrics_error"] is None
    assert "metrics" not in built["hosts"]["gw2"]["services"][0] and "metrics_error" not in built["hosts"]["gw2"]
    page = report_.page(report_.to_json(built))
    assert page["with_metrics"] is True and page["metrics_errors"] == []
    healthy = {(r["attrs"]["data-host"], r["attrs"]["data-service"]): r["cells"]
               for r in parse_rows(page["healthy_rows_html"]).rows}
    assert healthy[("gw1", "core-data")][8:] == ["1.23", "11.1 MiB / 23.5 GiB", "2", "1h02m"]
    assert healthy[("gw1", "support-scheduler")][8:] == ["-", "-", "-", "-"]
    assert healthy[("gw2", "core-data")][8:] == ["-", "-", "-", "-"]  # this gateway did not collect any
    [absent] = parse_rows(page["problem_rows_html"]).rows
    assert absent["cells"][8:] == ["-", "-", "-", "-"]


def test_a_gateway_without_metrics_says_why_and_a_report_without_any_has_no_columns():
    failed = result(service("core-data", "healthy"), metrics={}, metrics_error="unknown service core-dta")
    built = report_.build_report(entries({"gw1": failed}), generated_at=T0)
    validate_report(built)
    page = report_.page(built)
    assert page["metrics_errors"] == [{"host": "gw1", "error": "unknown service core-dta"}]
    without = report_.page(report_.build_report(fleet(gw1={"a": "healthy"}), generated_at=T0))
    assert without["with_metrics"] is False
    assert all(len(r["cells"]) == 8 for r in parse_rows(without["healthy_rows_html"]).rows)
