# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Where to reach a service whose host port Docker chose (``ports: ["59900"]``): read from its
executor each time, never guessed. A service that publishes nothing is not reached at all."""

from __future__ import annotations

from dataclasses import replace

from .._errors import EdgeXError

# HostIp values of a published port that mean "every address of the host".
_ANY_ADDRESS = frozenset(["", "0.0.0.0", "::"])

NOT_PUBLISHED = "not published"


def unpublished_reason(service):
    """Why ``service`` is not probed, when its manifest entry says it publishes no port."""
    if service.published is not False:
        return None
    where = " (container port %d)" % service.container_port if service.container_port else ""
    return "%s%s: judged by its executor and the registry" % (NOT_PUBLISHED, where)


def with_published_port(service, executor, target):
    """(service with the address and port its executor reports for its container port, reason when
    it cannot tell). Services with a known port, or no chosen port to read, come back unchanged."""
    if service.port or service.published is not True or not service.container_port:
        return service, None
    read = getattr(executor, "published_port", None)
    if read is None:
        return service, "the %s executor cannot read the host port Docker chose for container port %d" % (
            getattr(executor, "name", "?"), service.container_port)
    try:
        found = read(target, service.container_port)
    except EdgeXError as exc:
        return service, "host port of container port %d unknown: %s" % (service.container_port, exc)
    if found is None:
        return service, "container port %d has no host port now (the container is not running)" % (
            service.container_port)
    host_ip, port = found
    address = service.address or ("127.0.0.1" if host_ip in _ANY_ADDRESS else host_ip)
    return replace(service, address=address, port=port), None
