# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Is each EdgeX service alive? Ping it, weigh what the registry and the executor say, give a verdict.

Probes (``probe``) run concurrently in a bounded thread pool and each one keeps a single
deadline, name lookups included, so checking a fleet where some services or their names hang
takes about one timeout, not one timeout per hung service.

Verdicts:
  healthy    the probe succeeded and neither the registry nor the executor disagrees
  degraded   the probe succeeded, but a registry check is warning/critical or the executor
             does not see the service running
  unhealthy  the probe failed (timeout, refused, non-2xx, not an EdgeX ping of this service)
  unknown    nothing to probe (no address/port) and nothing known from the registry

One-shot jobs are judged by how they exited (exited 0: healthy; failed or never completed:
unhealthy). A service that publishes no port (manifest ``published: false``) is judged by its
executor and the registry (probe ``unpublished``); a host port Docker chose is read from the engine.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from .._errors import EdgeXError
from .jobs import is_one_shot, job_state, PENDING
from .probe import Probe, probe_kind, probe_ping
from .published import unpublished_reason, with_published_port

VERDICTS = ("healthy", "degraded", "unhealthy", "unknown")
NOT_RUNNING = frozenset(["stopped", "absent", "failed"])
SERF_HEALTH = "serfHealth"  # Consul's check of a node's agent, listed with every service of the node

# Consul lists itself as the service "consul" on its server RPC port (8300), where no HTTP API
# answers. When Consul itself answered the discovery, that entry is judged by its checks alone.
SELF_ENTRY = {"consul": "consul"}
REGISTRY_LABELS = {"consul": "Consul", "keeper": "core-keeper"}
EXECUTOR_NOUNS = {"docker": "container", "compose": "container", "systemd": "unit", "snap": "snap app"}
UNPUBLISHED = "unpublished"  # the probe kind of a service that publishes no port: not probed


@dataclass
class HealthResult:
    name: str
    verdict: str
    reasons: List[str] = field(default_factory=list)
    id: Optional[str] = None
    node: Optional[str] = None
    address: Optional[str] = None  # where it was probed (the address rule's answer)
    port: Optional[int] = None
    registered_address: Optional[str] = None
    registered_port: Optional[int] = None
    mapped: Optional[str] = None  # why it was not probed at its registered address
    latency_ms: Optional[float] = None
    registry_status: str = "unknown"
    checks: List[dict] = field(default_factory=list)
    executor_state: Optional[str] = None
    probe: Optional[str] = None
    target: Optional[str] = None
    http_status: Optional[int] = None
    one_shot: bool = False  # a job: judged by how it exited, never restarted by remediation

    def to_dict(self):
        return asdict(self)


def _registry_reasons(service, registry_source):
    label = REGISTRY_LABELS.get(registry_source, "registry")
    reasons = []
    for check in service.checks:
        status = check.get("status")
        if status not in ("warning", "critical"):
            continue
        if check.get("id") == SERF_HEALTH:
            reasons.append("node serfHealth %s" % status)
        else:
            reasons.append("%s check '%s' %s" % (label, check.get("id") or check.get("name"), status))
    if not reasons and service.status in ("warning", "critical"):
        reasons.append("%s status %s" % (label, service.status))
    return reasons


def judge(service, probe, executor_state=None, registry_source=None):
    """(verdict, reasons) for one service from its probe, registry checks and executor state."""
    if is_one_shot(service) and executor_state is not None:
        # It runs once and exits: exited 0 (or still running, or its container removed after it ran)
        # is its healthy state; a failed run, or one that never completed, is not.
        noun = EXECUTOR_NOUNS.get(service.executor, "service")
        if executor_state == "failed":
            return "unhealthy", ["one-shot %s failed" % noun]
        if executor_state == PENDING:
            return "unhealthy", ["one-shot %s never completed (never ran, or was stopped)" % noun]
        return "healthy", []
    registry = _registry_reasons(service, registry_source)
    # Only EdgeX API services register themselves; redis or an MQTT broker never do.
    registers = probe_kind(service)[0] == "edgex-ping"
    if not service.registered and registers and registry_source in REGISTRY_LABELS:
        registry.append("not registered in %s" % REGISTRY_LABELS[registry_source])
    executor = []
    if executor_state in NOT_RUNNING:
        executor = ["%s %s" % (EXECUTOR_NOUNS.get(service.executor, "service"), executor_state)]
    if probe.kind in ("none", UNPUBLISHED):
        if executor:
            return "unhealthy", executor + registry
        if service.status == "critical":
            return "unhealthy", registry
        if service.status == "warning":
            return "degraded", registry
        if service.status == "passing" or (probe.kind == UNPUBLISHED and executor_state == "running"):
            return "healthy", []
        return "unknown", [unpublished_reason(service) or "no address and port to probe, and no registry checks"]
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


def check_one(service, timeout, executor_state=None, registry_source=None, resolve=None):
    state, state_reason = _executor_state(executor_state, service)
    service, reach_reason = resolve(service) if resolve is not None else (service, None)
    probe = Probe(UNPUBLISHED) if unpublished_reason(service) else probe_ping(service, timeout)
    verdict, reasons = judge(service, probe, state, registry_source)
    for reason in (state_reason, reach_reason if verdict != "healthy" else None):
        if reason:
            reasons.append(reason)
    return HealthResult(
        name=service.name, verdict=verdict, reasons=reasons, id=service.id, node=service.node,
        address=probe.address or service.address, port=probe.port or service.port,
        registered_address=service.address if service.registered else None,
        registered_port=service.port if service.registered else None, mapped=probe.mapped,
        latency_ms=probe.latency_ms, registry_status=service.status,
        checks=list(service.checks), executor_state=state, probe=probe.kind, target=probe.target,
        http_status=probe.http_status, one_shot=is_one_shot(service),
    )


def check_services(services, timeout=3.0, max_workers=32, executor_state=None, registry_source=None, resolve=None):
    """HealthResults in the order of ``services``, probed concurrently by at most ``max_workers``.

    ``executor_state``: optional callable ServiceRecord -> running|stopped|absent|failed|None.
    ``registry_source``: the Discovery's source, naming the registry in reasons.
    ``resolve``: optional callable ServiceRecord -> (ServiceRecord to probe, reason it cannot be reached).
    """
    services = list(services)
    if not services:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(services)))) as pool:
        return list(pool.map(lambda s: check_one(s, timeout, executor_state, registry_source, resolve), services))


def executor_state_of(executors, service):
    """What ``service``'s executor says of it; of a one-shot job, how far it got (completed, pending...)."""
    executor, target = executors.for_service(service)
    return job_state(executor, target)[0] if is_one_shot(service) else executor.state(target)


def reachable_through(executors, service):
    """(``service`` with the host port Docker chose for it, or as it is; why it cannot be reached)."""
    try:
        executor, target = executors.for_service(service)
    except EdgeXError:
        return service, None
    return with_published_port(service, executor, target)


def check_health(services, source, executors=None, probe_timeout=3.0, max_workers=32):
    """HealthResults of ``services``, with their executors' states when ``executors`` is given;
    ``source``: the Discovery's."""
    services = list(services)
    if executors is not None:
        for name in {s.executor or executors.default for s in services}:
            executors.named(name)  # made before the probes run concurrently: one client per executor
    if executors is None:
        return check_services(services, timeout=probe_timeout, max_workers=max_workers, registry_source=source)
    return check_services(services, timeout=probe_timeout, max_workers=max_workers, registry_source=source,
                          executor_state=lambda s: executor_state_of(executors, s),
                          resolve=lambda s: reachable_through(executors, s))


def summary(results):
    counts = dict.fromkeys(VERDICTS, 0)
    for result in results:
        counts[result.verdict] += 1
    counts["total"] = len(results)
    return counts


def not_healthy(results):
    """Sorted names of the services that are not healthy (on at least one node)."""
    return sorted(set(r.name for r in results if r.verdict != "healthy"))


def wait_until_healthy(get_services, check, wait_timeout, initial_delay=0.5, max_delay=5, on_retry=None,
                       clock=time.monotonic, sleep=time.sleep):
    """Check ``check(get_services())`` until every service is healthy or ``wait_timeout`` passes.

    Services are asked for again each time: a starting service registers late. Back-off doubles
    from ``initial_delay`` up to ``max_delay``. ``on_retry(attempt, results, pending, pause)`` is
    called before each pause. Returns (last results, names still not healthy); the list is empty
    on success.
    """
    deadline = clock() + wait_timeout
    delay = initial_delay
    attempt = 1
    while True:
        results = check(get_services())
        pending = not_healthy(results)
        remaining = deadline - clock()
        if not pending or remaining <= 0:
            return results, pending
        pause = min(delay, remaining)
        if on_retry is not None:
            on_retry(attempt, results, pending, pause)
        sleep(pause)
        delay = min(delay * 2, max_delay)
        attempt += 1


# fail_on -> the verdicts that fail a check.
FAILING_VERDICTS = {"unhealthy": ("unhealthy",), "degraded": ("unhealthy", "degraded"), "never": ()}


def describe(results):
    return "; ".join("%s on %s: %s" % (r.name, r.node or "no node", ", ".join(r.reasons) or r.verdict)
                     for r in results)


def failing(results, fail_on):
    """The results whose verdict ``fail_on`` fails, as the module returns them."""
    return [dict(node=r.node, name=r.name, verdict=r.verdict, reasons=list(r.reasons)) for r in results
            if r.verdict in FAILING_VERDICTS[fail_on]]


class HealthCheck(object):
    """One check of the services a selection names, or a wait until they are healthy.

    ``select()`` returns a ``Selection`` and is asked again on every attempt: a starting service
    registers late. ``executors`` (optional) adds each service's executor state to its verdict.
    """

    def __init__(self, select, probe_timeout, max_workers=32, executors=None, clock=time.monotonic, sleep=time.sleep):
        self.select = select
        self.probe_timeout = probe_timeout
        self.max_workers = max_workers
        self.executors = executors
        self.clock = clock
        self.sleep = sleep
        self.selection = None
        self.attempts = []
        self.started = clock()

    def services(self):
        self.selection = self.select()
        return self.selection.services

    def check(self, services):
        """HealthResults of ``services``, plus an "unknown" one for each name not registered yet."""
        results = check_health(services, self.selection.source, self.executors, self.probe_timeout, self.max_workers)
        return results + [HealthResult(name=n, verdict="unknown", reasons=["not registered"])
                          for n in self.selection.missing]

    def wait(self, wait_timeout):
        """(results, names not healthy) once every service is healthy or ``wait_timeout`` has passed;
        every attempt followed by a retry is kept in ``attempts``."""
        return wait_until_healthy(self.services, self.check, wait_timeout, on_retry=self._record_retry,
                                  clock=self.clock, sleep=self.sleep)

    def _record_retry(self, attempt, results, pending, pause):
        self.attempts.append(dict(attempt=attempt, elapsed=self.elapsed(), not_healthy=pending,
                                  summary=summary(results), retry_in=round(pause, 2)))

    def elapsed(self):
        return round(self.clock() - self.started, 2)

    def verdict(self, results, fail_on, wait_timeout=None):
        """The failure message for these results, or None: after a wait, names never registered or
        services still not healthy (unless fail_on is never); else the services fail_on fails."""
        if wait_timeout is not None:
            if self.selection.missing:
                return "after waiting %ss, %s" % (wait_timeout, self.selection.unknown_message())
            pending = [r for r in results if r.verdict != "healthy"]
            if pending and fail_on != "never":
                return "not healthy after waiting %ss: %s" % (wait_timeout, describe(pending))
        bad = [r for r in results if r.verdict in FAILING_VERDICTS[fail_on]]
        if bad:
            return "%d of %d services %s: %s" % (len(bad), len(results), " or ".join(FAILING_VERDICTS[fail_on]),
                                                 describe(bad))
        return None
