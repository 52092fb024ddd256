# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The per-gateway ledger that remembers between runs what one run cannot see.

One module run sees one moment; "unhealthy for longer than grace", "at most N restarts within a
window" and "critical for longer than critical_for" need memory across runs. The ledger is a
small JSON file on the gateway with one record per service (key ``<node>/<service>``):

  first_unhealthy  when a run first saw it unhealthy (dropped when a run sees it healthy)
  restarts         when it was restarted, within the window
  gave_up          max_restarts was reached within the window
  first_critical   when a run first saw its registration critical (Consul does not say since when)

Times are Unix epoch seconds: wall clock, because they must survive a reboot.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os

from .._errors import EdgeXError
from .._fileio import (FileLock, atomic_write, describe_os_error, file_status, read_bytes, real_path,
                       remove_stale_temporaries)


LEDGER_VERSION = 1
LEDGER_PATH = "/var/lib/edgex-sysmgmt/remediation.json"


class LedgerError(EdgeXError):
    """The ledger cannot be read, parsed or written; the message names the file."""


def service_key(node, name):
    return "%s/%s" % (node, name)


def iso_time(epoch):
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- records --------------------------------------------------------------------------------
def without(record, fields):
    return {k: v for k, v in record.items() if k not in fields}


def record_of(data, key):
    return dict(data["services"].get(key) or {})


def tidy(record):
    """The record without empty fields (no attempts, not given up)."""
    # Not "v not in (None, False, [])": 0 == False, and 0 is a time in tests.
    return {k: v for k, v in record.items() if v is not None and v is not False and v != []}


def store(data, key, record):
    """Put ``record`` under ``key``; an empty record is removed."""
    record = tidy(record)
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
            store(data, key, without(data["services"][key], fields))


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
    """The ledger file: validated reads, atomic writes under an exclusive lock. A symlinked ledger
    is resolved once: its target is locked and replaced, never the link. Writes keep the file's
    mode and owner and remove temporary files killed writers left; every OS error is a
    LedgerError naming the file."""

    def __init__(self, path):
        if not path:
            raise LedgerError("no ledger path given")
        self.path = os.path.abspath(os.path.expanduser(path))
        self.real_path = real_path(self.path)
        self.lock_path = self.real_path + ".lock"

    def read(self):
        """The ledger; an empty one when the file does not exist yet."""
        raw = read_bytes(self.real_path, LedgerError, "ledger", missing_ok=True)
        if raw is None:
            return empty_ledger()
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problem = "not UTF-8 text (byte 0x%02x at offset %d)" % (raw[exc.start], exc.start)
        except ValueError as exc:
            problem = "not JSON (%s)" % exc
        else:
            problem = ledger_problem(data)
        if problem:
            # Never overwritten: a record lost would allow restarts the policy forbids.
            raise LedgerError("ledger %s is invalid: %s; fix or remove the file" % (self.real_path, problem))
        return data

    @contextlib.contextmanager
    def _locked(self):
        directory = os.path.dirname(self.real_path)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise LedgerError("cannot create the directory of ledger %s: %s" % (self.real_path, describe_os_error(exc)))
        with FileLock(self.lock_path, LedgerError, like=file_status(self.real_path, LedgerError, "ledger")):
            yield

    def update(self, change, check_mode=False):
        """Read-modify-write under the lock: ``change(data) -> data``. Returns (changed, before, after).
        ``change`` may act (restart, deregister): it runs once, under the lock, so two runs on one
        gateway never both act. In check mode nothing is written: not the file, its lock file nor
        its directory."""
        with contextlib.nullcontext() if check_mode else self._locked():
            before = self.read()
            after = change(copy.deepcopy(before))
            changed = after != before
            if changed and not check_mode:
                remove_stale_temporaries(self.real_path)
                atomic_write(self.real_path, ledger_text(after).encode("utf-8"), LedgerError, "ledger")
        return changed, before, after
