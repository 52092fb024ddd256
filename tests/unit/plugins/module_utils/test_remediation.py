"""_remediation: the restart and reap policies with a fake clock, and the ledger file."""

import json
import os
import threading

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.ledger import forget_unseen, record_of, store
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.reaping import (
    REAPING_FIELDS,
    answered,
    reported_status,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.remediation import REMEDIATION_FIELDS
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import HealthResult
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.ledger import Ledger, LedgerError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.reaping import reap_step
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.remediation import Policy, remediation_step

POLICY = Policy(grace=30, max_restarts=3, window=600, backoff=10)


class Service(object):
    """One service's record, stepped through remediation_step at times a test chooses."""

    def __init__(self, policy=POLICY):
        self.policy = policy
        self.record = {}

    def see(self, verdict, now, executor_state="running"):
        self.record, decision = remediation_step(self.record, verdict, now, self.policy, executor_state)
        return decision


def test_unhealthy_waits_out_the_grace_then_restarts():
    service = Service()
    first = service.see("unhealthy", 1000)
    assert (first.action, first.next_eligible) == ("wait", 1030)
    assert first.reason == "unhealthy for 0s, within the grace of 30s"
    assert service.see("unhealthy", 1029.9).action == "wait"
    restart = service.see("unhealthy", 1030)
    assert restart.action == "restart" and restart.reason == "unhealthy for 30s; restart 1 of at most 3 within 600s"
    assert service.record == {"first_unhealthy": 1000, "restarts": [1030]}


def test_zero_grace_restarts_at_first_sight():
    service = Service(Policy(grace=0, max_restarts=1, window=60, backoff=5))
    assert service.see("unhealthy", 0).action == "restart"
    assert service.record == {"first_unhealthy": 0, "restarts": [0]}


def test_back_off_doubles_between_attempts():
    service = Service()
    assert service.see("unhealthy", 0).action == "wait"
    assert service.see("unhealthy", 30).action == "restart"
    # 1 attempt in the window: the next needs backoff * 2**0 = 10 s after it.
    wait = service.see("unhealthy", 39)
    assert (wait.action, wait.next_eligible) == ("wait", 40)
    assert wait.reason == "back-off after 1 restart(s) within 600s"
    assert service.see("unhealthy", 40).action == "restart"
    # 2 attempts: 20 s after the last.
    assert service.see("unhealthy", 59).next_eligible == 60
    assert service.see("unhealthy", 60).action == "restart"
    assert service.record["restarts"] == [30, 40, 60]


def test_max_restarts_within_the_window_gives_up_until_the_window_slides():
    service = Service()
    for now in (0, 30, 40, 60):
        service.see("unhealthy", now)
    assert service.record["restarts"] == [30, 40, 60]
    gave_up = service.see("unhealthy", 100)  # the back-off would allow it (40 s after 60); the limit does not
    assert gave_up.action == "give_up" and gave_up.next_eligible == 630  # the oldest attempt leaves the window
    assert gave_up.reason == "restarted 3 time(s) within 600s (max_restarts 3)"
    assert service.record["gave_up"] is True
    assert service.see("unhealthy", 629.9).action == "give_up"
    # At 630 the attempt of 30 is out of the window: 2 remain, and the last (60) is long enough ago.
    again = service.see("unhealthy", 630)
    assert again.action == "restart" and again.reason.endswith("restart 3 of at most 3 within 600s")
    assert service.record == {"first_unhealthy": 0, "restarts": [40, 60, 630]}


def test_slid_window_still_applies_the_back_off_of_the_attempts_left():
    service = Service(Policy(grace=0, max_restarts=2, window=100, backoff=40))
    assert service.see("unhealthy", 0).action == "restart"
    assert service.see("unhealthy", 40).action == "restart"
    assert service.see("unhealthy", 99).action == "give_up"
    # At 100 the first attempt left the window; one remains (40), so 40 * 2**0 s after it is due: 80 passed.
    assert service.see("unhealthy", 100).action == "restart"
    assert service.record["restarts"] == [40, 100]


def test_healthy_clears_the_record_and_grace_starts_again():
    service = Service()
    for now in (0, 30, 40, 60, 100):
        service.see("unhealthy", now)
    assert service.record["gave_up"] is True
    healthy = service.see("healthy", 200)
    assert healthy.action == "none" and service.record == {}
    assert service.see("unhealthy", 300).next_eligible == 330


def test_only_unhealthy_is_acted_on_and_the_record_is_kept():
    service = Service()
    service.see("unhealthy", 0)
    for verdict in ("degraded", "unknown"):
        decision = service.see(verdict, 100)
        assert decision.action == "none" and decision.reason == "%s: only unhealthy services are restarted" % verdict
    assert service.record == {"first_unhealthy": 0}


def test_absent_target_is_not_restarted():
    service = Service(Policy(grace=0))
    decision = service.see("unhealthy", 0, executor_state="absent")
    assert decision.action == "none" and "absent" in decision.reason and service.record == {}


def test_zero_max_restarts_only_reports():
    service = Service(Policy(grace=0, max_restarts=0))
    decision = service.see("unhealthy", 5)
    assert decision.action == "give_up" and decision.next_eligible is None


def test_policy_problems():
    assert POLICY.problems() == []
    assert Policy(grace=-1, max_restarts=-1, window=0, backoff=0).problems() == [
        "grace and backoff must be >= 0", "max_restarts must be >= 0", "window must be > 0"]


# -- reaping --------------------------------------------------------------------------------
def reap(record, now, critical=True, state="absent", answered=False, require="absent", critical_for=60):
    return reap_step(record, "critical" if critical else "passing", now, critical_for, state, answered, require)


def test_reaped_after_critical_for_when_the_target_is_absent():
    record, decision = reap({}, 1000)
    assert (decision.action, decision.next_eligible) == ("keep", 1060)
    assert decision.reason == "critical for 0s of the 60s required" and record == {"first_critical": 1000}
    record, decision = reap(record, 1059)
    assert decision.action == "keep"
    record, decision = reap(record, 1060)
    assert decision.action == "reap" and decision.reason == "critical for 60s and its target is absent"


def test_never_reaped_while_running_answering_or_unknown():
    old = {"first_critical": 0}
    for kwargs, reason in (({"state": "running"}, "its executor says it is running"),
                           ({"state": "stopped", "answered": True, "require": "not_running"},
                            "something answers on its port"),
                           ({"state": None}, "its executor state is unknown")):
        record, decision = reap(old, 10000, **kwargs)
        assert (decision.action, decision.reason) == ("keep", reason)
        assert record == old  # the timer keeps running


def test_require_target_decides_about_stopped_and_failed():
    old = {"first_critical": 0}
    for state in ("stopped", "failed"):
        kept = reap(old, 100, state=state)[1]
        assert kept.action == "keep" and kept.reason == "its target is %s, and require_target is absent" % state
        assert reap(old, 100, state=state, require="not_running")[1].action == "reap"


def test_not_critical_clears_only_the_reaping_timer():
    record, decision = reap({"first_critical": 0, "restarts": [5]}, 100, critical=False)
    assert decision.action == "keep" and record == {"restarts": [5]}


def checks(service_status=None, serf_status=None, service_id="core-data"):
    found = []
    if serf_status is not None:
        found.append({"id": "serfHealth", "status": serf_status, "service_id": ""})
    if service_status is not None:
        found.append({"id": service_id, "status": service_status, "service_id": service_id})
    return found


@pytest.mark.parametrize("service_status, serf_status, reported", [
    ("critical", "passing", "critical"),  # its own check
    ("passing", "critical", "critical"),  # its node: Consul reports every service of a dead node critical
    ("warning", "passing", "warning"),
    ("passing", "passing", "passing"),
    (None, "passing", "passing"),  # no checks of its own: as healthy as its node
    (None, "critical", "critical"),
    (None, None, "unknown"),  # the manifest registry: no health at all
])
def test_reported_status_is_what_the_registry_says(service_status, serf_status, reported):
    service = ServiceRecord(name="core-data", node="gw1", checks=checks(service_status, serf_status))
    assert reported_status(service) == reported


def test_another_services_check_on_the_node_is_not_this_registrations():
    service = ServiceRecord(name="core-data", node="gw1",
                            checks=checks(None, "passing") + checks("critical", service_id="core-command"))
    assert reported_status(service) == "passing"


def test_what_answers_is_what_a_probe_heard():
    assert answered(HealthResult(name="x", verdict="unhealthy", latency_ms=2.0))
    assert not answered(HealthResult(name="x", verdict="unhealthy"))


def test_a_registration_the_registry_reports_nothing_about_is_never_reaped():
    # Nothing answers, the target is gone, for ages: still no registry verdict, so kept.
    record, decision = reap_step({"first_critical": 0}, "unknown", 10 ** 6, 60, "absent", False, "absent")
    assert (decision.action, decision.reason) == ("keep", "its registry reports no checks for it")
    assert record == {}
    assert reap_step({}, "warning", 10 ** 6, 0, "absent", False)[1].reason == "its registration is not critical"


def test_forget_unseen_drops_timers_of_services_gone_from_the_node():
    data = {"version": 1, "services": {"gw1/a": {"first_critical": 1, "restarts": [2]}, "gw1/b": {"first_critical": 1},
                                       "gw2/a": {"first_critical": 1}, "gw1/c": {"first_critical": 1}}}
    forget_unseen(data, "gw1", {"gw1/c"}, REAPING_FIELDS, names=["a", "b", "c"])
    assert data["services"] == {"gw1/a": {"restarts": [2]}, "gw2/a": {"first_critical": 1}, "gw1/c": {"first_critical": 1}}
    forget_unseen(data, "gw1", set(), REMEDIATION_FIELDS, names=["c"])
    assert "gw1/a" in data["services"]  # outside the selection


# -- the ledger file ------------------------------------------------------------------------
def add_restart(key, now):
    def change(data):
        record = record_of(data, key)
        record["restarts"] = record.get("restarts", []) + [now]
        store(data, key, record)
        return data
    return change


def test_ledger_round_trip_is_atomic_and_creates_its_directory(tmp_path):
    path = tmp_path / "state" / "remediation.json"
    ledger = Ledger(str(path))
    assert ledger.read() == {"version": 1, "services": {}}
    changed, before, after = ledger.update(add_restart("gw1/core-data", 12.5))
    assert changed is True and before["services"] == {}
    assert json.loads(path.read_text()) == after == {"version": 1, "services": {"gw1/core-data": {"restarts": [12.5]}}}
    assert sorted(os.listdir(str(path.parent))) == ["remediation.json", "remediation.json.lock"]  # no temp file left
    mtime = path.stat().st_mtime_ns
    changed, _before, _after = ledger.update(lambda data: data)
    assert changed is False and path.stat().st_mtime_ns == mtime  # no change, no write


def test_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "state" / "remediation.json"
    changed, _before, after = Ledger(str(path)).update(add_restart("gw1/core-data", 1), check_mode=True)
    assert changed is True and after["services"]["gw1/core-data"] == {"restarts": [1]}
    assert not (tmp_path / "state").exists()


def test_concurrent_updates_serialise_under_the_lock(tmp_path):
    ledger = Ledger(str(tmp_path / "remediation.json"))
    threads = [threading.Thread(target=ledger.update, args=(add_restart("gw1/core-data", i),)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ledger.read()["services"]["gw1/core-data"]["restarts"]) == list(range(20))


@pytest.mark.parametrize("text, problem", [
    ("{not json", "not JSON"),
    ('{"version": 2, "services": {}}', "must be an object with version 1"),
    ('{"version": 1, "services": []}', "must have exactly the keys version and services"),
    ('{"version": 1, "services": {"gw1/a": {"restarts": ["soon"]}}}', "services/gw1/a/restarts has a wrong type"),
    ('{"version": 1, "services": {"gw1/a": {"colour": 1}}}', "services/gw1/a has an unknown field 'colour'"),
])
def test_a_corrupt_ledger_is_a_clear_error_and_is_not_overwritten(tmp_path, text, problem):
    path = tmp_path / "remediation.json"
    path.write_text(text)
    with pytest.raises(LedgerError) as info:
        Ledger(str(path)).update(add_restart("gw1/core-data", 1))
    message = str(info.value)
    assert message.startswith("ledger %s is invalid: " % path) and problem in message
    assert message.endswith("fix or remove the file")
    assert path.read_text() == text


def test_an_unwritable_directory_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerError) as info:
        Ledger(str(blocker / "remediation.json")).update(add_restart("gw1/a", 1))
    assert str(blocker / "remediation.json") in str(info.value)
