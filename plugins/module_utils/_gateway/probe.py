# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Probe one EdgeX service: GET its ping (or its health path), or a TCP connect for services
without an HTTP API (redis, an MQTT broker).

One deadline covers connect, send and every read, so a server that accepts and then trickles
bytes cannot hold a probe beyond its timeout.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from typing import Optional

from .._catalog import default_health_path
from .._net.http import AnswerError, http_get

# The EdgeX common-API ping, also as v2 or behind an API-gateway prefix (/core-data/api/v3/ping).
EDGEX_PING = re.compile(r"/api/v\d+/ping$")
PING_FIELDS = ("apiVersion", "timestamp", "serviceName")
# A ping answer is a few dozen bytes; anything far bigger is not one.
MAX_BODY = 64 * 1024


@dataclass
class Probe:
    """What one probe found; ``error`` is phrased as a reason ("ping answered 500")."""

    kind: str  # http | tcp | none (no address/port: judged by registry checks only)
    target: Optional[str] = None  # URL or host:port
    ok: bool = False
    http_status: Optional[int] = None
    latency_ms: Optional[float] = None
    error: Optional[str] = None


def _url_host(address):
    return "[%s]" % address if ":" in address else address


def _elapsed_ms(started):
    return round((time.monotonic() - started) * 1000.0, 1)


def _describe(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, AnswerError):
        return str(exc)
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the address (%s)" % (exc.strerror or exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _ping_answer_error(body, expected_name):
    """None when ``body`` is an EdgeX ping answer from ``expected_name``, else the reason."""
    if len(body) > MAX_BODY:
        return "ping answer is larger than %d bytes" % MAX_BODY
    try:
        answer = json.loads(body.decode("utf-8"))
    except ValueError:
        return "ping answered with something that is not JSON"
    if not isinstance(answer, dict) or not all(isinstance(answer.get(key), str) for key in PING_FIELDS):
        return "ping answer lacks the EdgeX fields %s" % ", ".join(PING_FIELDS)
    if answer["serviceName"] != expected_name:
        return "serviceName is %s, expected %s" % (answer["serviceName"][:128], expected_name)
    return None


def _probe_http(service, path, timeout):
    what = "ping" if EDGEX_PING.search(path) else "GET %s" % path
    url = "http://%s:%d%s" % (_url_host(service.address), service.port, path)
    started = time.monotonic()
    deadline = started + timeout
    try:
        # no proxies: a gateway's loopback ports must not go through one
        sock = socket.create_connection((service.address, service.port), timeout=timeout)
        status, body = http_get(sock, "%s:%d" % (_url_host(service.address), service.port), path, deadline,
                                MAX_BODY)
    except socket.timeout:
        return Probe("http", url, error="%s timed out after %ss" % (what, float(timeout)))
    except (OSError, AnswerError) as exc:
        return Probe("http", url, error="%s failed: %s" % (what, _describe(exc)))
    probe = Probe("http", url, http_status=status, latency_ms=_elapsed_ms(started))
    if not 200 <= status < 300:
        probe.error = "%s answered %d" % (what, status)
    elif what == "ping":
        probe.error = _ping_answer_error(body, service.name)
    probe.ok = probe.error is None
    return probe


def _probe_tcp(address, port, timeout):
    target = "%s:%d" % (_url_host(address), port)
    started = time.monotonic()
    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except socket.timeout:
        return Probe("tcp", target, error="TCP connect to %s timed out after %ss" % (target, float(timeout)))
    except OSError as exc:
        return Probe("tcp", target, error="TCP connect to %s failed: %s" % (target, _describe(exc)))
    return Probe("tcp", target, ok=True, latency_ms=_elapsed_ms(started))


def probe_ping(service, timeout):
    """Probe one ServiceRecord: GET its health path (EdgeX ping by default), a TCP connect for
    non-API services (redis, MQTT broker...), nothing when it has no address or port."""
    if not service.address or not service.port:
        return Probe("none")
    path = service.health_path or default_health_path(service.name)
    if path is None:
        return _probe_tcp(service.address, service.port, timeout)
    return _probe_http(service, path, timeout)
