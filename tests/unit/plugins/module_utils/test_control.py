"""Batch control with a fake executor: planning, order, idempotence, partial failure, check mode."""

import threading

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import EdgeXError, ExecutorError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.control import (
    BatchControl,
    ControlError,
    plan,
    Planned,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord


class FakeExecutor(object):
    """Containers as a dict; records every action in order."""

    name = "docker"

    def __init__(self, states, fail_start=()):
        self.states = dict(states)
        self.fail_start = set(fail_start)
        self.actions = []
        self.lock = threading.Lock()

    def state(self, target):
        return self.states.get(target, "absent")

    def _record(self, action, target):
        with self.lock:
            self.actions.append((action, target))

    def start(self, target):
        self._record("start", target)
        self.states[target] = "failed" if target in self.fail_start else "running"

    def stop(self, target, timeout=None):
        self._record("stop", target)
        self.states[target] = "stopped"

    def restart(self, target, timeout=None):
        self._record("restart", target)
        self.states[target] = "failed" if target in self.fail_start else "running"

    def failure_text(self, target):
        return "main process exited with status 1" if self.states.get(target) == "failed" else None


def service(name, deps=(), executor="docker"):
    return Planned(name=name, executor=executor, target="edgex-" + name, depends_on=list(deps))


STACK = [service("consul"), service("database"), service("core-metadata", ["consul", "database"]),
         service("core-data", ["core-metadata", "database"]), service("device-virtual", ["core-data"]),
         service("support-notifications", ["database"])]


def control(executor, **kwargs):
    kwargs.setdefault("probe", lambda s: True)
    return BatchControl({"docker": executor}, wait_timeout=1.0, poll_interval=0.01, **kwargs)


def test_start_acts_level_by_level_and_only_on_what_is_stopped():
    fake = FakeExecutor({"edgex-" + s.name: "stopped" for s in STACK})
    fake.states["edgex-consul"] = "running"
    results = control(fake).run(STACK, "started")
    started = [t for a, t in fake.actions]
    assert "edgex-consul" not in started
    assert started.index("edgex-database") < started.index("edgex-core-metadata") < started.index("edgex-core-data") \
        < started.index("edgex-device-virtual")
    by_name = {r["name"]: r for r in results}
    assert by_name["consul"]["changed"] is False and by_name["core-data"]["changed"] is True
    assert by_name["core-data"]["before"] == "stopped" and by_name["core-data"]["after"] == "running"
    fake.actions.clear()
    assert not any(r["changed"] for r in control(fake).run(STACK, "started"))
    assert fake.actions == []


def test_stop_runs_in_reverse_registry_last():
    fake = FakeExecutor({"edgex-" + s.name: "running" for s in STACK})
    control(fake).run(STACK, "stopped")
    order = [t for a, t in fake.actions]
    assert order[-1] == "edgex-consul"
    assert order.index("edgex-device-virtual") < order.index("edgex-core-data") < order.index("edgex-core-metadata")


def test_restart_puts_registry_and_protected_last_and_never_stops_them_ahead():
    fake = FakeExecutor({"edgex-" + s.name: "running" for s in STACK})
    batch = control(fake, protected=["support-notifications"])
    assert batch.levels(STACK, "restarted")[-1] == ["consul", "support-notifications"]
    results = batch.run(STACK, "restarted")
    assert all(r["changed"] for r in results)
    assert sorted(fake.actions[-2:]) == [("restart", "edgex-consul"), ("restart", "edgex-support-notifications")]


def test_restart_stops_the_next_level_meanwhile_and_starts_it_once_the_level_answers():
    fake = FakeExecutor({"edgex-" + s.name: "running" for s in STACK})
    answering = set()

    def probe(service):
        answering.add(service.name)
        return True

    def start(target, _start=fake.start):
        # core-data depends on core-metadata: it may only start once core-metadata answered.
        assert target != "edgex-core-data" or "core-metadata" in answering
        _start(target)

    fake.start = start
    batch = control(fake, probe=probe)
    levels = batch.levels(STACK, "restarted")
    assert levels == [["database"], ["core-metadata"], ["core-data"], ["support-notifications"], ["device-virtual"],
                      ["consul"]]
    results = {r["name"]: r for r in batch.run(STACK, "restarted")}
    actions = fake.actions
    # The first level restarts; every later one is stopped while the level before restarts, then started.
    assert [a for a, t in actions if t == "edgex-database"] == ["restart"]
    for name in ("core-metadata", "support-notifications", "core-data", "device-virtual"):
        assert [a for a, t in actions if t == "edgex-" + name] == ["stop", "start"], name
    assert actions.index(("stop", "edgex-core-data")) < actions.index(("start", "edgex-core-metadata"))
    assert actions.index(("start", "edgex-core-metadata")) < actions.index(("start", "edgex-core-data"))
    assert (results["core-data"]["before"], results["core-data"]["after"]) == ("running", "running")
    assert all(r["changed"] for r in results.values())


def test_a_failed_restart_leaves_what_depends_on_it_stopped_and_says_so():
    fake = FakeExecutor({"edgex-" + s.name: "running" for s in STACK}, fail_start=["edgex-core-metadata"])
    with pytest.raises(ControlError) as info:
        control(fake).run(STACK, "restarted")
    by_name = {r["name"]: r for r in info.value.results}
    assert "core-metadata" in by_name["core-metadata"]["error"]
    core_data = by_name["core-data"]  # stopped while core-metadata restarted, then not started
    assert core_data["skipped"] == "not started: core-metadata failed"
    assert (core_data["before"], core_data["after"], core_data["changed"]) == ("running", "stopped", True)
    assert by_name["device-virtual"]["skipped"] == "not started: core-data failed"
    assert ("start", "edgex-core-data") not in fake.actions
    assert by_name["support-notifications"]["after"] == "running"  # independent of the failure


def test_a_failed_start_skips_dependents_and_names_them():
    fake = FakeExecutor({"edgex-" + s.name: "stopped" for s in STACK}, fail_start=["edgex-core-metadata"])
    with pytest.raises(ControlError) as info:
        control(fake).run(STACK, "started")
    by_name = {r["name"]: r for r in info.value.results}
    assert "core-metadata" in str(info.value)
    # the executor's own words on why it failed (systemd: result, exit status, its last log lines)
    assert by_name["core-metadata"]["error"] == \
        "docker edgex-core-metadata failed after start: main process exited with status 1"
    assert by_name["core-data"]["skipped"] == "not started: core-metadata failed"
    assert by_name["device-virtual"]["skipped"] == "not started: core-data failed"
    assert by_name["support-notifications"]["after"] == "running"  # independent of the failure
    assert ("start", "edgex-core-data") not in fake.actions


def test_a_service_that_never_answers_fails_after_the_wait():
    fake = FakeExecutor({"edgex-core-data": "stopped"})
    with pytest.raises(ControlError, match="core-data did not answer on None:None within 1s"):
        control(fake, probe=lambda s: False).run([service("core-data")], "started")


@pytest.mark.parametrize("state", ["started", "stopped", "restarted"])
def test_nothing_selected_is_nothing_done(state):
    assert control(FakeExecutor({})).run([], state) == []


def test_check_mode_acts_on_nothing():
    fake = FakeExecutor({"edgex-" + s.name: "stopped" for s in STACK})
    results = control(fake, check_mode=True).run(STACK, "started")
    assert fake.actions == []
    assert all(r["changed"] and r["after"] == "running" for r in results)


def test_an_absent_target_is_an_error_naming_it():
    with pytest.raises(ControlError, match="edgex-core-data does not exist on this host"):
        control(FakeExecutor({})).run([service("core-data")], "started")


def discovery(source, services, nodes=(("gw1", "127.0.0.1"),)):
    return Discovery(source=source, nodes=[NodeRecord(n, a) for n, a in nodes], services=services)


def test_plan_joins_registry_and_manifest():
    live = discovery("consul", [ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59999),
                                ServiceRecord("app-custom", "gw1", address="127.0.0.1", port=59711),
                                ServiceRecord("core-command", "gw1", address="127.0.0.1")])
    manifest = discovery("manifest", [  # services carry their host's address, as the manifest's to_discovery gives
        ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59880, executor="compose",
                      target="edgex/core-data", depends_on=["database"], health_path="/api/v3/ping"),
        ServiceRecord("core-command", "gw1", address="127.0.0.1", port=59882),
        ServiceRecord("database", "gw1", address="127.0.0.1", port=6379, executor="docker", target="edgex-redis"),
    ])
    planned = {p.name: p for p in plan(live, manifest, "gw1", ["all"])}
    assert sorted(planned) == ["app-custom", "core-command", "core-data", "database"]  # stopped database too
    assert (planned["core-data"].executor, planned["core-data"].target, planned["core-data"].port) == \
        ("compose", "edgex/core-data", 59999)  # how from the manifest, where from the registry
    assert planned["core-data"].depends_on == ["database"]
    assert (planned["app-custom"].executor, planned["app-custom"].target) == ("docker", "edgex-app-custom")
    assert planned["core-command"].port == 59882  # registered without a port: the manifest's
    assert (planned["database"].address, planned["database"].port) == ("127.0.0.1", 6379)


def test_plan_takes_a_node_the_registry_does_not_know_from_the_manifest():
    # core-keeper knows no gateway whose services are all stopped (deregistered); the manifest does.
    live = discovery("keeper", [ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59880)])
    manifest = discovery("manifest", [ServiceRecord("core-data", "gw2", address="10.0.0.2", port=59880)],
                         nodes=(("gw1", "127.0.0.1"), ("gw2", "10.0.0.2")))
    (planned,) = plan(live, manifest, "gw2", ["all"])
    assert (planned.name, planned.address, planned.target) == ("core-data", "10.0.0.2", "edgex-core-data")
    with pytest.raises(EdgeXError, match="node gw3 not known to the keeper registry; known nodes: gw1, gw2"):
        plan(live, manifest, "gw3", ["all"])


def test_plan_refuses_unknown_and_hostile_names():
    live = discovery("consul", [ServiceRecord("core-data", "gw1")])
    with pytest.raises(EdgeXError, match=r"unknown service core-dta on node gw1 in the consul registry; "
                                         r"known there: core-data"):
        plan(live, None, "gw1", ["core-dta"])
    with pytest.raises(EdgeXError, match="invalid service name"):
        plan(live, None, "gw1", ["core-data; reboot"])
    with pytest.raises(EdgeXError, match="invalid service name"):  # a hostile name the registry lists
        plan(discovery("consul", [ServiceRecord("core-data; reboot", "gw1")]), None, "gw1", ["all"])
    with pytest.raises(ExecutorError, match="unknown executor"):
        plan(live, None, "gw1", ["core-data"], default_executor="podman")


def test_a_plan_carries_what_the_address_rule_needs():
    # A service registered under its container name is reached, once restarted, where edgex_health
    # reaches it: the manifest's address and published port (issue 10 item 3).
    live = Discovery("consul", nodes=[NodeRecord("gw1", "127.0.0.1")],
                     services=[ServiceRecord("core-data", "gw1", address="edgex-core-data", port=59880)])
    deployed = Discovery("manifest", nodes=[NodeRecord("gw1", "127.0.0.1")],
                         services=[ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59980,
                                                 executor="docker", target="edgex-core-data")])
    (planned,) = plan(live, deployed, "gw1", ["core-data"])
    assert (planned.address, planned.port) == ("edgex-core-data", 59880)
    assert (planned.node_address, planned.manifest_address, planned.manifest_port) == ("127.0.0.1", "127.0.0.1", 59980)
