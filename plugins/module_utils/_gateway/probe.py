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
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

from .._catalog import default_health_path, infrastructure_probe, is_edgex_api_service
from .._net.dial import ip_literal
from .._net.http import AnswerError, answer_limit, build_request, parse_answer
from .._net.multiplex import Exchange, Job, exchange_all
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


def _mqtt_farewell(answer):
    """A DISCONNECT after a CONNACK that lets us in: the broker ends the session cleanly."""
    return MQTT_DISCONNECT if _mqtt_answer_error(answer) is None else None


# kind -> (what it is called in reasons, request bytes, answer complete?, reason the answer is wrong or None,
#          what to send once answered)
EXCHANGES = {
    "redis-ping": ("redis PING", lambda: b"PING\r\n", lambda got: b"\r\n" in got, _redis_answer_error, None),
    "postgres-ssl-request": ("PostgreSQL SSLRequest", lambda: POSTGRES_SSL_REQUEST, lambda got: len(got) >= 1,
                             _postgres_answer_error, None),
    "mqtt-connect": ("MQTT CONNECT", _mqtt_connect_packet, lambda got: len(got) >= 4, _mqtt_answer_error,
                     _mqtt_farewell),
}


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


def _connect_is_enough(_received):
    """A TCP probe's judge: the connect was the answer."""
    return None


@dataclass
class _Plan:
    """One probe before its I/O: the Probe as far as the address rule tells, the exchange to run
    (None when there is none: no address, or none that can be reached), and how to judge its
    answer (bytes -> the reason it is wrong or None; AnswerError when it is no answer at all)."""

    probe: Probe
    what: str = ""
    exchange: Optional[Exchange] = None
    judge: Optional[Callable[[bytes], Optional[str]]] = None


def _plan(service, deadline, timeout):
    kind, path = probe_kind(service)
    try:
        endpoint = reach(service, deadline, timeout)
    except Unreachable as exc:
        return _Plan(Probe(kind, _target(service.address, service.port, path), error=str(exc),
                           address=service.address, port=service.port))
    target = _target(endpoint.address, endpoint.port, path)
    probe = Probe(kind, target, address=endpoint.address, port=endpoint.port, mapped=endpoint.mapped)
    what = _what(kind, path, target)
    if kind in HTTP_KINDS:
        request = build_request("GET", probe_target(endpoint.address, endpoint.port), path,
                                {"Accept": "application/json"})

        def judge(received):
            status, _headers, body = parse_answer(received, MAX_BODY)
            probe.http_status = status
            return _http_answer_error(kind, what, status, body, service.name)

        exchange = Exchange(endpoint.addresses, endpoint.port, request, limit=answer_limit(MAX_BODY))
    elif kind in EXCHANGES:
        _name, request, complete, judge, farewell = EXCHANGES[kind]
        exchange = Exchange(endpoint.addresses, endpoint.port, request(), complete, farewell=farewell)
    else:
        exchange, judge = Exchange(endpoint.addresses, endpoint.port), _connect_is_enough
    return _Plan(probe, what, exchange, judge)


def _finish(plan, timeout):
    """The Probe of a plan whose exchange has run."""
    probe, exchange = plan.probe, plan.exchange
    if exchange is None:
        return probe
    if isinstance(exchange.error, socket.timeout):
        probe.error = "%s timed out after %ss" % (plan.what, float(timeout))
        return probe
    try:
        if exchange.error is not None:
            raise exchange.error
        probe.error = plan.judge(exchange.received)
    except (OSError, AnswerError) as exc:
        probe.error = "%s failed: %s" % (plan.what, _describe(exc))
        return probe
    probe.latency_ms = round((exchange.finished - exchange.started) * 1000.0, 1)
    probe.ok = probe.error is None
    return probe


def probe_services(services, timeout, max_in_flight=32):
    """The Probe of each service record (a ServiceRecord, or anything with name, address, port and
    health_path; node_address, manifest_address and manifest_port feed the address rule), in their
    order, at most ``max_in_flight`` at once, all in this thread (``_net/multiplex.py``). Each probe
    has ``timeout`` seconds from its start for the name lookups, the connect and the whole answer."""
    services = list(services)
    plans = [_Plan(Probe("none")) if not service.address or not service.port else None for service in services]

    def start(index, deadline):
        plans[index] = _plan(services[index], deadline, timeout)
        return plans[index].exchange

    # a registered name needs a lookup, which may wait up to the deadline: in a helper thread
    exchange_all([Job(partial(start, index), ip_literal(services[index].address) is None)
                  for index, plan in enumerate(plans) if plan is None], max_in_flight, timeout)
    return [_finish(plan, timeout) for plan in plans]


def probe_ping(service, timeout):
    """The Probe of one service record (see probe_services)."""
    return probe_services([service], timeout, 1)[0]
