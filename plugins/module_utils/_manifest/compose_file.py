# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""A compose file as ``docker compose`` reads it, as far as the importer needs: its text, ``${VAR}``
interpolation, ``extends`` (same file and other files) and ``profiles``.

``${VAR:-default}`` resolves to its default: the controller's environment is not the gateway's, so a
variable without a default cannot be resolved and is refused. ``include`` and override files are
not merged (one file is imported, with what it extends).
"""

from __future__ import annotations

import copy
import os
import re
from collections import namedtuple

from .._errors import ManifestError
from .yamlio import load_yaml

# A compose file is a few dozen kilobytes; anything far bigger is not one.
MAX_COMPOSE_BYTES = 4 * 1024 * 1024

# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, $NAME; anything else after
# a $ (${NAME:?err}, ${NAME:+alt}) matches "unsupported".
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<unsupported>))"
)


class ServiceError(ValueError):
    """A problem inside one service; the caller adds the file and the service's name."""


def interpolate(value):
    """Resolve ``${VAR:-default}`` to its default; a variable without one cannot be resolved."""

    def substitute(match):
        if match.group("escaped"):
            return "$"
        if match.group("unsupported") is not None:
            raise ServiceError("unsupported interpolation in %r" % value)
        default = match.group("default")
        if default is None:
            variable = match.group("braced") or match.group("named")
            raise ServiceError("%r uses $%s without a default (write ${%s:-value})" % (value, variable, variable))
        if "$" in default:
            raise ServiceError("nested interpolation in %r is not supported" % value)
        return default

    return _INTERPOLATION.sub(substitute, value)


def text(value):
    """A scalar as compose reads it: strings interpolated, numbers as they are."""
    return interpolate(value) if isinstance(value, str) else value


# -- reading ---------------------------------------------------------------------------------------
def read_bytes(path):
    """The file's bytes, at most MAX_COMPOSE_BYTES; every OS error names the file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_COMPOSE_BYTES + 1)
    except (IOError, OSError) as exc:
        raise ManifestError("cannot read compose file %s: %s" % (path, exc.strerror or exc))
    if len(data) > MAX_COMPOSE_BYTES:
        raise ManifestError("compose file %s is larger than %d bytes: not a compose file" % (path, MAX_COMPOSE_BYTES))
    return data


def load(path):
    """The compose file at ``path`` as a dict with a non-empty ``services`` mapping of mappings.
    Read by the manifest's YAML reader: bad bytes and bad YAML name the file and the line, and
    anchors and aliases (edgex-compose uses them for its x- extension fields) are followed, their
    expansion bounded."""
    compose = load_yaml(read_bytes(path), path, "compose file", aliases=True)
    if not isinstance(compose, dict):
        raise ManifestError("compose file %s: the top level is not a mapping" % path)
    services = compose.get("services")
    if not isinstance(services, dict) or not services:
        raise ManifestError("compose file %s: no `services` mapping" % path)
    for name, definition in services.items():
        if not isinstance(definition, dict):
            raise ManifestError("compose file %s: service %r is not a mapping" % (path, name))
    return compose


# -- extends ---------------------------------------------------------------------------------------
# The compose specification's merge of a service over the one it extends (05-services.md, "Merging
# service definitions"): mappings by key, these sequences joined without duplicates, these joined
# as they are, and everything else (scalars) from the extending service.
_UNIQUE_SEQUENCES = frozenset(["cap_add", "cap_drop", "configs", "device_cgroup_rules", "expose", "external_links",
                               "ports", "secrets", "security_opt"])
_SEQUENCES = frozenset(["dns", "dns_search", "env_file", "tmpfs"])
# Mappings that may also be written as lists ("KEY=value", or the names depends_on lists).
_LIST_OR_MAPPING = frozenset(["environment", "labels", "annotations", "extra_hosts", "sysctls", "depends_on"])


def _as_mapping(key, value):
    if isinstance(value, dict) or not isinstance(value, list):
        return value
    if key == "depends_on":
        return {name: {"condition": "service_started"} for name in value}
    mapping = {}
    for item in value:
        name, _sep, item_value = str(item).partition("=")
        mapping[name] = item_value if _sep else None
    return mapping


def merge_service(base, main):
    """``main`` (the extending service) over ``base`` (the one it extends), as compose merges them."""
    merged = copy.deepcopy(base)
    for key, value in main.items():
        value = copy.deepcopy(value)
        if key not in merged:
            merged[key] = value
            continue
        old = merged[key]
        if key in _LIST_OR_MAPPING:
            old, value = _as_mapping(key, old), _as_mapping(key, value)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = merge_service(old, value) if key != "depends_on" else dict(old, **value)
        elif isinstance(old, list) and isinstance(value, list) and key in _UNIQUE_SEQUENCES:
            merged[key] = old + [item for item in value if item not in old]
        elif isinstance(old, list) and isinstance(value, list) and key in _SEQUENCES:
            merged[key] = old + value
        else:
            merged[key] = value
    return merged


class Extends(object):
    """Resolves ``extends`` for the services of one compose file, reading other files at most once."""

    def __init__(self, path, compose):
        self.path = path
        self.files = {path: compose}

    def _file(self, path, referrer, name):
        if path not in self.files:
            if not os.path.isfile(path):
                raise ManifestError("compose file %s: service %r extends a service of %s, which does not exist"
                                    % (referrer, name, path))
            self.files[path] = load(path)
        return self.files[path]

    def _reference(self, path, name, extends):
        """(file, service) that ``extends`` names; a file is relative to the file that names it."""
        if isinstance(extends, str):
            return path, text(extends)
        if not isinstance(extends, dict) or not isinstance(extends.get("service"), str):
            raise ManifestError("compose file %s: service %r: extends must name a service (extends: {service: ...,"
                                " file: ...}), not %r" % (path, name, extends))
        try:
            base_name = text(extends["service"])
            base_file = text(extends.get("file")) if extends.get("file") is not None else None
        except ServiceError as exc:
            raise ManifestError("compose file %s: service %r: extends: %s" % (path, name, exc))
        if base_file is None:
            return path, base_name
        return os.path.normpath(os.path.join(os.path.dirname(path), base_file)), base_name

    def resolve(self, name, path=None, chain=()):
        """The definition of service ``name`` of ``path`` (the main file) with what it extends merged in."""
        path = path or self.path
        definition = self.files[path]["services"][name]
        if "extends" not in definition:
            return definition
        link = (path, name)
        if link in chain:
            cycle = list(chain[chain.index(link):]) + [link]
            raise ManifestError("compose file %s: service %r: extends goes round in a circle: %s" % (
                self.path, chain[0][1], " -> ".join(self._describe(p, n) for p, n in cycle)))
        base_path, base_name = self._reference(path, name, definition["extends"])
        services = self._file(base_path, path, name)["services"]
        if base_name not in services:
            where = "it" if base_path == path else base_path
            raise ManifestError("compose file %s: service %r extends service %r, which %s does not define"
                                % (path, name, base_name, where))
        base = self.resolve(base_name, base_path, chain + (link,))
        main = dict((k, v) for k, v in definition.items() if k != "extends")
        return merge_service(base, main)

    def _describe(self, path, name):
        return name if path == self.path else "%s (%s)" % (name, path)


# -- profiles --------------------------------------------------------------------------------------
LeftOut = namedtuple("LeftOut", "service profiles")


def profiles_of(name, definition, path):
    profiles = definition.get("profiles")
    if profiles is None:
        return []
    if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
        raise ManifestError("compose file %s: service %r: profiles must be a list of names, not %r"
                            % (path, name, profiles))
    try:
        return [interpolate(p) for p in profiles]
    except ServiceError as exc:
        raise ManifestError("compose file %s: service %r: profiles: %s" % (path, name, exc))


def select_profiles(services, active, path):
    """(enabled services, LeftOut of the others), as compose does: a service without ``profiles``
    always runs; one with profiles only when one of them is active ("*" activates all)."""
    active = set(active or ())
    enabled, left_out = {}, []
    for name, definition in services.items():
        profiles = profiles_of(name, definition, path)
        if not profiles or "*" in active or active & set(profiles):
            enabled[name] = definition
        else:
            left_out.append(LeftOut(name, profiles))
    return enabled, left_out


def resolved_services(path):
    """(the compose dict, {name: definition with extends resolved}) of the file at ``path``."""
    compose = load(path)
    extends = Extends(path, compose)
    return compose, {name: extends.resolve(name) for name in compose["services"]}
