# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""What a request to register a service changes.

Providers read a ``Registration`` and write one (``_registry.model``); deciding whether anything
has to be written happens here, the same way for Consul, core-keeper and the manifest: only the
fields a request names are compared (as community.general's consul modules do), so a
registration EdgeX made itself is left alone unless asked.
"""

from __future__ import annotations

import re
from dataclasses import replace

from .._catalog import DEFAULT_CHECK_INTERVAL, default_health_path
from .._errors import EdgeXError
from .._names import validate_name
from .model import Check, Registration

CHECK_KINDS = ("http", "tcp", "none")
# Go durations as Consul and keeper take them ("10s", "1m30s", "500ms").
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
# The fields of a request that may change a registration, in the order they are reported.
FIELDS = ("address", "port", "tags", "meta", "check")


class RegistrationError(EdgeXError):
    """A registration that cannot be made as asked (a missing port, a bad duration, ...)."""


def check_of(options, name, port):
    """The Check a request asks for: ``options`` (the module's ``check``, or None) over the
    default of the service's kind: EdgeX's ping for an EdgeX API service, a TCP connect for a
    service without an HTTP API (redis, an MQTT broker), none without a port."""
    options = dict(options or {})
    path = default_health_path(name)
    kind = options.get("type") or ("none" if not port else ("http" if path else "tcp"))
    if kind not in CHECK_KINDS:
        raise RegistrationError("check type must be one of %s, not %r" % (", ".join(CHECK_KINDS), kind))
    if kind == "none":
        return Check(kind="none", interval="")
    check = Check(kind=kind, path=options.get("path") or (path if kind == "http" else None),
                  interval=options.get("interval") or DEFAULT_CHECK_INTERVAL, timeout=options.get("timeout"),
                  deregister_critical_after=options.get("deregister_critical_after"))
    for label, value in (("interval", check.interval), ("timeout", check.timeout),
                         ("deregister_critical_after", check.deregister_critical_after)):
        if value is not None and not _DURATION.match(value):
            raise RegistrationError("check %s must be a duration such as 10s or 1m, not %r" % (label, value))
    if kind == "http" and not (check.path or "").startswith("/"):
        raise RegistrationError("an http check needs a path that starts with /, not %r" % check.path)
    if not port:
        raise RegistrationError("a %s check needs the service's port" % kind)
    return check


def plan(current, name, service_id, node, requested):
    """(the registration to write, the fields that change) for a request to register ``name``.

    ``requested`` holds only the fields the request names (of FIELDS); a field it does not name
    keeps its current value, or, for a new registration, its default (the check: by kind).
    """
    validate_name(name)
    validate_name(service_id, "service id")
    overrides = {k: (sorted(v) if k == "tags" else v) for k, v in requested.items() if v is not None}
    if current is None:
        wanted = Registration(name=name, id=service_id, node=node)
        wanted = replace(wanted, **overrides)
        if "check" not in overrides:
            wanted.check = check_of(None, name, wanted.port)
        return wanted, ["name"] + [f for f in FIELDS if f in overrides or f == "check"]
    wanted = replace(current, name=name, node=node or current.node, **overrides)
    changed = (["name"] if wanted.name != current.name else []) + \
        [f for f in FIELDS if f in overrides and getattr(wanted, f) != getattr(current, f)]
    return wanted, changed
