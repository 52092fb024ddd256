#!/usr/bin/env python3
"""A Consul HTTP API emulator for the edgex.sysmgmt test-bed.

No Consul binary can be installed on the test machines, so this program answers the
part of Consul's HTTP API that the collection and EdgeX services use, with Consul's
JSON shapes, status codes and error bodies (checked against the samples in the API docs):
catalog, health, agent (services and checks), KV, status, a small ACL system, blocking
queries with X-Consul-Index, HTTP/TTL checks that really run, and
DeregisterCriticalServiceAfter that really reaps.

One process can be several agents: every ``--node NAME=ADDR[@DC]`` listens on ADDR:PORT,
and agent endpoints act on the node whose address the request arrived at. Datacenters are
chosen with ``?dc=`` as in Consul (an unknown one answers 500 "No path to datacenter").

Not Consul (test control, never behind ACLs), under /_emulator/:
  POST /_emulator/fault            {"mode": null|"slow"|"500"|"garbage", "delay": s, "datacenter": dc}
  POST /_emulator/node             {"name", "address", "datacenter", "meta"}
  POST /_emulator/node/<name>/serf {"status": "passing"|"critical"}
  POST /_emulator/seed             {"nodes": N, "services": M, "datacenter": "dc1"}
  POST /_emulator/catalog          {"datacenter": dc, "nodes": [{"name", "address", "meta",
                                    "services": [{"id", "name", "port", "tags", "meta",
                                                  "check": {"status", "output"}}]}]}
                                   many nodes and registrations in one request (a simulated fleet)
  POST /_emulator/token            {"rules": {...}, "description": ...} -> token
  GET  /_emulator/stats            {"requests": N, "by_path": {...}};  POST /_emulator/stats/reset

With ``--data-file`` what agents registered (services, checks) and KV are saved on SIGTERM
and restored at start, as a real agent's data dir keeps them across a restart.

Known differences from Consul are listed in the collection's README ("What the Consul
emulator does not emulate").
Standard library only (Python 3.9+), so it also runs inside the stand-in image.
"""

import argparse
import base64
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer

from emulator_http import EmulatorHandler, RequestStats, Routes

CONSUL_VERSION = "1.16.6"
SERVER_PORT = 8300
DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
EDGEX_SEED_SERVICES = (
    "core-data", "core-metadata", "core-command", "support-notifications", "support-scheduler",
    "device-virtual", "device-rest", "app-rules-engine", "core-common-config-bootstrapper",
    "ui", "rules-engine", "device-modbus", "device-mqtt", "app-mqtt-export", "device-onvif-camera",
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class APIError(Exception):
    """An error answer: Consul sends these as text/plain bodies."""

    def __init__(self, status, body):
        Exception.__init__(self, body)
        self.status = status
        self.body = body


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


# --------------------------------------------------------------------------- state


class Check(object):
    __slots__ = ("node", "check_id", "name", "status", "notes", "output", "service_id", "service_name",
                 "service_tags", "type", "http", "method", "header", "interval", "timeout", "ttl",
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
            "Namespace": "default",
        }

    def agent_json(self):
        data = self.to_json()
        for key in ("CreateIndex", "ModifyIndex"):
            data.pop(key)
        return data


class Service(object):
    __slots__ = ("node", "id", "name", "tags", "address", "port", "meta", "weights", "enable_tag_override",
                 "create_index", "modify_index")

    def tagged_addresses(self, node):
        address = self.address or node.address
        # Key case as in the API docs' samples (catalog.mdx, health.mdx).
        return {"lan": {"address": address, "port": self.port}, "wan": {"address": address, "port": self.port}}

    def health_json(self, node):
        return {
            "ID": self.id,
            "Service": self.name,
            "Tags": list(self.tags),
            "Address": self.address,
            "TaggedAddresses": self.tagged_addresses(node) if self.address else {},
            "Meta": dict(self.meta),
            "Port": self.port,
            "Weights": dict(self.weights),
            "EnableTagOverride": self.enable_tag_override,
            "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "Connect": {},
            "PeerName": "",
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
            "Namespace": "default",
        }

    def agent_json(self, datacenter):
        return {
            "ID": self.id,
            "Service": self.name,
            "Tags": list(self.tags),
            "Meta": dict(self.meta),
            "Port": self.port,
            "Address": self.address,
            "TaggedAddresses": {} if not self.address else {
                "lan": {"address": self.address, "port": self.port},
                "wan": {"address": self.address, "port": self.port}},
            "Weights": dict(self.weights),
            "EnableTagOverride": self.enable_tag_override,
            "Datacenter": datacenter,
        }

    def catalog_json(self, node):
        return {
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
            "ServiceTaggedAddresses": self.tagged_addresses(node) if self.address else {},
            "ServiceTags": list(self.tags),
            "ServiceWeights": dict(self.weights),
            "ServiceProxy": {"DestinationServiceName": "", "DestinationServiceID": "", "LocalServiceAddress": "",
                             "LocalServicePort": 0, "Config": None, "Upstreams": None,
                             "Mode": "", "MeshGateway": {}, "Expose": {}},
            "ServiceConnect": {"Native": False, "Proxy": None},
            "Namespace": "default",
        }


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
        self.kv = {}               # key -> dict entry
        self.tables = {"nodes": 1, "services": 1, "checks": 1, "kvs": 1}


class Token(object):
    def __init__(self, secret, accessor, description, rules, management=False):
        self.secret = secret
        self.accessor = accessor
        self.description = description
        self.rules = rules or {}
        self.management = management

    def allows(self, resource, name, access):
        """resource: service|node|key|agent; access: read|write. Longest prefix wins, like Consul."""
        if self.management:
            return True
        best, best_len = None, -1
        for kind in (resource, resource + "_prefix"):
            for prefix, policy in (self.rules.get(kind) or {}).items():
                exact = kind == resource
                if (exact and name == prefix) or (not exact and name.startswith(prefix)):
                    length = len(prefix) + (1 if exact else 0)
                    if length > best_len:
                        best, best_len = policy, length
        if best == "write":
            return True
        if best == "read":
            return access == "read"
        return False


class State(object):
    def __init__(self, primary_dc, acl_master_token=None, default_policy="allow"):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.index = 10
        self.primary_dc = primary_dc
        self.dcs = {}
        self.leader = "127.0.0.1:%d" % SERVER_PORT
        self.fault = {"mode": None, "delay": 0.0, "datacenter": None}
        self.stats = RequestStats()
        # What agents were asked to register, as a real agent keeps it in its data dir and
        # re-registers it after a restart: (dc, node, "service"|"check", id) -> body.
        self.agent_definitions = {}
        self.acl_enabled = acl_master_token is not None
        self.default_policy = default_policy if self.acl_enabled else "allow"
        self.tokens = {}
        if self.acl_enabled:
            self.tokens[acl_master_token] = Token(acl_master_token, str(uuid.uuid4()), "Initial Management Token",
                                                  None, management=True)
            self.tokens["anonymous"] = Token("anonymous", "00000000-0000-0000-0000-000000000002",
                                             "Anonymous Token", None)

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
        check.method = field(body, "Method") or "GET"
        check.header = field(body, "Header") or {}
        check.tls_skip_verify = bool(field(body, "TLSSkipVerify", False))
        check.interval = parse_duration(field(body, "Interval"), "Interval")
        check.timeout = parse_duration(field(body, "Timeout"), "Timeout")
        check.ttl = parse_duration(field(body, "TTL"), "TTL")
        check.deregister_after = parse_duration(field(body, "DeregisterCriticalServiceAfter"),
                                                "DeregisterCriticalServiceAfter")
        if check.http and not check.interval:
            raise APIError(400, "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or gRPC checks")
        check.type = "http" if check.http else ("ttl" if check.ttl else "")
        if old is None:
            check.status = field(body, "Status") or "critical"
            check.output = ""
            check.create_index = index
            check.critical_since = time.time() if check.status == "critical" else None
        elif field(body, "Status"):
            check.status = field(body, "Status")
        check.modify_index = index
        check.ttl_deadline = time.time() + check.ttl if check.ttl else None
        check.next_run = time.time() if check.http else None
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

    # -- KV --------------------------------------------------------------------
    def kv_put(self, datacenter, key, value, flags, cas):
        with self.lock:
            dc = self.dc(datacenter)
            entry = dc.kv.get(key)
            if cas is not None:
                if (cas == 0 and entry is not None) or (cas != 0 and (entry is None or entry["ModifyIndex"] != cas)):
                    return False
            index = self.bump(dc, "kvs")
            if entry is None:
                entry = {"LockIndex": 0, "Key": key, "Flags": 0, "Value": None, "CreateIndex": index}
                dc.kv[key] = entry
            entry["Flags"] = flags if flags is not None else entry["Flags"]
            entry["Value"] = value
            entry["ModifyIndex"] = index
            return True

    def kv_delete(self, datacenter, key, recurse, cas):
        with self.lock:
            dc = self.dc(datacenter)
            if cas is not None:
                entry = dc.kv.get(key)
                if entry is None or entry["ModifyIndex"] != cas:
                    return False
            doomed = [k for k in dc.kv if k.startswith(key)] if recurse else ([key] if key in dc.kv else [])
            for k in doomed:
                del dc.kv[k]
            self.bump(dc, "kvs")
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
                "kv": {name: list(dc.kv.values()) for name, dc in self.dcs.items()},  # values stay base64
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
                self.kv_put(dc, entry["Key"], entry["Value"], entry["Flags"], None)

    # -- seeding ---------------------------------------------------------------
    def seed(self, nodes, services, datacenter=None):
        """N synthetic nodes x M EdgeX-named services, passing, with no running checks."""
        names = list(EDGEX_SEED_SERVICES[:services])
        names += ["service-%02d" % i for i in range(len(names), services)]
        with self.lock:
            datacenter = datacenter or self.primary_dc
            dc = self.dcs.setdefault(datacenter, Datacenter(datacenter))
            start = len(dc.nodes)
            for i in range(start, start + nodes):
                name = "gw-%s-%05d" % (datacenter, i)
                address = "127.%d.%d.%d" % (100 + (i >> 16) % 100, (i >> 8) & 255, i & 255)
                self.add_node(name, address, datacenter, {"edgex-site": "site-%d" % (i % 10)})
                index = self.index
                for port, service in enumerate(names):
                    self._put_service(dc, name, {"ID": service, "Name": service, "Address": address,
                                                 "Port": 59800 + port, "Tags": ["edgex"]}, index)
                    check = self._new_check(dc, name, {"CheckID": "service:%s" % service,
                                                       "Name": "Health Check: %s" % service,
                                                       "ServiceID": service, "Status": "passing"}, index)
                    check.output = "HTTP GET http://%s:%d/api/v3/ping: 200 OK" % (address, 59800 + port)
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
    """Runs HTTP checks on their interval, expires TTLs and reaps critical services."""

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
            if check.http and not check.running and check.next_run is not None and check.next_run <= now:
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
        status, output = http_check(check.method, check.http, check.header, timeout)
        with self.state.lock:
            if dc.checks.get((check.node, check.check_id)) is check:
                self.state._set_status(dc, check, status, output)
            check.running = False


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


def make_handler(state, agent):
    routes = Routes()
    route = routes.route

    class Handler(EmulatorHandler):
        server_version = "Consul"

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
            if isinstance(payload, bytes):
                data = payload
            elif content_type == "application/json":
                indent = 4 if "pretty" in self.q else None
                data = json.dumps(payload, indent=indent, separators=None if indent else (",", ":")).encode()
            else:
                data = payload.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Vary", "Accept-Encoding")
            self.send_header("X-Consul-Default-Acl-Policy", state.default_policy)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, exc):
            self._send(exc.status, exc.body, "text/plain; charset=utf-8")

        def _token(self):
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                return auth[7:].strip()
            return self.headers.get("X-Consul-Token") or self.q.get("token") or "anonymous"

        def _acl(self):
            if not state.acl_enabled:
                return None
            token = state.tokens.get(self._token())
            if token is None:
                raise APIError(403, "ACL not found")
            return token

        def _allowed(self, token, resource, name, access):
            if token is None:
                return True
            if token.allows(resource, name, access):
                return True
            has_rules = any(token.rules.get(k) for k in (resource, resource + "_prefix"))
            return state.default_policy == "allow" and not has_rules

        def _require(self, token, resource, name, access):
            if not self._allowed(token, resource, name, access):
                raise APIError(403, "Permission denied: token with AccessorID '%s' lacks permission '%s:%s' on %s"
                               % (token.accessor, resource, access, json.dumps(name)))

        def _dc(self):
            return self.q.get("dc") or agent.datacenter

        def _fault(self):
            fault = state.fault
            if not fault["mode"] or not self.route_path.startswith("/v1/"):
                return None
            if fault["datacenter"] and fault["datacenter"] != self._dc():
                return None
            return fault

        def _blocking(self, tables, dc_name, produce):
            """Answer now, or when one of the tables passes ?index=, or at the end of ?wait=."""
            wanted = int(self.q.get("index") or 0)
            wait = parse_duration(self.q.get("wait")) if "wait" in self.q else DEFAULT_WAIT
            deadline = time.time() + min(max(wait or DEFAULT_WAIT, 0), MAX_WAIT)
            with state.lock:
                dc = state.dc(dc_name)
                while wanted and max(dc.tables[t] for t in tables) <= wanted:
                    remaining = deadline - time.time()
                    if remaining <= 0:
                        break
                    state.changed.wait(remaining)
                index = max(dc.tables[t] for t in tables)
                result, filtered = produce(dc)
            headers = {"X-Consul-Index": str(index), "X-Consul-Knownleader": "true",
                       "X-Consul-Lastcontact": "0", "X-Consul-Effective-Consistency": "leader"}
            if filtered:
                headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
            return result, headers

        def _dispatch(self):
            self._query()
            state.stats.count(self.route_path)
            try:
                fault = self._fault()
                if fault:
                    if fault["mode"] == "slow":
                        time.sleep(fault["delay"] or 5.0)
                    elif fault["mode"] == "500":
                        raise APIError(500, "rpc error making call: emulated failure")
                    elif fault["mode"] == "garbage":
                        self._body()
                        self._send(200, b"<html><body>502 Bad Gateway</body>", "application/json",
                                   {"X-Consul-Index": "1"})
                        return
                fn, found = routes.find(self.command, self.route_path, head_as_get=True)
                if fn is None:
                    if found:
                        raise APIError(405, "method %s not allowed" % self.command)
                    raise APIError(404, "404 page not found\n")
                result = fn(self, *found)
                if result is not None:
                    status, payload, ctype, headers = result
                    self._send(status, payload, ctype, headers)
            except APIError as exc:
                self._error(exc)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

        # -- status ------------------------------------------------------------
        @route("GET", r"/v1/status/leader")
        def status_leader(self):
            return 200, state.leader, "application/json", None

        @route("GET", r"/v1/status/peers")
        def status_peers(self):
            return 200, [state.leader], "application/json", None

        # -- catalog -----------------------------------------------------------
        @route("GET", r"/v1/catalog/datacenters")
        def catalog_datacenters(self):
            return 200, sorted(state.dcs), "application/json", None

        @route("GET", r"/v1/catalog/nodes")
        def catalog_nodes(self):
            token = self._acl()

            def produce(dc):
                nodes = [n for n in dc.nodes.values() if self._node_meta_ok(n)]
                shown = [n.to_json() for n in sorted(nodes, key=lambda n: n.name)
                         if self._allowed(token, "node", n.name, "read")]
                return shown, len(shown) != len(nodes)
            result, headers = self._blocking(["nodes"], self._dc(), produce)
            return 200, result, "application/json", headers

        def _node_meta_ok(self, node):
            wanted = self.q.get("node-meta")
            if not wanted:
                return True
            key, _sep, value = wanted.partition(":")
            return node.meta.get(key) == value

        @route("GET", r"/v1/catalog/node/([^/]+)")
        def catalog_node(self, name):
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

        @route("GET", r"/v1/catalog/services")
        def catalog_services(self):
            token = self._acl()

            def produce(dc):
                result, hidden = {}, False
                for name, keys in sorted(dc.by_name.items()):
                    if not self._allowed(token, "service", name, "read"):
                        hidden = True
                        continue
                    tags = set()
                    for key in keys:
                        if self._node_meta_ok(dc.nodes[key[0]]):
                            tags.update(dc.services[key].tags)
                    result[name] = sorted(tags)
                return result, hidden
            result, headers = self._blocking(["services"], self._dc(), produce)
            return 200, result, "application/json", headers

        def _instances(self, dc, name, token):
            hidden = False
            found = []
            if not self._allowed(token, "service", name, "read"):
                return [], bool(dc.by_name.get(name))
            tag = self.q.get("tag")
            for key in sorted(dc.by_name.get(name, ())):
                service = dc.services[key]
                node = dc.nodes[key[0]]
                if tag and tag not in service.tags:
                    continue
                if not self._node_meta_ok(node):
                    continue
                if not self._allowed(token, "node", node.name, "read"):
                    hidden = True
                    continue
                found.append((node, service))
            return found, hidden

        @route("GET", r"/v1/catalog/service/([^/]+)")
        def catalog_service(self, name):
            token = self._acl()

            def produce(dc):
                found, hidden = self._instances(dc, name, token)
                return [s.catalog_json(n) for n, s in found], hidden
            result, headers = self._blocking(["services"], self._dc(), produce)
            return 200, result, "application/json", headers

        # -- health ------------------------------------------------------------
        @route("GET", r"/v1/health/service/([^/]+)")
        def health_service(self, name):
            token = self._acl()
            passing_only = "passing" in self.q and self.q.get("passing", "") not in ("false", "0")

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
                    if not self._allowed(token, "node", check.node, "read") or (
                            check.service_name and not self._allowed(token, "service", check.service_name, "read")):
                        hidden = True
                        continue
                    shown.append(check.to_json())
                return shown, hidden
            return produce

        @route("GET", r"/v1/health/checks/([^/]+)")
        def health_checks(self, name):
            token = self._acl()
            produce = self._check_list(lambda c: c.service_name == name, token)
            result, headers = self._blocking(["checks"], self._dc(), produce)
            return 200, result, "application/json", headers

        @route("GET", r"/v1/health/node/([^/]+)")
        def health_node(self, name):
            token = self._acl()
            produce = self._check_list(lambda c: c.node == name, token)
            result, headers = self._blocking(["checks"], self._dc(), produce)
            return 200, result, "application/json", headers

        @route("GET", r"/v1/health/state/([^/]+)")
        def health_state(self, wanted):
            if wanted not in ("any", "passing", "warning", "critical"):
                raise APIError(400, "Bad state")
            token = self._acl()
            produce = self._check_list(lambda c: wanted == "any" or c.status == wanted, token)
            result, headers = self._blocking(["checks"], self._dc(), produce)
            return 200, result, "application/json", headers

        # -- agent -------------------------------------------------------------
        @route("GET", r"/v1/agent/self")
        def agent_self(self):
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

        @route("GET", r"/v1/agent/members")
        def agent_members(self):
            self._acl()
            with state.lock:
                dc = state.dcs[agent.datacenter]
                members = [{"Name": n.name, "Addr": n.address, "Port": 8301, "Tags": {"dc": dc.name},
                            "Status": 1 if dc.checks[(n.name, "serfHealth")].status == "passing" else 4}
                           for n in sorted(dc.nodes.values(), key=lambda n: n.name)]
            return 200, members, "application/json", None

        @route("GET", r"/v1/agent/services")
        def agent_services(self):
            token = self._acl()
            with state.lock:
                dc = state.dcs[agent.datacenter]
                # Consul's own "consul" service is catalog-only; agents do not list it.
                result = {s.id: s.agent_json(dc.name) for (n, i), s in sorted(dc.services.items())
                          if n == agent.name and i != "consul" and self._allowed(token, "service", s.name, "read")}
            return 200, result, "application/json", None

        @route("GET", r"/v1/agent/service/([^/]+)")
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
            return 200, result, "application/json", None

        @route("PUT", r"/v1/agent/service/register")
        def agent_service_register(self):
            token = self._acl()
            body = self._json_body()
            if not isinstance(body, dict):
                raise APIError(400, "Request decode failed: json: cannot unmarshal into ServiceDefinition")
            self._require(token, "service", field(body, "Name") or "", "write")
            service = state.register_service(agent.datacenter, agent.name, body)
            state.remember(agent.datacenter, agent.name, "service", service.id, body)
            return 200, b"", "text/plain; charset=utf-8", None

        @route("PUT", r"/v1/agent/service/deregister/([^/]+)")
        def agent_service_deregister(self, service_id):
            token = self._acl()
            with state.lock:
                service = state.dcs[agent.datacenter].services.get((agent.name, service_id))
                self._require(token, "service", service.name if service else service_id, "write")
            state.deregister_service(agent.datacenter, agent.name, service_id)
            return 200, b"", "text/plain; charset=utf-8", None

        @route("PUT", r"/v1/catalog/register")
        def catalog_register(self):
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

        @route("PUT", r"/v1/catalog/deregister")
        def catalog_deregister(self):
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

        @route("GET", r"/v1/agent/checks")
        def agent_checks(self):
            token = self._acl()
            with state.lock:
                dc = state.dcs[agent.datacenter]
                result = {c.check_id: c.agent_json() for (n, cid), c in sorted(dc.checks.items())
                          if n == agent.name and cid != "serfHealth"
                          and self._allowed(token, "service" if c.service_name else "node",
                                            c.service_name or n, "read")}
            return 200, result, "application/json", None

        @route("PUT", r"/v1/agent/check/register")
        def agent_check_register(self):
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
            return 200, b"", "text/plain; charset=utf-8", None

        @route("PUT", r"/v1/agent/check/deregister/([^/]+)")
        def agent_check_deregister(self, check_id):
            token = self._acl()
            self._require(token, "node", agent.name, "write")
            state.deregister_check(agent.datacenter, agent.name, check_id)
            return 200, b"", "text/plain; charset=utf-8", None

        def _ttl(self, check_id, status, note):
            token = self._acl()
            self._require(token, "node", agent.name, "write")
            state.update_ttl(agent.datacenter, agent.name, check_id, status, note)
            return 200, b"", "text/plain; charset=utf-8", None

        @route("PUT", r"/v1/agent/check/pass/([^/]+)")
        def agent_check_pass(self, check_id):
            return self._ttl(check_id, "passing", self.q.get("note"))

        @route("PUT", r"/v1/agent/check/warn/([^/]+)")
        def agent_check_warn(self, check_id):
            return self._ttl(check_id, "warning", self.q.get("note"))

        @route("PUT", r"/v1/agent/check/fail/([^/]+)")
        def agent_check_fail(self, check_id):
            return self._ttl(check_id, "critical", self.q.get("note"))

        @route("PUT", r"/v1/agent/check/update/([^/]+)")
        def agent_check_update(self, check_id):
            body = self._json_body()
            return self._ttl(check_id, field(body, "Status") or "passing", field(body, "Output"))

        # -- KV ----------------------------------------------------------------
        @route("GET", r"/v1/kv/(.*)")
        def kv_get(self, key):
            token = self._acl()
            recurse = "recurse" in self.q
            keys_only = "keys" in self.q
            if not (recurse or keys_only):
                self._require(token, "key", key, "read")
            separator = self.q.get("separator")

            def produce(dc):
                if recurse or keys_only:
                    matched = [e for k, e in sorted(dc.kv.items()) if k.startswith(key)]
                else:
                    matched = [dc.kv[key]] if key in dc.kv else []
                shown = [e for e in matched if self._allowed(token, "key", e["Key"], "read")]
                if keys_only:
                    names = []
                    for entry in shown:
                        name = entry["Key"]
                        if separator:
                            cut = name.find(separator, len(key))
                            if cut >= 0:
                                name = name[:cut + len(separator)]
                        if name not in names:
                            names.append(name)
                    return names, len(shown) != len(matched)
                return [dict(e) for e in shown], len(shown) != len(matched)
            result, headers = self._blocking(["kvs"], self._dc(), produce)
            if not result:
                return 404, b"", "text/plain; charset=utf-8", headers
            if keys_only:
                return 200, result, "application/json", headers
            if "raw" in self.q:
                return 200, base64.b64decode(result[0]["Value"] or ""), "text/plain; charset=utf-8", headers
            return 200, result, "application/json", headers

        @route("PUT", r"/v1/kv/(.*)")
        def kv_put(self, key):
            token = self._acl()
            if not key:
                raise APIError(400, "Missing key name")
            self._require(token, "key", key, "write")
            raw = self._body()
            cas = int(self.q["cas"]) if "cas" in self.q else None
            flags = int(self.q["flags"]) if "flags" in self.q else None
            value = base64.b64encode(raw).decode() if raw else None
            ok = state.kv_put(self._dc(), key, value, flags, cas)
            return 200, ok, "application/json", None

        @route("DELETE", r"/v1/kv/(.*)")
        def kv_delete(self, key):
            token = self._acl()
            self._require(token, "key", key, "write")
            cas = int(self.q["cas"]) if "cas" in self.q else None
            ok = state.kv_delete(self._dc(), key, "recurse" in self.q, cas)
            return 200, ok, "application/json", None

        # -- ACL (tokens with JSON rules; enough for tests against real Consul's API) --
        @route("GET", r"/v1/acl/token/self")
        def acl_token_self(self):
            token = self._acl()
            if token is None:
                raise APIError(401, "ACL support disabled")
            return 200, {"AccessorID": token.accessor, "SecretID": token.secret,
                         "Description": token.description, "Policies": [], "Local": False}, "application/json", None

        # -- emulator control (not Consul) --------------------------------------
        @route("POST", r"/_emulator/fault")
        def control_fault(self):
            body = self._json_body()
            if body.get("mode") not in (None, "slow", "500", "garbage"):
                raise APIError(400, "unknown fault mode %r (slow, 500, garbage or null)" % body.get("mode"))
            with state.lock:
                state.fault = {"mode": body.get("mode"), "delay": float(body.get("delay") or 0),
                               "datacenter": body.get("datacenter")}
            return 200, state.fault, "application/json", None

        @route("POST", r"/_emulator/node")
        def control_node(self):
            body = self._json_body()
            node = state.add_node(body["name"], body["address"], body.get("datacenter"), body.get("meta"))
            return 200, node.to_json(), "application/json", None

        @route("POST", r"/_emulator/node/([^/]+)/serf")
        def control_serf(self, name):
            body = self._json_body()
            state.set_serf(body.get("datacenter") or self._dc(), name, body.get("status", "critical"))
            return 200, {"node": name, "status": body.get("status", "critical")}, "application/json", None

        @route("POST", r"/_emulator/seed")
        def control_seed(self):
            body = self._json_body()
            count = state.seed(int(body.get("nodes", 1)), int(body.get("services", 1)), body.get("datacenter"))
            return 200, {"nodes": count}, "application/json", None

        @route("POST", r"/_emulator/catalog")
        def control_catalog(self):
            body = self._json_body()
            count = state.seed_catalog(body.get("datacenter"), body.get("nodes") or [])
            return 200, {"nodes": count}, "application/json", None

        @route("POST", r"/_emulator/token")
        def control_token(self):
            if not state.acl_enabled:
                raise APIError(400, "ACLs are not enabled")
            body = self._json_body()
            secret = body.get("secret") or str(uuid.uuid4())
            with state.lock:
                state.tokens[secret] = Token(secret, str(uuid.uuid4()), body.get("description", ""),
                                             body.get("rules") or {})
            return 200, {"SecretID": secret}, "application/json", None

        @route("GET", r"/_emulator/stats")
        def control_stats(self):
            return 200, state.stats.snapshot(), "application/json", None

        @route("POST", r"/_emulator/stats/reset")
        def control_stats_reset(self):
            state.stats.reset()
            return 200, {"requests": 0}, "application/json", None

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def parse_node(spec, default_dc):
    """NAME=ADDR[@DC]"""
    name, sep, rest = spec.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("--node wants NAME=ADDR[@DC], got %r" % spec)
    address, _sep, dc = rest.partition("@")
    return name, address, dc or default_dc


def serve(port, nodes, datacenter="dc1", acl_master_token=None, default_policy="deny", ready=None):
    """Start one agent per node; returns (state, servers, runner). ``ready``: called with the bound port."""
    state = State(datacenter, acl_master_token, default_policy)
    servers = []
    for position, (name, address, dc) in enumerate(nodes):
        state.add_node(name, address, dc, server=position == 0)
        server = Server((address, port), make_handler(state, Agent(name, address, dc)))
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
    parser.add_argument("--seed-nodes", type=int, default=0)
    parser.add_argument("--seed-services", type=int, default=12)
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--data-file", help="keep what agents registered and KV here across restarts, "
                                            "as a real agent's data dir does")
    args = parser.parse_args(argv)
    nodes = [parse_node(spec, args.datacenter) for spec in (args.node or ["server=127.0.0.1"])]

    def ready(port):
        if args.port_file:
            with open(args.port_file + ".tmp", "w") as handle:
                handle.write(str(port))
            os.replace(args.port_file + ".tmp", args.port_file)
        sys.stderr.write("consul-emulator: listening on port %d for %s\n"
                         % (port, ", ".join("%s=%s@%s" % n for n in nodes)))
        sys.stderr.flush()

    state, servers, runner = serve(args.port, nodes, args.datacenter, args.acl_master_token,
                                   args.acl_default_policy, ready)
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
