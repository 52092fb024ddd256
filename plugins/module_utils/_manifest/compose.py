# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Build a manifest (docs/manifest.md, version 1) from an edgex-compose ``docker-compose*.yml``.

Reads the file as written: ``include``, ``extends`` and override files are not merged, and
``${VAR:-default}`` interpolation resolves to the default because the controller's
environment is not the gateway's.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple

from .._errors import ManifestError
from .._names import validate_name
from .._catalog import default_health_path, default_port, KNOWN_SERVICES, ONE_SHOT_SERVICES
from .edits import import_host

try:
    import yaml

    HAS_YAML = True
except ImportError:
    HAS_YAML = False

COMPOSE_EXECUTORS = ("docker", "compose")

# edgex-compose names services by EdgeX key (core-data, database, core-keeper); older or
# hand-written files use other service names but keep the edgex-* container names.
# edgex-redis belongs to both "database" and "redis": the first entry, "database", wins.
_KEY_BY_CONTAINER = {}
for _known in KNOWN_SERVICES.values():
    _KEY_BY_CONTAINER.setdefault(_known.container, _known.key)

# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, $NAME; anything else after
# a $ (${NAME:?err}, ${NAME:+alt}) matches "unsupported".
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<unsupported>))"
)

# compose-go's project name rule, applied to the directory name.
_PROJECT_CHARS = re.compile(r"[a-z0-9_-]")

_EDGEX_PREFIXES = ("core-", "support-", "device-", "app-")

PortMapping = namedtuple("PortMapping", "published target protocol")


class _ServiceError(ValueError):
    """A problem inside one service; manifest_from_compose adds the file and service name."""


def _interpolate(value):
    """Resolve ``${VAR:-default}`` to its default; a variable without one cannot be resolved."""

    def substitute(match):
        if match.group("escaped"):
            return "$"
        if match.group("unsupported") is not None:
            raise _ServiceError("unsupported interpolation in %r" % value)
        default = match.group("default")
        if default is None:
            variable = match.group("braced") or match.group("named")
            raise _ServiceError(
                "%r uses $%s without a default (write ${%s:-value})" % (value, variable, variable)
            )
        if "$" in default:
            raise _ServiceError("nested interpolation in %r is not supported" % value)
        return default

    return _INTERPOLATION.sub(substitute, value)


def _port_range(text, spec):
    """``"59880"`` -> [59880]; ``"9000-9002"`` -> [9000, 9001, 9002]."""
    low, dash, high = text.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise _ServiceError("bad port syntax %r" % (spec,))
    first, last = int(low), int(high) if dash else int(low)
    if not 0 < first <= last <= 65535:
        raise _ServiceError("bad port syntax %r: ports are 1-65535, ranges low-high" % (spec,))
    return list(range(first, last + 1))


def _pair(published, target, protocol, spec):
    targets = _port_range(target, spec)
    if not published:
        return [PortMapping(None, port, protocol) for port in targets]
    hosts = _port_range(published, spec)
    if len(hosts) == len(targets):
        return [PortMapping(h, t, protocol) for h, t in zip(hosts, targets)]
    if len(targets) == 1:
        # "8000-8010:80": Docker picks a free host port in the range, so it is not fixed.
        return [PortMapping(None, targets[0], protocol)]
    raise _ServiceError("bad port syntax %r: host and container ranges differ in length" % (spec,))


def _short_port(entry):
    """``[[IP:]HOST:]CONTAINER[/PROTOCOL]``, IPv6 addresses in brackets."""
    spec = _interpolate(str(entry)).strip()
    body, _slash, protocol = spec.partition("/")
    if body.startswith("["):
        _address, bracket, body = body[1:].partition("]")
        if not bracket or not body.startswith(":"):
            raise _ServiceError("bad port syntax %r" % (entry,))
        parts = body[1:].split(":")
        if len(parts) != 2:
            raise _ServiceError("bad port syntax %r" % (entry,))
    else:
        parts = body.split(":")
        if len(parts) > 3:
            raise _ServiceError("bad port syntax %r" % (entry,))
    published = parts[-2] if len(parts) >= 2 else ""
    return _pair(published, parts[-1], protocol or "tcp", entry)


def _long_port(entry):
    """``{target: 59880, published: "59880", host_ip: ..., protocol: tcp}``."""
    if "target" not in entry:
        raise _ServiceError("long-syntax port %r has no target" % (entry,))
    fields = {}
    for field in ("target", "published", "protocol"):
        value = entry.get(field)
        if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
            raise _ServiceError("bad port syntax %r: %s" % (entry, field))
        fields[field] = _interpolate(value) if isinstance(value, str) else value
    published = fields["published"]
    return _pair(
        "" if published is None else str(published),
        str(fields["target"]),
        fields["protocol"] or "tcp",
        entry,
    )


def _port_mappings(ports):
    if ports is None:
        return []
    if not isinstance(ports, list):
        raise _ServiceError("ports must be a list, not %r" % (ports,))
    mappings = []
    for entry in ports:
        if isinstance(entry, dict):
            mappings.extend(_long_port(entry))
        elif isinstance(entry, (str, int)) and not isinstance(entry, bool):
            mappings.extend(_short_port(entry))
        else:
            raise _ServiceError("bad port syntax %r" % (entry,))
    return mappings


def _host_port(mappings, known_port, fallback):
    """The host port the service answers on.

    The mapping of the EdgeX port wins; otherwise the first fixed TCP host port, because
    the file can be newer than the table (Odessa moved support-scheduler to 59863, and its
    "database" is Postgres on 5432). Without a fixed host port: ``fallback``.
    """
    tcp = [m for m in mappings if m.protocol == "tcp"]
    for mapping in tcp:
        if mapping.target == known_port:
            return mapping.published if mapping.published is not None else fallback
    for mapping in tcp:
        if mapping.published is not None:
            return mapping.published
    return fallback


def _service_key(name, definition):
    if name in KNOWN_SERVICES:
        return name
    container = definition.get("container_name")
    if isinstance(container, str) and container in _KEY_BY_CONTAINER:
        return _KEY_BY_CONTAINER[container]
    return name


def _depends_on(value, keys):
    """List (``[a, b]``) and mapping (``{a: {condition: ...}}``) forms, as service keys."""
    if value is None:
        return []
    if not isinstance(value, (list, dict)):
        raise _ServiceError("depends_on must be a list or a mapping, not %r" % (value,))
    result = []
    for name in value:
        if not isinstance(name, str) or name not in keys:
            raise _ServiceError("depends_on names unknown service %r" % (name,))
        if keys[name] not in result:
            result.append(keys[name])
    return result


def _is_one_shot(key, definition):
    if key in ONE_SHOT_SERVICES:
        return True
    # For services the table does not know, an explicit restart "no" marks a job; YAML
    # reads an unquoted `restart: no` as False.
    return key not in KNOWN_SERVICES and definition.get("restart") in ("no", False)


def _health_path(key, image):
    """EdgeX's health route; None for a service that is not EdgeX (it has no /api/v3/ping)."""
    edgex = (
        key in KNOWN_SERVICES
        or key.startswith(_EDGEX_PREFIXES)
        or (isinstance(image, str) and image.startswith("edgexfoundry/"))
    )
    return default_health_path(key) if edgex else None


def _project_name(compose, path, project):
    """Like ``docker compose``: -p (``project``) over the top-level ``name:`` over the directory."""
    if project is not None:
        name = project
    elif compose.get("name") is not None:
        name = compose["name"]
        if isinstance(name, str):
            name = _interpolate(name)
    else:
        directory = os.path.basename(os.path.dirname(path)).lower()
        name = "".join(_PROJECT_CHARS.findall(directory)).lstrip("_-")
    return validate_name(name, "compose project name")


def _load(path):
    if not HAS_YAML:
        raise ManifestError("cannot read compose file %s: PyYAML is not installed" % path)
    try:
        with open(path, encoding="utf-8") as handle:
            compose = yaml.safe_load(handle)
    except (IOError, OSError) as exc:
        raise ManifestError("cannot read compose file %s: %s" % (path, exc.strerror or exc))
    except yaml.YAMLError as exc:
        raise ManifestError("compose file %s is not valid YAML: %s" % (path, exc))
    if not isinstance(compose, dict):
        raise ManifestError("compose file %s: the top level is not a mapping" % path)
    services = compose.get("services")
    if not isinstance(services, dict) or not services:
        raise ManifestError("compose file %s: no `services` mapping" % path)
    for name, definition in services.items():
        if not isinstance(definition, dict):
            raise ManifestError(
                "compose file %s: service %r is not a mapping" % (path, name)
            )
    return compose


def manifest_from_compose(path, host="localhost", address="127.0.0.1", executor="docker",
                          project=None, datacenter=None):
    """Return a version 1 manifest (a plain dict, no ``updated_at``) for the services of ``path``.

    ``executor`` ``docker`` targets the container (``container_name`` or compose v2's
    ``<project>-<service>-1``); ``compose`` targets ``<project>/<service>``.
    """
    path = os.path.abspath(path)
    if executor not in COMPOSE_EXECUTORS:
        raise ManifestError(
            "compose import of %s: executor must be one of %s, not %r"
            % (path, ", ".join(COMPOSE_EXECUTORS), executor)
        )
    try:
        validate_name(host, "host name")
        if datacenter is not None:
            validate_name(datacenter, "datacenter")
    except ValueError as exc:
        raise ManifestError("compose import of %s: %s" % (path, exc))

    compose = _load(path)
    services = compose["services"]
    keys = {}
    owners = {}
    for name, definition in services.items():
        key = _service_key(name, definition)
        if key in owners:
            raise ManifestError(
                "compose file %s: services %r and %r are both EdgeX service %r"
                % (path, owners[key], name, key)
            )
        owners[key] = name
        keys[name] = key

    project_name = None
    result = {}
    for name, definition in services.items():
        key = keys[name]
        try:
            validate_name(key, "service key")
            if executor == "compose":
                project_name = project_name or _project_name(compose, path, project)
                target = "%s/%s" % (project_name, validate_name(name, "compose service name"))
            elif definition.get("container_name") is not None:
                container = definition["container_name"]
                if not isinstance(container, str):
                    raise _ServiceError("container_name must be a string, not %r" % (container,))
                target = validate_name(_interpolate(container), "container name")
            else:
                project_name = project_name or _project_name(compose, path, project)
                target = validate_name("%s-%s-1" % (project_name, name), "container name")
            mappings = _port_mappings(definition.get("ports"))
            depends_on = _depends_on(definition.get("depends_on"), keys)
        except ValueError as exc:
            raise ManifestError("compose file %s: service %r: %s" % (path, name, exc))

        image = definition.get("image")
        one_shot = _is_one_shot(key, definition)
        known_port = default_port(key)
        meta = {"compose_service": name}
        if isinstance(image, str):
            meta["image"] = image
        if one_shot:
            meta["one_shot"] = "true"
        profiles = definition.get("profiles")
        if isinstance(profiles, list) and profiles:
            meta["profiles"] = ",".join(str(p) for p in profiles)
        result[key] = {
            "executor": executor,
            "target": target,
            "address": address,
            # A one-shot service answers nowhere unless the file publishes a port.
            "port": _host_port(mappings, known_port, None if one_shot else known_port),
            "health": None if one_shot else _health_path(key, image),
            "depends_on": depends_on,
            "tags": [],
            "meta": meta,
        }

    node = {"address": address}
    if datacenter is not None:
        node["datacenter"] = datacenter
    node["services"] = result
    return {
        "version": 1,
        "generated_from": "compose:%s" % path,
        "hosts": {host: node},
    }


def import_change(path, host, address=None, executor=None, project=None, datacenter=None):
    """The manifest change that makes ``host`` what the compose file at ``path`` deploys (read now,
    applied by the store under its lock)."""
    imported = manifest_from_compose(path, host=host, address=address or "127.0.0.1", executor=executor or "docker",
                                     project=project, datacenter=datacenter)
    return lambda data: import_host(data, host, imported)
