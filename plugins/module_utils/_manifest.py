# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The manifest: the collection's persistent record of which EdgeX services run where.

It is the last known state of the registry (the fallback), the registry itself when
``registry_type: manifest`` and static data when ``none``. Format: docs/manifest.md;
schema: MANIFEST_SCHEMA below (docs/manifest.schema.json is the same, checked by a test).
Every load validates; every write is atomic under a lock and keeps ``<file>.bak``.
"""

from __future__ import annotations

import copy
import datetime
import errno
import fcntl
import os
import re
import tempfile

from ._common import ManifestError, RegistryError, SAFE_NAME, validate_name
from ._ordering import find_cycle
from ._registry import Discovery, NodeRecord, Registry, ServiceRecord

try:
    import yaml

    HAS_YAML = True
except ImportError:  # reported when a manifest is actually read or written
    HAS_YAML = False

FORMAT_VERSION = 1
EXECUTORS = ("docker", "compose", "systemd", "snap")
_NAME = SAFE_NAME.pattern
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

# Only the JSON Schema keywords the small validator below understands are used, so the
# modules need no jsonschema on the managed host; tests check the file with jsonschema too.
SERVICE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": _NAME},
        "executor": {"type": ["string", "null"], "enum": list(EXECUTORS) + [None]},
        "target": {"type": ["string", "null"], "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.@/-]{0,254}$"},
        "address": {"type": ["string", "null"]},
        "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
        "health": {"type": ["string", "null"], "pattern": r"^/[A-Za-z0-9_./-]*$"},
        "depends_on": {"type": "array", "items": {"type": "string", "pattern": _NAME}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "meta": _STRING_MAP,
    },
}

MANIFEST_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/edgex-sysmgmt/edgex.sysmgmt/docs/manifest.schema.json",
    "title": "edgex.sysmgmt manifest, format version 1",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "hosts"],
    "properties": {
        "version": {"type": "integer", "enum": [FORMAT_VERSION]},
        "generated_from": {"type": ["string", "null"]},
        "updated_at": {"type": ["string", "null"]},
        "hosts": {
            "type": "object",
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["address"],
                "properties": {
                    "address": {"type": "string", "minLength": 1},
                    "datacenter": {"type": ["string", "null"]},
                    "meta": _STRING_MAP,
                    "services": {
                        "type": "object",
                        "propertyNames": {"pattern": _NAME},
                        "additionalProperties": SERVICE_SCHEMA,
                    },
                },
            },
        },
    },
}

_JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def _is_type(value, name):
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES[name])


def _where(path):
    return "/".join(str(p) for p in path) or "(top level)"


def schema_errors(value, schema, path=()):
    """Yield (path, problem) for every way ``value`` breaks ``schema`` (a JSON Schema subset)."""
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        if not any(_is_type(value, t) for t in types):
            yield path, "must be %s, not %s" % (" or ".join(types), _type_name(value))
            return
    if "enum" in schema and value not in schema["enum"]:
        yield path, "must be one of %s, not %r" % (", ".join(str(v) for v in schema["enum"] if v is not None), value)
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield path, "%r does not match %s" % (value, schema["pattern"])
        if len(value) < schema.get("minLength", 0):
            yield path, "must not be empty"
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            yield path, "must be at least %s" % schema["minimum"]
        if "maximum" in schema and value > schema["maximum"]:
            yield path, "must be at most %s" % schema["maximum"]
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from schema_errors(item, schema["items"], path + (index,))
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                yield path, "missing required key %r" % key
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key in value:
            if not isinstance(key, str):
                yield path + (key,), "keys must be strings"
                continue
            if "propertyNames" in schema:
                for _p, problem in schema_errors(key, schema["propertyNames"], path + (key,)):
                    yield path + (key,), "invalid name: %s" % problem
            if key in properties:
                sub = properties[key]
            elif extra is False:
                yield path + (key,), "unknown key (allowed: %s)" % ", ".join(sorted(properties))
                continue
            elif isinstance(extra, dict):
                sub = extra
            else:
                continue
            yield from schema_errors(value[key], sub, path + (key,))


def _type_name(value):
    for name, kind in _JSON_TYPES.items():
        if _is_type(value, name) and name != "number":
            return name
    return type(value).__name__


def semantic_errors(data):
    """What a schema cannot say: unique ids per host, depends_on on the same host, no cycles."""
    for host, entry in sorted((data.get("hosts") or {}).items()):
        services = entry.get("services") or {}
        seen_ids = {}
        for key, service in sorted(services.items()):
            service_id = service.get("id") or key
            if service_id in seen_ids:
                yield ("hosts", host, "services", key), "duplicate service id %r (also used by %r)" % (
                    service_id, seen_ids[service_id])
            seen_ids[service_id] = key
            for dep in service.get("depends_on") or ():
                if dep not in services:
                    yield ("hosts", host, "services", key, "depends_on"), \
                        "names %r, which is not a service on host %s" % (dep, host)
        cycle = find_cycle({k: list(s.get("depends_on") or ()) for k, s in services.items()})
        if cycle:
            yield ("hosts", host, "services"), "dependency cycle: %s" % " -> ".join(cycle)


def validate(data, origin="manifest"):
    """Raise ManifestError naming ``origin``, the path inside it and every problem found."""
    problems = list(schema_errors(data, MANIFEST_SCHEMA))
    if not problems:
        problems = list(semantic_errors(data))
    if problems:
        lines = ["%s: %s" % (_where(path), problem) for path, problem in problems[:20]]
        more = "" if len(problems) <= 20 else "\n  ... and %d more" % (len(problems) - 20)
        raise ManifestError("invalid manifest %s:\n  %s%s" % (origin, "\n  ".join(lines), more))
    return data


def empty_manifest(generated_from="manual"):
    return {"version": FORMAT_VERSION, "generated_from": generated_from, "updated_at": None, "hosts": {}}


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def age_seconds(updated_at, now=None):
    """Seconds since an ``updated_at`` stamp, or None when absent or unreadable."""
    if not updated_at:
        return None
    try:
        stamp = datetime.datetime.strptime(updated_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (now - stamp).total_seconds())


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
                            % (origin, _type_name(data)))
    return validate(data, origin)


def dump(data):
    _require_yaml()
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)


def _content(data):
    """The manifest without its timestamp: what decides whether a write is a change."""
    stripped = dict(data)
    stripped.pop("updated_at", None)
    return stripped


# -- model <-> registry records ---------------------------------------------------
def to_discovery(data):
    """The manifest as a Discovery (no live health: every status is "unknown")."""
    nodes, services = [], []
    for host, entry in sorted(data.get("hosts", {}).items()):
        datacenter = entry.get("datacenter")
        nodes.append(NodeRecord(name=host, address=entry["address"], datacenter=datacenter,
                                meta=dict(entry.get("meta") or {})))
        for key, svc in sorted((entry.get("services") or {}).items()):
            services.append(ServiceRecord(
                name=key, node=host, id=svc.get("id") or key, address=svc.get("address") or entry["address"],
                port=svc.get("port"), tags=list(svc.get("tags") or []), meta=dict(svc.get("meta") or {}),
                datacenter=datacenter, executor=svc.get("executor"), target=svc.get("target"),
                depends_on=list(svc.get("depends_on") or []), health_path=svc.get("health"),
            ))
    return Discovery(source="manifest", nodes=nodes, services=services,
                     manifest_age=age_seconds(data.get("updated_at")))


def service_entry(record, previous=None):
    """A manifest service entry from a ServiceRecord; what the registry does not know
    (executor, target, depends_on, health) is kept from ``previous``."""
    previous = previous or {}
    entry = {
        "id": record.id or record.name,
        "address": record.address,
        "port": record.port,
        "tags": sorted(record.tags or []),
        "meta": dict(record.meta or {}),
        "executor": record.executor or previous.get("executor"),
        "target": record.target or previous.get("target"),
        "depends_on": list(record.depends_on or previous.get("depends_on") or []),
        "health": record.health_path or previous.get("health"),
    }
    return {k: v for k, v in entry.items() if v is not None}


def merge_discovery(data, discovery, generated_from):
    """Refresh a manifest from a complete registry read (the "last known state").

    Hosts of the datacenter(s) read are replaced by what the registry knows; their
    services keep executor/target/depends_on/health from the old manifest. A service the
    registry no longer lists is kept only if it has an executor (it is deployed there and
    may just be stopped: EdgeX deregisters on a clean stop); otherwise it is dropped.
    Hosts of other datacenters are untouched. depends_on pointing at a dropped service is pruned.
    """
    merged = copy.deepcopy(data)
    merged["generated_from"] = generated_from
    hosts = merged.setdefault("hosts", {})
    read_dcs = {n.datacenter for n in discovery.nodes} | ({discovery.datacenter} - {None})
    for name in [h for h, e in hosts.items() if e.get("datacenter") in read_dcs]:
        if name not in {n.name for n in discovery.nodes}:
            del hosts[name]
    for node in discovery.nodes:
        old = hosts.get(node.name, {})
        old_services = old.get("services") or {}
        services = {}
        for record in discovery.services_on(node.name):
            services[validate_name(record.name)] = service_entry(record, old_services.get(record.name))
        for key, svc in old_services.items():
            if key not in services and svc.get("executor"):
                services[key] = copy.deepcopy(svc)
        for svc in services.values():
            if "depends_on" in svc:
                svc["depends_on"] = [d for d in svc["depends_on"] if d in services]
        host = {"address": node.address, "services": services}
        if node.datacenter:
            host["datacenter"] = node.datacenter
        if node.meta:
            host["meta"] = dict(node.meta)
        hosts[validate_name(node.name, "node name")] = host
    return merged


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
        return FileLock(self.lock_path)

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
            atomic_write(self.backup_path, _read_bytes(self.path))
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


def _read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


def atomic_write(path, payload):
    """Temp file in the same directory, fsync, rename, fsync the directory: a crash at any
    point leaves either the old file or the new one, never a mix."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileLock(object):
    """An exclusive flock on a side file, so concurrent writers serialise. ``error``: the
    EdgeXError class to raise, naming what the lock protects."""

    def __init__(self, path, error=ManifestError):
        self.path = path
        self.error = error
        self.handle = None

    def __enter__(self):
        try:
            self.handle = open(self.path, "a")
        except IOError as exc:
            raise self.error("cannot lock %s: %s" % (self.path, exc.strerror or exc))
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()


# -- edits (pure functions on the manifest dict; the store writes them) -----------------
SERVICE_FIELDS = ("id", "executor", "target", "address", "port", "health", "depends_on", "tags", "meta")


def set_service(data, host, key, fields, address=None, datacenter=None):
    """Create or update one service entry; fields that are None keep their current value."""
    validate_name(host, "host name")
    validate_name(key)
    hosts = data.setdefault("hosts", {})
    if host not in hosts:
        if not address:
            raise ManifestError("host %s is not in the manifest; give its address to add it" % host)
        hosts[host] = {"address": address, "services": {}}
    entry = hosts[host]
    if address:
        entry["address"] = address
    if datacenter:
        entry["datacenter"] = datacenter
    services = entry.setdefault("services", {})
    service = services.setdefault(key, {})
    for name in SERVICE_FIELDS:
        if fields.get(name) is not None:
            service[name] = fields[name]
    return data


def set_host(data, host, entry):
    """Replace one host's entry (an import); datacenter and meta survive unless given."""
    validate_name(host, "host name")
    old = data.setdefault("hosts", {}).get(host, {})
    merged = dict(entry)
    for name in ("datacenter", "meta"):
        if name not in merged and name in old:
            merged[name] = old[name]
    data["hosts"][host] = merged
    return data


def remove_service(data, host, service_id):
    """Remove the entries whose id (or key) is ``service_id`` on ``host`` (every host when None).
    Refuses when another service there depends on it: dependency data is not dropped silently."""
    removed = []
    for name, entry in sorted(data.get("hosts", {}).items()):
        if host is not None and name != host:
            continue
        services = entry.get("services") or {}
        for key in [k for k, s in services.items() if (s.get("id") or k) == service_id]:
            dependents = sorted(k for k, s in services.items() if key in (s.get("depends_on") or ()))
            if dependents:
                raise ManifestError("cannot remove %s from host %s: %s depend%s on it (change their depends_on "
                                    "first)" % (key, name, ", ".join(dependents), "s" if len(dependents) == 1 else ""))
            del services[key]
            removed.append((name, key))
    return removed


def remove_host(data, host):
    return data.get("hosts", {}).pop(host, None) is not None


# -- the manifest as a registry ("SMA as registry") ----------------------------------
class ManifestRegistry(Registry):
    """registry_type manifest: the collection registers and deregisters services in the file."""

    type = "manifest"

    def __init__(self, settings, check_mode=False):
        self.store = ManifestStore(settings.get("manifest_path"))
        self.check_mode = check_mode

    def discover(self):
        return self.store.to_discovery()

    def register(self, service):
        fields = {k: v for k, v in service_entry(service).items() if k in SERVICE_FIELDS}

        def change(data):
            return set_service(data, service.node, service.name, fields,
                               address=None if service.node in data["hosts"] else service.address or "127.0.0.1",
                               datacenter=service.datacenter)

        changed, _before, _after = self.store.update(change, check_mode=self.check_mode)
        return changed

    def deregister(self, service_id, node=None):
        validate_name(service_id, "service id")
        removed = []

        def change(data):
            removed.extend(remove_service(data, node, service_id))
            return data

        self.store.update(change, check_mode=self.check_mode, missing_ok=False)
        return bool(removed)

    def kv_get(self, key, recurse=False):
        raise RegistryError("registry_type manifest has no configuration store; read configuration "
                            "from Consul or core-keeper")

    def kv_put(self, key, value):
        return self.kv_get(key)
