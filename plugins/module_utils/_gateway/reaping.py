# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Reaping policy: when a registration left behind by a crashed service is removed."""

from __future__ import annotations

from .._registry.model import worst_status
from .health import NOT_RUNNING
from .ledger import _without
from .remediation import Decision


REAPING_FIELDS = ("first_critical",)
REQUIRE_TARGET = ("absent", "not_running")


def reap_step(record, critical, now, critical_for, executor_state, answered, require_target="absent"):
    """(new record, Decision) for one registration: reap it only when it has been critical for
    ``critical_for`` seconds, nothing answers on its port, and its executor says its target is
    absent (``require_target`` absent) or not running (not_running). An executor that says
    running, or cannot say, always keeps it."""
    record = dict(record or {})
    if not critical:
        return _without(record, REAPING_FIELDS), Decision("keep", "its registration is not critical")
    first = record.setdefault("first_critical", now)
    if executor_state == "running":
        return record, Decision("keep", "its executor says it is running")
    if answered:
        return record, Decision("keep", "something answers on its port")
    if executor_state is None:
        return record, Decision("keep", "its executor state is unknown")
    wanted = ("absent",) if require_target == "absent" else NOT_RUNNING
    if executor_state not in wanted:
        return record, Decision("keep", "its target is %s, and require_target is %s" % (executor_state, require_target))
    if now - first < critical_for:
        return record, Decision("keep", "critical for %.0fs of the %.0fs required" % (now - first, critical_for),
                                first + critical_for)
    return record, Decision("reap", "critical for %.0fs and its target is %s" % (now - first, executor_state))


def answered(result):
    """Did anything answer a HealthResult's probe? _health sets ``latency_ms`` exactly when an
    HTTP answer (of any status) or a TCP connect came back."""
    return result.latency_ms is not None


def own_status(service, heard):
    """Status of a registration's own checks: the node's serfHealth is not about the service.
    Without checks (the manifest registry) it is critical when nothing answered (``heard``)."""
    own = [c.get("status") for c in service.checks if c.get("service_id") == service.id]
    if own:
        return worst_status(own)
    return "passing" if heard else "critical"
