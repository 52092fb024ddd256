# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The manifest format: its JSON Schema, a validator for the subset it uses, and the rules a
schema cannot say (unique ids, dependencies on the same host, no cycles).

docs/manifest.schema.json is the same schema, checked by a test.
"""

from __future__ import annotations

import datetime
import re

from .._catalog import API_VERSIONS, DEPENDS_ON_CONDITIONS, EXECUTORS
from .._errors import ManifestError
from .._names import SAFE_NAME
from .._ordering import find_cycle


FORMAT_VERSION = 1
# compose's depends_on conditions, weakest first
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
        # -- how the service is deployed, as a compose file says it (docs/manifest.md) ------------
        # runs once and exits: done (and healthy) when it exited 0
        "one_shot": {"type": ["boolean", "null"]},
        # the common API's version, from the image tag: its ping and config live under /api/<v>/
        "api_version": {"type": ["string", "null"], "enum": list(API_VERSIONS) + [None]},
        # what a dependency must reach before this service starts (compose's long-form condition);
        # a dependency not named here: service_started
        "depends_on_conditions": {"type": "object", "propertyNames": {"pattern": _NAME},
                                  "additionalProperties": {"type": "string", "enum": list(DEPENDS_ON_CONDITIONS)}},
        # dependencies that order the start when present but never block it (compose's required: false)
        "depends_on_optional": {"type": "array", "items": {"type": "string", "pattern": _NAME}},
        # false: no host port is published (reachable only inside its network, so no address or port);
        # true without a port: Docker chooses the host port, read from the engine at run time
        "published": {"type": ["boolean", "null"]},
        # the port the service listens on inside its container
        "container_port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
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
        "confirmed_at": {"type": ["string", "null"]},
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


# The exact Python types of each JSON type (what YAML and JSON readers make); anything else goes
# through _is_type.
_EXACT_TYPES = {"object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
                "boolean": (bool,), "null": (type(None),)}


def _is_type(value, name):
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES[name])


def _where(path):
    return "/".join(str(p) for p in path) or "(top level)"


def schema_errors(value, schema, path=()):
    """Yield (path, problem) for every way ``value`` breaks ``schema`` (a JSON Schema subset)."""
    problems = []
    _checker(schema)(value, path, problems)
    for where, problem in problems:
        yield _path_tuple(where), problem


# The schema is compiled once into nested closures, one per schema object, so a manifest of
# 15,000 services is checked in one quick pass. A path inside the document is kept as a linked
# pair (parent, key) and made a tuple only for a problem.
_COMPILED = {}


def _checker(schema):
    key = id(schema)
    if key not in _COMPILED:
        _COMPILED[key] = (schema, _compile(schema))  # the schema is kept so its id stays its own
    return _COMPILED[key][1]


def _path_tuple(where):
    if isinstance(where, tuple) and len(where) == 3 and where[0] is _LINK:
        return _path_tuple(where[1]) + (where[2],)
    return where


_LINK = object()


def _compile(schema):
    types = schema.get("type")
    types = None if types is None else (types if isinstance(types, list) else [types])
    exact = None if types is None else {kind for name in types for kind in _EXACT_TYPES[name]}
    enum = schema.get("enum")
    pattern = re.compile(schema["pattern"]).search if "pattern" in schema else None
    min_length = schema.get("minLength", 0)
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    items = _compile(schema["items"]) if "items" in schema else None
    required = schema.get("required", ())
    properties = {name: _compile(sub) for name, sub in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    extra_check = _compile(extra) if isinstance(extra, dict) else None
    names = _compile(schema["propertyNames"]) if "propertyNames" in schema else None
    allowed = ", ".join(sorted(properties))

    def check(value, where, problems):
        kind = type(value)
        if exact is not None and kind not in exact and not any(_is_type(value, t) for t in types):
            problems.append((where, "must be %s, not %s" % (" or ".join(types), type_name(value))))
            return
        if enum is not None and value not in enum:
            problems.append((where, "must be one of %s, not %r" % (", ".join(str(v) for v in enum if v is not None),
                                                                   value)))
        if kind is str:
            if pattern is not None and not pattern(value):
                problems.append((where, "%r does not match %s" % (value, schema["pattern"])))
            if len(value) < min_length:
                problems.append((where, "must not be empty"))
        elif kind is dict:
            for name in required:
                if name not in value:
                    problems.append((where, "missing required key %r" % name))
            for name, item in value.items():
                inner = (_LINK, where, name)
                if not isinstance(name, str):
                    problems.append((inner, "keys must be strings"))
                    continue
                if names is not None:
                    found = []
                    names(name, inner, found)
                    problems.extend((inner, "invalid name: %s" % problem) for _where, problem in found)
                sub = properties.get(name)
                if sub is None:
                    if extra is False:
                        problems.append((inner, "unknown key (allowed: %s)" % allowed))
                        continue
                    sub = extra_check
                if sub is not None:
                    sub(item, inner, problems)
        elif kind is list:
            if items is not None:
                for index, item in enumerate(value):
                    items(item, (_LINK, where, index), problems)
        if (minimum is not None or maximum is not None) and _is_type(value, "number"):
            if minimum is not None and value < minimum:
                problems.append((where, "must be at least %s" % minimum))
            if maximum is not None and value > maximum:
                problems.append((where, "must be at most %s" % maximum))

    return check


def type_name(value):
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
            yield from _deployment_errors(("hosts", host, "services", key), service)
        cycle = find_cycle({k: list(s.get("depends_on") or ()) for k, s in services.items()})
        if cycle:
            yield ("hosts", host, "services"), "dependency cycle: %s" % " -> ".join(cycle)


def _deployment_errors(path, service):
    """The compose-derived fields agree with depends_on and with the address and port."""
    deps = set(service.get("depends_on") or ())
    for field in ("depends_on_conditions", "depends_on_optional"):
        for dep in service.get(field) or ():
            if dep not in deps:
                yield path + (field,), "names %r, which is not in depends_on" % dep
    if service.get("published") is False and service.get("port") is not None:
        yield path + ("port",), "published is false: a port that is not published cannot be reached"


def validate(data, origin="manifest", trusted=None):
    """Raise ManifestError naming ``origin``, the path inside it and every problem found.

    ``trusted``: a manifest validated before (the one ``data`` was made from); hosts equal to its
    hosts are not checked again. Every rule is about one host entry, so that is the same answer
    in a fraction of the time for an edit of one host in a large fleet."""
    subject = data
    if trusted is not None and isinstance(data, dict) and isinstance(data.get("hosts"), dict):
        known = trusted.get("hosts") or {}
        subject = dict(data, hosts={name: entry for name, entry in data["hosts"].items() if known.get(name) != entry})
    problems = list(schema_errors(subject, MANIFEST_SCHEMA))
    if not problems:
        problems = list(semantic_errors(subject))
    if problems:
        lines = ["%s: %s" % (_where(path), problem) for path, problem in problems[:20]]
        more = "" if len(problems) <= 20 else "\n  ... and %d more" % (len(problems) - 20)
        raise ManifestError("invalid manifest %s:\n  %s%s" % (origin, "\n  ".join(lines), more))
    return data


def empty_manifest(generated_from="manual"):
    return {"version": FORMAT_VERSION, "generated_from": generated_from, "updated_at": None, "hosts": {}}


def last_confirmed(data):
    """When a complete registry read last confirmed the manifest ``data``, as far as the file says:
    its ``confirmed_at`` (None: never), or for a file without one (hand-made, imported, written
    before this field existed) its ``updated_at``. Returns (recorded, stamp)."""
    if "confirmed_at" in data:
        return True, data["confirmed_at"]
    return False, data.get("updated_at")


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
