"""The docker executor against real containers (stand-in EdgeX services on the host network)."""

import json
import subprocess
import time

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ExecutorError, InvalidNameError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor
from tests.testbed.fixtures_consul import free_port, wait_listening
from tests.testbed.fixtures_docker import wait_until

pytestmark = pytest.mark.docker

# Our own names, so a test-bed running its edgex-* containers on the same engine is untouched.
PREFIX = "edgex-exectest-"


@pytest.fixture
def executor(docker_engine):
    return get_executor("docker")


@pytest.fixture
def service(standin_container):
    """Factory: a running stand-in container named PREFIX + key; returns (name, port)."""

    def run(key="core-data", wait=True, env=None):
        port = free_port()
        name = standin_container(key, port=port, name=PREFIX + key, env=env, wait=wait)
        return name, port

    return run


def test_running_stopped_running(executor, service):
    name, port = service()
    details = executor.details(name)
    assert details["state"] == "running"
    assert details["raw"] == "running"
    assert details["pid"] > 0

    executor.stop(name, timeout=5)
    details = executor.details(name)
    # The stand-in exits 0 on SIGTERM: a clean stop, not a failure.
    assert (details["state"], details["raw"], details["exit_code"], details["pid"]) == ("stopped", "exited", 0, None)

    executor.start(name)
    assert executor.state(name) == "running"
    wait_listening("127.0.0.1", port)


def test_restart_changes_started_at_and_pid(executor, service):
    name, port = service()
    before = executor.details(name)
    executor.restart(name, timeout=5)
    after = executor.details(name)
    assert after["state"] == "running"
    # RFC 3339 with nanoseconds in UTC: string order is time order.
    assert after["started_at"] > before["started_at"]
    assert after["pid"] != before["pid"]
    wait_listening("127.0.0.1", port)


def test_start_and_stop_are_idempotent_on_the_engine(executor, service):
    name, _port = service()
    executor.start(name)  # already running: no error
    assert executor.state(name) == "running"
    executor.stop(name, timeout=5)
    executor.stop(name, timeout=5)  # already stopped: no error
    assert executor.state(name) == "stopped"


def test_unknown_container_is_absent_and_cannot_be_acted_on(executor):
    name = PREFIX + "no-such-service"
    assert executor.state(name) == "absent"
    assert executor.details(name)["raw"] is None
    for action in (executor.start, executor.stop, executor.restart):
        with pytest.raises(ExecutorError, match="docker executor cannot .* %s: no such container" % name):
            action(name)


def test_hostile_names_never_reach_the_engine(executor):
    for bad in ("x; rm -rf /", "-rf", "../etc", "a b"):
        with pytest.raises(InvalidNameError):
            executor.state(bad)
        with pytest.raises(InvalidNameError):
            executor.stop(bad)


def kill_gap(name, since):
    """Seconds the engine let pass between its SIGTERM and its SIGKILL to ``name`` (its own clock,
    from its events since ``since``): the stop timeout it applied, whatever the load on this side."""
    argv = ["docker", "events", "--since", "%.3f" % since, "--until", "%.3f" % (time.time() + 0.2),
            "--filter", "container=%s" % name, "--filter", "event=kill", "--format", "{{json .}}"]
    events = [json.loads(line) for line in subprocess.run(argv, capture_output=True, text=True, check=True,
                                                          timeout=60).stdout.splitlines() if line.strip()]
    sent = {event["Actor"]["Attributes"]["signal"]: event["timeNano"] / 1e9 for event in events}
    assert sorted(sent) == ["15", "9"], events
    return sent["9"] - sent["15"]


def test_stop_timeout_is_honoured(service):
    # A stand-in that ignores SIGTERM (as a service stuck on shutdown does): only the SIGKILL
    # after the timeout ends it. Waited for until it listens, so its handler is in place.
    name, _port = service(env={"STANDIN_IGNORE_SIGTERM": "1"})
    executor = get_executor("docker", stop_timeout=1)
    assert executor.state(name) == "running"

    since = time.time()
    began = time.monotonic()
    executor.stop(name, timeout=2)
    took = time.monotonic() - began
    details = executor.details(name)
    # Not the container's own --stop-timeout (5 s) nor the executor's stop_timeout (1 s) or default (10 s).
    assert took >= 2.0, took
    assert 1.9 <= kill_gap(name, since) < 4.0
    assert (details["state"], details["exit_code"]) == ("stopped", 137)

    executor.start(name)
    since = time.time()
    began = time.monotonic()
    executor.stop(name)  # no timeout given: the executor's stop_timeout option
    took = time.monotonic() - began
    assert took >= 1.0, took
    assert 0.9 <= kill_gap(name, since) < 4.0


def test_a_crashed_container_is_failed(executor, service):
    name, _port = service(wait=False, env={"STANDIN_CRASH_ON_START": "1"})
    wait_until(lambda: executor.state(name) == "failed", timeout=10, what="%s to exit 1" % name)
    details = executor.details(name)
    assert (details["raw"], details["exit_code"]) == ("exited", 1)


# No `docker pause` test on the engine: the cgroup v1 freezer of these machines left dockerd
# unable to remove containers once; "paused" is covered by the unit tests' state mapping.


def test_docker_host_is_honoured_and_a_dead_daemon_is_named(docker_engine, monkeypatch, tmp_path):
    dead = "unix://%s/docker.sock" % tmp_path
    with pytest.raises(ExecutorError, match="Docker daemon at %s is not answering" % dead):
        get_executor("docker", docker_host=dead).state(PREFIX + "x")
    monkeypatch.setenv("DOCKER_HOST", dead)
    with pytest.raises(ExecutorError, match="Docker daemon at %s is not answering" % dead):
        get_executor("docker").state(PREFIX + "x")
    # The option wins over the environment.
    assert get_executor("docker", docker_host="unix:///var/run/docker.sock").state(PREFIX + "x") == "absent"
