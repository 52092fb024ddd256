# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Reaping policy: when a registration left behind by a crashed service is removed.

Only what the registry itself reports critical is ever reaped: the registration's own checks,
or its node's ``serfHealth``. A registration without checks is judged by its node's health,
never by our failing to reach it; one the registry has no health for at all (the manifest
registry has no checks) is never critical, so never reaped.
"""

from __future__ import annotations

from .._registry.model import worst_status
from .health import NOT_RUNNING, SERF_HEALTH
from .._errors import EdgeXError
from .ledger import forget_unseen, iso_time, record_of, service_key, store, without
from .remediation import Decision


REAPING_FIELDS = ("first_critical",)
REQUIRE_TARGET = ("absent", "not_running")


def reap_step(record, status, now, critical_for, executor_state, answered, require_target="absent"):
    """(new record, Decision) for one registration whose registry ``status`` is what
    ``reported_status`` says: reap it only when it has been critical for ``critical_for`` seconds,
    nothing answers on its port, and its executor says its target is absent (``require_target``
    absent) or not running (not_running). An executor that says running, or cannot say, always
    keeps it."""
    record = dict(record or {})
    if status != "critical":
        reason = "its registry reports no checks for it" if status == "unknown" else \
            "its registration is not critical"
        return without(record, REAPING_FIELDS), Decision("keep", reason)
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


def reported_status(service):
    """What the registry itself reports of a registration: critical when its own checks are or
    its node's serfHealth is; else its own checks' status; without own checks its node's
    serfHealth (a registration without checks is as healthy as its node); "unknown" when the
    registry has no check for either (the manifest registry)."""
    own = [c.get("status") for c in service.checks if c.get("service_id") == service.id]
    node = [c.get("status") for c in service.checks if c.get("id") == SERF_HEALTH]
    if "critical" in node:
        return "critical"
    return worst_status(own or node)


class ReapingRun(object):
    """One reaping pass on one gateway: per registration, a decision from its checks, its executor
    and the ledger, and the deregistration of what may be reaped."""

    def __init__(self, node, services, results, executors, critical_for, require_target, now, names=None):
        self.node = node
        self.services = services
        self.results = results
        self.executors = executors
        self.critical_for = critical_for
        self.require_target = require_target
        self.now = now
        self.names = names  # the service keys asked for; None: all of the node's
        self.entries = []

    def key(self, service):
        return service_key(self.node, service.id)

    def decide_and_deregister(self, ledger, deregister):
        """Changes ``ledger`` (a ledger's data, under its lock): decides for every registration and
        calls ``deregister(service)`` for those to reap (None: check mode, nothing is deregistered)."""
        for service, result in zip(self.services, self.results):
            heard = answered(result)
            status = reported_status(service)
            record, decision = reap_step(record_of(ledger, self.key(service)), status, self.now,
                                         self.critical_for, result.executor_state, heard, self.require_target)
            try:
                executor, target = self.executors.for_service(service)
                executor = executor.name
            except EdgeXError:  # no container/unit name: its state was unknown too, so it is kept
                executor = target = None
            entry = dict(name=service.name, id=service.id, node=service.node, registry_status=status,
                         executor=executor, target=target, executor_state=result.executor_state, answered=heard,
                         critical_since=iso_time(record.get("first_critical")), action=decision.action,
                         reason=decision.reason, next_eligible=iso_time(decision.next_eligible))
            if decision.action == "reap" and deregister is not None:
                try:
                    deregister(service)
                    record.pop("first_critical")  # gone: a later registration starts a new timer
                except EdgeXError as exc:
                    entry["error"] = str(exc)
            store(ledger, self.key(service), record)
            self.entries.append(entry)
        forget_unseen(ledger, self.node, {self.key(s) for s in self.services}, REAPING_FIELDS, self.names)
        return ledger

    def split(self):
        """(reaped, kept), without the internal ``action``."""
        reaped, kept = [], []
        for entry in self.entries:
            entry = dict(entry)
            (reaped if entry.pop("action") == "reap" else kept).append(entry)
        return reaped, kept
