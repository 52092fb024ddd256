#!/usr/bin/env python3
"""A Consul HTTP API emulator for the edgex.sysmgmt test-bed.

No Consul binary can be installed on the test machines, so this program answers the
part of Consul's HTTP API that the collection and EdgeX services use, with Consul's
JSON shapes, status codes, error bodies and headers (checked against the API docs and
Consul 1.16's agent/*_endpoint.go, agent/consul/*_endpoint.go, agent/consul/state/kvs.go):
catalog, health, agent (services and checks), KV (recurse, keys/separator, raw, cas,
flags, locks with sessions, tombstones), sessions, status, ACLs (tokens with rules,
filtered lists with X-Consul-Results-Filtered-By-ACLs), blocking queries with
X-Consul-Index, HTTP/TTL checks that really run, DeregisterCriticalServiceAfter that
really reaps, and HTTPS.

One process can be several agents: every ``--node NAME=ADDR[@DC]`` listens on ADDR:PORT,
and agent endpoints act on the node whose address the request arrived at. Datacenters are
chosen with ``?dc=`` as in Consul (an unknown one answers 500 "No path to datacenter").

Not Consul (test control, never behind ACLs, never damaged by faults), under /_emulator/:
  POST /_emulator/fault            {"mode": M|null, "path": regex, "method", "delay", "rate",
                                    "status", "times", "datacenter"}  (modes: emulator_http.FAULT_MODES;
                                    without "path" the global fault of every /v1/ path)
  POST /_emulator/node             {"name", "address", "datacenter", "meta"}
  POST /_emulator/node/<name>/serf {"status": "passing"|"critical"}
  POST /_emulator/seed             {"nodes": N, "services": M, "datacenter": "dc1",
                                    "service_address": "node"|"container"|"none",
                                    "checks": "passing"|"critical"|"none", "node_prefix": "gw"}
  POST /_emulator/catalog          {"datacenter": dc, "nodes": [{"name", "address", "meta",
                                    "services": [{"id", "name", "port", "tags", "meta",
                                                  "check": {"status", "output"}}]}]}
                                   many nodes and registrations in one request (a simulated fleet)
  POST /_emulator/token            {"rules": {...}, "description": ..., "secret": ...} -> token
  GET  /_emulator/stats            {"requests": N, "by_path": {...}};  POST /_emulator/stats/reset

With ``--data-file`` what agents registered (services, checks) and KV are saved on SIGTERM
and restored at start, as a real agent's data dir keeps them across a restart.

Known differences from Consul are listed in the collection's README ("What the Consul
emulator does not emulate").
Standard library only (Python 3.9+), so it also runs inside the stand-in image.
"""

import argparse
import base64
import gc
import json
import os
import posixpath
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from emulator_http import (EmulatorHandler, FaultError, FaultRules, RequestStats, Server, go_json,
                           tls_server_context)

CONSUL_VERSION = "1.16.6"
SERVER_PORT = 8300
DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
KV_MAX_VALUE_SIZE = 512 * 1024
DEFAULT_LOCK_DELAY = 15.0
ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"
EDGEX_SEED_SERVICES = (
    "core-data", "core-metadata", "core-command", "support-notifications", "support-scheduler",
    "device-virtual", "device-rest", "app-rules-engine", "core-common-config-bootstrapper",
    "ui", "rules-engine", "device-modbus", "device-mqtt", "app-mqtt-export", "device-onvif-camera",
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# The Index handler's answer for a path no endpoint serves (agent/http.go).
NO_ENDPOINT = "Invalid URL path: not a recognized HTTP API endpoint\n"


class APIError(Exception):
    """An error answer: Consul sends these as text/plain bodies."""

    def __init__(self, status, body, headers=None):
        Exception.__init__(self, body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def parse_duration(value, field="duration"):
    """Go duration strings ("10s", "1m30s", "500ms"); a bare number means seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1e9 if value > 1e6 else float(value)  # Go JSON may send ns
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise APIError(400, "Invalid %s: time: invalid duration %s" % (field, json.dumps(text)))
    return sum(float(n) * _UNITS[u] for n, u in parts)


def go_parse_duration(text):
    """time.ParseDuration for query parameters (?wait=): None when Go would refuse it."""
    if text == "0":
        return 0.0
    parts = _DURATION.findall(text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_uint(text):
    """strconv.ParseUint(text, 10, 64); its error text when it refuses."""
    if not re.fullmatch(r"[0-9]+", text or "") or int(text) >= 2 ** 64:
        what = "value out of range" if re.fullmatch(r"[0-9]+", text or "") else "invalid syntax"
        raise APIError(500, 'strconv.ParseUint: parsing %s: %s' % (json.dumps(text), what))
    return int(text)


def parse_bool(text):
    """strconv.ParseBool; None when it refuses."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def format_duration(seconds):
    if seconds is None:
        return ""
    if seconds == int(seconds):
        return "%ds" % seconds
    return "%dms" % round(seconds * 1000)


def field(body, name, default=None):
    """Consul accepts its JSON keys case-insensitively (and snake_case in many places)."""
    if name in body:
        return body[name]
    lowered = name.lower()
    for key, value in body.items():
        if key.lower() == lowered or key.replace("_", "").lower() == lowered:
            return value
    return default


def go_clean_path(path):
    """path.Clean as Go's ServeMux (before Go 1.22) applies it to the decoded path, keeping a
    trailing slash: a request whose path changes is redirected to the clean one."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    cleaned = re.sub(r"^/+", "/", posixpath.normpath(path))
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def go_query_encode(pairs):
    """url.Values.Encode: keys sorted, QueryEscape'd (Conflicting flags echoes it)."""
    out = []
    for key in sorted(pairs):
        for value in pairs[key]:
            out.append("%s=%s" % (urllib.parse.quote_plus(key), urllib.parse.quote_plus(value)))
    return "&".join(out)


# --------------------------------------------------------------------------- state


class Check(object):
    __slots__ = ("node", "check_id", "name", "status", "notes", "output", "service_id", "service_name",
                 "service_tags", "type", "http", "tcp", "method", "header", "interval", "timeout", "ttl",
                 "deregister_after", "create_index", "modify_index", "critical_since", "ttl_deadline",
                 "next_run", "running", "tls_skip_verify")

    def to_json(self):
        return {
            "Node": self.node,
            "CheckID": self.check_id,
            "Name": self.name,
            "Status": self.status,
            "Notes": self.notes,
            "Output": self.output,
            "ServiceID": self.service_id,
            "ServiceName": self.service_name,
            "ServiceTags": list(self.service_tags),
            "Type": self.type,
            "Interval": format_duration(self.interval),
            "Timeout": format_duration(self.timeout),
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }

    def agent_json(self):
        data = self.to_json()
        for key in ("CreateIndex", "ModifyIndex"):
            data.pop(key)
        return data


def ip_kind(address):
    """"ipv4", "ipv6" or None (a host name, or empty)."""
    try:
        socket.inet_pton(socket.AF_INET, address)
        return "ipv4"
    except (OSError, TypeError, ValueError):
        pass
    try:
        socket.inet_pton(socket.AF_INET6, address)
        return "ipv6"
    except (OSError, TypeError, ValueError):
        return None


def omit_empty(data, *keys):
    """encoding/json's omitempty for the maps that carry it."""
    for key in keys:
        if not data.get(key):
            data.pop(key, None)
    return data


class Service(object):
    __slots__ = ("node", "id", "name", "tags", "address", "port", "meta", "weights", "enable_tag_override",
                 "create_index", "modify_index")

    def tagged_addresses(self):
        """What the agent adds (agent.go addServiceInternal): lan/wan_ipv4 (or _ipv6) with
        Address/Port keys, only when Address is an IP; a host name (edgex-core-data) gets none."""
        kind = ip_kind(self.address)
        if kind is None:
            return {}
        entry = {"Address": self.address, "Port": self.port}
        return {"lan_" + kind: dict(entry), "wan_" + kind: dict(entry)}

    def health_json(self, node):
        return omit_empty({
            "ID": self.id,
            "Service": self.name,
            "Tags": list(self.tags),
            "Address": self.address,
            "TaggedAddresses": self.tagged_addresses(),
            "Meta": dict(self.meta),
            "Port": self.port,
            "Weights": dict(self.weights),
            "EnableTagOverride": self.enable_tag_override,
            "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "Connect": {},
            "PeerName": "",
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }, "TaggedAddresses")

    def agent_json(self, datacenter):
        return omit_empty({
            "ID": self.id,
            "Service": self.name,
            "Tags": list(self.tags),
            "Meta": dict(self.meta),
            "Port": self.port,
            "Address": self.address,
            "TaggedAddresses": self.tagged_addresses(),
            "Weights": dict(self.weights),
            "EnableTagOverride": self.enable_tag_override,
            "Datacenter": datacenter,
        }, "TaggedAddresses")

    def catalog_json(self, node):
        return omit_empty({
            "ID": node.id,
            "Node": node.name,
            "Address": node.address,
            "Datacenter": node.datacenter,
            "TaggedAddresses": node.tagged_addresses(),
            "NodeMeta": dict(node.meta),
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
            "ServiceAddress": self.address,
            "ServiceEnableTagOverride": self.enable_tag_override,
            "ServiceID": self.id,
            "ServiceName": self.name,
            "ServicePort": self.port,
            "ServiceMeta": dict(self.meta),
            "ServiceTaggedAddresses": self.tagged_addresses(),
            "ServiceTags": list(self.tags),
            "ServiceWeights": dict(self.weights),
            "ServiceProxy": {"DestinationServiceName": "", "DestinationServiceID": "", "LocalServiceAddress": "",
                             "LocalServicePort": 0, "Config": None, "Upstreams": None,
                             "Mode": "", "MeshGateway": {}, "Expose": {}},
            "ServiceConnect": {"Native": False, "Proxy": None},
        }, "ServiceTaggedAddresses")


class Node(object):
    __slots__ = ("id", "name", "address", "datacenter", "meta", "create_index", "modify_index")

    def tagged_addresses(self):
        return {"lan": self.address, "lan_ipv4": self.address, "wan": self.address, "wan_ipv4": self.address}

    def to_json(self):
        return {
            "ID": self.id,
            "Node": self.name,
            "Address": self.address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": self.tagged_addresses(),
            "Meta": dict(self.meta),
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


class Datacenter(object):
    def __init__(self, name):
        self.name = name
        self.nodes = {}            # name -> Node
        self.services = {}         # (node, service id) -> Service
        self.by_name = {}          # service name -> {(node, id)}
        self.checks = {}           # (node, check id) -> Check
        self.checks_by_service = {}  # (node, service id) -> {check id}
        self.kv = {}               # key -> DirEntry as a dict
        self.tombstones = {}       # deleted key -> the index that deleted it (keeps prefix indexes moving)
        self.sessions = {}         # session id -> session dict
        self.lock_delays = {}      # key -> time before which no session may lock it again
        self.tables = {"nodes": 1, "services": 1, "checks": 1, "kvs": 1, "sessions": 1}


class Token(object):
    """A token with Consul's rule kinds as JSON: {"service_prefix": {"": "read"}, "node": {"gw1":
    "write"}, "key_prefix": {"edgex/": "deny"}, "agent_prefix": ..., "session_prefix": ...}."""

    def __init__(self, secret, accessor, description, rules, management=False):
        self.secret = secret
        self.accessor = accessor
        self.description = description
        self.rules = rules or {}
        self.management = management

    def decision(self, resource, name):
        """The policy of the most specific rule for ``name`` (an exact rule beats a prefix rule
        of the same length, as in Consul's radix tree), or None when no rule matches."""
        best, best_len = None, -1
        for kind in (resource, resource + "_prefix"):
            for prefix, policy in (self.rules.get(kind) or {}).items():
                exact = kind == resource
                if (exact and name == prefix) or (not exact and name.startswith(prefix)):
                    length = len(prefix) + (1 if exact else 0)
                    if length > best_len:
                        best, best_len = policy, length
        return best

    def rules_below(self, resource, prefix):
        """Policies of every rule more specific than ``prefix`` (KeyWritePrefix looks at them)."""
        found = []
        for kind in (resource, resource + "_prefix"):
            for name, policy in (self.rules.get(kind) or {}).items():
                if name.startswith(prefix) and name != prefix:
                    found.append(policy)
        return found


class State(object):
    def __init__(self, primary_dc, acl_master_token=None, default_policy="allow", default_token=None):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.index = 10
        self.primary_dc = primary_dc
        self.dcs = {}
        self.leader = "127.0.0.1:%d" % SERVER_PORT
        self.faults = FaultRules()
        self.stats = RequestStats()
        # What agents were asked to register, as a real agent keeps it in its data dir and
        # re-registers it after a restart: (dc, node, "service"|"check", id) -> body.
        self.agent_definitions = {}
        self.acl_enabled = acl_master_token is not None
        # The header is sent whether ACLs are on or not (config default "allow").
        self.default_policy = default_policy if self.acl_enabled else "allow"
        # acl.tokens.default: what a request without a token acts as (and why the filtered
        # header then appears: it is masked only for a blank token).
        self.default_token = default_token or ""
        self.tokens = {}
        if self.acl_enabled:
            self.tokens[acl_master_token] = Token(acl_master_token, str(uuid.uuid4()), "Initial Management Token",
                                                  None, management=True)
            self.tokens["anonymous"] = Token("anonymous", ANONYMOUS_ACCESSOR, "Anonymous Token", None)

    # -- indexes -------------------------------------------------------------
    def bump(self, dc, *tables):
        self.index += 1
        for table in tables:
            dc.tables[table] = self.index
        self.changed.notify_all()
        return self.index

    def dc(self, name=None):
        name = name or self.primary_dc
        if name not in self.dcs:
            raise APIError(500, "No path to datacenter")
        return self.dcs[name]

    # -- nodes ---------------------------------------------------------------
    def add_node(self, name, address, datacenter=None, meta=None, server=False):
        with self.lock:
            datacenter = datacenter or self.primary_dc
            dc = self.dcs.setdefault(datacenter, Datacenter(datacenter))
            node = dc.nodes.get(name)
            index = self.bump(dc, "nodes", "checks")
            if node is None:
                node = Node()
                node.id = str(uuid.uuid5(uuid.NAMESPACE_DNS, "%s.%s" % (name, datacenter)))
                node.name = name
                node.create_index = index
                dc.nodes[name] = node
            node.address = address
            node.datacenter = datacenter
            node.meta = dict(meta or {"consul-network-segment": ""})
            node.modify_index = index
            serf = self._new_check(dc, name, {"CheckID": "serfHealth", "Name": "Serf Health Status",
                                              "Status": "passing"}, index)
            serf.output = "Agent alive and reachable"
            serf.type = ""
            if server:
                self._put_service(dc, name, {"ID": "consul", "Name": "consul", "Port": SERVER_PORT,
                                             "Address": ""}, index)
            return node

    def remove_node(self, datacenter, name):
        """A node and everything registered on it, as /v1/catalog/deregister without IDs does."""
        with self.lock:
            dc = self.dc(datacenter)
            if dc.nodes.pop(name, None) is None:
                return
            for node_name, service_id in [k for k in dc.services if k[0] == name]:
                self.deregister_service(datacenter, node_name, service_id)
            for key in [k for k in dc.checks if k[0] == name]:
                dc.checks.pop(key)
            self.bump(dc, "nodes", "services", "checks")

    def set_serf(self, datacenter, name, status):
        with self.lock:
            dc = self.dc(datacenter)
            check = dc.checks.get((name, "serfHealth"))
            if check is None:
                raise APIError(404, "unknown node %s" % name)
            self._set_status(dc, check, status,
                             "Agent alive and reachable" if status == "passing" else "Agent not live or unreachable")

    # -- services and checks -------------------------------------------------
    def _put_service(self, dc, node_name, body, index):
        service_name = field(body, "Name")
        if not service_name:
            raise APIError(400, "Invalid Service Meta: Missing service name")
        service_id = field(body, "ID") or service_name
        key = (node_name, service_id)
        old = dc.services.get(key)
        if old is not None and old.name != service_name:
            dc.by_name.get(old.name, set()).discard(key)
        service = old or Service()
        service.node = node_name
        service.id = service_id
        service.name = service_name
        service.tags = list(field(body, "Tags") or [])
        service.address = field(body, "Address") or ""
        service.port = int(field(body, "Port") or 0)
        service.meta = dict(field(body, "Meta") or {})
        service.weights = dict(field(body, "Weights") or {"Passing": 1, "Warning": 1})
        service.enable_tag_override = bool(field(body, "EnableTagOverride", False))
        if old is None:
            service.create_index = index
        service.modify_index = index
        dc.services[key] = service
        dc.by_name.setdefault(service_name, set()).add(key)
        for check in self._service_checks(dc, node_name, service_id):
            check.service_name = service_name
            check.service_tags = list(service.tags)
        return service

    def _service_checks(self, dc, node_name, service_id):
        ids = dc.checks_by_service.get((node_name, service_id), ())
        return [dc.checks[(node_name, cid)] for cid in sorted(ids)]

    def _new_check(self, dc, node_name, body, index):
        check_id = field(body, "CheckID") or field(body, "ID") or field(body, "Name")
        name = field(body, "Name")
        if not name:
            raise APIError(400, "Missing check name")
        service_id = field(body, "ServiceID") or ""
        service = None
        if service_id:
            service = dc.services.get((node_name, service_id))
            if service is None:
                raise APIError(500, 'ServiceID "%s" does not exist' % service_id)
        key = (node_name, check_id)
        old = dc.checks.get(key)
        check = old or Check()
        check.node = node_name
        check.check_id = check_id
        check.name = name
        check.notes = field(body, "Notes") or ""
        check.service_id = service_id
        check.service_name = service.name if service else ""
        check.service_tags = list(service.tags) if service else []
        check.http = field(body, "HTTP") or ""
        check.tcp = field(body, "TCP") or ""
        check.method = field(body, "Method") or "GET"
        check.header = field(body, "Header") or {}
        check.tls_skip_verify = bool(field(body, "TLSSkipVerify", False))
        check.interval = parse_duration(field(body, "Interval"), "Interval")
        check.timeout = parse_duration(field(body, "Timeout"), "Timeout")
        check.ttl = parse_duration(field(body, "TTL"), "TTL")
        check.deregister_after = parse_duration(field(body, "DeregisterCriticalServiceAfter"),
                                                "DeregisterCriticalServiceAfter")
        if (check.http or check.tcp) and not check.interval:
            raise APIError(400, "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or gRPC checks")
        check.type = "http" if check.http else ("tcp" if check.tcp else ("ttl" if check.ttl else ""))
        if old is None:
            check.status = field(body, "Status") or "critical"
            check.output = ""
            check.create_index = index
            check.critical_since = time.time() if check.status == "critical" else None
        elif field(body, "Status"):
            check.status = field(body, "Status")
        check.modify_index = index
        check.ttl_deadline = time.time() + check.ttl if check.ttl else None
        check.next_run = time.time() if check.http or check.tcp else None
        check.running = False
        dc.checks[key] = check
        if service_id:
            dc.checks_by_service.setdefault((node_name, service_id), set()).add(check_id)
        return check

    def register_service(self, datacenter, node_name, body):
        with self.lock:
            dc = self.dc(datacenter)
            index = self.bump(dc, "services", "checks")
            checks = []
            if field(body, "Check"):
                checks.append(field(body, "Check"))
            checks.extend(field(body, "Checks") or [])
            for check in checks:  # validate before changing anything
                if field(check, "Interval"):
                    parse_duration(field(check, "Interval"), "Interval")
            service = self._put_service(dc, node_name, body, index)
            for number, check in enumerate(checks, 1):
                check = dict(check)
                check.setdefault("ServiceID", service.id)
                if not (field(check, "CheckID") or field(check, "ID")):
                    suffix = "" if len(checks) == 1 else ":%d" % number
                    check["CheckID"] = "service:%s%s" % (service.id, suffix)
                if not field(check, "Name"):
                    check["Name"] = "Service '%s' check" % service.name
                self._new_check(dc, node_name, check, index)
            return service

    def deregister_service(self, datacenter, node_name, service_id):
        with self.lock:
            dc = self.dc(datacenter)
            key = (node_name, service_id)
            service = dc.services.pop(key, None)
            if service is None:
                raise APIError(404, 'Unknown service ID "%s". Ensure that the service ID is passed, '
                                    'not the service name.' % service_id)
            self.agent_definitions.pop((dc.name, node_name, "service", service_id), None)
            dc.by_name.get(service.name, set()).discard(key)
            if not dc.by_name.get(service.name):
                dc.by_name.pop(service.name, None)
            for check_id in dc.checks_by_service.pop(key, set()):
                dc.checks.pop((node_name, check_id), None)
                self.agent_definitions.pop((dc.name, node_name, "check", check_id), None)
            self.bump(dc, "services", "checks")

    def register_check(self, datacenter, node_name, body):
        with self.lock:
            dc = self.dc(datacenter)
            parse_duration(field(body, "Interval"), "Interval")
            index = self.bump(dc, "checks")
            return self._new_check(dc, node_name, body, index)

    def deregister_check(self, datacenter, node_name, check_id):
        with self.lock:
            dc = self.dc(datacenter)
            check = dc.checks.pop((node_name, check_id), None)
            if check is None:
                raise APIError(404, 'Unknown check ID "%s". Ensure that the check ID is passed, not the check name.'
                               % check_id)
            self.agent_definitions.pop((dc.name, node_name, "check", check_id), None)
            if check.service_id:
                dc.checks_by_service.get((node_name, check.service_id), set()).discard(check_id)
            self.bump(dc, "checks")

    def _set_status(self, dc, check, status, output):
        if check.status == status and check.output == output:
            return
        if status == "critical" and check.status != "critical":
            check.critical_since = time.time()
        elif status != "critical":
            check.critical_since = None
        changed_status = check.status != status
        check.status = status
        check.output = output
        # Consul writes output-only changes lazily; status changes at once.
        if changed_status or check.type == "ttl":
            check.modify_index = self.bump(dc, "checks")

    def update_ttl(self, datacenter, node_name, check_id, status, note):
        with self.lock:
            dc = self.dc(datacenter)
            check = dc.checks.get((node_name, check_id))
            if check is None:
                raise APIError(404, 'Unknown check ID "%s". Ensure that the check ID is passed, not the check name.'
                               % check_id)
            if check.type != "ttl":
                raise APIError(500, 'Check "%s" is not a TTL check' % check_id)
            check.ttl_deadline = time.time() + check.ttl
            self._set_status(dc, check, status, note or "")

    # -- KV (agent/consul/state/kvs.go) ------------------------------------------
    @staticmethod
    def kv_json(entry):
        """structs.DirEntry as JSON: Session only when held (omitempty), Value base64 or null."""
        data = {"LockIndex": entry["LockIndex"], "Key": entry["Key"], "Flags": entry["Flags"],
                "Value": entry["Value"]}
        if entry.get("Session"):
            data["Session"] = entry["Session"]
        data["CreateIndex"] = entry["CreateIndex"]
        data["ModifyIndex"] = entry["ModifyIndex"]
        return data

    def _kv_write(self, dc, key, value, flags, session, lock_index, keep_session):
        """kvsSetTxn: CreateIndex kept, Session kept unless a lock op sets it, and nothing
        written (no index moves) when the entry would not change."""
        existing = dc.kv.get(key)
        if keep_session:
            session = existing.get("Session", "") if existing else ""
        entry = {"LockIndex": lock_index, "Key": key, "Flags": flags, "Value": value, "Session": session or ""}
        if existing is not None and all(existing.get(k) == entry[k] for k in ("LockIndex", "Flags", "Value",
                                                                                "Session")):
            return existing
        index = self.bump(dc, "kvs")
        entry["CreateIndex"] = existing["CreateIndex"] if existing else index
        entry["ModifyIndex"] = index
        dc.kv[key] = entry
        dc.tombstones.pop(key, None)
        return entry

    def kv_set(self, datacenter, key, value, flags):
        with self.lock:
            # A plain set carries LockIndex 0: it resets a past lock count, as Consul does.
            self._kv_write(self.dc(datacenter), key, value, flags, "", 0, keep_session=True)
            return True

    def kv_cas(self, datacenter, key, value, flags, cas):
        with self.lock:
            dc = self.dc(datacenter)
            existing = dc.kv.get(key)
            if (cas == 0 and existing is not None) or (cas != 0 and existing is None) \
                    or (existing is not None and cas != 0 and existing["ModifyIndex"] != cas):
                return False
            self._kv_write(dc, key, value, flags, "", 0, keep_session=True)
            return True

    def kv_lock(self, datacenter, key, value, flags, session_id):
        with self.lock:
            dc = self.dc(datacenter)
            if not session_id:
                raise APIError(500, "missing session")
            if session_id not in dc.sessions:
                raise APIError(500, "invalid session %s" % json.dumps(session_id))
            if dc.lock_delays.get(key, 0) > time.time():
                return False  # kvsPreApply: "Rejecting lock of key due to lock-delay"
            existing = dc.kv.get(key)
            if existing is not None:
                if existing.get("Session") == session_id:
                    lock_index = existing["LockIndex"]
                elif existing.get("Session"):
                    return False
                else:
                    lock_index = existing["LockIndex"] + 1
            else:
                lock_index = 1
            self._kv_write(dc, key, value, flags, session_id, lock_index, keep_session=False)
            return True

    def kv_unlock(self, datacenter, key, value, flags, session_id):
        with self.lock:
            dc = self.dc(datacenter)
            if not session_id:
                raise APIError(500, "missing session")
            existing = dc.kv.get(key)
            if existing is None or existing.get("Session") != session_id:
                return False
            self._kv_write(dc, key, value, flags, "", existing["LockIndex"], keep_session=False)
            return True

    def _kv_remove(self, dc, keys):
        if not keys:
            return
        index = self.bump(dc, "kvs")
        for key in keys:
            del dc.kv[key]
            dc.tombstones[key] = index

    def kv_delete(self, datacenter, key):
        with self.lock:
            dc = self.dc(datacenter)
            self._kv_remove(dc, [key] if key in dc.kv else [])
            return True

    def kv_delete_cas(self, datacenter, key, cas):
        with self.lock:
            dc = self.dc(datacenter)
            existing = dc.kv.get(key)
            if existing is None or existing["ModifyIndex"] != cas:
                return existing is None  # kvsDeleteCASTxn: deleting what is not there succeeds
            self._kv_remove(dc, [key])
            return True

    def kv_delete_tree(self, datacenter, prefix):
        with self.lock:
            dc = self.dc(datacenter)
            self._kv_remove(dc, sorted(k for k in dc.kv if k.startswith(prefix)))
            return True

    @staticmethod
    def kv_key_index(dc, key):
        """KVS.Get: the entry's ModifyIndex, or the KV table's index when it is missing."""
        entry = dc.kv.get(key)
        return entry["ModifyIndex"] if entry else dc.tables["kvs"]

    @staticmethod
    def kv_prefix_index(dc, prefix):
        """kvsListTxn: the highest ModifyIndex or tombstone under the prefix; the table's index
        for the empty prefix or when nothing was ever under it."""
        if prefix == "":
            return dc.tables["kvs"]
        found = [e["ModifyIndex"] for k, e in dc.kv.items() if k.startswith(prefix)]
        found += [i for k, i in dc.tombstones.items() if k.startswith(prefix)]
        return max(found) if found else dc.tables["kvs"]

    # -- sessions (enough for KV locks) -------------------------------------------
    def session_create(self, datacenter, node_name, body):
        with self.lock:
            dc = self.dc(datacenter)
            node = field(body, "Node") or node_name
            if node not in dc.nodes:
                raise APIError(500, 'Failed to create session: node "%s" does not exist' % node)
            behavior = field(body, "Behavior") or "release"
            if behavior not in ("release", "delete"):
                raise APIError(400, "Invalid Behavior setting '%s'" % behavior)
            lock_delay = parse_duration(field(body, "LockDelay"), "LockDelay")
            ttl = field(body, "TTL") or ""
            index = self.bump(dc, "sessions")
            session = {"ID": str(uuid.uuid4()), "Name": field(body, "Name") or "", "Node": node,
                       "LockDelay": int((DEFAULT_LOCK_DELAY if lock_delay is None else lock_delay) * 1e9),
                       "Behavior": behavior, "TTL": ttl, "NodeChecks": ["serfHealth"], "ServiceChecks": None,
                       "CreateIndex": index, "ModifyIndex": index}
            dc.sessions[session["ID"]] = session
            return session

    def session_destroy(self, datacenter, session_id):
        """Invalidate: held keys are released (or deleted) and get the session's lock-delay."""
        with self.lock:
            dc = self.dc(datacenter)
            session = dc.sessions.pop(session_id, None)
            if session is None:
                return True
            self.bump(dc, "sessions")
            held = sorted(k for k, e in dc.kv.items() if e.get("Session") == session_id)
            if session["LockDelay"]:
                for key in held:
                    dc.lock_delays[key] = time.time() + session["LockDelay"] / 1e9
            if session["Behavior"] == "delete":
                self._kv_remove(dc, held)
            else:
                for key in held:
                    entry = dc.kv[key]
                    self._kv_write(dc, key, entry["Value"], entry["Flags"], "", entry["LockIndex"], keep_session=False)
            return True

    # -- persistence (--data-file) ---------------------------------------------
    def remember(self, datacenter, node_name, kind, ident, body):
        with self.lock:
            self.agent_definitions[(self.dc(datacenter).name, node_name, kind, ident)] = body

    def save(self, path):
        """Agent definitions and KV, written atomically (a restart must not see half a file)."""
        with self.lock:
            data = {
                "agent": [[dc, node, kind, ident, body]
                          for (dc, node, kind, ident), body in sorted(self.agent_definitions.items())],
                # values stay base64; sessions (and so locks) do not survive a restart
                "kv": {name: [self.kv_json(e) for e in dc.kv.values()] for name, dc in self.dcs.items()},
            }
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle)
        os.replace(path + ".tmp", path)

    def load(self, path):
        """Re-register what the agents had (services before their checks) and restore KV."""
        try:
            with open(path) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return
        for dc, node, kind, ident, body in sorted(data["agent"], key=lambda d: d[2] != "service"):
            if dc in self.dcs and node in self.dcs[dc].nodes:
                try:
                    (self.register_service if kind == "service" else self.register_check)(dc, node, body)
                except APIError as exc:  # as an agent does: skip a definition it cannot restore
                    sys.stderr.write("consul-emulator: not restoring %s %s: %s\n" % (kind, ident, exc.body))
                    continue
                self.remember(dc, node, kind, ident, body)
        for dc, entries in data["kv"].items():
            for entry in entries:
                if dc in self.dcs:
                    self.kv_set(dc, entry["Key"], entry["Value"], entry["Flags"])

    # -- seeding ---------------------------------------------------------------
    def seed(self, nodes, services, datacenter=None, service_address="node", checks="passing", node_prefix=None):
        """N synthetic nodes x M EdgeX-named services (no running checks).

        service_address: "node" (the node's IP), "container" (edgex-<service>, as EdgeX in
        Docker registers: resolvable only inside the compose network) or "none" (empty);
        checks: "passing", "critical" or "none" (registrations with no service check at all).
        """
        if service_address not in ("node", "container", "none"):
            raise APIError(400, "service_address is node, container or none")
        if checks not in ("passing", "critical", "none"):
            raise APIError(400, "checks is passing, critical or none")
        names = list(EDGEX_SEED_SERVICES[:services])
        names += ["service-%02d" % i for i in range(len(names), services)]
        with self.lock:
            datacenter = datacenter or self.primary_dc
            dc = self.dcs.setdefault(datacenter, Datacenter(datacenter))
            start = len(dc.nodes)
            prefix = node_prefix or "gw-%s-" % datacenter
            for i in range(start, start + nodes):
                name = "%s%05d" % (prefix, i)
                address = "127.%d.%d.%d" % (100 + (i >> 16) % 100, (i >> 8) & 255, i & 255)
                self.add_node(name, address, datacenter, {"edgex-site": "site-%d" % (i % 10)})
                index = self.index
                for port, service in enumerate(names):
                    registered = {"node": address, "container": "edgex-%s" % service, "none": ""}[service_address]
                    self._put_service(dc, name, {"ID": service, "Name": service, "Address": registered,
                                                 "Port": 59800 + port, "Tags": ["edgex"]}, index)
                    if checks == "none":
                        continue
                    check = self._new_check(dc, name, {"CheckID": "service:%s" % service,
                                                       "Name": "Health Check: %s" % service,
                                                       "ServiceID": service, "Status": checks}, index)
                    url = "http://%s:%d/api/v3/ping" % (registered or address, 59800 + port)
                    check.output = ("HTTP GET %s: 200 OK" % url if checks == "passing"
                                    else 'Get "%s": dial tcp: lookup %s: no such host' % (url, registered or address))
            self.bump(dc, "nodes", "services", "checks")
            return len(dc.nodes)

    def seed_catalog(self, datacenter, nodes):
        """Nodes with their services, as go-mod-registry registers them (service address = node
        address, one check per service named after it), in one step. A check's status and output
        are fixed: nothing runs it, so thousands of simulated services cost no check traffic."""
        with self.lock:
            datacenter = datacenter or self.primary_dc
            dc = self.dcs.setdefault(datacenter, Datacenter(datacenter))
            for node in nodes:
                self.add_node(node["name"], node["address"], datacenter, node.get("meta"))
                index = self.index
                for service in node.get("services", ()):
                    service_id = service.get("id") or service["name"]
                    self._put_service(dc, node["name"], {
                        "ID": service_id, "Name": service["name"], "Address": service.get("address", node["address"]),
                        "Port": service["port"], "Tags": service.get("tags") or [], "Meta": service.get("meta") or {}},
                        index)
                    check = service.get("check") or {}
                    created = self._new_check(dc, node["name"], {
                        "CheckID": service_id, "Name": "Health Check: %s" % service["name"],
                        "Notes": "Check the health of the API", "ServiceID": service_id,
                        "Status": check.get("status", "passing")}, index)
                    created.output = check.get("output", "")
            self.bump(dc, "nodes", "services", "checks")
            return len(dc.nodes)


# --------------------------------------------------------------------------- checks


class CheckRunner(threading.Thread):
    """Runs HTTP and TCP checks on their interval, expires TTLs and reaps critical services."""

    def __init__(self, state):
        threading.Thread.__init__(self, daemon=True, name="check-runner")
        self.state = state
        self.pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="http-check")
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.1):
            now = time.time()
            with self.state.lock:
                for dc in list(self.state.dcs.values()):
                    self._tick(dc, now)

    def _tick(self, dc, now):
        reap = []
        for check in list(dc.checks.values()):
            if (check.http or check.tcp) and not check.running and check.next_run is not None \
                    and check.next_run <= now:
                check.running = True
                check.next_run = now + check.interval
                self.pool.submit(self._probe, dc, check)
            if check.ttl_deadline is not None and check.ttl_deadline <= now and check.status != "critical":
                self.state._set_status(dc, check, "critical", "TTL expired")
            if (check.deregister_after is not None and check.status == "critical" and check.service_id
                    and check.critical_since is not None and now - check.critical_since >= check.deregister_after):
                reap.append(check)
        for check in reap:
            if (check.node, check.service_id) in dc.services:
                sys.stderr.write("consul-emulator: reaping %s on %s: critical for more than %s\n"
                                 % (check.service_id, check.node, format_duration(check.deregister_after)))
                self.state.deregister_service(dc.name, check.node, check.service_id)

    def _probe(self, dc, check):
        timeout = check.timeout or 10.0
        if check.tcp:
            status, output = tcp_check(check.tcp, timeout)
        else:
            status, output = http_check(check.method, check.http, check.header, timeout)
        with self.state.lock:
            if dc.checks.get((check.node, check.check_id)) is check:
                self.state._set_status(dc, check, status, output)
            check.running = False


def tcp_check(address, timeout):
    """Consul's TCP check: a connect that succeeds is passing, with Consul's words for each outcome."""
    host, _colon, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (socket.timeout, TimeoutError):
        return "critical", "dial tcp %s: i/o timeout" % address
    except (OSError, ValueError) as exc:
        text = "connect: connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
        return "critical", "dial tcp %s: %s" % (address, text)
    return "passing", "TCP connect %s: Success" % address


def http_check(method, url, headers, timeout):
    """Consul's HTTP check: 2xx passing, 429 warning, anything else critical."""
    request = urllib.request.Request(url, method=method)
    for name, values in (headers or {}).items():
        for value in values if isinstance(values, list) else [values]:
            request.add_header(name, value)
    request.add_header("User-Agent", "Consul Health Check")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(4096).decode("utf-8", "replace")
            return "passing", "HTTP %s %s: %d %s Output: %s" % (method, url, response.status, response.reason, body)
    except urllib.error.HTTPError as exc:
        body = exc.read(4096).decode("utf-8", "replace")
        status = "warning" if exc.code == 429 else "critical"
        return status, "HTTP %s %s: %d %s Output: %s" % (method, url, exc.code, exc.reason, body)
    except (socket.timeout, TimeoutError):
        return "critical", ('%s "%s": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
                            % (method.capitalize(), url))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return "critical", ('%s "%s": context deadline exceeded (Client.Timeout exceeded while awaiting '
                                'headers)' % (method.capitalize(), url))
        text = "connect: connection refused" if isinstance(reason, ConnectionRefusedError) else str(reason)
        return "critical", '%s "%s": dial tcp: %s' % (method.capitalize(), url, text)


# --------------------------------------------------------------------------- HTTP


class Agent(object):
    """One listening address = one Consul agent on one node."""

    def __init__(self, name, address, datacenter):
        self.name = name
        self.address = address
        self.datacenter = datacenter


class Mux(object):
    """Go's http.ServeMux as Consul (built with Go < 1.22) uses it: a pattern ending in "/"
    serves its whole subtree, the longest pattern wins, and the handler gets the rest of the
    decoded path (strings.TrimPrefix), so names may contain "/"."""

    def __init__(self):
        self.patterns = {}  # pattern -> {method: handler}

    def endpoint(self, pattern, *methods):
        def wrap(fn):
            table = self.patterns.setdefault(pattern, {})
            for method in methods:
                table[method] = fn
            return fn
        return wrap

    def find(self, path):
        """(pattern, handlers, rest), ("redirect", path + "/"), or None."""
        best = None
        for pattern in self.patterns:
            if pattern == path or (pattern.endswith("/") and path.startswith(pattern)):
                if best is None or len(pattern) > len(best):
                    best = pattern
        if best is None:
            if path + "/" in self.patterns:
                return "redirect", path + "/"
            return None
        return best, self.patterns[best], path[len(best):]


def make_handler(state, agent):
    mux = Mux()
    endpoint = mux.endpoint

    def headers_of(extra):
        return list((extra or {}).items())

    class Handler(EmulatorHandler):
        token_secret = ""

        # -- plumbing ----------------------------------------------------------
        def _json_body(self):
            raw = self._body()
            if not raw:
                return {}
            try:
                return json.loads(raw.decode("utf-8"))
            except ValueError as exc:
                raise APIError(400, "Request decode failed: %s" % exc)

        def _send(self, status, payload, content_type="application/json", headers=None):
            """An answer through Consul's wrap(): its headers, JSON as json.Marshal writes it."""
            if isinstance(payload, bytes):
                data = payload
            elif content_type == "application/json":
                if "pretty" in self.q_all:
                    data = (go_json(payload, indent=4) + "\n").encode("utf-8", "replace")
                else:
                    data = go_json(payload).encode("utf-8", "replace")
            else:
                data = payload.encode("utf-8")
            out = []
            if content_type:
                out.append(("Content-Type", content_type))
            out.append(("Vary", "Accept-Encoding"))
            out.append(("X-Consul-Default-Acl-Policy", state.default_policy))
            out += headers_of(headers)
            self.respond(status, out, data)

        def _error(self, exc):
            self._send(exc.status, exc.body, "text/plain; charset=utf-8" if exc.body else None, exc.headers)

        def _no_endpoint(self):
            """The Index handler (not wrapped: no Consul headers at all)."""
            self.respond(404, [("Content-Type", "text/plain; charset=utf-8")], NO_ENDPOINT.encode())

        def _redirect(self, target):
            """http.RedirectHandler, as ServeMux answers a path it cleaned."""
            location = urllib.parse.quote(target, safe="/:@!$&'()*+,;=-._~")
            query = urllib.parse.urlsplit(self.path).query
            if query:
                location += "?" + query
            headers = [("Location", location)]
            body = b""
            if self.command in ("GET", "HEAD"):
                headers.insert(0, ("Content-Type", "text/html; charset=utf-8"))
            if self.command == "GET":
                body = ('<a href="%s">Moved Permanently</a>.\n\n' % location.replace("&", "&amp;")).encode()
            self.respond(301, headers, body)

        # -- ACL -----------------------------------------------------------------
        def _token(self):
            """parseToken: ?token, then X-Consul-Token, then Authorization: Bearer; a blank one
            becomes the agent's default token (acl.tokens.default)."""
            secret = self.q.get("token") or ""
            if not secret:
                secret = self.headers.get("X-Consul-Token") or ""
            if not secret:
                parts = (self.headers.get("Authorization") or "").split(" ")
                if len(parts) > 1 and parts[0].lower() == "bearer":
                    secret = " ".join(parts[1:]).strip().split(" ")[0].strip()
            return secret or state.default_token

        def _acl(self):
            self.token_secret = self._token()
            if not state.acl_enabled:
                return None
            token = state.tokens.get(self.token_secret or "anonymous")
            if token is None:
                raise APIError(403, "ACL not found")
            return token

        def _allowed(self, token, resource, name, access):
            if token is None or token.management:
                return True
            policy = token.decision(resource, name)
            if policy is None:
                return state.default_policy == "allow"
            return policy == "write" or (policy == "read" and access == "read")

        def _denied(self, token, resource, name, access):
            return APIError(403, "Permission denied: token with AccessorID '%s' lacks permission '%s:%s' on %s"
                            % (token.accessor, resource, access, json.dumps(name)))

        def _require(self, token, resource, name, access):
            if not self._allowed(token, resource, name, access):
                raise self._denied(token, resource, name, access)

        def _require_key_write_prefix(self, token, prefix):
            """KeyWritePrefix: write on the prefix and no rule below it that grants less."""
            if token is None or token.management:
                return
            below = token.rules_below("key", prefix)
            if not self._allowed(token, "key", prefix, "write") or any(p != "write" for p in below):
                raise self._denied(token, "key", prefix, "write")

        def _filtered(self, headers, filtered):
            # maskResultsFilteredByACLs: never told to an unauthenticated (blank-token) request.
            if filtered and self.token_secret:
                headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
            return headers

        # -- request options -------------------------------------------------------
        def _dc(self):
            return self.q.get("dc") or agent.datacenter

        def _consistency(self):
            stale, consistent = "stale" in self.q_all, "consistent" in self.q_all
            if stale and consistent:
                raise APIError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
            return "stale" if stale else ("consistent" if consistent else "leader")

        def _blocking(self, tables, dc_name, produce):
            """Answer now, or once the answer's index passes ?index=, or at the end of ?wait=.
            ``produce(dc)`` returns (result, filtered) -- the index is then the tables' -- or
            (result, filtered, index)."""
            consistency = self._consistency()
            wanted = 0
            if self.q.get("index"):
                if not re.fullmatch(r"[0-9]+", self.q["index"]):
                    raise APIError(400, "Invalid index")
                wanted = int(self.q["index"])
            wait = DEFAULT_WAIT
            if self.q.get("wait"):
                wait = go_parse_duration(self.q["wait"])
                if wait is None:
                    raise APIError(400, "Invalid wait time")
                wait = DEFAULT_WAIT if wait <= 0 else min(wait, MAX_WAIT)
            deadline = time.time() + wait
            with state.lock:
                dc = state.dc(dc_name)
                while True:
                    out = produce(dc)
                    result, filtered = out[0], out[1]
                    index = out[2] if len(out) > 2 else max(dc.tables[t] for t in tables)
                    remaining = deadline - time.time()
                    if not wanted or index > wanted or remaining <= 0:
                        break
                    state.changed.wait(remaining)
            headers = {"X-Consul-Effective-Consistency": consistency, "X-Consul-Index": str(max(index, 1)),
                       "X-Consul-Knownleader": "true", "X-Consul-Lastcontact": "0"}
            return result, self._filtered(headers, filtered)

        # -- faults ----------------------------------------------------------------
        def _fault_answer(self, fault):
            """Answer as the fault says; False when the real answer is to follow (maybe damaged)."""
            mode = fault["mode"]
            if mode == "hang":
                self.hang()
            elif mode == "slow":
                time.sleep(fault["delay"] or 5.0)
                return False
            elif mode == "500":
                self._error(APIError(500, "rpc error making call: emulated failure"))
            elif mode == "garbage":
                self.respond(200, [("Content-Type", "application/json"), ("X-Consul-Index", "1")],
                             b"<html><body>502 Bad Gateway</body>")
            elif mode == "html":
                self.respond_html_page(fault.get("status") or 200)
            elif mode == "404":
                self._fault_404()
            else:
                return False
            return True

        def _fault_404(self):
            """The 404 real Consul gives for this kind of endpoint."""
            path = self.route_path
            found = re.match(r"^/v1/agent/service/deregister/(.*)$", path, re.DOTALL)
            check = re.match(r"^/v1/agent/check/(?:deregister|pass|warn|fail|update)/(.*)$", path, re.DOTALL)
            service = re.match(r"^/v1/agent/service/(.+)$", path, re.DOTALL)
            if path.startswith("/v1/kv/"):
                with state.lock:
                    index = state.dcs[agent.datacenter].tables["kvs"]
                self._send(404, b"", None, {"X-Consul-Effective-Consistency": "leader", "X-Consul-Index": str(index),
                                            "X-Consul-Knownleader": "true", "X-Consul-Lastcontact": "0"})
            elif found:
                self._error(APIError(404, 'Unknown service ID "%s". Ensure that the service ID is passed, '
                                          'not the service name.' % found.group(1)))
            elif check:
                self._error(APIError(404, 'Unknown check ID "%s". Ensure that the check ID is passed, '
                                          'not the check name.' % check.group(1)))
            elif service and self.command == "GET":
                self._error(APIError(404, "unknown service ID: %s" % service.group(1)))
            else:
                self._no_endpoint()

        # -- dispatch --------------------------------------------------------------
        def _dispatch(self):
            self._query()
            state.stats.count(self.route_path)
            try:
                clean = go_clean_path(self.route_path)
                if clean != self.route_path:
                    self._redirect(clean)
                    return
                fault = state.faults.find(self.command, self.route_path, self.route_path.startswith("/v1/"),
                                          self._dc())
                if fault:
                    self.fault = fault
                    if self._fault_answer(fault):
                        return
                found = mux.find(self.route_path)
                if found is None:
                    self._no_endpoint()
                    return
                if found[0] == "redirect":
                    self._redirect(found[1])
                    return
                _pattern, handlers, rest = found
                allow = ",".join(["OPTIONS"] + [m for m in ("GET", "PUT", "POST", "DELETE") if m in handlers])
                if self.command == "OPTIONS" and not self.route_path.startswith("/_emulator/"):
                    self._send(200, b"", None, {"Allow": allow})
                    return
                fn = handlers.get(self.command)
                if fn is None:
                    raise APIError(405, "method %s not allowed" % self.command, {"Allow": allow})
                result = fn(self, rest)
                if result is not None:
                    status, payload, ctype, headers = result
                    self._send(status, payload, ctype, headers)
            except APIError as exc:
                self._error(exc)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _dispatch

        # -- status ------------------------------------------------------------
        @endpoint("/v1/status/leader", "GET")
        def status_leader(self, _rest):
            return 200, state.leader, "application/json", None

        @endpoint("/v1/status/peers", "GET")
        def status_peers(self, _rest):
            return 200, [state.leader], "application/json", None

        # -- catalog -----------------------------------------------------------
        @endpoint("/v1/catalog/datacenters", "GET")
        def catalog_datacenters(self, _rest):
            return 200, sorted(state.dcs), "application/json", None

        @endpoint("/v1/catalog/nodes", "GET")
        def catalog_nodes(self, _rest):
            token = self._acl()

            def produce(dc):
                nodes = [n for n in dc.nodes.values() if self._node_meta_ok(n)]
                shown = [n.to_json() for n in sorted(nodes, key=lambda n: n.name)
                         if self._allowed(token, "node", n.name, "read")]
                return shown, len(shown) != len(nodes)
            result, headers = self._blocking(["nodes"], self._dc(), produce)
            return 200, result, "application/json", headers

        def _node_meta_ok(self, node):
            for wanted in self.q_all.get("node-meta", []):
                key, _sep, value = wanted.partition(":")
                if node.meta.get(key) != value:
                    return False
            return True

        @endpoint("/v1/catalog/node/", "GET")
        def catalog_node(self, name):
            if not name:
                raise APIError(400, "Missing node name")
            token = self._acl()

            def produce(dc):
                node = dc.nodes.get(name)
                if node is None or not self._allowed(token, "node", name, "read"):
                    return None, node is not None
                # filtered before sorting: a fleet's datacenter holds many thousands of services
                services = {s.id: s.agent_json(dc.name)
                            for _k, s in sorted(item for item in dc.services.items() if item[0][0] == name)
                            if self._allowed(token, "service", s.name, "read")}
                for svc in services.values():
                    svc.pop("Datacenter")
                return {"Node": node.to_json(), "Services": services}, False
            result, headers = self._blocking(["nodes", "services"], self._dc(), produce)
            return 200, result, "application/json", headers

        @endpoint("/v1/catalog/services", "GET")
        def catalog_services(self, _rest):
            token = self._acl()

            def produce(dc):
                result, hidden = {}, False
                for name, keys in sorted(dc.by_name.items()):
                    if not self._allowed(token, "service", name, "read"):
                        hidden = True
                        continue
                    tags = set()
                    matched = False
                    for key in keys:
                        if self._node_meta_ok(dc.nodes[key[0]]):
                            matched = True
                            tags.update(dc.services[key].tags)
                    if matched:
                        result[name] = sorted(tags)
                return result, hidden
            result, headers = self._blocking(["services"], self._dc(), produce)
            return 200, result, "application/json", headers

        def _instances(self, dc, name, token):
            hidden = False
            found = []
            if not self._allowed(token, "service", name, "read"):
                return [], bool(dc.by_name.get(name))
            tags = self.q_all.get("tag", [])
            for key in sorted(dc.by_name.get(name, ())):
                service = dc.services[key]
                node = dc.nodes[key[0]]
                if any(tag not in service.tags for tag in tags):
                    continue
                if not self._node_meta_ok(node):
                    continue
                if not self._allowed(token, "node", node.name, "read"):
                    hidden = True
                    continue
                found.append((node, service))
            return found, hidden

        @endpoint("/v1/catalog/service/", "GET")
        def catalog_service(self, name):
            if not name:
                raise APIError(400, "Missing service name")
            token = self._acl()

            def produce(dc):
                found, hidden = self._instances(dc, name, token)
                return [s.catalog_json(n) for n, s in found], hidden
            result, headers = self._blocking(["services"], self._dc(), produce)
            return 200, result, "application/json", headers

        @endpoint("/v1/catalog/register", "PUT")
        def catalog_register(self, _rest):
            token = self._acl()
            body = self._json_body()
            if not isinstance(body, dict) or not field(body, "Node") or not field(body, "Address"):
                raise APIError(400, "Must provide node and address")
            node_name = field(body, "Node")
            self._require(token, "node", node_name, "write")
            dc_name = field(body, "Datacenter") or self._dc()
            with state.lock:
                dc = state.dc(dc_name)
                known = dc.nodes.get(node_name)
            if known is None or not field(body, "SkipNodeUpdate"):
                state.add_node(node_name, field(body, "Address"), dc_name,
                               field(body, "NodeMeta") or (known.meta if known else None))
            service = field(body, "Service")
            if service:
                service = dict(service)
                # The catalog names the service "Service"; the agent API calls it "Name".
                service.setdefault("Name", field(service, "Service"))
                self._require(token, "service", field(service, "Name") or "", "write")
                state.register_service(dc_name, node_name, service)
            for check in ([field(body, "Check")] if field(body, "Check") else []) + list(field(body, "Checks") or []):
                state.register_check(dc_name, node_name, check)
            return 200, True, "application/json", None

        @endpoint("/v1/catalog/deregister", "PUT")
        def catalog_deregister(self, _rest):
            token = self._acl()
            body = self._json_body()
            if not isinstance(body, dict) or not field(body, "Node"):
                raise APIError(400, "Must provide node")
            node_name = field(body, "Node")
            self._require(token, "node", node_name, "write")
            dc_name = field(body, "Datacenter") or self._dc()
            service_id, check_id = field(body, "ServiceID"), field(body, "CheckID")
            try:
                if service_id:
                    state.deregister_service(dc_name, node_name, service_id)
                elif check_id:
                    state.deregister_check(dc_name, node_name, check_id)
                else:
                    state.remove_node(dc_name, node_name)
            except APIError as exc:
                if exc.status != 404:  # the catalog treats "already gone" as done
                    raise
            return 200, True, "application/json", None

        # -- health ------------------------------------------------------------
        @endpoint("/v1/health/service/", "GET")
        def health_service(self, name):
            if not name:
                raise APIError(400, "Missing service name")
            token = self._acl()
            passing_only = False
            if "passing" in self.q_all:
                passing_only = True if self.q["passing"] == "" else parse_bool(self.q["passing"])
                if passing_only is None:
                    raise APIError(400, "Invalid value for ?passing")

            def produce(dc):
                found, hidden = self._instances(dc, name, token)
                entries = []
                for node, service in found:
                    checks = [dc.checks[(node.name, "serfHealth")]] if (node.name, "serfHealth") in dc.checks else []
                    checks += state._service_checks(dc, node.name, service.id)
                    if passing_only and any(c.status != "passing" for c in checks):
                        continue
                    entries.append({"Node": node.to_json(), "Service": service.health_json(node),
                                    "Checks": [c.to_json() for c in checks]})
                return entries, hidden
            result, headers = self._blocking(["nodes", "services", "checks"], self._dc(), produce)
            return 200, result, "application/json", headers

        def _check_list(self, select, token):
            def produce(dc):
                hidden = False
                shown = []
                for check in sorted((c for c in dc.checks.values() if select(c)), key=lambda c: (c.node, c.check_id)):
                    if not self._node_meta_ok(dc.nodes[check.node]):
                        continue
                    if not self._allowed(token, "node", check.node, "read") or (
                            check.service_name and not self._allowed(token, "service", check.service_name, "read")):
                        hidden = True
                        continue
                    shown.append(check.to_json())
                return shown, hidden
            return produce

        @endpoint("/v1/health/checks/", "GET")
        def health_checks(self, name):
            if not name:
                raise APIError(400, "Missing service name")
            token = self._acl()
            produce = self._check_list(lambda c: c.service_name == name, token)
            result, headers = self._blocking(["checks"], self._dc(), produce)
            return 200, result, "application/json", headers

        @endpoint("/v1/health/node/", "GET")
        def health_node(self, name):
            if not name:
                raise APIError(400, "Missing node name")
            token = self._acl()
            produce = self._check_list(lambda c: c.node == name, token)
            result, headers = self._blocking(["checks"], self._dc(), produce)
            return 200, result, "application/json", headers

        @endpoint("/v1/health/state/", "GET")
        def health_state(self, wanted):
            if not wanted:
                raise APIError(400, "Missing check state")
            if wanted not in ("any", "passing", "warning", "critical"):
                raise APIError(400, "Bad state")
            token = self._acl()
            produce = self._check_list(lambda c: wanted == "any" or c.status == wanted, token)
            result, headers = self._blocking(["checks"], self._dc(), produce)
            return 200, result, "application/json", headers

        # -- agent -------------------------------------------------------------
        @endpoint("/v1/agent/self", "GET")
        def agent_self(self, _rest):
            token = self._acl()
            self._require(token, "agent", agent.name, "read")
            node = state.dcs[agent.datacenter].nodes[agent.name]
            return 200, {
                "Config": {"Datacenter": agent.datacenter, "PrimaryDatacenter": state.primary_dc,
                           "NodeName": agent.name, "NodeID": node.id, "Server": agent.name == "server",
                           "Revision": "emulator", "Version": CONSUL_VERSION},
                "Member": {"Name": agent.name, "Addr": agent.address, "Port": 8301,
                           "Tags": {"dc": agent.datacenter, "role": "node"}, "Status": 1},
                "Meta": dict(node.meta),
                "DebugConfig": {},
                "Coord": None,
                "Stats": {},
                "xDS": {},
            }, "application/json", None

        @endpoint("/v1/agent/members", "GET")
        def agent_members(self, _rest):
            token = self._acl()
            with state.lock:
                dc = state.dcs[agent.datacenter]
                everyone = sorted(dc.nodes.values(), key=lambda n: n.name)
                members = [{"Name": n.name, "Addr": n.address, "Port": 8301, "Tags": {"dc": dc.name},
                            "Status": 1 if dc.checks[(n.name, "serfHealth")].status == "passing" else 4}
                           for n in everyone if self._allowed(token, "node", n.name, "read")]
            return 200, members, "application/json", self._filtered({}, len(members) != len(everyone))

        @endpoint("/v1/agent/services", "GET")
        def agent_services(self, _rest):
            token = self._acl()
            with state.lock:
                dc = state.dcs[agent.datacenter]
                # Consul's own "consul" service is catalog-only; agents do not list it.
                local = [s for (n, i), s in sorted(dc.services.items()) if n == agent.name and i != "consul"]
                result = {s.id: s.agent_json(dc.name) for s in local
                          if self._allowed(token, "service", s.name, "read")}
            return 200, result, "application/json", self._filtered({}, len(result) != len(local))

        @endpoint("/v1/agent/service/", "GET")
        def agent_service(self, service_id):
            token = self._acl()
            with state.lock:
                dc = state.dcs[agent.datacenter]
                service = dc.services.get((agent.name, service_id))
                if service is None:
                    raise APIError(404, "unknown service ID: %s" % service_id)
                self._require(token, "service", service.name, "read")
                result = service.agent_json(dc.name)
                result["ContentHash"] = "%016x" % (hash((service.modify_index, service.id)) & (2 ** 64 - 1))
            return 200, result, "application/json", {"X-Consul-Contenthash": result["ContentHash"]}

        @endpoint("/v1/agent/service/register", "PUT")
        def agent_service_register(self, _rest):
            token = self._acl()
            body = self._json_body()
            if not isinstance(body, dict):
                raise APIError(400, "Request decode failed: json: cannot unmarshal into ServiceDefinition")
            self._require(token, "service", field(body, "Name") or "", "write")
            service = state.register_service(agent.datacenter, agent.name, body)
            state.remember(agent.datacenter, agent.name, "service", service.id, body)
            return 200, b"", None, None

        @endpoint("/v1/agent/service/deregister/", "PUT")
        def agent_service_deregister(self, service_id):
            token = self._acl()
            with state.lock:
                service = state.dcs[agent.datacenter].services.get((agent.name, service_id))
                self._require(token, "service", service.name if service else service_id, "write")
            state.deregister_service(agent.datacenter, agent.name, service_id)
            return 200, b"", None, None

        @endpoint("/v1/agent/checks", "GET")
        def agent_checks(self, _rest):
            token = self._acl()
            with state.lock:
                dc = state.dcs[agent.datacenter]
                local = [c for (n, cid), c in sorted(dc.checks.items()) if n == agent.name and cid != "serfHealth"]
                result = {c.check_id: c.agent_json() for c in local
                          if self._allowed(token, "service" if c.service_name else "node",
                                           c.service_name or c.node, "read")}
            return 200, result, "application/json", self._filtered({}, len(result) != len(local))

        @endpoint("/v1/agent/check/register", "PUT")
        def agent_check_register(self, _rest):
            token = self._acl()
            body = self._json_body()
            with state.lock:
                service = state.dcs[agent.datacenter].services.get((agent.name, field(body, "ServiceID") or ""))
            if service is not None:
                self._require(token, "service", service.name, "write")
            else:
                self._require(token, "node", agent.name, "write")
            check = state.register_check(agent.datacenter, agent.name, body)
            state.remember(agent.datacenter, agent.name, "check", check.check_id, body)
            return 200, b"", None, None

        @endpoint("/v1/agent/check/deregister/", "PUT")
        def agent_check_deregister(self, check_id):
            token = self._acl()
            self._require(token, "node", agent.name, "write")
            state.deregister_check(agent.datacenter, agent.name, check_id)
            return 200, b"", None, None

        def _ttl(self, check_id, status, note):
            token = self._acl()
            self._require(token, "node", agent.name, "write")
            state.update_ttl(agent.datacenter, agent.name, check_id, status, note)
            return 200, b"", None, None

        @endpoint("/v1/agent/check/pass/", "PUT")
        def agent_check_pass(self, check_id):
            return self._ttl(check_id, "passing", self.q.get("note"))

        @endpoint("/v1/agent/check/warn/", "PUT")
        def agent_check_warn(self, check_id):
            return self._ttl(check_id, "warning", self.q.get("note"))

        @endpoint("/v1/agent/check/fail/", "PUT")
        def agent_check_fail(self, check_id):
            return self._ttl(check_id, "critical", self.q.get("note"))

        @endpoint("/v1/agent/check/update/", "PUT")
        def agent_check_update(self, check_id):
            body = self._json_body()
            return self._ttl(check_id, field(body, "Status") or "passing", field(body, "Output"))

        # -- KV (agent/kvs_endpoint.go) ---------------------------------------------
        def _conflicting(self, *names):
            if sum(1 for name in names if name in self.q_all) > 1:
                raise APIError(400, "Conflicting flags: " + go_query_encode(self.q_all))

        @endpoint("/v1/kv/", "GET")
        def kv_get(self, key):
            token = self._acl()
            if "keys" in self.q_all:
                return self._kv_keys(token, key)
            recurse = "recurse" in self.q_all
            if not recurse and key == "":
                raise APIError(400, "Missing key name")

            def produce(dc):
                if not recurse:
                    # KVS.Get: a key the token may not read is an error, not a filtered list.
                    self._require(token, "key", key, "read")
                    entry = dc.kv.get(key)
                    return ([state.kv_json(entry)] if entry else []), False, state.kv_key_index(dc, key)
                matched = [e for k, e in sorted(dc.kv.items()) if k.startswith(key)]
                shown = [state.kv_json(e) for e in matched if self._allowed(token, "key", e["Key"], "read")]
                return shown, len(shown) != len(matched), state.kv_prefix_index(dc, key)
            result, headers = self._blocking(["kvs"], self._dc(), produce)
            if not result:
                # Also for a recursive read that ACLs filtered down to nothing.
                return 404, b"", None, headers
            if "raw" in self.q_all and not recurse:
                headers.update({"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"})
                return 200, base64.b64decode(result[0]["Value"] or ""), "text/plain", headers
            return 200, result, "application/json", headers

        def _kv_keys(self, token, prefix):
            separator = ""
            if "seperator" in self.q_all:  # Consul still honours its historic misspelling
                separator = self.q["seperator"]
            if "separator" in self.q_all:
                separator = self.q["separator"]

            def produce(dc):
                matched = [e for k, e in sorted(dc.kv.items()) if k.startswith(prefix)]
                shown = [e for e in matched if self._allowed(token, "key", e["Key"], "read")]
                keys = []
                for entry in shown:
                    name = entry["Key"]
                    if separator:
                        cut = name.find(separator, len(prefix))
                        if cut >= 0:
                            name = name[:cut + len(separator)]
                    if name not in keys:
                        keys.append(name)
                return keys, len(shown) != len(matched), state.kv_prefix_index(dc, prefix)
            keys, headers = self._blocking(["kvs"], self._dc(), produce)
            if not keys and prefix != "":
                return 404, b"", None, headers
            return 200, keys, "application/json", headers

        @endpoint("/v1/kv/", "PUT")
        def kv_put(self, key):
            token = self._acl()
            if not key:
                raise APIError(400, "Missing key name")
            self._conflicting("cas", "acquire", "release")
            flags = parse_uint(self.q["flags"]) if "flags" in self.q_all else 0
            cas = parse_uint(self.q["cas"]) if "cas" in self.q_all else None
            raw = self._body()
            if len(raw) > KV_MAX_VALUE_SIZE:
                raise APIError(413, "Request body(%d bytes) too large, max size: %d bytes. See "
                                    "https://www.consul.io/docs/agent/config/config-files#kv_max_value_size."
                               % (len(raw), KV_MAX_VALUE_SIZE))
            self._require(token, "key", key, "write")
            value = base64.b64encode(raw).decode() if raw else None
            dc_name = self._dc()
            if "acquire" in self.q_all:
                ok = state.kv_lock(dc_name, key, value, flags, self.q["acquire"])
            elif "release" in self.q_all:
                ok = state.kv_unlock(dc_name, key, value, flags, self.q["release"])
            elif cas is not None:
                ok = state.kv_cas(dc_name, key, value, flags, cas)
            else:
                ok = state.kv_set(dc_name, key, value, flags)
            return 200, ok, "application/json", None

        @endpoint("/v1/kv/", "DELETE")
        def kv_delete(self, key):
            token = self._acl()
            self._conflicting("recurse", "cas")
            recurse = "recurse" in self.q_all
            if not recurse and key == "":
                raise APIError(400, "Missing key name")
            cas = parse_uint(self.q["cas"]) if "cas" in self.q_all else None
            if recurse:
                self._require_key_write_prefix(token, key)
                ok = state.kv_delete_tree(self._dc(), key)
            else:
                self._require(token, "key", key, "write")
                ok = state.kv_delete(self._dc(), key) if cas is None else state.kv_delete_cas(self._dc(), key, cas)
            return 200, ok, "application/json", None

        # -- sessions ------------------------------------------------------------------
        @endpoint("/v1/session/create", "PUT")
        def session_create(self, _rest):
            token = self._acl()
            body = self._json_body() or {}
            node = field(body, "Node") or agent.name
            self._require(token, "session", node, "write")
            session = state.session_create(self._dc(), agent.name, body)
            return 200, {"ID": session["ID"]}, "application/json", None

        @endpoint("/v1/session/destroy/", "PUT")
        def session_destroy(self, session_id):
            token = self._acl()
            with state.lock:
                session = state.dc(self._dc()).sessions.get(session_id)
            if session is not None:
                self._require(token, "session", session["Node"], "write")
            return 200, state.session_destroy(self._dc(), session_id), "application/json", None

        @endpoint("/v1/session/info/", "GET")
        def session_info(self, session_id):
            token = self._acl()

            def produce(dc):
                session = dc.sessions.get(session_id)
                if session is None or not self._allowed(token, "session", session["Node"], "read"):
                    return [], session is not None
                return [dict(session)], False
            result, headers = self._blocking(["sessions"], self._dc(), produce)
            return 200, result, "application/json", headers

        @endpoint("/v1/session/list", "GET")
        def session_list(self, _rest):
            token = self._acl()

            def produce(dc):
                every = sorted(dc.sessions.values(), key=lambda s: s["CreateIndex"])
                shown = [dict(s) for s in every if self._allowed(token, "session", s["Node"], "read")]
                return shown, len(shown) != len(every)
            result, headers = self._blocking(["sessions"], self._dc(), produce)
            return 200, result, "application/json", headers

        # -- ACL (tokens with JSON rules; enough for tests against real Consul's API) --
        @endpoint("/v1/acl/token/self", "GET")
        def acl_token_self(self, _rest):
            token = self._acl()
            if token is None:
                raise APIError(401, "ACL support disabled")
            return 200, {"AccessorID": token.accessor, "SecretID": token.secret,
                         "Description": token.description, "Policies": [], "Local": False}, "application/json", None

        # -- emulator control (not Consul) --------------------------------------
        @endpoint("/_emulator/fault", "POST")
        def control_fault(self, _rest):
            try:
                return 200, state.faults.configure(self._json_body()), "application/json", None
            except FaultError as exc:
                raise APIError(400, str(exc))

        @endpoint("/_emulator/node", "POST")
        def control_node(self, _rest):
            body = self._json_body()
            node = state.add_node(body["name"], body["address"], body.get("datacenter"), body.get("meta"))
            return 200, node.to_json(), "application/json", None

        @endpoint("/_emulator/node/", "POST")
        def control_serf(self, rest):
            if not rest.endswith("/serf"):
                raise APIError(404, NO_ENDPOINT)
            name = rest[:-len("/serf")]
            body = self._json_body()
            state.set_serf(body.get("datacenter") or self._dc(), name, body.get("status", "critical"))
            return 200, {"node": name, "status": body.get("status", "critical")}, "application/json", None

        @endpoint("/_emulator/seed", "POST")
        def control_seed(self, _rest):
            body = self._json_body()
            count = state.seed(int(body.get("nodes", 1)), int(body.get("services", 1)), body.get("datacenter"),
                               body.get("service_address") or "node", body.get("checks") or "passing",
                               body.get("node_prefix"))
            return 200, {"nodes": count}, "application/json", None

        @endpoint("/_emulator/catalog", "POST")
        def control_catalog(self, _rest):
            body = self._json_body()
            count = state.seed_catalog(body.get("datacenter"), body.get("nodes") or [])
            # A seeded fleet lives as long as the emulator: the cyclic collector leaves it alone, so
            # that answering for 10,000 nodes costs 10x answering for 1,000 (bench/fleet).
            gc.collect()
            gc.freeze()
            return 200, {"nodes": count}, "application/json", None

        @endpoint("/_emulator/token", "POST")
        def control_token(self, _rest):
            if not state.acl_enabled:
                raise APIError(400, "ACLs are not enabled")
            body = self._json_body()
            secret = body.get("secret") or str(uuid.uuid4())
            with state.lock:
                state.tokens[secret] = Token(secret, str(uuid.uuid4()), body.get("description", ""),
                                             body.get("rules") or {})
            return 200, {"SecretID": secret}, "application/json", None

        @endpoint("/_emulator/stats", "GET")
        def control_stats(self, _rest):
            return 200, state.stats.snapshot(), "application/json", None

        @endpoint("/_emulator/stats/reset", "POST")
        def control_stats_reset(self, _rest):
            state.stats.reset()
            return 200, {"requests": 0}, "application/json", None

    return Handler


def parse_node(spec, default_dc):
    """NAME=ADDR[@DC]"""
    name, sep, rest = spec.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("--node wants NAME=ADDR[@DC], got %r" % spec)
    address, _sep, dc = rest.partition("@")
    return name, address, dc or default_dc


def serve(port, nodes, datacenter="dc1", acl_master_token=None, default_policy="deny", ready=None,
          default_token=None, tls_context=None):
    """Start one agent per node; returns (state, servers, runner). ``ready``: called with the bound port."""
    state = State(datacenter, acl_master_token, default_policy, default_token)
    servers = []
    for position, (name, address, dc) in enumerate(nodes):
        state.add_node(name, address, dc, server=position == 0)
        server = Server((address, port), make_handler(state, Agent(name, address, dc)))
        server.tls_context = tls_context
        port = server.server_address[1]  # port 0: the first agent picks, the others follow
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    state.leader = "%s:%d" % (nodes[0][1], SERVER_PORT)
    runner = CheckRunner(state)
    runner.start()
    if ready:
        ready(port)
    return state, servers, runner


def main(argv=None):
    parser = argparse.ArgumentParser(description="Consul HTTP API emulator (edgex.sysmgmt test-bed)")
    parser.add_argument("--port", type=int, default=8500, help="HTTP port (0: pick a free one and print it)")
    parser.add_argument("--datacenter", default="dc1")
    parser.add_argument("--node", action="append", default=[], help="NAME=ADDR[@DC]; one agent each")
    parser.add_argument("--acl-master-token", help="turn ACLs on (default policy deny) with this management token")
    parser.add_argument("--acl-default-policy", choices=("allow", "deny"), default="deny")
    parser.add_argument("--acl-default-token", help="the agent's acl.tokens.default: what requests without a "
                                                    "token act as (a token made later through /_emulator/token)")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (chain) file")
    parser.add_argument("--tls-key", help="the key of --tls-cert")
    parser.add_argument("--seed-nodes", type=int, default=0)
    parser.add_argument("--seed-services", type=int, default=12)
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--data-file", help="keep what agents registered and KV here across restarts, "
                                            "as a real agent's data dir does")
    args = parser.parse_args(argv)
    nodes = [parse_node(spec, args.datacenter) for spec in (args.node or ["server=127.0.0.1"])]
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls_context = tls_server_context(args.tls_cert, args.tls_key) if args.tls_cert else None

    def ready(port):
        if args.port_file:
            with open(args.port_file + ".tmp", "w") as handle:
                handle.write(str(port))
            os.replace(args.port_file + ".tmp", args.port_file)
        sys.stderr.write("consul-emulator: listening on port %d for %s%s\n"
                         % (port, ", ".join("%s=%s@%s" % n for n in nodes), " (HTTPS)" if tls_context else ""))
        sys.stderr.flush()

    state, servers, runner = serve(args.port, nodes, args.datacenter, args.acl_master_token,
                                   args.acl_default_policy, ready, args.acl_default_token, tls_context)
    if args.seed_nodes:
        state.seed(args.seed_nodes, args.seed_services, args.datacenter)
    if args.data_file:
        state.load(args.data_file)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    if args.data_file:
        state.save(args.data_file)
    runner.stopped.set()
    for server in servers:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
