"""_gateway: the runs behind edgex_health, edgex_remediate and edgex_reap, with fake probes,
executors, registries and clocks (no sleeping, no network)."""

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import EdgeXError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway import health as health_module
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import HealthCheck, HealthResult, failing
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.ledger import empty_ledger
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.reaping import ReapingRun
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.remediation import (
    Policy,
    RemediationRun,
    undo_restart,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.select import Selection
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord


class FakeClock(object):
    """monotonic() and sleep() on a clock only the test moves."""

    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def consul(*services):
    return Discovery("consul", nodes=[NodeRecord("gw1", "127.0.0.1")], services=list(services))


def result(name, verdict, executor_state="running", **extra):
    return HealthResult(name=name, verdict=verdict, node="gw1", executor_state=executor_state, **extra)


# -- HealthCheck ----------------------------------------------------------------------------------
def test_waiting_rides_out_a_service_that_registers_late(monkeypatch):
    clock = FakeClock()
    registered = []  # what the registry knows, per attempt

    def select():
        return Selection(consul(*registered), None, ["gw1"], ["core-data"])

    def check_health(services, source, executors, timeout, workers):
        assert source == "consul" and timeout == 1.0
        return [result(s.name, "healthy") for s in services]

    monkeypatch.setattr(health_module, "check_health", check_health)
    check = HealthCheck(select, 1.0, clock=clock, sleep=clock.sleep)
    original_sleep = clock.sleep

    def sleep_then_register(seconds):
        original_sleep(seconds)
        if clock.now >= 101.4:  # registers between the second and third attempt
            registered[:] = [ServiceRecord("core-data", "gw1", address="127.0.0.1", port=1)]

    check.sleep = sleep_then_register
    results, pending = check.wait(30)
    assert pending == [] and [r.name for r in results] == ["core-data"]
    assert [a["not_healthy"] for a in check.attempts] == [["core-data"], ["core-data"]]
    assert check.attempts[0]["summary"]["unknown"] == 1 and check.attempts[0]["retry_in"] == 0.5
    assert clock.slept == [0.5, 1.0] and check.elapsed() == 1.5


def test_waiting_gives_up_at_the_deadline_and_says_why(monkeypatch):
    clock = FakeClock()
    hung = ServiceRecord("core-metadata", "gw1", address="127.0.0.1", port=1)
    monkeypatch.setattr(health_module, "check_health", lambda services, *a: [
        result(s.name, "unhealthy", reasons=["ping timed out after 0.5s"]) for s in services])
    check = HealthCheck(lambda: Selection(consul(hung), None, ["gw1"], None), 0.5, clock=clock, sleep=clock.sleep)
    results, pending = check.wait(2)
    assert pending == ["core-metadata"] and sum(clock.slept) == pytest.approx(2)
    assert check.verdict(results, "unhealthy", 2) == \
        "not healthy after waiting 2s: core-metadata on gw1: ping timed out after 0.5s"
    assert check.verdict(results, "never", 2) is None


def test_verdict_after_a_wait_names_what_never_registered(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(health_module, "check_health", lambda services, *a: [])
    check = HealthCheck(lambda: Selection(consul(), None, ["gw1"], ["device-virtual"]), 1, clock=clock,
                        sleep=clock.sleep)
    results, _pending = check.wait(2)
    assert [(r.name, r.verdict, r.reasons) for r in results] == [("device-virtual", "unknown", ["not registered"])]
    assert check.verdict(results, "never", 2) == \
        "after waiting 2s, unknown service device-virtual on node gw1 in the consul registry; known there: none"


def test_fail_on_decides_once_what_fails():
    results = [result("core-data", "healthy"), result("core-command", "degraded", reasons=["node serfHealth critical"]),
               result("device-virtual", "unhealthy", reasons=["ping answered 500"])]
    assert [f["name"] for f in failing(results, "unhealthy")] == ["device-virtual"]
    assert [f["name"] for f in failing(results, "degraded")] == ["core-command", "device-virtual"]
    assert failing(results, "never") == []
    assert failing(results, "unhealthy")[0] == {"node": "gw1", "name": "device-virtual", "verdict": "unhealthy",
                                                "reasons": ["ping answered 500"]}
    check = HealthCheck(lambda: None, 1)
    assert check.verdict(results, "degraded") == (
        "2 of 3 services unhealthy or degraded: core-command on gw1: node serfHealth critical; "
        "device-virtual on gw1: ping answered 500")


# -- RemediationRun ---------------------------------------------------------------------------------
POLICY = Policy(grace=0, max_restarts=2, window=600, backoff=10)


def test_remediation_restarts_the_eligible_and_counts_only_what_was_acted_on():
    results = [result("core-data", "unhealthy", "stopped"), result("device-virtual", "unhealthy", "stopped"),
               result("core-command", "healthy")]
    run = RemediationRun("gw1", results, POLICY, now=1000.0)
    asked = []

    def restart(names):
        asked.append(list(names))
        return [{"name": "core-data", "changed": True},
                {"name": "device-virtual", "changed": False, "skipped": "not started: core-data failed"}]

    ledger = run.decide_and_restart(empty_ledger(), restart)
    assert asked == [["core-data", "device-virtual"]]
    assert ledger["services"] == {"gw1/core-data": {"first_unhealthy": 1000.0, "restarts": [1000.0]},
                                  "gw1/device-virtual": {"first_unhealthy": 1000.0}}
    assert run.restarted() == ["core-data"] and run.came_up() == ["core-data"]
    report = run.report({"core-data": result("core-data", "healthy")})
    assert report["restarted"] == ["core-data"] and report["healthy"] == ["core-data", "core-command"]
    entries = {e["name"]: e for e in report["services"]}
    assert entries["device-virtual"]["skipped"] == "not started: core-data failed"
    assert entries["device-virtual"]["restarts_in_window"] == 0 and entries["core-data"]["verdict_after"] == "healthy"


def test_remediation_without_eligible_services_restarts_nothing():
    run = RemediationRun("gw1", [result("core-data", "degraded")], POLICY, now=5.0)

    def restart(names):
        raise AssertionError("nothing is eligible")

    assert run.decide_and_restart(empty_ledger(), restart) == empty_ledger()
    assert run.report({})["services"][0]["action"] == "none"


def test_a_failed_restart_is_reported_and_still_counts():
    run = RemediationRun("gw1", [result("core-data", "unhealthy", "stopped")], POLICY, now=7.0)
    run.decide_and_restart(empty_ledger(), lambda names: [{"name": "core-data", "error": "exited 1"}])
    assert run.failed_restarts() == {"core-data": "exited 1"} and run.came_up() == []
    assert run.report({})["services"][0]["restarts_in_window"] == 1


def test_undo_restart_removes_exactly_that_attempt():
    assert undo_restart({"first_unhealthy": 1, "restarts": [5, 9]}, 9) == {"first_unhealthy": 1, "restarts": [5]}
    assert undo_restart({"first_unhealthy": 1, "restarts": [9]}, 9) == {"first_unhealthy": 1}


# -- ReapingRun --------------------------------------------------------------------------------------
class FakeExecutors(object):
    class Executor(object):
        name = "docker"

    def for_service(self, service):
        if service.name == "mystery":
            raise EdgeXError("no target")
        return self.Executor(), "edgex-" + service.name


def registration(name, status):
    return ServiceRecord(name, "gw1", checks=[{"id": name, "service_id": name, "status": status}])


def test_reaping_deregisters_only_what_the_policy_reaps():
    services = [registration("core-data", "critical"), registration("core-command", "critical"),
                registration("support-scheduler", "passing")]
    results = [result("core-data", "unhealthy", "absent"), result("core-command", "unhealthy", "running"),
               result("support-scheduler", "healthy", latency_ms=1.0)]
    run = ReapingRun("gw1", services, results, FakeExecutors(), critical_for=0, require_target="absent", now=50.0)
    deregistered = []
    ledger = run.decide_and_deregister(empty_ledger(), lambda s: deregistered.append(s.id))
    assert deregistered == ["core-data"]
    reaped, kept = run.split()
    assert [e["id"] for e in reaped] == ["core-data"] and reaped[0]["target"] == "edgex-core-data"
    assert {e["id"]: e["reason"] for e in kept} == {"core-command": "its executor says it is running",
                                                    "support-scheduler": "its registration is not critical"}
    # the reaped registration's timer is gone; the kept critical one keeps its first sighting
    assert ledger["services"] == {"gw1/core-command": {"first_critical": 50.0}}


def test_reaping_in_check_mode_deregisters_nothing_and_a_failed_deregistration_is_reported():
    services = [registration("core-data", "critical")]
    results = [result("core-data", "unhealthy", "absent")]
    check = ReapingRun("gw1", services, results, FakeExecutors(), 0, "absent", 50.0)
    check.decide_and_deregister(empty_ledger(), None)
    assert [e["id"] for e in check.split()[0]] == ["core-data"]

    def refuse(service):
        raise EdgeXError("403 Permission denied")

    failed = ReapingRun("gw1", services, results, FakeExecutors(), 0, "absent", 50.0)
    ledger = failed.decide_and_deregister(empty_ledger(), refuse)
    assert failed.split()[0][0]["error"] == "403 Permission denied"
    assert ledger["services"] == {"gw1/core-data": {"first_critical": 50.0}}  # still there, still timed


def test_a_registration_without_an_executor_target_is_kept():
    run = ReapingRun("gw1", [registration("mystery", "critical")], [result("mystery", "unhealthy", None)],
                     FakeExecutors(), 0, "absent", 1.0)
    run.decide_and_deregister(empty_ledger(), lambda s: pytest.fail("must not be reaped"))
    (kept,) = run.split()[1]
    assert kept["executor"] is None and kept["reason"] == "its executor state is unknown"


def serf(status):
    return {"id": "serfHealth", "service_id": "", "status": status}


def test_a_registration_without_checks_is_judged_by_its_node_never_by_our_reaching_it():
    # Issue 10 item 6: no service checks, serfHealth passing, nothing answered at an address that
    # does not resolve, target gone: Consul calls it passing, so it stays.
    unchecked = ServiceRecord("device-rest", "gw1", checks=[serf("passing")])
    dead_node = ServiceRecord("device-virtual", "gw1", checks=[serf("critical")])
    manifest_entry = ServiceRecord("core-data", "gw1")  # the manifest registry: no checks at all
    results = [result(s.name, "unhealthy", "absent", reasons=["cannot resolve edgex-%s within 1.0s" % s.name])
               for s in (unchecked, dead_node, manifest_entry)]
    run = ReapingRun("gw1", [unchecked, dead_node, manifest_entry], results, FakeExecutors(), critical_for=0,
                     require_target="absent", now=50.0)
    deregistered = []
    run.decide_and_deregister(empty_ledger(), lambda s: deregistered.append(s.id))
    assert deregistered == ["device-virtual"]
    reaped, kept = run.split()
    assert reaped[0]["registry_status"] == "critical"
    assert {e["id"]: (e["registry_status"], e["reason"]) for e in kept} == {
        "device-rest": ("passing", "its registration is not critical"),
        "core-data": ("unknown", "its registry reports no checks for it")}
