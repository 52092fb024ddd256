# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Remediation and reaping policy, and the per-host ledger that remembers between runs.

One module run sees one moment; "unhealthy for longer than grace", "at most N restarts within a
window" and "critical for longer than critical_for" need memory across runs. The ledger is a
small JSON file on the gateway with one record per service (key ``<node>/<service>``):

  first_unhealthy  when a run first saw it unhealthy (dropped when a run sees it healthy)
  restarts         when it was restarted, within the window
  gave_up          max_restarts was reached within the window
  first_critical   when a run first saw its registration critical (Consul does not say since when)

Times are Unix epoch seconds: wall clock, because they must survive a reboot. The policy
functions are pure and take ``now``, so tests need no sleeping.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
from dataclasses import dataclass
from typing import Optional

from ._common import EdgeXError
from ._health import NOT_RUNNING
from ._manifest import FileLock, atomic_write
from ._registry import worst_status

LEDGER_VERSION = 1
LEDGER_PATH = "/var/lib/edgex-sysmgmt/remediation.json"
REMEDIATION_FIELDS = ("first_unhealthy", "restarts", "gave_up")
REAPING_FIELDS = ("first_critical",)
REQUIRE_TARGET = ("absent", "not_running")


class LedgerError(EdgeXError):
    """The ledger cannot be read, parsed or written; the message names the file."""


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


def service_key(node, name):
    return "%s/%s" % (node, name)


def iso_time(epoch):
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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


# -- records --------------------------------------------------------------------------------
def _without(record, fields):
    return {k: v for k, v in record.items() if k not in fields}


def record_of(data, key):
    return dict(data["services"].get(key) or {})


def _tidy(record):
    """The record without empty fields (no attempts, not given up)."""
    # Not "v not in (None, False, [])": 0 == False, and 0 is a time in tests.
    return {k: v for k, v in record.items() if v is not None and v is not False and v != []}


def store(data, key, record):
    """Put ``record`` under ``key``; an empty record is removed."""
    record = _tidy(record)
    if record:
        data["services"][key] = record
    else:
        data["services"].pop(key, None)


def forget_unseen(data, node, seen, fields, names=None):
    """Drop ``fields`` from the records of ``node`` not in ``seen`` (keys), limited to ``names``
    when given: a timer of a service that went away must not carry over to its next life."""
    prefix = node + "/"
    for key in [k for k in data["services"] if k.startswith(prefix) and k not in seen]:
        if names is None or key[len(prefix):] in names:
            store(data, key, _without(data["services"][key], fields))


# -- the file -------------------------------------------------------------------------------
def empty_ledger():
    return {"version": LEDGER_VERSION, "services": {}}


def _is_time(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _record_problem(key, record):
    if not isinstance(record, dict):
        return "services/%s must be an object" % key
    for name, value in record.items():
        if name in ("first_unhealthy", "first_critical"):
            good = _is_time(value)
        elif name == "restarts":
            good = isinstance(value, list) and all(_is_time(t) for t in value)
        elif name == "gave_up":
            good = isinstance(value, bool)
        else:
            return "services/%s has an unknown field %r" % (key, name)
        if not good:
            return "services/%s/%s has a wrong type (%r)" % (key, name, value)
    return None


def ledger_problem(data):
    """None when ``data`` is a ledger this code wrote, else what is wrong with it."""
    if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
        return "must be an object with version %d" % LEDGER_VERSION
    services = data.get("services")
    if not isinstance(services, dict) or set(data) != {"version", "services"}:
        return "must have exactly the keys version and services (an object)"
    for key, record in sorted(services.items()):
        problem = _record_problem(key, record)
        if problem:
            return problem
    return None


def ledger_text(data):
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class Ledger(object):
    """The ledger file: validated reads, atomic writes under an exclusive lock."""

    def __init__(self, path):
        if not path:
            raise LedgerError("no ledger path given")
        self.path = os.path.abspath(os.path.expanduser(path))
        self.lock_path = self.path + ".lock"

    def read(self):
        """The ledger; an empty one when the file does not exist yet."""
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return empty_ledger()
        except (OSError, UnicodeDecodeError) as exc:
            raise LedgerError("cannot read ledger %s: %s" % (self.path, getattr(exc, "strerror", None) or exc))
        try:
            data = json.loads(text)
        except ValueError as exc:
            problem = "not JSON (%s)" % exc
        else:
            problem = ledger_problem(data)
        if problem:
            # Never overwritten: a record lost would allow restarts the policy forbids.
            raise LedgerError("ledger %s is invalid: %s; fix or remove the file" % (self.path, problem))
        return data

    @contextlib.contextmanager
    def _locked(self):
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise LedgerError("cannot create the directory of ledger %s: %s" % (self.path, exc.strerror or exc))
        with FileLock(self.lock_path, LedgerError):
            yield

    def update(self, change, check_mode=False):
        """Read-modify-write under the lock: ``change(data) -> data``. Returns (changed, before, after).
        In check mode nothing is written: not the file, its lock file nor its directory."""
        with contextlib.nullcontext() if check_mode else self._locked():
            before = self.read()
            after = change(copy.deepcopy(before))
            changed = after != before
            if changed and not check_mode:
                try:
                    atomic_write(self.path, ledger_text(after).encode("utf-8"))
                except OSError as exc:
                    raise LedgerError("cannot write ledger %s: %s" % (self.path, exc.strerror or exc))
        return changed, before, after
