# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The manifest file: validated reads, atomic locked writes that keep ``<file>.bak``, and no
write at all when nothing changed.
"""

from __future__ import annotations

import copy
import datetime
import errno
import os

from .._errors import ManifestError
from .._fileio import FileLock, atomic_write, read_bytes
from .edits import to_discovery
from .schema import type_name, empty_manifest, validate

try:
    import yaml

    HAS_YAML = True
except ImportError:  # reported when a manifest is actually read or written
    HAS_YAML = False


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- YAML -------------------------------------------------------------------------
if HAS_YAML:
    class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        """SafeLoader (libyaml's when PyYAML has it) that refuses duplicate keys (PyYAML
        silently keeps the last one)."""

    def _mapping_without_duplicates(loader, node, deep=False):
        seen = {}
        for key_node, _value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise ManifestError("duplicate key %r at line %d (first at line %d)"
                                    % (key, key_node.start_mark.line + 1, seen[key]))
            seen[key] = key_node.start_mark.line + 1
        return loader.construct_mapping(node, deep=deep)

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _require_yaml():
    if not HAS_YAML:
        raise ManifestError("reading or writing the manifest needs PyYAML on the host running this")


def parse(text, origin="manifest"):
    """YAML text -> validated manifest dict."""
    _require_yaml()
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # nosec B506: a SafeLoader subclass
    except ManifestError as exc:
        raise ManifestError("invalid manifest %s: %s" % (origin, exc))
    except yaml.YAMLError as exc:
        raise ManifestError("manifest %s is not valid YAML: %s" % (origin, exc))
    if not isinstance(data, dict):
        raise ManifestError("invalid manifest %s: (top level): must be a mapping with 'version' and 'hosts', not %s"
                            % (origin, type_name(data)))
    return validate(data, origin)


def dump(data):
    _require_yaml()
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)


def _content(data):
    """The manifest without its timestamp: what decides whether a write is a change."""
    stripped = dict(data)
    stripped.pop("updated_at", None)
    return stripped


# -- the file -------------------------------------------------------------------
class ManifestStore(object):
    """One manifest file: validated reads, atomic locked writes with a backup."""

    def __init__(self, path):
        if not path:
            raise ManifestError("no manifest path given")
        self.path = os.path.abspath(os.path.expanduser(path))
        self.backup_path = self.path + ".bak"
        self.lock_path = self.path + ".lock"

    def exists(self):
        return os.path.exists(self.path)

    def read(self, missing_ok=False):
        """The validated manifest dict; an empty one if ``missing_ok`` and there is no file."""
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                text = handle.read()
        except IOError as exc:
            if exc.errno == errno.ENOENT and missing_ok:
                return empty_manifest()
            raise ManifestError("cannot read manifest %s: %s" % (self.path, exc.strerror or exc))
        return parse(text, self.path)

    def to_discovery(self):
        return to_discovery(self.read())

    def lock(self):
        return FileLock(self.lock_path, ManifestError)

    def write(self, data, check_mode=False):
        """Validate and write ``data`` unless it equals what is on disk (then the file,
        its mtime and the backup stay untouched). Returns (changed, written_data)."""
        validate(data, "to be written to %s" % self.path)
        current = self.read(missing_ok=True) if self.exists() else None
        if current is not None and _content(current) == _content(data):
            return False, current
        data = dict(data)
        data["updated_at"] = _now_iso()
        if check_mode:
            return True, data
        text = dump(data)
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise ManifestError("cannot write manifest %s: directory %s does not exist" % (self.path, directory))
        if current is not None:
            atomic_write(self.backup_path, read_bytes(self.path))
        atomic_write(self.path, text.encode("utf-8"))
        return True, data

    def update(self, change, check_mode=False, missing_ok=True):
        """Read-modify-write under the lock: ``change(data) -> new data``.
        Returns (changed, before, after)."""
        with self.lock():
            before = self.read(missing_ok=missing_ok)
            after = change(copy.deepcopy(before))
            changed, written = self.write(after, check_mode=check_mode)
            return changed, before, written
