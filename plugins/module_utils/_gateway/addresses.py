# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Where a service is reached: the address rule.

EdgeX in Docker registers each service under its container's DNS name (``edgex-core-data``),
which resolves only inside the compose network, with the container's port. So:

1. A registered address that is an IP, or a name that resolves on this host, is used with the
   registered port.
2. A registered name that does not resolve on this host is mapped: to the manifest's address for
   the service when it has one (what the user gave, e.g. the compose import's ``127.0.0.1``),
   else to ``127.0.0.1`` when the node's address is one of this host's own (the module runs on
   the gateway, where edgex-compose publishes ports on 127.0.0.1 only), else to the node's
   address. The port is the manifest's (the port published on the host), else the registered
   one (edgex-compose publishes every port under its own number).
3. Name lookups keep the caller's deadline: one that overruns is a failure ("cannot resolve
   <name> within Ns"), never a longer wait.

``reach`` applies the rule to one service for a probe; ``reachable_endpoints`` to a whole
Discovery (what the inventory plugin shows beside the registered address).
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

from .._net.dial import RESOLVER, NameNotFound, ResolveTimeout, ip_literal
from .._registry.discover import overlay_manifest

LOOPBACK = "127.0.0.1"
# One resolver per process: a module run probes the same container names on every gateway.
_local = {}


class Unreachable(Exception):
    """No address to connect to before the deadline; the message is the probe's reason."""


@dataclass
class Endpoint:
    """Where a service is reached, and where it is registered."""

    address: str
    port: int
    registered_address: Optional[str]
    registered_port: Optional[int]
    mapped: Optional[str] = None  # why the registered address was not used; None when it was
    addresses: Tuple[Tuple[int, str], ...] = ()  # (family, ip) to connect to

    def to_dict(self):
        data = asdict(self)
        data.pop("addresses")
        return data


def is_local_ip(ip):
    """Is ``ip`` one of this host's addresses? A loopback one is; any other is when a socket can
    bind to it (the kernel says so without sending anything)."""
    if ip not in _local:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((ip, 0))
            _local[ip] = True
        except OSError:
            _local[ip] = False
    return _local[ip]


def _resolve(resolver, name, deadline, seconds):
    try:
        return resolver.addresses(name, deadline)
    except ResolveTimeout:
        raise Unreachable("cannot resolve %s within %ss" % (name, float(seconds))) from None


def _node_is_here(resolver, node_address, deadline, seconds):
    try:
        return any(is_local_ip(ip) for _family, ip in _resolve(resolver, node_address, deadline, seconds))
    except NameNotFound:
        return False


def _mapped_address(service, unresolvable, resolver, deadline, seconds):
    manifest_address = getattr(service, "manifest_address", None)
    if manifest_address and manifest_address != unresolvable:
        return manifest_address
    node_address = getattr(service, "node_address", None)
    if not node_address or node_address == unresolvable:
        return None
    return LOOPBACK if _node_is_here(resolver, node_address, deadline, seconds) else node_address


def reach(service, deadline, seconds, resolver=None):
    """The Endpoint of ``service`` (a ServiceRecord with an address and a port; the rule's other
    fields are optional) by the address rule, before ``deadline`` (clock seconds; ``seconds`` is
    its length, for messages). Raises Unreachable with the reason."""
    resolver = resolver or RESOLVER
    registered = service.address
    try:
        ips = _resolve(resolver, registered, deadline, seconds)
        return Endpoint(registered, service.port, registered, service.port, addresses=tuple(ips))
    except NameNotFound as exc:
        not_found = exc
    mapped = _mapped_address(service, registered, resolver, deadline, seconds)
    if mapped is None:
        raise Unreachable("cannot resolve %s (%s)" % (registered, not_found.cause))
    port = getattr(service, "manifest_port", None) or service.port
    try:
        ips = _resolve(resolver, mapped, deadline, seconds)
    except NameNotFound as exc:
        raise Unreachable("cannot resolve %s (%s), nor %s, the address it maps to (%s)"
                          % (registered, not_found.cause, mapped, exc.cause)) from None
    return Endpoint(mapped, port, registered, service.port, addresses=tuple(ips),
                    mapped="%s does not resolve here" % registered)


def reachable_endpoints(discovery, manifest=None, timeout=3.0, max_workers=32, resolver=None):
    """{(node, service id): dict} for every service of ``discovery`` (completed by ``manifest``, a
    Discovery), by the address rule, as seen from the host running this: ``address``/``port``
    where it is reached, ``registered_address``/``registered_port``, ``mapped`` (why the registered
    address is not used, or None), or ``error`` instead when it cannot be reached (no address, or a
    name that does not resolve in ``timeout`` seconds). Lookups run concurrently; the whole call
    takes about ``timeout`` at most."""
    services = [s for s in overlay_manifest(discovery, manifest) if s.registered]
    deadline = time.monotonic() + timeout

    def one(service):
        if not service.address or not service.port:
            return dict(registered_address=service.address, registered_port=service.port,
                        error="no address and port")
        try:
            return reach(service, deadline, timeout, resolver).to_dict()
        except Unreachable as exc:
            return dict(registered_address=service.address, registered_port=service.port, error=str(exc))

    if not services:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(services)))) as pool:
        answers: List[dict] = list(pool.map(one, services))
    return {(s.node, s.id): answer for s, answer in zip(services, answers)}


def probe_target(address, port):
    """``host:port`` with an IPv6 address in brackets, as in a URL."""
    return "%s:%d" % ("[%s]" % address if ip_literal(address) and ":" in address else address, port)
