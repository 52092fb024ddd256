# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Remediation policy: when an unhealthy service is restarted, with grace, back-off and a cap per
window. The policy functions are pure and take ``now``, so tests need no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .ledger import _tidy, _without


REMEDIATION_FIELDS = ("first_unhealthy", "restarts", "gave_up")


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
        return _without(record, REMEDIATION_FIELDS), Decision("none", "healthy")
    if verdict != "unhealthy":
        return record, Decision("none", "%s: only unhealthy services are restarted" % verdict)
    if executor_state == "absent":
        return record, Decision("none", "its target is absent: there is nothing to restart")
    first = record.setdefault("first_unhealthy", now)
    restarts = [t for t in record.get("restarts", ()) if now - t < policy.window]
    record = _tidy(dict(record, restarts=restarts))
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
