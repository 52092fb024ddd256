# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Is each EdgeX service alive? Ping it, weigh what the registry and the executor say, give a verdict.

Probes run concurrently in a bounded thread pool and each one keeps a single deadline over
connect, send and every read, so checking a fleet where some services hang takes about one
timeout, not one timeout per hung service.

Verdicts:
  healthy    the probe succeeded and neither the registry nor the executor disagrees
  degraded   the probe succeeded, but a registry check is warning/critical or the executor
             does not see the service running
  unhealthy  the probe failed (timeout, refused, non-2xx, not an EdgeX ping of this service)
  unknown    nothing to probe (no address/port) and nothing known from the registry
"""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from ._common import EdgeXError
from ._edgex import ONE_SHOT_SERVICES, default_health_path

VERDICTS = ("healthy", "degraded", "unhealthy", "unknown")
NOT_RUNNING = frozenset(["stopped", "absent", "failed"])

# The EdgeX common-API ping, also as v2 or behind an API-gateway prefix (/core-data/api/v3/ping).
EDGEX_PING = re.compile(r"/api/v\d+/ping$")
PING_FIELDS = ("apiVersion", "timestamp", "serviceName")
# A ping answer is a few dozen bytes; anything far bigger is not one.
MAX_BODY = 64 * 1024

# Consul lists itself as the service "consul" on its server RPC port (8300), where no HTTP API
# answers. When Consul itself answered the discovery, that entry is judged by its checks alone.
SELF_ENTRY = {"consul": "consul"}
REGISTRY_LABELS = {"consul": "Consul", "keeper": "core-keeper"}
EXECUTOR_NOUNS = {"docker": "container", "compose": "container", "systemd": "unit", "snap": "snap app"}


@dataclass
class Probe:
    """What one probe found; ``error`` is phrased as a reason ("ping answered 500")."""

    kind: str  # http | tcp | none (no address/port: judged by registry checks only)
    target: Optional[str] = None  # URL or host:port
    ok: bool = False
    http_status: Optional[int] = None
    latency_ms: Optional[float] = None
    error: Optional[str] = None


@dataclass
class HealthResult:
    name: str
    verdict: str
    reasons: List[str] = field(default_factory=list)
    id: Optional[str] = None
    node: Optional[str] = None
    address: Optional[str] = None
    port: Optional[int] = None
    latency_ms: Optional[float] = None
    registry_status: str = "unknown"
    checks: List[dict] = field(default_factory=list)
    executor_state: Optional[str] = None
    probe: Optional[str] = None
    target: Optional[str] = None
    http_status: Optional[int] = None

    def to_dict(self):
        return asdict(self)


# -- probes ------------------------------------------------------------------------------
class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock):
        io.RawIOBase.__init__(self)
        self._sock = sock

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._sock.recv_into(buffer)


class _DeadlineSocket(object):
    """A connected socket whose sends and receives share what is left of one deadline.

    A plain socket timeout restarts on every receive, so a server that trickles bytes
    could hold a probe far beyond its timeout.
    """

    def __init__(self, sock, deadline):
        self._sock = sock
        self._deadline = deadline

    def _arm(self):
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self._sock.settimeout(remaining)

    def sendall(self, data):
        self._arm()
        self._sock.sendall(data)

    def recv_into(self, buffer):
        self._arm()
        return self._sock.recv_into(buffer)

    def makefile(self, mode="rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self))

    def close(self):
        self._sock.close()


class _DeadlineConnection(http.client.HTTPConnection):
    """http.client without proxies (a gateway's loopback ports must not go through one),
    with the connect bounded by the time left and the socket wrapped to keep the deadline."""

    def __init__(self, host, port, deadline):
        http.client.HTTPConnection.__init__(self, host, port, timeout=max(deadline - time.monotonic(), 0.001))
        self._deadline = deadline

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = _DeadlineSocket(self.sock, self._deadline)


def _url_host(address):
    return "[%s]" % address if ":" in address else address


def _elapsed_ms(started):
    return round((time.monotonic() - started) * 1000.0, 1)


def _describe(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(exc, http.client.BadStatusLine):
        return "not an HTTP answer"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the address (%s)" % (exc.strerror or exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _ping_answer_error(body, expected_name):
    """None when ``body`` is an EdgeX ping answer from ``expected_name``, else the reason."""
    if len(body) > MAX_BODY:
        return "ping answer is larger than %d bytes" % MAX_BODY
    try:
        answer = json.loads(body.decode("utf-8"))
    except ValueError:
        return "ping answered with something that is not JSON"
    if not isinstance(answer, dict) or not all(isinstance(answer.get(key), str) for key in PING_FIELDS):
        return "ping answer lacks the EdgeX fields %s" % ", ".join(PING_FIELDS)
    if answer["serviceName"] != expected_name:
        return "serviceName is %s, expected %s" % (answer["serviceName"][:128], expected_name)
    return None


def _probe_http(service, path, timeout):
    what = "ping" if EDGEX_PING.search(path) else "GET %s" % path
    url = "http://%s:%d%s" % (_url_host(service.address), service.port, path)
    started = time.monotonic()
    connection = _DeadlineConnection(service.address, service.port, started + timeout)
    try:
        connection.request("GET", path, headers={"Accept": "application/json", "Connection": "close"})
        response = connection.getresponse()
        body = response.read(MAX_BODY + 1)
    except socket.timeout:
        return Probe("http", url, error="%s timed out after %ss" % (what, float(timeout)))
    except (OSError, http.client.HTTPException) as exc:
        return Probe("http", url, error="%s failed: %s" % (what, _describe(exc)))
    finally:
        connection.close()
    probe = Probe("http", url, http_status=response.status, latency_ms=_elapsed_ms(started))
    if not 200 <= response.status < 300:
        probe.error = "%s answered %d" % (what, response.status)
    elif what == "ping":
        probe.error = _ping_answer_error(body, service.name)
    probe.ok = probe.error is None
    return probe


def _probe_tcp(address, port, timeout):
    target = "%s:%d" % (_url_host(address), port)
    started = time.monotonic()
    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except socket.timeout:
        return Probe("tcp", target, error="TCP connect to %s timed out after %ss" % (target, float(timeout)))
    except OSError as exc:
        return Probe("tcp", target, error="TCP connect to %s failed: %s" % (target, _describe(exc)))
    return Probe("tcp", target, ok=True, latency_ms=_elapsed_ms(started))


def probe_ping(service, timeout):
    """Probe one ServiceRecord: GET its health path (EdgeX ping by default), a TCP connect for
    non-API services (redis, MQTT broker...), nothing when it has no address or port."""
    if not service.address or not service.port:
        return Probe("none")
    path = service.health_path or default_health_path(service.name)
    if path is None:
        return _probe_tcp(service.address, service.port, timeout)
    return _probe_http(service, path, timeout)


# -- verdicts ----------------------------------------------------------------------------
def _registry_reasons(service, registry_source):
    label = REGISTRY_LABELS.get(registry_source, "registry")
    reasons = []
    for check in service.checks:
        status = check.get("status")
        if status not in ("warning", "critical"):
            continue
        if check.get("id") == "serfHealth":
            reasons.append("node serfHealth %s" % status)
        else:
            reasons.append("%s check '%s' %s" % (label, check.get("id") or check.get("name"), status))
    if not reasons and service.status in ("warning", "critical"):
        reasons.append("%s status %s" % (label, service.status))
    return reasons


def judge(service, probe, executor_state=None, registry_source=None):
    """(verdict, reasons) for one service from its probe, registry checks and executor state."""
    if service.name in ONE_SHOT_SERVICES and executor_state is not None:
        # It runs once and exits: not running is its healthy state; only a failed run is not.
        if executor_state == "failed":
            return "unhealthy", ["one-shot %s failed" % EXECUTOR_NOUNS.get(service.executor, "service")]
        return "healthy", []
    registry = _registry_reasons(service, registry_source)
    # Only EdgeX API services register themselves; redis or an MQTT broker never do.
    registers = EDGEX_PING.search(service.health_path or default_health_path(service.name) or "")
    if not service.registered and registers and registry_source in REGISTRY_LABELS:
        registry.append("not registered in %s" % REGISTRY_LABELS[registry_source])
    executor = []
    if executor_state in NOT_RUNNING:
        executor = ["%s %s" % (EXECUTOR_NOUNS.get(service.executor, "service"), executor_state)]
    if probe.kind == "none":
        if executor:
            return "unhealthy", executor + registry
        if service.status == "critical":
            return "unhealthy", registry
        if service.status == "warning":
            return "degraded", registry
        if service.status == "passing":
            return "healthy", []
        return "unknown", ["no address and port to probe, and no registry checks"]
    if probe.ok:
        if registry or executor:
            return "degraded", registry + executor
        return "healthy", []
    return "unhealthy", [probe.error] + registry + executor


def _executor_state(executor_state, service):
    """(state, reason): an executor that cannot tell is "unknown", not a failed check."""
    if executor_state is None:
        return None, None
    try:
        return executor_state(service), None
    except EdgeXError as exc:
        return None, "executor state unknown: %s" % exc


def check_one(service, timeout, executor_state=None, registry_source=None):
    state, state_reason = _executor_state(executor_state, service)
    probe = probe_ping(service, timeout)
    verdict, reasons = judge(service, probe, state, registry_source)
    if state_reason:
        reasons.append(state_reason)
    return HealthResult(
        name=service.name, verdict=verdict, reasons=reasons, id=service.id, node=service.node,
        address=service.address, port=service.port, latency_ms=probe.latency_ms, registry_status=service.status,
        checks=list(service.checks), executor_state=state, probe=probe.kind, target=probe.target,
        http_status=probe.http_status,
    )


def check_services(services, timeout=3.0, max_workers=32, executor_state=None, registry_source=None):
    """HealthResults in the order of ``services``, probed concurrently by at most ``max_workers``.

    ``executor_state``: optional callable ServiceRecord -> running|stopped|absent|failed|None.
    ``registry_source``: the Discovery's source, naming the registry in reasons.
    """
    services = list(services)
    if not services:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(services)))) as pool:
        return list(pool.map(lambda s: check_one(s, timeout, executor_state, registry_source), services))


def summary(results):
    counts = dict.fromkeys(VERDICTS, 0)
    for result in results:
        counts[result.verdict] += 1
    counts["total"] = len(results)
    return counts


def not_healthy(results):
    """Sorted names of the services that are not healthy (on at least one node)."""
    return sorted(set(r.name for r in results if r.verdict != "healthy"))


def wait_until_healthy(get_services, check, wait_timeout, initial_delay=0.5, max_delay=5, on_retry=None):
    """Check ``check(get_services())`` until every service is healthy or ``wait_timeout`` passes.

    Services are asked for again each time: a starting service registers late. Back-off doubles
    from ``initial_delay`` up to ``max_delay``. ``on_retry(attempt, results, pending, pause)`` is
    called before each pause. Returns (last results, names still not healthy); the list is empty
    on success.
    """
    deadline = time.monotonic() + wait_timeout
    delay = initial_delay
    attempt = 1
    while True:
        results = check(get_services())
        pending = not_healthy(results)
        remaining = deadline - time.monotonic()
        if not pending or remaining <= 0:
            return results, pending
        pause = min(delay, remaining)
        if on_retry is not None:
            on_retry(attempt, results, pending, pause)
        time.sleep(pause)
        delay = min(delay * 2, max_delay)
        attempt += 1
