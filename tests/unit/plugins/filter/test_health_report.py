"""The edgex.sysmgmt.health_report* filters: what the role's report tasks call, with hostvars as
Ansible hands them (HostVars.raw_get) or as a plain mapping."""

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.edgex.sysmgmt.plugins.filter.health_report import FilterModule
from tests.report_schema import validate_report

FILTERS = FilterModule().filters()
T0, T1 = "2026-11-29T10:00:00Z", "2026-11-29T11:00:00Z"


def health_result(node, *verdicts):
    services = [{"name": "svc-%d" % i, "node": node, "verdict": v, "reasons": [] if v == "healthy" else ["why"]}
                for i, v in enumerate(verdicts)]
    return {"services": services, "source": "consul", "manifest_age": None}


class RawHostVars(object):
    """Ansible's HostVars: raw_get(host) gives the host's variables untemplated; [] would template."""

    def __init__(self, variables):
        self.variables = variables

    def raw_get(self, host):
        return self.variables[host]

    def __getitem__(self, host):
        raise AssertionError("the filter must not template hostvars again")


def test_gateway_mode_reads_each_host_s_result_untemplated():
    hostvars = RawHostVars({"gw1": {"edgex_health_result": health_result("gw1", "healthy", "unhealthy")},
                            "gw2": {"edgex_health_result": {"unreachable": True, "msg": "timed out"}},
                            "gw3": {}})
    built = FILTERS["health_report"](["gw1", "gw2", "gw3"], hostvars, generated_at=T0)
    validate_report(built)
    assert built["run"]["mode"] == "gateway"
    assert built["summary"] == {"hosts": 3, "hosts_without_result": 2, "total": 2, "healthy": 1, "degraded": 0,
                                "unhealthy": 1, "unknown": 0}
    assert built["hosts"]["gw2"]["error"] == "timed out" and built["hosts"]["gw3"]["error"].startswith("no health")


def test_controller_mode_when_the_first_host_has_the_fleet_result():
    fleet_result = {"services": health_result("gw1", "healthy")["services"] + health_result("gw2", "degraded")["services"],
                    "source": "consul", "manifest_age": None}
    # run_once registers the result on every host of the play
    hostvars = {host: {"edgex_health_fleet_result": fleet_result} for host in ("gw1", "gw2")}
    built = FILTERS["health_report"](["gw1", "gw2"], hostvars, generated_at=T0)
    validate_report(built)
    assert built["run"]["mode"] == "controller"
    assert {h: [s["verdict"] for s in e["services"]] for h, e in built["hosts"].items()} == {
        "gw1": ["healthy"], "gw2": ["degraded"]}


def test_json_output_history_from_the_previous_file_and_parts(tmp_path):
    hostvars = {"gw1": {"edgex_health_result": health_result("gw1", "unhealthy")}}
    first = FILTERS["health_report"](["gw1"], hostvars, generated_at=T0, output="json")
    assert isinstance(first, str)
    path = tmp_path / "health.json"
    path.write_text(first)
    hostvars["gw1"]["edgex_health_result"] = health_result("gw1", "healthy")
    second = json.loads(FILTERS["health_report"](["gw1"], hostvars, previous=str(path), generated_at=T1, output="json"))
    validate_report(second)
    assert [h["generated_at"] for h in second["history"]] == [T0, T1]
    assert second["changes"]["recovered"] == [{"host": "gw1", "name": "svc-0", "was": "unhealthy"}]
    # a part keeps no history of its own, whatever the previous file says
    part = FILTERS["health_report"](["gw1"], hostvars, previous=str(path), part="slice-1", generated_at=T1)
    assert part["run"]["part"] == "slice-1" and len(part["history"]) == 1 and part["changes"]["since"] is None


def test_merge_from_a_directory_and_from_paths(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    for index, host in enumerate(("gw1", "gw2")):
        part = FILTERS["health_report"]([host], {host: {"edgex_health_result": health_result(host, "healthy")}},
                                        part="s%d" % index, generated_at=T0, output="json")
        (parts / ("s%d.json" % index)).write_text(part)
    merged = FILTERS["health_report_merge"](str(parts), generated_at=T1)
    validate_report(merged)
    assert sorted(merged["hosts"]) == ["gw1", "gw2"] and [p["name"] for p in merged["run"]["parts"]] == ["s0", "s1"]
    again = FILTERS["health_report_merge"]([str(parts / "s0.json"), str(parts / "s1.json")], output="json")
    assert sorted(json.loads(again)["hosts"]) == ["gw1", "gw2"]
    with pytest.raises(AnsibleFilterError, match="do not exist"):
        FILTERS["health_report_merge"]([str(parts / "s9.json")])
    with pytest.raises(AnsibleFilterError, match="no report parts"):
        FILTERS["health_report_merge"](str(tmp_path / "empty"))


def test_errors_are_filter_errors(tmp_path):
    (tmp_path / "health.json").write_text("garbage")
    with pytest.raises(AnsibleFilterError, match="health.json is not a JSON health report"):
        FILTERS["health_report"](["gw1"], {"gw1": {}}, previous=str(tmp_path / "health.json"))
    with pytest.raises(AnsibleFilterError, match="output must be data or json"):
        FILTERS["health_report"](["gw1"], {"gw1": {}}, output="yaml")
    with pytest.raises(AnsibleFilterError, match="needs hostvars"):
        FILTERS["health_report"](["gw1"])
    with pytest.raises(AnsibleFilterError, match="unknown gate"):
        FILTERS["health_report_failures"]({"hosts": {}}, "maybe")
    with pytest.raises(AnsibleFilterError, match="not a health report"):
        FILTERS["health_report_page"]("{}")


def test_page_and_failures_take_the_json_text():
    checked = dict(health_result("gw1", "unhealthy", "healthy"),
                   failing=[{"node": "gw1", "name": "svc-0", "verdict": "unhealthy", "reasons": ["why"]}])
    text = FILTERS["health_report"](["gw1"], {"gw1": {"edgex_health_result": checked}}, generated_at=T0, output="json")
    assert FILTERS["health_report_failures"](text, "unhealthy") == ["gw1/svc-0: unhealthy"]
    page = FILTERS["health_report_page"](text)
    assert (page["problem_count"], page["healthy_count"]) == (1, 1)
