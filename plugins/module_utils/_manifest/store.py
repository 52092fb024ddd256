# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The manifest file: validated reads, writes that lose nothing and widen nothing, no write at all
when nothing changed, and the record of when a registry last confirmed it.

- The file behind a symlink is resolved once: it is the one read, locked, backed up and replaced
  (never the link). Reading validates once; a file that is not a manifest is never overwritten.
- ``update(change)`` reads and computes without the lock; when nothing changes, or in check mode,
  that is all, so both work in a read-only directory. A write takes the lock, reads again, redoes
  the change if another writer got there first, removes temporary files killed writers left,
  then keeps the previous bytes as ``<file>.bak`` and replaces the file, each atomically, each
  with the file's mode and owner. Any OS error is a ManifestError naming the file and the step,
  with the manifest untouched.
- Confirmation: ``manifest_age`` on fallback is the time since a complete registry read last
  confirmed the content. A read that changes the content records it in the file
  (``confirmed_at``); one that finds the content unchanged records it beside the file, in
  ``<file>.confirmed`` (the time and the SHA-256 of the bytes it confirmed), so that the manifest
  and its ``.bak`` stay untouched and ``changed`` stays false. That record counts only while the
  manifest's bytes are the ones it names. See docs/manifest.md.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os

from .._errors import ManifestError
from .._fileio import FileLock, atomic_write, file_status, read_bytes, real_path, remove_stale_temporaries
from .edits import copy_tree, to_discovery
from .schema import empty_manifest, last_confirmed, type_name, validate
from .yamlio import dump_yaml, load_yaml

CONFIRMATION_SUFFIX = ".confirmed"
_STAMPS = ("updated_at", "confirmed_at")  # when, not what: never a change on their own


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text, origin="manifest"):
    """YAML text or bytes -> validated manifest dict."""
    data = load_yaml(text, origin, "manifest", aliases=False)
    if not isinstance(data, dict):
        raise ManifestError("invalid manifest %s: (top level): must be a mapping with 'version' and 'hosts', not %s"
                            % (origin, type_name(data)))
    return validate(data, origin)


def dump(data):
    return dump_yaml(data)


def _content(data):
    """The manifest without its time stamps: what decides whether a write is a change."""
    return {k: v for k, v in data.items() if k not in _STAMPS}


class _Snapshot(object):
    """The manifest as read once: its bytes (None: no file), validated data and os.stat."""

    def __init__(self, raw, data, status):
        self.raw, self.data, self.status = raw, data, status


# -- the file -------------------------------------------------------------------
class ManifestStore(object):
    """One manifest file. ``path`` is the path as given (absolute); ``real_path`` the file behind
    it, next to which ``.bak``, ``.lock`` and ``.confirmed`` live. After ``update``,
    ``warnings`` says what could not be done without failing (a confirmation not recorded)."""

    def __init__(self, path):
        if not path:
            raise ManifestError("no manifest path given")
        self.path = os.path.abspath(os.path.expanduser(path))
        self.real_path = real_path(self.path)
        self.backup_path = self.real_path + ".bak"
        self.lock_path = self.real_path + ".lock"
        self.confirmation_path = self.real_path + CONFIRMATION_SUFFIX
        self.warnings = []
        self.confirmed_at = None  # after update(): when a registry last confirmed the manifest
        self.backed_up = False  # after update(): the previous version was kept as backup_path

    def exists(self):
        return os.path.exists(self.real_path)

    def _snapshot(self, missing_ok, known=None):
        """The file now; ``known``: a snapshot read before, whose parse is reused when the bytes
        are still the same."""
        raw = read_bytes(self.real_path, ManifestError, "manifest", missing_ok=True)
        if known is not None and raw is not None and raw == known.raw:
            return _Snapshot(raw, known.data, file_status(self.real_path, ManifestError, "manifest"))
        if raw is None:
            if not missing_ok:
                raise ManifestError("cannot read manifest %s: it does not exist" % self.real_path)
            return _Snapshot(None, empty_manifest(), None)
        return _Snapshot(raw, parse(raw, self.real_path), file_status(self.real_path, ManifestError, "manifest"))

    def read(self, missing_ok=False):
        """The validated manifest dict; an empty one if ``missing_ok`` and there is no file."""
        return self._snapshot(missing_ok).data

    def to_discovery(self):
        snapshot = self._snapshot(missing_ok=False)
        return to_discovery(snapshot.data, self._last_confirmation(snapshot)[1])

    # -- confirmation --------------------------------------------------------------
    def _recorded_confirmation(self, raw):
        """The time in ``<file>.confirmed`` if it confirms exactly these bytes, else None."""
        try:
            record = json.loads(read_bytes(self.confirmation_path, ManifestError, "confirmation", missing_ok=True)
                                or b"null")
        except (ManifestError, ValueError):
            return None  # unreadable: as if absent, the manifest's own stamp counts
        if isinstance(record, dict) and record.get("sha256") == hashlib.sha256(raw).hexdigest():
            stamp = record.get("confirmed_at")
            return stamp if isinstance(stamp, str) else None
        return None

    def _last_confirmation(self, snapshot):
        """(recorded, stamp): when a registry last confirmed the manifest; see schema.last_confirmed."""
        if snapshot.raw is None:
            return False, None
        side = self._recorded_confirmation(snapshot.raw)
        if side is not None:
            return True, max(side, snapshot.data.get("confirmed_at") or "")
        return last_confirmed(snapshot.data)

    def _record_confirmation(self, snapshot):
        """A complete registry read found the manifest unchanged: say so beside it. A directory
        that cannot take the record costs the freshness, not the run."""
        now = _now_iso()
        record = {"confirmed_at": now, "sha256": hashlib.sha256(snapshot.raw).hexdigest(),
                  "manifest": os.path.basename(self.real_path)}
        try:
            atomic_write(self.confirmation_path, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"),
                         ManifestError, "confirmation of manifest", like=snapshot.status)
        except ManifestError as exc:
            last = self._last_confirmation(snapshot)[1]
            self.warnings.append("the registry confirmed manifest %s, but the confirmation could not be recorded "
                                 "(%s): its age on fallback still counts from %s"
                                 % (self.real_path, exc, last or "its last write"))
            return last
        return now

    # -- changes -------------------------------------------------------------------
    def lock(self, like=None):
        return FileLock(self.lock_path, ManifestError, like=like)

    def _next_version(self, snapshot, change, confirmed):
        """What ``change`` makes of the snapshot, validated and stamped; None when its content
        is what the file already holds."""
        candidate = change(copy_tree(snapshot.data))
        validate(candidate, "to be written to %s" % self.real_path, trusted=snapshot.data)
        if snapshot.raw is not None and _content(candidate) == _content(snapshot.data):
            return None
        candidate = dict(candidate)
        now = _now_iso()
        candidate["updated_at"] = now
        recorded, stamp = self._last_confirmation(snapshot)
        if confirmed:
            candidate["confirmed_at"] = now
        elif confirmed is False or recorded:
            # An edit or an incomplete read: the content was not confirmed now, so the last
            # confirmation carries over (for a file that never recorded one, its last write).
            candidate["confirmed_at"] = stamp
        else:
            candidate.pop("confirmed_at", None)
        return candidate

    def update(self, change, check_mode=False, missing_ok=True, confirmed=None, create=True):
        """Read-modify-write: ``change(data) -> new data`` (it gets a copy). Returns (changed,
        before, after). ``confirmed``: True when ``change`` applies a complete registry read (the
        result is confirmed now, also when nothing changes), False for an incomplete one (the last
        confirmation stays), None for an edit. ``create`` False: no file is nothing to change."""
        self.warnings, self.backed_up = [], False
        snapshot = self._snapshot(missing_ok)
        if snapshot.raw is None and not create:
            return False, snapshot.data, snapshot.data
        after = self._next_version(snapshot, change, confirmed)
        if after is not None and not check_mode:
            with self._locked_for_writing(snapshot, missing_ok) as fresh:
                if fresh.raw != snapshot.raw:  # another writer came first: apply the change to theirs
                    after = self._next_version(fresh, change, confirmed)
                snapshot = fresh
                if after is not None:
                    self._write(snapshot, after)
        if after is None:
            if confirmed and not check_mode:
                self.confirmed_at = self._record_confirmation(snapshot)
            else:
                self.confirmed_at = self._last_confirmation(snapshot)[1]
            return False, snapshot.data, snapshot.data
        self.confirmed_at = last_confirmed(after)[1]
        return True, snapshot.data, after

    @contextlib.contextmanager
    def _locked_for_writing(self, snapshot, missing_ok):
        """The lock held, and the file as it is now under it (``snapshot``'s parse reused when the
        bytes did not change)."""
        directory = os.path.dirname(self.real_path)
        if not os.path.isdir(directory):
            raise ManifestError("cannot write manifest %s: directory %s does not exist" % (self.real_path, directory))
        with self.lock(snapshot.status):
            yield self._snapshot(missing_ok, known=snapshot)

    def _write(self, snapshot, data):
        payload = dump(data).encode("utf-8")
        name = os.path.basename(self.real_path)
        remove_stale_temporaries(self.real_path, names=(name + ".bak", name + CONFIRMATION_SUFFIX))
        if snapshot.raw is not None:
            atomic_write(self.backup_path, snapshot.raw, ManifestError, "backup of manifest", like=snapshot.status)
            self.backed_up = True
        atomic_write(self.real_path, payload, ManifestError, "manifest", like=snapshot.status)

    def write(self, data, check_mode=False):
        """Validate and write ``data`` unless it equals what is on disk (then the file,
        its mtime and the backup stay untouched). Returns (changed, written_data)."""
        changed, _before, after = self.update(lambda _current: data, check_mode=check_mode)
        return changed, after
