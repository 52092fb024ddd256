# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""core-keeper provider (EdgeX 4.x) over its REST API, with urllib only.

Routes and shapes are edgex-go's internal/core/keeper (registry and kvs controllers) and
go-mod-core-contracts' dtos; registration and deregistration follow go-mod-registry's keeper
client (GET by serviceId, then POST or PUT; deregistration is a PUT with status HALT, the
registration stays). Discovery is one request, GET /api/v3/registry/all.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from .._errors import (
    InvalidNameError,
    RegistryAuthError,
    RegistryError,
    RegistryServerError,
    RegistryTLSError,
)
from .._names import SAFE_NAME, validate_name
from .._net import client as http
from . import transport
from .model import Check, Discovery, KVEntry, NodeRecord, Registration, Registry, ServiceRecord

API_VERSION = "v3"
API_BASE = "/api/v3"
# keeper's own health states onto the Consul-style statuses of _registry.STATUSES.
# UNKNOWN is what keeper stores before its first check (or for an unrecognised status).
STATUS_MAP = {"UP": "passing", "DOWN": "critical", "UNKNOWN": "unknown"}
HALT = "HALT"
# internal/core/keeper/constants KeyAllowedCharsRegexString: keeper refuses any other key.
# These characters go into a URL path as they are (escaping ; or = would reach keeper's
# key check as %3B, which it refuses).
KEY_ALLOWED = re.compile(r"^[a-zA-Z0-9_~;=./-]+$")


def validate_key(key):
    """Return ``key`` if core-keeper accepts it (and it is safe in a URL path), else raise."""
    if not isinstance(key, str) or not KEY_ALLOWED.match(key) or ".." in key.split("/"):
        raise InvalidNameError("invalid configuration key %r: must match %s without '..' segments"
                               % (key, KEY_ALLOWED.pattern))
    return key


def key_path(key):
    """A validated key as URL path segments: escaped, but for the characters keeper's key check
    allows as they are (escaping ; or = would reach that check as %3B, which it refuses)."""
    return "/".join(http.quote(segment, safe=";=~") for segment in key.split("/"))


def _field(obj, name):
    """Keeper answers with Go's encoding/json, whose field names are matched case-insensitively
    (its Registration nests ``HealthCheck``, the OpenAPI document says ``healthCheck``)."""
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    return None


class KeeperRegistry(Registry):
    """Discovery, registration and configuration against one core-keeper.

    Nodes: keeper has none. One keeper serves one EdgeX deployment, and its registrations
    carry the address *other services* use to reach a service (a compose service name such
    as ``edgex-core-data``), not the machine it runs on. Grouping by that host would turn
    every container into a "gateway", so discovery reports a single node named after the
    keeper endpoint's host, and each service keeps its registered host as its address.
    """

    type = "keeper"
    keeps_names = False  # a registration is its serviceId

    def __init__(self, settings, send=None):
        self.settings = settings
        self.endpoint = "%s://%s:%s" % (settings["scheme"], settings["host"], settings["port"])
        self.timeout = float(settings["timeout"])
        try:
            self.tls = http.tls_context(settings) if settings["scheme"] == "https" else None
        except http.TLSFailure as exc:
            raise RegistryTLSError("cannot set up TLS for core-keeper at %s %s" % (self.endpoint, exc))
        self.send = send or http.request  # tests give a fake
        # keeper knows no nodes: its registrations are those of one gateway, named by the caller
        # (an inventory source's node, a module's node), else after keeper's address.
        self.node_name = settings.get("node_name") or settings["host"]

    # -- HTTP and error mapping ------------------------------------------------------
    def _call(self, method, path, body=None, query=None, accept=()):
        """One request; returns (status, decoded JSON or None). Error statuses in ``accept`` are
        returned, not raised. Failures become the registry errors, naming endpoint and route.
        ``path`` is below /api/v3, its segments already escaped."""
        what = "%s %s%s" % (method, API_BASE, path)
        headers = {"Accept": "application/json"}
        data = None if body is None else json.dumps(body).encode("utf-8")
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.settings.get("token"):
            # EdgeX secure mode: a JWT from secret store, sent as go-mod-registry's AuthInjector does.
            headers["Authorization"] = "Bearer %s" % self.settings["token"]
        response = transport.send("core-keeper", self.endpoint, what, self.send,
                                  method, self.settings["scheme"], self.settings["host"], self.settings["port"],
                                  API_BASE + path, query, headers, data, self.timeout, self.tls)
        status, raw = response.status, response.body
        if status >= 400:
            answer = _json_or_none(raw) if status in accept else None
            # Only keeper's own answer counts (echo's bare 404 means the route is not there).
            if isinstance(answer, dict) and answer.get("statusCode") == status:
                return status, answer
            self._raise_for(what, status, raw)
        return status, self._decode(what, raw, required=status != 204)

    def _decode(self, what, raw, required=True):
        if not raw.strip():
            if required:
                raise RegistryError("core-keeper at %s answered %s with an empty body" % (self.endpoint, what))
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise RegistryError("core-keeper at %s answered %s with something that is not keeper JSON (%s)"
                                % (self.endpoint, what, exc))

    def _raise_for(self, what, status, raw):
        message = _error_message(raw)
        text = "%d %s" % (status, message) if message else str(status)
        if status in (401, 403):
            raise RegistryAuthError("core-keeper at %s refused %s: %s" % (self.endpoint, what, text))
        if status >= 500:
            raise RegistryServerError("core-keeper at %s failed %s: %s" % (self.endpoint, what, text))
        raise RegistryError("core-keeper at %s rejected %s: %s" % (self.endpoint, what, text))

    def _shape_error(self, what, detail):
        return RegistryError("core-keeper at %s answered %s with an unexpected shape (%s)"
                             % (self.endpoint, what, detail))

    # -- discovery -------------------------------------------------------------------
    def discover(self):
        what = "GET %s/registry/all" % API_BASE
        # deregistered=true: halted registrations too, which say "cleanly stopped" (not "unknown here").
        _status, answer = self._call("GET", "/registry/all", query={"deregistered": "true"})
        registrations = answer.get("registrations") if isinstance(answer, dict) else None
        if not isinstance(registrations, list):
            raise self._shape_error(what, "no registrations list")
        node = self.node_name
        services, gaps = [], []
        for registration in registrations:
            current = self._registration(what, registration)
            if not SAFE_NAME.fullmatch(current["serviceId"]):
                # A hostile registration never reaches a URL path or an argv list, nor takes the rest down.
                gaps.append("skipped service %s from core-keeper: not a plain name (%s)"
                            % (repr(current["serviceId"])[:80], SAFE_NAME.pattern))
            elif current["status"] == HALT:
                # Deregistered as go-mod-registry does on a clean stop: deployed, not running, and
                # not checked by keeper any more (a deployed-but-stopped service, as Consul's absence is).
                services.append(replace(self._service(current, node), registered=False, status="unknown", checks=[]))
            else:
                services.append(self._service(current, node))
        return Discovery(source="keeper", nodes=[NodeRecord(name=node, address=node, status="passing")],
                         services=services, gaps=gaps, warnings=list(gaps))

    def _registration(self, what, registration):
        """A keeper Registration DTO as a flat dict; the health check nested or, leniently, inline."""
        if not isinstance(registration, dict):
            raise self._shape_error(what, "a registration is not an object")
        health = _field(registration, "healthCheck")
        if not isinstance(health, dict):
            health = registration
        service_id = _field(registration, "serviceId")
        port = _field(registration, "port")
        if not isinstance(service_id, str) or not service_id or not isinstance(port, int):
            raise self._shape_error(what, "a registration without serviceId or port")
        return {"serviceId": service_id, "status": _field(registration, "status") or "UNKNOWN",
                "host": _field(registration, "host") or "", "port": port,
                "interval": _field(health, "interval") or "", "path": _field(health, "path") or "",
                "type": _field(health, "type") or ""}

    @staticmethod
    def _service(current, node):
        status = STATUS_MAP.get(current["status"], "unknown")
        url = "%s://%s:%d%s" % (current["type"] or "http", current["host"], current["port"], current["path"])
        check = {"id": current["serviceId"], "name": "Health Check: %s" % current["serviceId"], "status": status,
                 "output": "core-keeper status %s (GET %s every %s)" % (current["status"], url, current["interval"]),
                 "service_id": current["serviceId"]}
        return ServiceRecord(name=current["serviceId"], id=current["serviceId"], node=node,
                             address=current["host"] or None, port=current["port"] or None,
                             meta={"keeper_status": current["status"]}, status=status, checks=[check],
                             health_path=current["path"] or None)

    # -- registration ------------------------------------------------------------------
    def _current(self, service_id):
        what = "GET %s/registry/serviceId/%s" % (API_BASE, service_id)
        status, answer = self._call("GET", "/registry/serviceId/%s" % http.path_segment(service_id), accept=(404,))
        if status == 404:
            return None
        registration = answer.get("registration") if isinstance(answer, dict) else None
        return self._registration(what, registration)

    def registration(self, service_id, node=None):
        """keeper's registration of ``service_id`` (one that is HALT counts as none). ``node`` is
        accepted for the Registry interface: keeper has one node."""
        current = self._current(validate_name(service_id, "service id"))
        if current is None or current["status"] == HALT:
            return None
        return Registration(name=service_id, id=service_id, node=self.node_name,
                            address=current["host"] or None, port=current["port"] or None,
                            check=Check(kind=current["type"] or "http", path=current["path"] or None,
                                        interval=current["interval"]))

    def apply_registration(self, registration):
        """POST a new registration or PUT over an existing one, as go-mod-registry does; keeper keeps
        an HTTP health check only, and neither tags nor meta."""
        service_id = validate_name(registration.id, "service id")
        check = registration.check
        problems = []
        if not registration.address or not registration.port:
            problems.append("it needs an address and a port")
        if registration.tags or registration.meta:
            problems.append("keeper keeps neither tags nor meta")
        if check.kind != "http" or check.timeout or check.deregister_critical_after:
            problems.append("keeper runs an http check only, without timeout or deregister_critical_after")
        if problems:
            raise RegistryError("cannot register %s in core-keeper at %s: %s"
                                % (service_id, self.endpoint, "; ".join(problems)))
        # No status, as go-mod-registry: keeper stores UNKNOWN and its own checks decide.
        body = {"apiVersion": API_VERSION, "registration": {
            "serviceId": service_id, "host": registration.address, "port": int(registration.port),
            "healthCheck": {"interval": check.interval, "path": check.path, "type": "http"}}}
        status, _answer = self._call("POST", "/registry", body, accept=(409,))
        if status == 409:  # it is there (halted, different, or it registered itself meanwhile): update it
            self._call("PUT", "/registry", body)

    def deregister(self, service_id, node=None):
        """Mark the registration HALT, as go-mod-registry's Unregister does (keeper keeps it and
        stops checking it). ``node`` is accepted for the Registry interface: keeper has one node.
        Returns True if an active registration existed."""
        validate_name(service_id, "service id")
        current = self._current(service_id)
        if current is None or current["status"] == HALT:
            return False
        self._call("PUT", "/registry", {"apiVersion": API_VERSION, "registration": {
            "serviceId": service_id, "host": current["host"], "port": current["port"], "status": HALT,
            "healthCheck": {"interval": current["interval"], "path": current["path"], "type": current["type"]}}})
        return True

    # -- configuration -----------------------------------------------------------------
    def _kv_read(self, key):
        """[(key, value)] of ``key`` and every key below ``key/`` (keeper answers both), [] when none."""
        validate_key(key)
        what = "GET %s/kvs/key/%s" % (API_BASE, key)
        status, answer = self._call("GET", "/kvs/key/%s" % key_path(key), query={"plaintext": "true"},
                                    accept=(404,))
        if status == 404:
            return []
        entries = answer.get("response") if isinstance(answer, dict) else None
        if not isinstance(entries, list):
            raise self._shape_error(what, "no response list")
        pairs = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise self._shape_error(what, "an entry without a key")
            if not isinstance(entry.get("value"), str):
                raise self._shape_error(what, "a value that is not plain text")
            pairs.append((entry["key"], entry["value"]))
        return pairs

    def kv_get(self, key, recurse=False):
        """Keeper answers a key together with every key below ``key/``; without ``recurse``
        only the key itself is kept."""
        return {k: v for k, v in self._kv_read(key) if recurse or k == key}

    def kv_put(self, key, value):
        validate_key(key)
        if self.kv_get(key).get(key) == value:
            return False
        self._call("PUT", "/kvs/key/%s" % key_path(key), {"apiVersion": API_VERSION, "value": value})
        return True

    # -- configuration with versions: what edgex_config reads and writes ------------------
    # core-keeper keeps no version of a key and has no check-and-set (kv_check_and_set stays
    # False): ``index`` is accepted for the interface and a write is last-writer-wins.
    def kv_entries(self, folder):
        folder = folder.rstrip("/")
        return {k: KVEntry(v, None) for k, v in self._kv_read(folder) if k.startswith(folder + "/")}

    def kv_write(self, key, value, index=None):
        validate_key(key)
        self._call("PUT", "/kvs/key/%s" % key_path(key), {"apiVersion": API_VERSION, "value": value})
        return True

    def kv_delete(self, key, index=None):
        """Only ``key`` itself (no prefixMatch): keeper refuses with 409 when keys sit below it."""
        validate_key(key)
        self._call("DELETE", "/kvs/key/%s" % key_path(key), accept=(404,))
        return True


def _json_or_none(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return None


def _error_message(raw, limit=300):
    """The ``message`` of an EdgeX error body (or echo's), else the start of the body."""
    answer = _json_or_none(raw)
    message = answer.get("message") if isinstance(answer, dict) else raw.decode("utf-8", "replace")
    text = str(message or "").strip()
    return text if len(text) <= limit else text[:limit] + "..."
