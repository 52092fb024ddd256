"""Batch control of one-shot jobs and depends_on conditions (issue 12), with a fake executor whose
containers run, exit with a code, or were never started, as Docker reports them."""

import threading

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.control import (
    BatchControl,
    ControlError,
    plan,
    Planned,
    readiness,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord


class Container(object):
    def __init__(self, status="exited", exit_code=0, runs_for=0, exits_with=0):
        self.status, self.exit_code = status, exit_code
        self.runs_for, self.exits_with = runs_for, exits_with  # reads while running, then the exit code


class FakeDocker(object):
    """Containers with Docker's status and exit code; a started job runs for ``runs_for`` reads of
    its state, then exits with ``exits_with``. Every action is recorded in order."""

    name = "docker"

    def __init__(self, containers):
        self.containers = containers
        self.actions = []
        self.lock = threading.Lock()
        self.remaining = {}

    def details(self, target):
        with self.lock:
            container = self.containers.get(target)
            if container is None:
                return {"state": "absent", "raw": None, "exit_code": None}
            if container.status == "running" and target in self.remaining:
                self.remaining[target] -= 1
                if self.remaining[target] < 0:
                    del self.remaining[target]
                    container.status, container.exit_code = "exited", container.exits_with
            state = {"running": "running", "created": "stopped"}.get(container.status)
            if state is None:
                state = "stopped" if container.exit_code in (0, 137, 143) else "failed"
            return {"state": state, "raw": container.status, "exit_code": container.exit_code}

    def state(self, target):
        return self.details(target)["state"]

    def failure_text(self, target):
        return None  # Docker says no more than the state and exit code

    def _run(self, action, target):
        with self.lock:
            self.actions.append((action, target))
            container = self.containers[target]
            container.status, container.exit_code = "running", 0
            if container.runs_for is not None:
                self.remaining[target] = container.runs_for

    def start(self, target):
        self._run("start", target)

    def restart(self, target, timeout=None):
        self._run("restart", target)

    def stop(self, target, timeout=None):
        with self.lock:
            self.actions.append(("stop", target))
            self.containers[target].status, self.containers[target].exit_code = "exited", 143
            self.remaining.pop(target, None)


def svc(name, deps=(), one_shot=False, conditions=None, optional=(), asked_by_name=False):
    return Planned(name=name, executor="docker", target=name, depends_on=list(deps), one_shot=one_shot,
                   depends_on_conditions=dict(conditions or {}), depends_on_optional=list(optional),
                   asked_by_name=asked_by_name)


def control(fake, **kwargs):
    kwargs.setdefault("probe", lambda s: True)
    kwargs.setdefault("wait_timeout", 2.0)
    return BatchControl({"docker": fake}, poll_interval=0.001, **kwargs)


def started_order(fake):
    return [t for a, t in fake.actions if a in ("start", "restart")]


# -- a job is done when it exited 0 ----------------------------------------------------------------


def test_a_job_that_exited_0_is_done_and_not_started_again():
    fake = FakeDocker({"bootstrapper": Container("exited", 0)})
    (result,) = control(fake).run([svc("bootstrapper", one_shot=True)], "started")
    assert (result["changed"], result["before"], result["after"]) == (False, "completed", "completed")
    assert fake.actions == []


@pytest.mark.parametrize("status, exit_code, before", [
    ("created", 0, "pending"),  # created, never started: Docker says exit code 0 and status created
    ("exited", 143, "pending"),  # stopped by a signal before it finished
    ("exited", 1, "failed"),  # failed: run it again
])
def test_a_job_that_did_not_complete_runs_and_is_waited_for_until_it_exits_0(status, exit_code, before):
    fake = FakeDocker({"bootstrapper": Container(status, exit_code, runs_for=3)})
    (result,) = control(fake).run([svc("bootstrapper", one_shot=True)], "started")
    assert (result["changed"], result["before"], result["after"]) == (True, before, "completed")
    assert fake.actions == [("start", "bootstrapper")]


def test_a_job_that_fails_fails_the_batch_and_skips_what_waits_for_it():
    fake = FakeDocker({"proxy-setup": Container("created", 0, runs_for=2, exits_with=1),
                       "core-data": Container("created", 0, runs_for=None)})
    batch = [svc("proxy-setup", one_shot=True),
             svc("core-data", ["proxy-setup"], conditions={"proxy-setup": "service_completed_successfully"})]
    with pytest.raises(ControlError) as info:
        control(fake).run(batch, "started")
    by_name = {r["name"]: r for r in info.value.results}
    assert by_name["proxy-setup"]["error"] == "one-shot job proxy-setup exited with code 1"
    assert by_name["core-data"]["skipped"] == "not started: proxy-setup failed"
    assert ("start", "core-data") not in fake.actions


def test_the_old_hard_coded_list_no_longer_decides_the_manifest_flag_does():
    # core-common-config-bootstrapper with one_shot false in the manifest (a file restarting it) runs on
    fake = FakeDocker({"core-common-config-bootstrapper": Container("exited", 0, runs_for=None)})
    (result,) = control(fake).run([svc("core-common-config-bootstrapper", one_shot=False)], "started")
    assert result["changed"] is True and result["after"] == "running"


def test_plan_takes_the_flag_from_the_manifest_and_the_catalog_when_it_says_nothing():
    discovery = Discovery(source="manifest", nodes=[NodeRecord("gw1", "127.0.0.1")], services=[
        ServiceRecord("loader", "gw1", one_shot=True), ServiceRecord("core-common-config-bootstrapper", "gw1"),
        ServiceRecord("security-proxy-setup", "gw1", one_shot=False), ServiceRecord("core-data", "gw1")])
    jobs = {p.name: p.one_shot for p in plan(discovery, discovery, "gw1", ["all"])}
    assert jobs == {"loader": True, "core-common-config-bootstrapper": True, "security-proxy-setup": False,
                    "core-data": False}
    assert all(p.asked_by_name for p in plan(discovery, discovery, "gw1", ["loader", "core-data"]))
    assert not any(p.asked_by_name for p in plan(discovery, discovery, "gw1", ["all"]))


# -- depends_on conditions -------------------------------------------------------------------------


def test_service_completed_successfully_waits_for_exit_0_even_without_wait():
    fake = FakeDocker({"configure": Container("created", 0, runs_for=5),
                       "router": Container("created", 0, runs_for=None)})
    seen = []

    def start(target, _start=fake.start):
        if target == "router":
            seen.append(fake.containers["configure"].status)
        _start(target)

    fake.start = start
    batch = [svc("configure", one_shot=True),
             svc("router", ["configure"], conditions={"configure": "service_completed_successfully"})]
    results = {r["name"]: r for r in control(fake, wait=False).run(batch, "started")}
    assert seen == ["exited"]  # the router started only once configure had exited 0
    assert results["configure"]["after"] == "completed"


def test_service_started_on_a_job_without_wait_only_needs_it_running():
    fake = FakeDocker({"seed": Container("created", 0, runs_for=1000),
                       "app": Container("created", 0, runs_for=None)})
    batch = [svc("seed", one_shot=True), svc("app", ["seed"])]
    results = {r["name"]: r for r in control(fake, wait=False).run(batch, "started")}
    assert results["seed"]["after"] == "running" and results["app"]["after"] == "running"


def test_with_wait_a_job_is_waited_for_whatever_the_condition():
    fake = FakeDocker({"seed": Container("created", 0, runs_for=3), "app": Container("created", 0, runs_for=None)})
    batch = [svc("seed", one_shot=True), svc("app", ["seed"])]
    results = {r["name"]: r for r in control(fake).run(batch, "started")}
    assert results["seed"]["after"] == "completed"


def test_service_healthy_waits_for_the_probe_even_without_wait():
    probed = []
    answers = iter([False, False, True])

    def probe(service):
        probed.append(service.name)
        return next(answers, True)

    fake = FakeDocker({"controller": Container("created", 0, runs_for=None),
                       "initialize": Container("created", 0, runs_for=1)})
    batch = [svc("controller"), svc("initialize", ["controller"], one_shot=True,
                                    conditions={"controller": "service_healthy"})]
    control(fake, wait=False, probe=probe).run(batch, "started")
    assert probed.count("controller") >= 3  # not started on "running" alone
    assert started_order(fake) == ["controller", "initialize"]


def test_readiness_takes_the_strongest_condition_of_the_batch():
    batch = [svc("a"), svc("job", one_shot=True), svc("b", ["a", "job"], conditions={"a": "service_healthy"}),
             svc("c", ["a", "job"], conditions={"job": "service_completed_successfully"})]
    assert readiness(batch, wait=False) == {"a": "service_healthy", "job": "service_completed_successfully",
                                            "b": "service_started", "c": "service_started"}
    assert readiness(batch, wait=True) == {"a": "service_healthy", "job": "service_completed_successfully",
                                           "b": "service_healthy", "c": "service_healthy"}


# -- required: false -------------------------------------------------------------------------------


def test_an_optional_dependency_that_fails_does_not_block_its_dependent():
    # the UI crashes at once (exit 1); core-data depends on it with required: false
    fake = FakeDocker({"ui": Container("created", 0, runs_for=0, exits_with=1),
                       "core-data": Container("created", 0, runs_for=None)})
    batch = [svc("ui"), svc("core-data", ["ui"], optional=["ui"])]
    with pytest.raises(ControlError) as info:
        control(fake).run(batch, "started")
    by_name = {r["name"]: r for r in info.value.results}
    assert "error" in by_name["ui"] and "skipped" not in by_name["core-data"]
    assert by_name["core-data"]["after"] == "running"
    assert started_order(fake) == ["ui", "core-data"]  # still ordered after it


# -- restarts and stops ----------------------------------------------------------------------------


def test_restart_all_never_reruns_a_finished_job_but_restart_by_name_does():
    fake = FakeDocker({"bootstrapper": Container("exited", 0, runs_for=2), "core-data": Container(
        "running", 0, runs_for=None)})
    batch = [svc("bootstrapper", one_shot=True), svc("core-data", ["bootstrapper"])]
    results = {r["name"]: r for r in control(fake).run(batch, "restarted")}
    assert results["bootstrapper"]["changed"] is False and results["bootstrapper"]["after"] == "completed"
    assert ("restart", "bootstrapper") not in fake.actions and ("start", "bootstrapper") not in fake.actions
    assert results["core-data"]["changed"] is True

    fake.actions.clear()
    (result,) = control(fake).run([svc("bootstrapper", one_shot=True, asked_by_name=True)], "restarted")
    assert fake.actions == [("restart", "bootstrapper")] and result["after"] == "completed"


def test_stopping_a_finished_job_is_nothing_to_do():
    fake = FakeDocker({"bootstrapper": Container("exited", 0)})
    (result,) = control(fake).run([svc("bootstrapper", one_shot=True)], "stopped")
    assert result["changed"] is False and fake.actions == []


def test_check_mode_says_a_job_would_complete():
    fake = FakeDocker({"bootstrapper": Container("created", 0)})
    (result,) = control(fake, check_mode=True).run([svc("bootstrapper", one_shot=True)], "started")
    assert (result["changed"], result["before"], result["after"]) == (True, "pending", "completed")
    assert fake.actions == []


def test_a_service_that_publishes_no_port_is_up_when_it_runs():
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.control import is_up

    # registered at its address inside the compose network, which the gateway cannot reach
    hidden = Planned(name="core-data", executor="docker", target="core-data", address="edgex-core-data.invalid",
                     port=59880, published=False)
    assert is_up(hidden, timeout=0.5) is True
    fake = FakeDocker({"core-data": Container("created", 0, runs_for=None)})
    (result,) = BatchControl({"docker": fake}, wait_timeout=2.0, poll_interval=0.001).run([hidden], "started")
    assert result["after"] == "running"
