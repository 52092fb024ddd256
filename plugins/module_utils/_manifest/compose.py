# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Build a manifest (docs/manifest.md, version 1) from an edgex-compose ``docker-compose*.yml`` of
any release: EdgeX 2.x (Jakarta, Levski), 3.x (Napa) and 4.x (Odessa), secure or not.

What the file says, and only that: the EdgeX service key of each compose service (2.x compose keys
such as ``system`` are ``sys-mgmt-agent``), the release's API from its image tag, jobs that run once,
``depends_on`` with its conditions and ``required: false``, the services of the profiles asked for,
``extends`` resolved, and where each service can be reached (its published port and ``host_ip``, or
nothing when nothing is published). Reading the file itself: ``compose_file.py``; ports and
``network_mode``: ``compose_ports.py``.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple

from .._errors import ManifestError
from .._names import validate_name
from .._catalog import (
    DEPENDS_ON_CONDITIONS,
    KNOWN_SERVICES,
    V2_COMPOSE_KEYS,
    api_health_path,
    api_version_of_image,
    default_port,
    is_edgex_image,
    one_shot_by_default,
)
from .._ordering import find_cycle
from .compose_file import ServiceError, interpolate, resolved_services, select_profiles, text
from .compose_ports import port_mappings, reach
from .edits import import_host
from .schema import validate

COMPOSE_EXECUTORS = ("docker", "compose")
STARTED, HEALTHY, COMPLETED = DEPENDS_ON_CONDITIONS

# edgex-compose names services by EdgeX key (core-data, database, core-keeper); older or
# hand-written files use other service names but keep the edgex-* container names.
# edgex-redis belongs to both "database" and "redis": the first entry, "database", wins.
_KEY_BY_CONTAINER = {}
for _known in KNOWN_SERVICES.values():
    _KEY_BY_CONTAINER.setdefault(_known.container, _known.key)

# compose-go's project name rule, applied to the directory name.
_PROJECT_CHARS = re.compile(r"[a-z0-9_-]")

_EDGEX_PREFIXES = ("core-", "support-", "device-", "app-")

# Restart policies that keep a container running: a service with one is never a job.
_KEEPS_RUNNING = frozenset(["always", "unless-stopped"])
# deploy.restart_policy.condition -> the `restart:` it amounts to.
_DEPLOY_CONDITIONS = {"none": "no", "any": "always", "on-failure": "on-failure"}

ComposeImport = namedtuple("ComposeImport", "manifest left_out notes")
Dependency = namedtuple("Dependency", "name condition required")


def _service_key(name, definition):
    """The EdgeX service key of compose service ``name``: the name itself when it is one; a 2.x
    compose key (``data``, ``system``, ``proxy-setup``) of an EdgeX image or container; the key of
    its edgex-compose container name; else the name."""
    if name in KNOWN_SERVICES:
        return name
    container = text(definition.get("container_name"))
    v2 = V2_COMPOSE_KEYS.get(name)
    if v2 is not None and (container == v2[1] or is_edgex_image(text(definition.get("image")))):
        return v2[0]
    if isinstance(container, str) and container in _KEY_BY_CONTAINER:
        return _KEY_BY_CONTAINER[container]
    return name


def _dependencies(value):
    """``depends_on`` in list form (``[a, b]``) or long form (``{a: {condition, required}}``)."""
    if value is None:
        return []
    if isinstance(value, list):
        value = {name: None for name in value}
    if not isinstance(value, dict):
        raise ServiceError("depends_on must be a list or a mapping, not %r" % (value,))
    result = []
    for name, options in value.items():
        if not isinstance(name, str):
            raise ServiceError("depends_on names %r, which is not a service name" % (name,))
        options = options or {}
        if not isinstance(options, dict):
            raise ServiceError("depends_on %s: %r is not a mapping" % (name, options))
        condition = text(options.get("condition", STARTED))
        if condition not in DEPENDS_ON_CONDITIONS:
            raise ServiceError("depends_on %s: unknown condition %r (one of %s)"
                               % (name, condition, ", ".join(DEPENDS_ON_CONDITIONS)))
        required = options.get("required", True)
        if not isinstance(required, bool):
            raise ServiceError("depends_on %s: required must be true or false, not %r" % (name, required))
        result.append(Dependency(name, condition, required))
    return result


def _restart_policy(definition):
    """"always", "unless-stopped", "on-failure", "no", or None when the file says nothing."""
    restart = definition.get("restart")
    if restart is False:  # YAML reads an unquoted `restart: no` as false
        return "no"
    if isinstance(restart, str):
        return text(restart).split(":", 1)[0].strip()
    deploy = definition.get("deploy")
    policy = deploy.get("restart_policy") if isinstance(deploy, dict) else None
    if isinstance(policy, dict) and policy.get("condition") in _DEPLOY_CONDITIONS:
        return _DEPLOY_CONDITIONS[policy["condition"]]
    return None


def _is_job(key, policy, file_sets_restart, awaited):
    """Does the service run once and exit? Compose's default restart policy is "no": in a file that
    gives its services restart policies, one without any is a job (2.x proxy-setup, OpenZiti's
    initialize/configure). A service a dependent waits for with service_completed_successfully is
    one; a restarting one never is; the catalog's long-running EdgeX services never are by omission."""
    if awaited:
        return True
    if policy in _KEEPS_RUNNING:
        return False
    if one_shot_by_default(key):
        return True
    if key in KNOWN_SERVICES:
        return False
    return policy == "no" or (policy is None and file_sets_restart)


def _health_path(key, image, api_version):
    """EdgeX's health route, under the service's API version; None for a service that is not EdgeX."""
    edgex = key in KNOWN_SERVICES or key.startswith(_EDGEX_PREFIXES) or is_edgex_image(image)
    return api_health_path(key, api_version) if edgex else None


def _project_name(compose, path, project):
    """Like ``docker compose``: -p (``project``) over the top-level ``name:`` over the directory."""
    if project is not None:
        name = project
    elif compose.get("name") is not None:
        name = text(compose["name"])
    else:
        directory = os.path.basename(os.path.dirname(path)).lower()
        name = "".join(_PROJECT_CHARS.findall(directory)).lstrip("_-")
    return validate_name(name, "compose project name")


class _Importer(object):
    """One compose file made into one host's manifest entry."""

    def __init__(self, path, host, address, executor, project, profiles):
        self.path = path
        self.host = host
        self.address = address
        self.executor = executor
        self.project = project
        self.notes = []
        self.compose, everything = resolved_services(path)
        self.file_sets_restart = any(_restart_policy(d) is not None for d in everything.values())
        self.services, self.left_out = select_profiles(everything, profiles, path)
        self.keys = self._keys(everything)
        self.dependencies = self._each(lambda name, d: _dependencies(d.get("depends_on")))
        self.mappings = self._each(lambda name, d: port_mappings(d.get("ports")))
        self.awaited = {dep.name for deps in self.dependencies.values() for dep in deps if dep.condition == COMPLETED}
        self._project_name = None

    def fail(self, name, problem):
        return ManifestError("compose file %s: service %r: %s" % (self.path, name, problem))

    def _each(self, read):
        """{name: read(name, definition)} over the imported services, a ValueError naming its service."""
        result = {}
        for name, definition in self.services.items():
            try:
                result[name] = read(name, definition)
            except ValueError as exc:
                raise self.fail(name, exc)
        return result

    def _keys(self, everything):
        keys, owners = {}, {}
        for name, definition in everything.items():
            try:
                key = _service_key(name, definition)
            except ValueError as exc:
                raise self.fail(name, exc)
            if key in owners and name in self.services and owners[key] in self.services:
                raise ManifestError("compose file %s: services %r and %r are both EdgeX service %r"
                                    % (self.path, owners[key], name, key))
            if name in self.services or key not in owners:
                owners[key] = name
            keys[name] = key
        return keys

    def project_name(self):
        if self._project_name is None:
            self._project_name = _project_name(self.compose, self.path, self.project)
        return self._project_name

    def target(self, name, definition):
        if self.executor == "compose":
            return "%s/%s" % (self.project_name(), validate_name(name, "compose service name"))
        container = definition.get("container_name")
        if container is not None:
            if not isinstance(container, str):
                raise ServiceError("container_name must be a string, not %r" % (container,))
            return validate_name(interpolate(container), "container name")
        return validate_name("%s-%s-1" % (self.project_name(), name), "container name")

    def depends_on(self, name, mode):
        """(keys, {key: condition} when not service_started, [optional keys]) of ``name``'s dependencies,
        with the service whose network it joins (``network_mode: service:x``) as compose adds it."""
        left_out = {entry.service: entry.profiles for entry in self.left_out}
        dependencies = list(self.dependencies[name])
        if mode and mode.startswith("service:") and mode[8:] not in [d.name for d in dependencies]:
            if mode[8:] not in self.services and mode[8:] not in left_out:
                raise self.fail(name, "network_mode names unknown service %r" % mode[8:])
            dependencies.append(Dependency(mode[8:], STARTED, True))
        keys, conditions, optional = [], {}, []
        for dep in dependencies:
            if dep.name not in self.services:
                missing = _left_out_by(left_out[dep.name]) if dep.name in left_out else None
                if dep.required and missing:
                    raise self.fail(name, "depends on %r, which %s (add one to profiles)" % (dep.name, missing))
                if dep.required:
                    raise self.fail(name, "depends_on names unknown service %r" % dep.name)
                self.notes.append("%s: optional dependency %s is not imported (%s)" % (
                    name, dep.name, missing or "not in the file"))
                continue
            key = self.keys[dep.name]
            if key in keys:
                continue
            keys.append(key)
            if dep.condition != STARTED:
                conditions[key] = dep.condition
            if not dep.required:
                optional.append(key)
        return keys, conditions, optional

    def entry(self, name, definition):
        key = self.keys[name]
        validate_name(key, "service key")
        image = text(definition.get("image"))
        api_version = api_version_of_image(image)
        one_shot = _is_job(key, _restart_policy(definition), self.file_sets_restart, name in self.awaited)
        keys, conditions, optional = self.depends_on(name, _mode(definition))  # first: names what profiles leave out
        others = {n: (d, self.mappings[n]) for n, d in self.services.items()}
        where = reach(name, definition, default_port(key), self.address, others)
        if where.note:
            self.notes.append("%s: %s" % (name, where.note))
        meta = {"compose_service": name}
        if isinstance(image, str):
            meta["image"] = image
        profiles = definition.get("profiles")
        if isinstance(profiles, list) and profiles:
            meta["profiles"] = ",".join(str(p) for p in profiles)
        entry = {
            "executor": self.executor,
            "target": self.target(name, definition),
            "address": where.address,
            "port": where.port,
            # a job is judged by how it exited, not by a health route
            "health": None if one_shot else _health_path(key, image, api_version),
            "depends_on": keys,
            "tags": [],
            "meta": meta,
            "one_shot": one_shot,
            "api_version": api_version,
            "published": where.published,
            "container_port": where.container_port,
            "depends_on_conditions": conditions or None,
            "depends_on_optional": optional or None,
        }
        return key, {field: value for field, value in entry.items()
                     if value is not None or field in ("port", "health")}

    def services_entries(self):
        result = {}
        for name, definition in self.services.items():
            try:
                key, entry = self.entry(name, definition)
            except ValueError as exc:
                raise self.fail(name, exc)
            result[key] = entry
        self.check_cycle(result)
        return result

    def check_cycle(self, entries):
        cycle = find_cycle({key: entry["depends_on"] for key, entry in entries.items()})
        if cycle:
            names = {key: name for name, key in self.keys.items() if name in self.services}
            raise ManifestError("compose file %s: services depend on each other in a cycle: %s" % (
                self.path, " -> ".join(names[key] for key in cycle)))

    def left_out_report(self):
        return [{"service": entry.service, "key": self.keys[entry.service], "profiles": list(entry.profiles)}
                for entry in self.left_out]


def _left_out_by(profiles):
    """"the profile ui leaves out", "the profiles devices, rest leave out"."""
    many = len(profiles) > 1
    return "the profile%s %s leave%s out" % ("s" if many else "", ", ".join(profiles), "" if many else "s")


def _mode(definition):
    mode = definition.get("network_mode")
    return text(mode) if isinstance(mode, str) else None


def import_compose(path, host="localhost", address="127.0.0.1", executor="docker", project=None, datacenter=None,
                   profiles=()):
    """A ComposeImport: the version 1 manifest (a plain dict, no ``updated_at``) of the services of
    ``path`` that run with ``profiles`` active, the services left out (and their profiles), and notes.

    ``executor`` ``docker`` targets the container (``container_name`` or compose v2's
    ``<project>-<service>-1``); ``compose`` targets ``<project>/<service>``.
    """
    path = os.path.abspath(path)
    if executor not in COMPOSE_EXECUTORS:
        raise ManifestError("compose import of %s: executor must be one of %s, not %r"
                            % (path, ", ".join(COMPOSE_EXECUTORS), executor))
    try:
        validate_name(host, "host name")
        if datacenter is not None:
            validate_name(datacenter, "datacenter")
        for profile in profiles or ():
            if profile != "*":
                validate_name(profile, "profile name")
    except ValueError as exc:
        raise ManifestError("compose import of %s: %s" % (path, exc))
    importer = _Importer(path, host, address, executor, project, profiles)
    node = {"address": address}
    if datacenter is not None:
        node["datacenter"] = datacenter
    node["services"] = importer.services_entries()
    manifest = {"version": 1, "generated_from": "compose:%s" % path, "hosts": {host: node}}
    validate(manifest, "imported from compose file %s" % path)
    return ComposeImport(manifest, importer.left_out_report(), importer.notes)


def manifest_from_compose(path, host="localhost", address="127.0.0.1", executor="docker", project=None,
                          datacenter=None, profiles=()):
    """The manifest of ``import_compose`` alone."""
    return import_compose(path, host, address, executor, project, datacenter, profiles).manifest


def import_change(path, host, address=None, executor=None, project=None, datacenter=None, profiles=()):
    """(the manifest change that makes ``host`` what the compose file at ``path`` deploys, read now and
    applied by the store under its lock; the module result's ``compose``: the file, the profiles, the
    services left out and notes)."""
    imported = import_compose(path, host=host, address=address or "127.0.0.1", executor=executor or "docker",
                              project=project, datacenter=datacenter, profiles=profiles or ())
    report = {"file": imported.manifest["generated_from"][len("compose:"):], "profiles": list(profiles or ()),
              "left_out": imported.left_out, "notes": imported.notes}
    return (lambda data: import_host(data, host, imported.manifest)), {"compose": report}
