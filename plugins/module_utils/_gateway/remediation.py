# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Remediation policy: when an unhealthy service is restarted, with grace, back-off and a cap per
window. The policy functions are pure and take ``now``, so tests need no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .ledger import forget_unseen, iso_time, record_of, service_key, store, tidy, without


REMEDIATION_FIELDS = ("first_unhealthy", "restarts", "gave_up")
JOB_NOT_REMEDIATED = ("a one-shot job: remediation never runs it again (run it with edgex_service state=restarted "
                      "naming it)")


@dataclass
class Policy:
    """When an unhealthy service is restarted (seconds; see remediation_step)."""

    grace: float = 60.0
    max_restarts: int = 3
    window: float = 3600.0
    backoff: float = 30.0

    def problems(self):
        problems = []
        if self.grace < 0 or self.backoff < 0:
            problems.append("grace and backoff must be >= 0")
        if self.max_restarts < 0:
            problems.append("max_restarts must be >= 0")
        if self.window <= 0:
            problems.append("window must be > 0")
        return problems


@dataclass
class Decision:
    """What to do with one service: remediation restart|wait|give_up|none, reaping reap|keep."""

    action: str
    reason: str
    next_eligible: Optional[float] = None  # epoch seconds when waiting (or given up) ends


# -- policy ---------------------------------------------------------------------------------
def remediation_step(record, verdict, now, policy, executor_state=None):
    """(new record, Decision) for one service whose health check said ``verdict`` at ``now``.

    Healthy clears the record. Only "unhealthy" is acted on (degraded answers its ping; unknown
    has nothing to judge by). It is restarted once unhealthy for ``grace`` seconds, at most
    ``max_restarts`` times within ``window`` seconds, each attempt at least
    ``backoff * 2**(attempts_in_window - 1)`` seconds after the previous one; at the limit it
    is given up on until the oldest attempt leaves the window.
    """
    record = dict(record or {})
    if verdict == "healthy":
        return without(record, REMEDIATION_FIELDS), Decision("none", "healthy")
    if verdict != "unhealthy":
        return record, Decision("none", "%s: only unhealthy services are restarted" % verdict)
    if executor_state == "absent":
        return record, Decision("none", "its target is absent: there is nothing to restart")
    first = record.setdefault("first_unhealthy", now)
    restarts = [t for t in record.get("restarts", ()) if now - t < policy.window]
    record = tidy(dict(record, restarts=restarts))
    if now - first < policy.grace:
        return record, Decision("wait", "unhealthy for %.0fs, within the grace of %.0fs" % (now - first, policy.grace),
                                first + policy.grace)
    if len(restarts) >= policy.max_restarts:
        record["gave_up"] = True
        return record, Decision("give_up", "restarted %d time(s) within %.0fs (max_restarts %d)" % (
            len(restarts), policy.window, policy.max_restarts), min(restarts) + policy.window if restarts else None)
    if restarts:
        eligible = max(restarts) + policy.backoff * 2 ** (len(restarts) - 1)
        if now < eligible:
            return record, Decision("wait", "back-off after %d restart(s) within %.0fs" % (len(restarts), policy.window),
                                    eligible)
    record["restarts"] = restarts + [now]
    record.pop("gave_up", None)
    return record, Decision("restart", "unhealthy for %.0fs; restart %d of at most %d within %.0fs" % (
        now - first, len(restarts) + 1, policy.max_restarts, policy.window))


def undo_restart(record, now):
    """``record`` without the restart attempt ``remediation_step`` recorded at ``now``: the service was
    not acted on after all (a dependency failed), so it must not count against max_restarts."""
    record = dict(record)
    record["restarts"] = [t for t in record.get("restarts", ()) if t != now]
    return tidy(record)


class RemediationRun(object):
    """One remediation pass on one gateway: a decision per service from its health and its ledger
    record, a restart of the eligible ones, and the report."""

    def __init__(self, node, results, policy, now, names=None):
        self.node = node
        self.results = results
        self.policy = policy
        self.now = now
        self.names = names  # the service keys asked for; None: all of the node's
        self.decisions = {}
        self.outcomes = {}  # name -> BatchControl result of its restart
        self.restarts = {}  # name -> restarts within the window, after this run

    def key(self, name):
        return service_key(self.node, name)

    def decide_and_restart(self, ledger, restart):
        """Changes ``ledger`` (a ledger's data, under its lock): decides for every service and calls
        ``restart(names) -> [BatchControl result]`` for the eligible ones, so that two runs on one
        gateway never both restart a service. A restart counts as an attempt only when it was acted on."""
        for result in self.results:
            record, self.decisions[result.name] = remediation_step(
                record_of(ledger, self.key(result.name)), result.verdict, self.now, self.policy, result.executor_state)
            if result.one_shot and self.decisions[result.name].action != "none":
                # A job ran once; running it again is a deliberate act (edgex_service, by name), not a remedy.
                record, self.decisions[result.name] = without(record, REMEDIATION_FIELDS), Decision(
                    "none", JOB_NOT_REMEDIATED)
            store(ledger, self.key(result.name), record)
        forget_unseen(ledger, self.node, {self.key(r.name) for r in self.results}, REMEDIATION_FIELDS, self.names)
        eligible = [name for name, decision in self.decisions.items() if decision.action == "restart"]
        if eligible:
            self.outcomes = {outcome["name"]: outcome for outcome in restart(eligible)}
        for name, outcome in self.outcomes.items():
            if outcome.get("skipped"):
                store(ledger, self.key(name), undo_restart(record_of(ledger, self.key(name)), self.now))
        self.restarts = {r.name: len(record_of(ledger, self.key(r.name)).get("restarts", ())) for r in self.results}
        return ledger

    def restarted(self):
        return [name for name, outcome in self.outcomes.items() if not outcome.get("skipped")]

    def failed_restarts(self):
        """{name: error} of the restarts that did not bring the service up."""
        return {name: self.outcomes[name]["error"] for name in self.restarted() if self.outcomes[name].get("error")}

    def came_up(self):
        """The restarted services whose restart succeeded: what to check again."""
        return [name for name in self.restarted() if not self.outcomes[name].get("error")]

    def report(self, after):
        """The module's result; ``after``: name -> HealthResult of the check after the restarts."""
        services, waiting, healthy = [], [], []
        for result in self.results:
            decision = self.decisions[result.name]
            entry = dict(name=result.name, node=result.node, verdict=result.verdict, reasons=result.reasons,
                         executor_state=result.executor_state, action=decision.action, reason=decision.reason,
                         next_eligible=iso_time(decision.next_eligible), restarts_in_window=self.restarts[result.name])
            outcome = self.outcomes.get(result.name, {})
            for field in ("error", "skipped"):
                if outcome.get(field):
                    entry[field] = outcome[field]
            final = after.get(result.name)
            if final is not None:
                entry.update(verdict_after=final.verdict, reasons_after=final.reasons)
            if (final or result).verdict == "healthy":
                healthy.append(result.name)
            if decision.action == "wait":
                waiting.append(dict(name=result.name, reason=decision.reason, next_eligible=entry["next_eligible"],
                                    next_eligible_in=round(max(0.0, decision.next_eligible - self.now), 1)))
            services.append(entry)
        gave_up = [name for name, decision in self.decisions.items() if decision.action == "give_up"]
        return dict(services=services, restarted=self.restarted(), gave_up=gave_up, waiting=waiting, healthy=healthy)
