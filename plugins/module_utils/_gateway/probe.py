# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Probe one service the way its kind allows, under one deadline.

Kinds (``Probe.kind``, edgex_health's ``probe``):
  edgex-ping            EdgeX API services: GET the health path (the manifest's, the registry's,
                        else the catalog's /api/v3/ping); 2xx with EdgeX's ping JSON naming it
  http                  a manifest health path that is not an EdgeX ping: GET it, 2xx
  consul-leader         Consul: GET /v1/status/leader, 2xx naming a leader
  vault-health          Vault / OpenBao (EdgeX's secret store): GET /v1/sys/health; active or
                        standby is alive, sealed or not initialized is not
  redis-ping            Redis: the inline command PING, answered +PONG (or an error asking for
                        a password: a Redis that answers is alive)
  postgres-ssl-request  PostgreSQL: an SSLRequest, answered S or N, before any authentication
  mqtt-connect          MQTT brokers: CONNECT (3.1.1, clean session), answered by a CONNACK;
                        one refusing our anonymous client is alive too
  tcp                   anything else (an unknown registration): a TCP connect; its registry
                        checks say the rest
  none                  no address or port: judged by its registry checks alone

The address comes from the address rule (``addresses.reach``); one deadline covers the name
lookups, the connect and every read, so a hung resolver or a peer trickling bytes cannot hold
a probe beyond its timeout.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from .._catalog import default_health_path, infrastructure_probe, is_edgex_api_service
from .._net.dial import connect, exchange
from .._net.http import AnswerError, http_get
from .addresses import Unreachable, probe_target, reach

# The EdgeX common-API ping, also as v2 or behind an API-gateway prefix (/core-data/api/v3/ping).
EDGEX_PING = re.compile(r"/api/v\d+/ping$")
PING_FIELDS = ("apiVersion", "timestamp", "serviceName")
# A ping answer is a few dozen bytes; anything far bigger is not one.
MAX_BODY = 64 * 1024
FIXED_PATHS = {"consul-leader": "/v1/status/leader", "vault-health": "/v1/sys/health"}
HTTP_KINDS = ("edgex-ping", "http", "consul-leader", "vault-health")
# Vault's /v1/sys/health: 200 active, 429 standby, 472 DR secondary, 473 performance standby.
VAULT_ALIVE = (200, 429, 472, 473)
VAULT_NOT_READY = {501: "not initialized", 503: "sealed"}
POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)
MQTT_CONNACK = 0x20
MQTT_DISCONNECT = b"\xe0\x00"  # sent after a CONNACK: the broker ends the session cleanly
# CONNACK codes of a broker that works but will not take this client (protocol, id, credentials).
MQTT_ALIVE_CODES = {0: None, 1: "unacceptable protocol version", 2: "client id rejected",
                    4: "bad user name or password", 5: "not authorized"}


@dataclass
class Probe:
    """What one probe found; ``error`` is phrased as a reason ("ping answered 500")."""

    kind: str
    target: Optional[str] = None  # URL or host:port probed
    ok: bool = False
    http_status: Optional[int] = None
    latency_ms: Optional[float] = None  # set exactly when something answered
    error: Optional[str] = None
    address: Optional[str] = None  # where it was probed (the address rule's answer)
    port: Optional[int] = None
    mapped: Optional[str] = None  # why not at its registered address


def probe_kind(service):
    """(kind, HTTP path or None) for a service record (name, port, health_path)."""
    infrastructure = infrastructure_probe(service.name, service.port)
    if infrastructure is not None:
        return infrastructure, FIXED_PATHS.get(infrastructure)
    if service.health_path:
        return ("edgex-ping" if EDGEX_PING.search(service.health_path) else "http"), service.health_path
    if is_edgex_api_service(service.name):
        return "edgex-ping", default_health_path(service.name)
    return "tcp", None


def _elapsed_ms(started):
    return round((time.monotonic() - started) * 1000.0, 1)


def _describe(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, AnswerError):
        return str(exc)
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


def _http_answer_error(kind, what, status, body, service_name):
    if kind == "vault-health":
        if status in VAULT_NOT_READY:
            return "%s: %s" % (what, VAULT_NOT_READY[status])
        return None if status in VAULT_ALIVE else "%s answered %d" % (what, status)
    if not 200 <= status < 300:
        return "%s answered %d" % (what, status)
    if kind == "edgex-ping":
        return _ping_answer_error(body, service_name)
    if kind == "consul-leader":
        try:
            leader = json.loads(body.decode("utf-8"))
        except ValueError:
            leader = None
        if not isinstance(leader, str):
            return "%s answered with something that is not a leader address" % what
        return None if leader else "Consul has no leader"
    return None


def _redis_answer_error(answer):
    line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    if line == "+PONG" or line.startswith(("-NOAUTH", "-WRONGPASS")):
        return None
    return "redis PING answered %s" % (line[:80] or "nothing")


def _postgres_answer_error(answer):
    return None if answer[:1] in (b"S", b"N") else "PostgreSQL did not answer its SSLRequest with S or N"


def _mqtt_connect_packet():
    client_id = ("edgex-sysmgmt-probe-%d-%s" % (os.getpid(), os.urandom(4).hex())).encode("ascii")
    # protocol name MQTT, level 4 (3.1.1), flags: clean session, keep-alive 0
    variable = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(client_id)) + client_id
    return bytes([0x10, len(variable)]) + variable


def _mqtt_answer_error(answer):
    if len(answer) < 4 or answer[0] != MQTT_CONNACK or answer[1] != 2:
        return "MQTT CONNECT was not answered with a CONNACK"
    code = answer[3]
    if code in MQTT_ALIVE_CODES:
        return None
    return "MQTT broker refused CONNECT with code %d%s" % (code, " (server unavailable)" if code == 3 else "")


# kind -> (what it is called in reasons, request bytes, answer complete?, reason the answer is wrong or None)
EXCHANGES = {
    "redis-ping": ("redis PING", lambda: b"PING\r\n", lambda got: b"\r\n" in got, _redis_answer_error),
    "postgres-ssl-request": ("PostgreSQL SSLRequest", lambda: POSTGRES_SSL_REQUEST, lambda got: len(got) >= 1,
                             _postgres_answer_error),
    "mqtt-connect": ("MQTT CONNECT", _mqtt_connect_packet, lambda got: len(got) >= 4, _mqtt_answer_error),
}


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass  # the answer was had; a peer that closed first changes nothing


def _target(address, port, path):
    """What a probe is aimed at: the URL of an HTTP probe, else ``host:port``."""
    where = probe_target(address, port)
    return "http://%s%s" % (where, path) if path else where


def _what(kind, path, target):
    if kind == "edgex-ping":
        return "ping"
    if kind in HTTP_KINDS:
        return "GET %s" % path
    if kind == "tcp":
        return "TCP connect to %s" % target
    return EXCHANGES[kind][0]


def probe_ping(service, timeout):
    """Probe one service record (a ServiceRecord, or anything with name, address, port and
    health_path; node_address, manifest_address and manifest_port feed the address rule)."""
    kind, path = probe_kind(service)
    if not service.address or not service.port:
        return Probe("none")
    started = time.monotonic()
    deadline = started + timeout
    try:
        endpoint = reach(service, deadline, timeout)
    except Unreachable as exc:
        return Probe(kind, _target(service.address, service.port, path), error=str(exc), address=service.address,
                     port=service.port)
    target = _target(endpoint.address, endpoint.port, path)
    probe = Probe(kind, target, address=endpoint.address, port=endpoint.port, mapped=endpoint.mapped)
    what = _what(kind, path, target)
    sock = None
    try:
        sock = connect(endpoint.addresses, endpoint.port, deadline)
        if kind in HTTP_KINDS:
            status, body = http_get(sock, probe_target(endpoint.address, endpoint.port), path, deadline, MAX_BODY)
            probe.http_status = status
            probe.error = _http_answer_error(kind, what, status, body, service.name)
        elif kind in EXCHANGES:
            _name, request, complete, answer_error = EXCHANGES[kind]
            probe.error = answer_error(exchange(sock, request(), deadline, complete))
            if kind == "mqtt-connect" and probe.error is None:
                _send_quietly(sock, MQTT_DISCONNECT)
    except socket.timeout:
        probe.error = "%s timed out after %ss" % (what, float(timeout))
        return probe
    except (OSError, AnswerError) as exc:
        probe.error = "%s failed: %s" % (what, _describe(exc))
        return probe
    finally:
        if sock is not None:
            sock.close()
    probe.latency_ms = _elapsed_ms(started)
    probe.ok = probe.error is None
    return probe
