# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Start, stop and restart a batch of EdgeX services on one host, in dependency order.

Which services and how to run them: the registry says what runs (and the manifest what is
deployed but stopped: EdgeX deregisters on a clean stop); the manifest says how (executor,
target, depends_on, health path). Services of one level act concurrently; a level is "up"
(health endpoint answers, or the executor says running) before the next one starts.

Jobs (one_shot) are done when they exited 0 and are then not started again; a dependency is
waited for until it reached what its dependents' ``depends_on_conditions`` ask (at least: with
``wait``, a service answers and a job has completed); a failed ``depends_on_optional`` dependency
does not keep its dependent from starting.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .._errors import EdgeXError, ExecutorError
from .._names import validate_name
from .._catalog import DEPENDS_ON_CONDITIONS, REGISTRY_SERVICES
from .._executors.factory import default_target
from .._ordering import restart_levels, start_levels, stop_levels
from .jobs import COMPLETED, describe_failure, is_one_shot, job_state, PENDING
from .probe import probe_ping
from .published import unpublished_reason, with_published_port
from .select import Selection

ACTIONS = {"started": "start", "stopped": "stop", "restarted": "restart"}
# What a dependency must reach before its dependents start, weakest first (compose's conditions).
STARTED, HEALTHY, COMPLETES = DEPENDS_ON_CONDITIONS
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
    one_shot: bool = False
    depends_on_conditions: Dict[str, str] = field(default_factory=dict)
    depends_on_optional: List[str] = field(default_factory=list)
    published: Optional[bool] = None
    container_port: Optional[int] = None
    asked_by_name: bool = False  # named in the task, not taken in by "all"


def plan(discovery, manifest, node, names, default_executor="docker", project=None):
    """The services of ``node`` named (``names``: service keys, or ["all"]) as a Selection finds
    them, planned by ``plan_services``; a name the node does not have raises."""
    names = None if "all" in names else names
    return plan_services(Selection(discovery, manifest, [node], names).require_known(), default_executor, project,
                         asked_by_name=names is not None)


def plan_services(services, default_executor="docker", project=None, asked_by_name=False):
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
            manifest_address=service.manifest_address, manifest_port=service.manifest_port, one_shot=is_one_shot(service),
            depends_on_conditions=dict(service.depends_on_conditions),
            depends_on_optional=list(service.depends_on_optional), published=service.published,
            container_port=service.container_port, asked_by_name=asked_by_name,
        ))
    return planned


def readiness(services, wait=True):
    """{name: the condition it must reach}: what its dependents in the batch ask for (a dependency
    left out of depends_on_conditions asks service_started), and at least, with ``wait``, that a
    service answers (service_healthy) and a job has completed (service_completed_successfully)."""
    need = {s.name: (COMPLETES if s.one_shot else HEALTHY) if wait else STARTED for s in services}
    for service in services:
        for dep in service.depends_on:
            condition = service.depends_on_conditions.get(dep, STARTED)
            if dep in need and DEPENDS_ON_CONDITIONS.index(condition) > DEPENDS_ON_CONDITIONS.index(need[dep]):
                need[dep] = condition
    return need


def _is_job(service, need):
    """Judged by how it exits: a job, or a service a dependent waits to see complete."""
    return service.one_shot or need == COMPLETES


def is_up(service, timeout=2.0):
    """Does it answer as edgex_health would have it (EdgeX ping, or TCP for redis and the like)? A
    service that publishes no port cannot be asked from here: running is all there is to wait for."""
    if unpublished_reason(service):
        return True
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
        self.probe = probe or (lambda service: is_up(self._reachable(service), probe_timeout))
        self.clock = clock
        self.sleep = sleep

    def _reachable(self, service):
        """``service`` with the host port Docker chose for it, read from its executor now."""
        return with_published_port(service, self.executors[service.executor], service.target)[0]

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
        self.need = readiness(services, self.wait)
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
            need = self.need[service.name]
            if _is_job(service, need):
                current = job_state(self.executors[service.executor], service.target)[0]
                done = current in (COMPLETED, PENDING) if state == "stopped" else \
                    current == COMPLETED or (current == "running" and need == STARTED)
            else:
                current = self.executors[service.executor].state(service.target)
                done = current == "stopped" if state == "stopped" else \
                    current == "running" and (need == STARTED or self.probe(service))
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
        bad = sorted((set(service.depends_on) - set(service.depends_on_optional)) & failed)
        return ", ".join(bad) if bad else None

    @staticmethod
    def _result(service, **extra):
        result = {"name": service.name, "executor": service.executor, "target": service.target,
                  "before": None, "after": None, "changed": False, "elapsed": 0.0}
        result.update(extra)
        return result

    def _may_stop_ahead(self, service, failed):
        """The registry and protected services restart alone, never stopped ahead of their turn; a job
        is not running to be stopped, and runs again only when asked by name."""
        return service.name not in REGISTRY_SERVICES and service.name not in self.protected \
            and not _is_job(service, self.need[service.name]) and not self._blocked_by(service, failed, "restarted")

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
            need = self.need[service.name]
            job = _is_job(service, need)
            if stopped_ahead is not None:
                before, started = stopped_ahead.result()
            else:
                before = job_state(executor, service.target)[0] if job else executor.state(service.target)
            result["before"] = before
            if before == "absent":
                raise ExecutorError("%s executor: %s does not exist on this host" % (service.executor, service.target))
            act = self._acts(service, state, before, job)
            result["changed"] = act
            if self.check_mode:
                result["after"] = {"started": "running", "restarted": "running", "stopped": "stopped"}[state] \
                    if act else before
                if act and job and state != "stopped":
                    result["after"] = COMPLETED if need != STARTED else "running"
                return result
            if act:
                if state == "started" or stopped_ahead is not None:
                    executor.start(service.target)
                elif state == "stopped":
                    executor.stop(service.target, timeout=self.stop_timeout)
                else:
                    executor.restart(service.target, timeout=self.stop_timeout)
            if job and state != "stopped" and (act or before == "running"):
                result["after"] = self._settle_job(service, executor, need)
            elif act or (state != "stopped" and not job):
                result["after"] = self._settle(service, executor, state, need)
            else:
                result["after"] = before
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

    @staticmethod
    def _acts(service, state, before, job):
        """Does bringing ``service`` (now ``before``) to ``state`` take an action? A job that completed
        is not started again, and restarted only when the task names it (not by "all")."""
        if state == "stopped":
            return before == "running"
        if job:
            return before != "running" and (before != COMPLETED or (state == "restarted" and service.asked_by_name))
        return state == "restarted" or before != "running"

    def _settle_job(self, service, executor, need):
        """Wait until the job completed (exited 0), or only runs when ``need`` is service_started;
        a job that failed is an error at once."""
        deadline = self.clock() + self.wait_timeout
        while True:
            current, exit_code = job_state(executor, service.target)
            if current == COMPLETED or (current == "running" and need == STARTED):
                return current
            if current == "failed":
                raise ExecutorError(describe_failure(service.name, exit_code))
            if self.clock() >= deadline:
                raise ExecutorError("%s did not complete within %.0fs (state %s)"
                                    % (service.name, self.wait_timeout, current))
            self.sleep(self.poll_interval)

    def _settle(self, service, executor, state, need):
        """Wait until the service is where ``state`` wants it, bounded by wait_timeout.

        One that should answer is probed every FAST_POLL seconds (a refused connect costs next
        to nothing, and a restarted service binds its port within tens of milliseconds); its
        executor state is read every poll_interval, to notice one that crashed, and once more
        when the probe answers, to confirm it is this service that does."""
        deadline = self.clock() + self.wait_timeout
        probing = state != "stopped" and need != STARTED
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
            elif current == "running" and (answered or not probing):
                return current
            if state != "stopped" and not probing:
                return current
            if now >= deadline:
                what = "stop" if state == "stopped" else ("answer on %s:%s%s" % (
                    service.address, service.port, service.health_path or "") if current == "running" else "run")
                raise ExecutorError("%s did not %s within %.0fs (state %s)"
                                    % (service.name, what, self.wait_timeout, current))
            # something else answers while the executor says otherwise: no faster than the reads
            self.sleep(self.poll_interval if answered or not probing else FAST_POLL)
