# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""How much each EdgeX service of a gateway uses: CPU %, memory, restarts, uptime, state.

Every service is read through its executor (``stats(target)``: the engine's one-shot stats for
docker and compose, ``systemctl show`` for systemd units and snap apps). CPU % needs two readings:
every service is read once, all at the same time, then, one ``interval`` after the first round
started, the running ones are read again, all at the same time. So a gateway costs about one
interval plus one read, whatever the number of services (on the Docker engine a one-shot read
waits for the engine's next collection, once a second: there about two seconds in all).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Optional

from .._errors import EdgeXError
from .health import EXECUTOR_NOUNS

STATES = ("running", "stopped", "absent", "failed", "unknown")


@dataclass
class ServiceMetrics:
    name: str
    node: Optional[str]
    executor: Optional[str]
    target: Optional[str]
    state: str  # running | stopped | absent | failed | unknown (its executor could not tell)
    cpu_percent: Optional[float] = None  # of one CPU, as docker stats shows it
    memory_used: Optional[int] = None  # bytes
    memory_limit: Optional[int] = None  # bytes; None: no limit known
    memory_percent: Optional[float] = None
    restarts: Optional[int] = None
    uptime: Optional[float] = None  # seconds since it (re)started
    started_at: Optional[str] = None  # as its executor prints it
    reason: Optional[str] = None  # why a number is missing

    def to_dict(self):
        return asdict(self)


def cpu_percent(first, second):
    """Percent of one CPU between two readings ({cpu_ns, cpu_clock_ns}); None when either lacks them."""
    try:
        used = second["cpu_ns"] - first["cpu_ns"]
        elapsed = second["cpu_clock_ns"] - first["cpu_clock_ns"]
    except (KeyError, TypeError):
        return None
    if elapsed <= 0 or used < 0:  # no time passed, or the counter restarted with the service
        return None
    return round(100.0 * used / elapsed, 2)


def _reading(service, executors):
    """(executor name, target, reading or None, error or None) of one service."""
    try:
        executor, target = executors.for_service(service)
    except EdgeXError as exc:
        return service.executor or executors.default, None, None, str(exc)
    try:
        return executor.name, target, executor.stats(target), None
    except EdgeXError as exc:
        return executor.name, target, None, str(exc)


def _metrics(service, first, second):
    """ServiceMetrics from the first round's (executor, target, reading, error) and the second's (or None)."""
    executor, target, reading, error = first
    result = ServiceMetrics(name=service.name, node=service.node, executor=executor, target=target,
                            state="unknown", reason=error)
    later = second[2] if second is not None else None
    current = later or reading
    if current is None:
        return result
    result.state = current["state"]
    result.restarts = current.get("restarts")
    result.started_at = current.get("started_at")
    noun = EXECUTOR_NOUNS.get(executor, "service")
    if result.state != "running":
        result.reason = ("%s %s does not exist on this host" % (noun, target) if result.state == "absent"
                         else "%s %s is %s" % (noun, target, result.state))
        return result
    result.uptime = current.get("uptime")
    result.memory_used, result.memory_limit = current.get("memory_used"), current.get("memory_limit")
    if result.memory_used is not None and result.memory_limit:
        result.memory_percent = round(100.0 * result.memory_used / result.memory_limit, 2)
    if current.get("cpu_ns") is None:
        result.reason = ("%s %s reports no CPU time (systemd: CPUUsageNSec is not set, as without CPUAccounting or "
                         "a cpu cgroup controller)" % (noun, target))
    elif later is None:
        result.reason = "no second reading for CPU %%: %s" % (second[3] if second is not None else "not taken")
    else:
        result.cpu_percent = cpu_percent(reading, later)
        if result.cpu_percent is None:
            result.reason = "its CPU time went back between the two readings: it restarted"
    return result


def collect(services, executors, interval=1.0, max_workers=32, sleep=time.sleep, clock=time.monotonic):
    """ServiceMetrics of ``services`` (ServiceRecords, in their order), read through ``executors``.

    The second round starts ``interval`` seconds after the first one started (at once when the
    first took longer: the Docker engine hands a one-shot reading out at its next collection, up
    to a second later). Each reading carries its own clock, so CPU % is over the time that really
    passed between a service's two readings."""
    services = list(services)
    if not services:
        return []
    for name in {s.executor or executors.default for s in services}:
        try:
            executors.named(name)  # made before the threads: one client per executor
        except EdgeXError:
            pass  # said per service by _reading
    workers = max(1, min(max_workers, len(services)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        started = clock()
        first = list(pool.map(lambda s: _reading(s, executors), services))
        again = [i for i, (_e, _t, reading, _err) in enumerate(first)
                 if reading is not None and reading["state"] == "running" and reading.get("cpu_ns") is not None]
        second = {}
        if again:
            sleep(max(0.0, interval - (clock() - started)))
            second = dict(zip(again, pool.map(lambda i: _reading(services[i], executors), again)))
    return [_metrics(service, first[index], second.get(index)) for index, service in enumerate(services)]


def summary(results):
    counts = dict.fromkeys(STATES, 0)
    for result in results:
        counts[result.state if result.state in counts else "unknown"] += 1
    counts["total"] = len(results)
    return counts
