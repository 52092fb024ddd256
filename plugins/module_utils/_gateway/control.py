# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Start, stop and restart a batch of EdgeX services on one host, in dependency order.

Which services and how to run them: the registry says what runs (and the manifest what is
deployed but stopped: EdgeX deregisters on a clean stop); the manifest says how (executor,
target, depends_on, health path). Services of one level act concurrently; a level is "up"
(health endpoint answers, or the executor says running) before the next one starts.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import List, Optional

from .._errors import EdgeXError, ExecutorError
from .._names import validate_name
from .._catalog import ONE_SHOT_SERVICES, REGISTRY_SERVICES
from .._executors.factory import default_target
from .._ordering import restart_levels, start_levels, stop_levels
from .probe import probe_ping
from .select import Selection

ACTIONS = {"started": "start", "stopped": "stop", "restarted": "restart"}
# Seconds between probes of a service that should come up (see BatchControl._settle).
FAST_POLL = 0.02


class ControlError(EdgeXError):
    """A batch did not converge; ``results`` says how far it got."""

    def __init__(self, message, results):
        super(ControlError, self).__init__(message)
        self.results = results


@dataclass
class Planned:
    """One service to act on, with everything needed to act and to tell it is up."""

    name: str
    executor: str
    target: str
    address: Optional[str] = None
    port: Optional[int] = None
    health_path: Optional[str] = None
    depends_on: List[str] = field(default_factory=list)
    # What the address rule needs to reach a service registered under a name that does not
    # resolve here (a container host name): see _gateway/addresses.py.
    node_address: Optional[str] = None
    manifest_address: Optional[str] = None
    manifest_port: Optional[int] = None


def plan(discovery, manifest, node, names, default_executor="docker", project=None):
    """The services of ``node`` named (``names``: service keys, or ["all"]) as a Selection finds
    them, planned by ``plan_services``; a name the node does not have raises."""
    names = None if "all" in names else names
    return plan_services(Selection(discovery, manifest, [node], names).require_known(), default_executor, project)


def plan_services(services, default_executor="docker", project=None):
    """ServiceRecords with the executor and target to act through: the manifest's, else
    ``default_executor`` and its default target."""
    planned = []
    for service in services:
        validate_name(service.name)  # "all" takes the registry's names as they come
        executor = service.executor or default_executor
        planned.append(Planned(
            name=service.name, executor=executor,
            target=service.target or default_target(service.name, executor, project),
            address=service.address, port=service.port, health_path=service.health_path,
            depends_on=list(service.depends_on), node_address=service.node_address,
            manifest_address=service.manifest_address, manifest_port=service.manifest_port,
        ))
    return planned


def is_up(service, timeout=2.0):
    """Does it answer as edgex_health would have it (EdgeX ping, or TCP for redis and the like)?"""
    probe = probe_ping(service, timeout)
    return probe.kind == "none" or probe.ok


class BatchControl(object):
    """Acts on planned services level by level. ``executors``: name -> Executor (thread-safe
    calls assumed, as the Docker SDK's and the CLI runners' are)."""

    def __init__(self, executors, wait_timeout=60.0, stop_timeout=None, check_mode=False, wait=True,
                 protected=(), poll_interval=0.25, probe=None, probe_timeout=2.0, clock=time.monotonic,
                 sleep=time.sleep):
        self.executors = executors
        self.wait_timeout = wait_timeout
        self.stop_timeout = stop_timeout
        self.check_mode = check_mode
        self.wait = wait
        self.protected = tuple(protected)
        self.poll_interval = poll_interval
        self.probe = probe or (lambda service: is_up(service, probe_timeout))
        self.clock = clock
        self.sleep = sleep

    def levels(self, services, state):
        graph = {s.name: list(s.depends_on) for s in services}
        if state == "stopped":
            return stop_levels(graph)
        if state == "restarted":
            return restart_levels(graph, self.protected)
        return start_levels(graph)

    def run(self, services, state, levels=None):
        """Returns the per-service results; raises ControlError (with them) when any failed.
        ``levels``: what ``levels(services, state)`` gave, when the caller has it already."""
        if state not in ACTIONS:
            raise EdgeXError("unknown state %r: must be one of %s" % (state, ", ".join(ACTIONS)))
        if levels is None:
            levels = self.levels(services, state)
        converged = self._converged(services, state)
        if converged is not None:
            return [converged[name] for level in levels for name in level]
        by_name = {s.name: s for s in services}
        results = {}
        failed = set()
        stopped_ahead = {}  # name -> Future of its stop, run while the level before it restarts
        with ThreadPoolExecutor(max_workers=max(1, min(32, len(services)))) as pool:
            for index, level in enumerate(levels):
                runnable = []
                for name in level:
                    blocked = self._blocked_by(by_name[name], failed, state)
                    if blocked:
                        results[name] = self._skipped(by_name[name], state, blocked, stopped_ahead.pop(name, None))
                        failed.add(name)
                    else:
                        runnable.append(by_name[name])
                if state == "restarted" and not self.check_mode and index + 1 < len(levels):
                    for name in levels[index + 1]:
                        if self._may_stop_ahead(by_name[name], failed):
                            stopped_ahead[name] = pool.submit(self._stop_ahead, by_name[name])
                acting = [pool.submit(self._act, s, state, stopped_ahead.pop(s.name, None)) for s in runnable]
                for future in acting:
                    result = future.result()
                    results[result["name"]] = result
                    if result.get("error"):
                        failed.add(result["name"])
        ordered = [results[name] for level in levels for name in level]
        if failed:
            errors = ["%s: %s" % (r["name"], r.get("error") or r.get("skipped")) for r in ordered
                      if r["name"] in failed]
            raise ControlError("%d of %d service(s) did not reach %s:\n  %s" % (
                len(failed), len(ordered), state, "\n  ".join(errors)), ordered)
        return ordered

    def _converged(self, services, state):
        """{name: result} when every service already is where ``state`` wants it, found in one
        concurrent pass (the common idempotent run), else None and the levels are walked."""
        if state == "restarted" or not services:
            return None

        def look(service):
            started = self.clock()
            current = self.executors[service.executor].state(service.target)
            if state == "stopped":
                done = current == "stopped"
            else:
                done = (current == "running" and (not self.wait or self.probe(service))) or \
                    (service.name in ONE_SHOT_SERVICES and current == "stopped")
            return done, self._result(service, before=current, after=current,
                                      elapsed=round(self.clock() - started, 3))

        try:
            with ThreadPoolExecutor(max_workers=min(16, len(services))) as pool:
                looks = list(pool.map(look, services))
        except EdgeXError:
            return None  # the level walk reports it per service
        if not all(done for done, _result in looks):
            return None
        return {result["name"]: result for _done, result in looks}

    def _blocked_by(self, service, failed, state):
        """A dependency that failed blocks a start; a dependent that failed to stop blocks a stop."""
        if state == "stopped":
            return None
        bad = sorted(set(service.depends_on) & failed)
        return ", ".join(bad) if bad else None

    @staticmethod
    def _result(service, **extra):
        result = {"name": service.name, "executor": service.executor, "target": service.target,
                  "before": None, "after": None, "changed": False, "elapsed": 0.0}
        result.update(extra)
        return result

    def _may_stop_ahead(self, service, failed):
        """The registry and protected services restart alone, never stopped ahead of their turn."""
        return service.name not in REGISTRY_SERVICES and service.name not in self.protected \
            and not self._blocked_by(service, failed, "restarted")

    def _stop_ahead(self, service):
        """(state before, when the restart began): the first half of a restart, while the level
        before restarts; its second half is a start once that level answers."""
        started = self.clock()
        executor = self.executors[service.executor]
        before = executor.state(service.target)
        if before == "running":
            executor.stop(service.target, timeout=self.stop_timeout)
        return before, started

    def _skipped(self, service, state, blocked, stopped_ahead):
        result = self._result(service, skipped="not %s: %s failed" % (
            "started" if state != "stopped" else "stopped", blocked))
        if stopped_ahead is not None:  # stopped for a restart that can no longer complete
            try:
                result["before"], _started = stopped_ahead.result()
                result["after"] = self.executors[service.executor].state(service.target)
                result["changed"] = result["after"] != result["before"]
            except EdgeXError as exc:
                result["error"] = str(exc)
        return result

    def _act(self, service, state, stopped_ahead=None):
        """Brings one service to ``state``; ``stopped_ahead``: the Future of the stop half of its
        restart, which then completes with a start."""
        started = self.clock()
        executor = self.executors[service.executor]
        result = self._result(service)
        try:
            if stopped_ahead is not None:
                before, started = stopped_ahead.result()
            else:
                before = executor.state(service.target)
            result["before"] = before
            if before == "absent":
                raise ExecutorError("%s executor: %s does not exist on this host" % (service.executor, service.target))
            one_shot = service.name in ONE_SHOT_SERVICES
            if state == "started":
                act = before != "running" and not (one_shot and before == "stopped")
            elif state == "stopped":
                act = before == "running"
            else:
                act = True
            result["changed"] = act
            if self.check_mode:
                result["after"] = {"started": "running", "restarted": "running", "stopped": "stopped"}[state] \
                    if act else before
                return result
            if act:
                if state == "started" or stopped_ahead is not None:
                    executor.start(service.target)
                elif state == "stopped":
                    executor.stop(service.target, timeout=self.stop_timeout)
                else:
                    executor.restart(service.target, timeout=self.stop_timeout)
            result["after"] = self._settle(service, executor, state, one_shot) if (act or state != "stopped") \
                else before
        except EdgeXError as exc:
            result["error"] = str(exc)
            if result["after"] is None:
                try:
                    result["after"] = executor.state(service.target)
                except EdgeXError:
                    pass
        finally:
            result["elapsed"] = round(self.clock() - started, 3)
        return result

    def _settle(self, service, executor, state, one_shot):
        """Wait until the service is where ``state`` wants it, bounded by wait_timeout.

        One that should answer is probed every FAST_POLL seconds (a refused connect costs next
        to nothing, and a restarted service binds its port within tens of milliseconds); its
        executor state is read every poll_interval, to notice one that crashed, and once more
        when the probe answers, to confirm it is this service that does."""
        deadline = self.clock() + self.wait_timeout
        probing = state != "stopped" and self.wait
        next_read = self.clock()
        while True:
            answered = probing and self.probe(service)
            now = self.clock()
            if not (answered or now >= next_read):
                self.sleep(FAST_POLL)
                continue
            current = executor.state(service.target)
            next_read = now + self.poll_interval
            if state == "stopped":
                if current in ("stopped", "absent"):
                    return current
            elif current == "failed":
                said = executor.failure_text(service.target)  # the unit's or app's own words, where it has some
                raise ExecutorError("%s %s failed after %s%s" % (service.executor, service.target, ACTIONS[state],
                                                                 ": " + said if said else ""))
            elif one_shot and current == "stopped":
                return current
            elif current == "running" and (answered or not self.wait):
                return current
            if state != "stopped" and not self.wait:
                return current
            if now >= deadline:
                what = "stop" if state == "stopped" else ("answer on %s:%s%s" % (
                    service.address, service.port, service.health_path or "") if current == "running" else "run")
                raise ExecutorError("%s did not %s within %.0fs (state %s)"
                                    % (service.name, what, self.wait_timeout, current))
            # something else answers while the executor says otherwise: no faster than the reads
            self.sleep(self.poll_interval if answered or not probing else FAST_POLL)
