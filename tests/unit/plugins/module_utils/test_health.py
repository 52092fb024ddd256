"""_probe and _health: probes against tiny in-process HTTP servers, verdict rules, concurrency, waiting."""

import socket
import threading
import time

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ExecutorError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import (
    check_services,
    judge,
    summary,
    wait_until_healthy,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.probe import Probe, probe_ping
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord

from ping_servers import HANG_SECONDS, TRICKLE_SECONDS, free_port


class InFlight(object):
    """Counts the probes running at once (those to ``ports``), and the most that ever did."""

    def __init__(self, probe, ports):
        self.probe, self.ports = probe, set(ports)
        self.lock = threading.Lock()
        self.active = self.peak = 0

    def __call__(self, service, timeout):
        if service.port not in self.ports:
            return self.probe(service, timeout)
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            return self.probe(service, timeout)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def in_flight(monkeypatch):
    """Factory: in_flight(ports) -> an InFlight that check_services now probes through."""
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway import health

    def count(ports):
        counter = InFlight(health.probe_ping, ports)
        monkeypatch.setattr(health, "probe_ping", counter)
        return counter

    return count


def record(name="core-data", port=None, node="gw1", **kwargs):
    return ServiceRecord(name=name, node=node, address="127.0.0.1" if port else None, port=port, **kwargs)


def consul_checks(name, service_status="passing", serf_status="passing"):
    return [{"id": "serfHealth", "name": "Serf Health Status", "status": serf_status, "output": "", "service_id": ""},
            {"id": name, "name": "Health Check: %s" % name, "status": service_status, "output": "",
             "service_id": name}]


def only(results):
    assert len(results) == 1
    return results[0]


# -- probes and verdicts -----------------------------------------------------------------
def test_correct_ping_is_healthy_with_latency(serve):
    port = serve("ok")
    started = time.monotonic()
    probe = probe_ping(record(port=port), 2.0)
    took_ms = (time.monotonic() - started) * 1000
    assert probe.ok and probe.kind == "edgex-ping" and probe.http_status == 200
    assert probe.target == "http://127.0.0.1:%d/api/v3/ping" % port
    assert 0 < probe.latency_ms <= took_ms + 0.05  # milliseconds (rounded to 0.1), and part of the call
    result = only(check_services([record(port=port, status="passing", checks=consul_checks("core-data"))],
                                 registry_source="consul"))
    assert (result.verdict, result.reasons) == ("healthy", [])
    assert result.registry_status == "passing" and result.http_status == 200


@pytest.mark.parametrize("behaviour, reason", [
    ("500", "ping answered 500"),
    ("wrong-name", "serviceName is core-metadata, expected core-data"),
    ("garbage", "ping answered with something that is not JSON"),
])
def test_bad_ping_answers_are_unhealthy(serve, behaviour, reason):
    result = only(check_services([record(port=serve(behaviour))], timeout=2.0))
    assert result.verdict == "unhealthy"
    assert result.reasons == [reason]


def test_json_without_the_ping_fields_is_unhealthy(serve):
    # The 404 body is JSON, but not a ping: a health path that is a ping route must answer like one.
    port = serve("ok")
    result = only(check_services([record(port=port, health_path="/api/v3/nothing/api/v3/ping")], timeout=2.0))
    assert result.verdict == "unhealthy" and result.reasons == ["ping answered 404"]


def test_hung_ping_times_out_and_the_registry_reasons_are_kept(serve):
    port = serve("hang")
    started = time.monotonic()
    result = only(check_services([record(port=port, status="critical",
                                         checks=consul_checks("core-data", "critical"))],
                                 timeout=0.5, registry_source="consul"))
    assert time.monotonic() - started < HANG_SECONDS / 3  # stopped by its deadline, not by the server
    assert result.verdict == "unhealthy"
    assert result.reasons == ["ping timed out after 0.5s", "Consul check 'core-data' critical"]
    assert result.latency_ms is None


def test_a_trickling_server_is_bounded_by_one_deadline(serve):
    # Every byte arrives well within the timeout; only a deadline over all reads stops it.
    port = serve("trickle")
    started = time.monotonic()
    probe = probe_ping(record(port=port), 0.6)
    assert time.monotonic() - started < TRICKLE_SECONDS / 3  # not the whole trickle
    assert not probe.ok and probe.error == "ping timed out after 0.6s"


def test_connection_refused_is_unhealthy():
    result = only(check_services([record(port=free_port())], timeout=1.0))
    assert result.verdict == "unhealthy" and result.reasons == ["ping failed: connection refused"]


def test_ping_ok_but_registry_critical_is_degraded(serve):
    port = serve("ok")
    service_critical = record(port=port, status="critical", checks=consul_checks("core-data", "critical"))
    node_down = record(port=port, status="critical", checks=consul_checks("core-data", "passing", "critical"))
    warning = record(port=port, status="warning", checks=consul_checks("core-data", "warning"))
    results = check_services([service_critical, node_down, warning], timeout=2.0, registry_source="consul")
    assert [r.verdict for r in results] == ["degraded"] * 3
    assert results[0].reasons == ["Consul check 'core-data' critical"]
    assert results[1].reasons == ["node serfHealth critical"]
    assert results[2].reasons == ["Consul check 'core-data' warning"]


def test_an_unknown_registration_gets_a_tcp_connect():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    try:
        up = record("grafana", port=listener.getsockname()[1])
        down = record("grafana", port=free_port())
        up_result, down_result = check_services([up, down], timeout=1.0)
    finally:
        listener.close()
    assert up_result.probe == "tcp" and up_result.verdict == "healthy"
    assert down_result.verdict == "unhealthy"
    assert down_result.reasons == ["TCP connect to 127.0.0.1:%d failed: connection refused" % down.port]


def test_without_address_the_registry_decides_and_else_unknown():
    results = check_services([record("device-x"), record("device-y", status="passing"),
                              record("device-z", status="critical", checks=consul_checks("device-z", "critical"))],
                             registry_source="consul")
    assert [r.verdict for r in results] == ["unknown", "healthy", "unhealthy"]
    assert results[0].reasons == ["no address and port to probe, and no registry checks"]
    assert results[2].reasons == ["Consul check 'device-z' critical"]


def test_consul_itself_is_probed_on_its_leader_route(serve):
    port = serve("ok")  # answers 404 to anything but the EdgeX ping
    consul_entry = ServiceRecord("consul", "gw1", address="127.0.0.1", port=port)
    result = only(check_services([consul_entry], timeout=1.0, registry_source="consul"))
    assert result.target == "http://127.0.0.1:%d/v1/status/leader" % port
    assert (result.verdict, result.reasons) == ("unhealthy", ["GET /v1/status/leader answered 404"])


def test_executor_state_rules(serve):
    port = serve("ok")
    services = [
        record(port=free_port(), node="stopped", executor="docker"),
        record(port=free_port(), node="running", executor="docker"),  # running but not answering
        record(port=port, node="unknown", executor="systemd"),
        record(port=port, node="broken", executor="docker"),
    ]

    def executor_state(service):
        if service.node == "broken":
            raise ExecutorError("docker daemon not answering")
        return None if service.node == "unknown" else service.node

    stopped, running, unknown, broken = check_services(services, timeout=1.0, executor_state=executor_state)
    assert stopped.verdict == "unhealthy" and stopped.executor_state == "stopped"
    assert stopped.reasons == ["ping failed: connection refused", "container stopped"]
    assert running.verdict == "unhealthy" and running.executor_state == "running"
    assert running.reasons == ["ping failed: connection refused"]
    assert (unknown.verdict, unknown.reasons, unknown.executor_state) == ("healthy", [], None)
    assert broken.verdict == "healthy" and broken.executor_state is None
    assert broken.reasons == ["executor state unknown: docker daemon not answering"]


def test_one_shot_service_rules():
    bootstrapper = record("core-common-config-bootstrapper", executor="docker")
    for state, verdict in (("stopped", "healthy"), ("absent", "healthy"), ("running", "healthy"),
                           ("failed", "unhealthy"), (None, "unknown")):
        result = only(check_services([bootstrapper], executor_state=lambda s, state=state: state))
        assert result.verdict == verdict, state
    failed = only(check_services([bootstrapper], executor_state=lambda s: "failed"))
    assert failed.reasons == ["one-shot container failed"]


def test_running_service_that_answers_but_executor_says_stopped_is_degraded(serve):
    service = record(port=serve("ok"), executor="systemd")
    result = only(check_services([service], timeout=1.0, executor_state=lambda s: "stopped"))
    assert (result.verdict, result.reasons) == ("degraded", ["unit stopped"])


def test_summary_counts_every_verdict(serve):
    results = check_services([record(port=serve("ok")), record(port=serve("500")), record("device-x")],
                             timeout=1.0)
    assert summary(results) == {"healthy": 1, "degraded": 0, "unhealthy": 1, "unknown": 1, "total": 3}


# -- concurrency ---------------------------------------------------------------------------
def test_forty_services_ten_hanging_take_about_one_timeout(serve, in_flight):
    services = [record(port=serve("hang" if i % 4 == 0 else "ok"), node="gw%d" % i) for i in range(40)]
    hung = in_flight(s.port for i, s in enumerate(services) if i % 4 == 0)
    started = time.monotonic()
    results = check_services(services, timeout=1.0, max_workers=32)
    elapsed = time.monotonic() - started
    # The hung ones were probed at once (the first 32 have a worker each: 8 of them hang), so the
    # check took about one timeout, far from the ten a probe at a time would take.
    assert hung.peak >= 8, hung.peak
    assert elapsed < 10 * 1.0 / 2, elapsed
    assert [r.node for r in results] == [s.node for s in services]  # input order kept
    assert summary(results)["unhealthy"] == 10 and summary(results)["healthy"] == 30
    assert all(r.reasons == ["ping timed out after 1.0s"] for r in results if r.verdict == "unhealthy")


def test_max_workers_bounds_the_pool(serve, in_flight):
    # Four hung services and two workers: two rounds of one timeout each.
    port = serve("hang")
    hung = in_flight([port])
    started = time.monotonic()
    check_services([record(port=port, node="gw%d" % i) for i in range(4)], timeout=0.5, max_workers=2)
    assert 0.9 < time.monotonic() - started  # at least two rounds
    assert hung.peak == 2  # never more than two at once, and both workers used


# -- waiting -------------------------------------------------------------------------------
def test_wait_until_healthy_returns_once_a_late_server_answers(serve):
    port = free_port()
    listening = []
    timer = threading.Timer(1.2, lambda: listening.append((serve("ok", port=port), time.monotonic())))
    timer.start()
    retries, checks = [], []

    def get_services():
        checks.append(time.monotonic())
        return [record(port=port)]

    started = time.monotonic()
    try:
        results, pending = wait_until_healthy(
            get_services, lambda services: check_services(services, timeout=0.5), wait_timeout=15,
            initial_delay=0.2, max_delay=1,
            on_retry=lambda attempt, results, pending, pause: retries.append((attempt, pending, pause)))
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    assert pending == [] and only(results).verdict == "healthy"
    assert 1.2 <= elapsed < 15  # it waited for the server, and not for the whole wait_timeout
    # It returned once the server answered: every check that failed began before it listened.
    listening_since = listening[0][1]
    assert all(checks[attempt - 1] < listening_since for attempt, _p, _pause in retries)
    assert len(checks) == len(retries) + 1
    assert retries and all(p == ["core-data"] for _a, p, _pause in retries)
    assert [a for a, _p, _pause in retries] == list(range(1, len(retries) + 1))
    pauses = [pause for _a, _p, pause in retries]
    assert pauses[:3] == [0.2, 0.4, 0.8] and max(pauses) <= 1  # doubling, capped


def test_wait_until_healthy_gives_up_naming_what_is_still_unhealthy(serve):
    good = record("core-data", port=serve("ok", "core-data"))
    bad = record("core-metadata", port=serve("500", "core-metadata"))
    calls = []

    def get_services():
        calls.append(time.monotonic())
        return [good, bad]

    started = time.monotonic()
    results, pending = wait_until_healthy(get_services, lambda s: check_services(s, timeout=0.5), wait_timeout=1.5,
                                          initial_delay=0.2, max_delay=5)
    elapsed = time.monotonic() - started
    assert pending == ["core-metadata"]
    assert [r.verdict for r in results] == ["healthy", "unhealthy"]
    assert elapsed >= 1.5
    # It gave up at the deadline: one check at most began after it, the last one.
    deadline = started + 1.5
    assert all(call < deadline for call in calls[:-1]), [call - started for call in calls]
    assert len(calls) >= 3  # asked the registry again on every attempt


def test_an_api_service_the_registry_lost_is_degraded_but_redis_never_registers():
    answered = Probe("http", ok=True)
    lost = ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59880, registered=False)
    assert judge(lost, answered, registry_source="consul") == ("degraded", ["not registered in Consul"])
    redis = ServiceRecord("database", "gw1", address="127.0.0.1", port=6379, registered=False)
    assert judge(redis, Probe("tcp", ok=True), registry_source="consul") == ("healthy", [])
    assert judge(lost, answered, registry_source="manifest") == ("healthy", [])
