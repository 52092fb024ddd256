# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Where a compose service can be reached from its host: its published ports (short and long
syntax, ``host_ip`` kept), ``network_mode`` (host, none, ``service:x``, ``container:x``), and
nothing when nothing is published. A host port Docker chooses is never guessed.
"""

from __future__ import annotations

from collections import namedtuple

from .compose_file import ServiceError, text

PortMapping = namedtuple("PortMapping", "published target protocol host_ip")

# Where a service answers: ``published`` False: nowhere outside its network (no address, no port);
# True with port None: a host port Docker chooses, read from the engine at run time; None: unknown.
Reach = namedtuple("Reach", "address port published container_port note")

# host_ip values that mean "every address of the host": the service is reached at the node's address.
_ANY_ADDRESS = frozenset(["", "0.0.0.0", "::", "[::]"])


def _port_range(value, spec):
    """``"59880"`` -> [59880]; ``"9000-9002"`` -> [9000, 9001, 9002]."""
    low, dash, high = value.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise ServiceError("bad port syntax %r" % (spec,))
    first, last = int(low), int(high) if dash else int(low)
    if not 0 < first <= last <= 65535:
        raise ServiceError("bad port syntax %r: ports are 1-65535, ranges low-high" % (spec,))
    return list(range(first, last + 1))


def _pair(published, target, protocol, host_ip, spec):
    targets = _port_range(target, spec)
    if not published:
        return [PortMapping(None, port, protocol, host_ip) for port in targets]
    hosts = _port_range(published, spec)
    if len(hosts) == len(targets):
        return [PortMapping(h, t, protocol, host_ip) for h, t in zip(hosts, targets)]
    if len(targets) == 1:
        # "8000-8010:80": Docker picks a free host port in the range, so it is not fixed.
        return [PortMapping(None, targets[0], protocol, host_ip)]
    raise ServiceError("bad port syntax %r: host and container ranges differ in length" % (spec,))


def _short_port(entry):
    """``[[IP:]HOST:]CONTAINER[/PROTOCOL]``, IPv6 addresses in brackets."""
    spec = text(str(entry)).strip()
    body, _slash, protocol = spec.partition("/")
    host_ip = ""
    if body.startswith("["):
        host_ip, bracket, body = body[1:].partition("]")
        if not bracket or not body.startswith(":"):
            raise ServiceError("bad port syntax %r" % (entry,))
        parts = body[1:].split(":")
        if len(parts) != 2:
            raise ServiceError("bad port syntax %r" % (entry,))
    else:
        parts = body.split(":")
        if len(parts) > 3:
            raise ServiceError("bad port syntax %r" % (entry,))
        if len(parts) == 3:
            host_ip = parts[0]
    published = parts[-2] if len(parts) >= 2 else ""
    return _pair(published, parts[-1], protocol or "tcp", host_ip, entry)


def _long_port(entry):
    """``{target: 59880, published: "59880", host_ip: 127.0.0.1, protocol: tcp}``."""
    if "target" not in entry:
        raise ServiceError("long-syntax port %r has no target" % (entry,))
    fields = {}
    for field in ("target", "published", "protocol", "host_ip"):
        value = entry.get(field)
        if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
            raise ServiceError("bad port syntax %r: %s" % (entry, field))
        fields[field] = text(value)
    published = fields["published"]
    return _pair("" if published is None else str(published), str(fields["target"]), fields["protocol"] or "tcp",
                 fields["host_ip"] or "", entry)


def port_mappings(ports):
    """Every mapping of a service's ``ports:`` list."""
    if ports is None:
        return []
    if not isinstance(ports, list):
        raise ServiceError("ports must be a list, not %r" % (ports,))
    mappings = []
    for entry in ports:
        if isinstance(entry, dict):
            mappings.extend(_long_port(entry))
        elif isinstance(entry, (str, int)) and not isinstance(entry, bool):
            mappings.extend(_short_port(entry))
        else:
            raise ServiceError("bad port syntax %r" % (entry,))
    return mappings


def _exposed(definition):
    """Container ports a service declares without publishing them (``expose:``)."""
    ports = []
    for entry in definition.get("expose") or ():
        spec = str(text(entry)).partition("/")[0]
        ports.extend(_port_range(spec, entry))
    return ports


def listening_port(definition, mappings, known_port):
    """The port the service listens on in its container: the EdgeX port when it has one, else the
    first TCP port its ``ports:`` or ``expose:`` name."""
    if known_port is not None:
        return known_port
    for mapping in mappings:
        if mapping.protocol == "tcp":
            return mapping.target
    exposed = _exposed(definition)
    return exposed[0] if exposed else None


def _through(mappings, container_port, node_address, exact=False):
    """Reach through ``mappings``: the mapping of ``container_port``, else (unless ``exact``) the first
    fixed TCP one, then the first TCP one, because the file can be newer than the catalog (Odessa moved
    support-scheduler to 59863, and its "database" is Postgres on 5432); or not published at all."""
    tcp = [m for m in mappings if m.protocol == "tcp"]
    chosen = next((m for m in tcp if m.target == container_port), None)
    if chosen is None and not exact:
        chosen = next((m for m in tcp if m.published is not None), tcp[0] if tcp else None)
    if chosen is None:
        return Reach(None, None, False, container_port, None)
    address = node_address if chosen.host_ip in _ANY_ADDRESS else chosen.host_ip.strip("[]")
    return Reach(address, chosen.published, True, chosen.target, None)


def network_mode(definition):
    value = definition.get("network_mode")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ServiceError("network_mode must be a string, not %r" % (value,))
    return text(value)


def reach(name, definition, known_port, node_address, others):
    """Reach of compose service ``name``. ``others``: {compose name: (definition, mappings)} of the
    file's services, for ``network_mode: service:x``; a service ``container:x`` names is looked up
    there by ``container_name``."""
    mappings = port_mappings(definition.get("ports"))
    mode = network_mode(definition)
    port = listening_port(definition, mappings, known_port)
    if mode == "host":  # published ports are ignored: the container's port is the host's
        if port is None:
            return Reach(None, None, None, None, "network_mode host and no known port")
        return Reach(node_address, port, True, port, None)
    if mode == "none":
        return Reach(None, None, False, port, None)
    if mode and mode.startswith(("service:", "container:")):
        kind, _colon, other = mode.partition(":")
        owner = other if kind == "service" else next(
            (n for n, (d, _m) in others.items() if text(d.get("container_name")) == other), None)
        if owner is None or owner not in others:
            if kind == "service":
                raise ServiceError("network_mode names unknown service %r" % other)
            return Reach(None, None, None, port, "network_mode %s: container %r is not in this file, so its "
                                                 "published ports are unknown" % (mode, other))
        if port is None:
            return Reach(None, None, None, None, "network_mode %s and no known port" % mode)
        owner_definition, owner_mappings = others[owner]
        if network_mode(owner_definition) == "host":
            return Reach(node_address, port, True, port, None)
        through = _through(owner_mappings, port, node_address, exact=True)
        if through.published:
            return through._replace(note="reached through %s's published port %d" % (owner, through.port or port))
        return through._replace(note="network_mode %s: %s publishes no port for %d" % (mode, owner, port))
    return _through(mappings, port, node_address)
