# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Consul provider (EdgeX 2.x/3.x) over python-consul2 (or its fork py-consul: same import).

Discovery reads a datacenter in bulk: /v1/catalog/nodes, /v1/health/state/any,
/v1/catalog/services and one /v1/health/service/<name> per distinct service name,
so the request count does not grow with the number of nodes.
"""

from __future__ import annotations

import re
import warnings

from .._errors import RegistryAuthError, RegistryError, RegistryUnavailableError
from .._names import validate_name
from .._catalog import DEFAULT_CHECK_INTERVAL, PING_PATH
from .model import Discovery, NodeRecord, Registry, ServiceRecord, worst_status

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import consul
    import requests

    HAS_CONSUL = True
    CONSUL_IMPORT_ERROR = None
except ImportError as exc:  # reported when a Consul registry is actually used
    HAS_CONSUL = False
    CONSUL_IMPORT_ERROR = exc

# Node names that go into a URL path as they are (Consul's own rule is looser).
URL_SAFE_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")


def _client(settings):
    """A python-consul2 client that honours our settings only.

    python-consul2 lets CONSUL_HTTP_ADDR/CONSUL_HTTP_TOKEN override explicit arguments;
    settings were already resolved (explicit > environment > default), so the client's
    connection and token are set again afterwards.
    """
    if not HAS_CONSUL:
        raise RegistryError("registry_type consul needs the python-consul2 package on the host running "
                            "this (pip install python-consul2): %s" % CONSUL_IMPORT_ERROR)
    verify = settings.get("ca_path") or bool(settings.get("validate_certs", True))
    cert = None
    if settings.get("client_cert"):
        cert = (settings["client_cert"], settings["client_key"]) if settings.get("client_key") \
            else settings["client_cert"]
    with warnings.catch_warnings():
        # Only python-consul2's notice about the legacy ACL API is muted.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="consul.base")
        client = consul.Consul(dc=settings.get("datacenter"))
    client.http = client.http_connect(settings["host"], settings["port"], settings["scheme"], verify, cert,
                                      timeout=settings.get("timeout"))
    client.scheme = settings["scheme"]
    client.token = settings.get("token")
    return client


class ConsulRegistry(Registry):
    type = "consul"

    def __init__(self, settings, client=None):
        self.settings = settings
        self.endpoint = "%s://%s:%s" % (settings["scheme"], settings["host"], settings["port"])
        self.client = client if client is not None else _client(settings)

    # -- error mapping -------------------------------------------------------
    def _call(self, what, fn, *args, **kwargs):
        """Run one API call; map failures to the registry errors (never echoing the token)."""
        try:
            return fn(*args, **kwargs)
        except consul.ACLPermissionDenied as exc:
            raise RegistryAuthError("Consul at %s refused %s: 403 %s" % (self.endpoint, what, _short(exc)))
        except consul.ACLDisabled as exc:
            raise RegistryAuthError("Consul at %s refused %s: 401 %s" % (self.endpoint, what, _short(exc)))
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise RegistryUnavailableError("Consul at %s is unreachable (%s: %s)"
                                           % (self.endpoint, what, type(exc).__name__))
        except consul.ConsulException as exc:
            text = str(exc)
            if text[:1] == "5":
                raise RegistryUnavailableError("Consul at %s failed %s: %s" % (self.endpoint, what, _short(exc)))
            raise RegistryError("Consul at %s rejected %s: %s" % (self.endpoint, what, _short(exc)))
        except ValueError as exc:  # JSON decoding of a non-JSON body
            raise RegistryError("Consul at %s answered %s with something that is not Consul JSON (%s)"
                                % (self.endpoint, what, exc))
        except (KeyError, TypeError, AttributeError) as exc:
            raise RegistryError("Consul at %s answered %s with an unexpected shape (%s: %s)"
                                % (self.endpoint, what, type(exc).__name__, exc))

    # -- discovery -------------------------------------------------------------
    def discover(self):
        dc = self.settings.get("datacenter")
        _i, nodes = self._call("GET /v1/catalog/nodes", self.client.catalog.nodes, dc=dc)
        _i, checks = self._call("GET /v1/health/state/any", self.client.health.state, "any", dc=dc)
        _i, names = self._call("GET /v1/catalog/services", self.client.catalog.services, dc=dc)
        try:
            return self._build(dc, nodes, checks, names)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise RegistryError("Consul at %s answered with an unexpected shape (%s: %s)"
                                % (self.endpoint, type(exc).__name__, exc))

    def discover_nodes(self, names):
        """A Discovery of the nodes ``names`` only: /v1/catalog/node/<name> and /v1/health/node/<name>
        each, so a module acting on one gateway reads its own services, not the whole datacenter
        (the bulk read grows with the fleet, and every gateway of a play would pay for it). A node
        Consul does not know is left out, as the bulk read leaves it out."""
        names = list(dict.fromkeys(names))
        if not all(isinstance(name, str) and URL_SAFE_NODE.match(name) for name in names):
            return self.discover()  # a name that is not plain in a URL path: the bulk read has it too
        dc = self.settings.get("datacenter")
        node_records, services = [], []
        try:
            for name in names:
                _i, catalog = self._call("GET /v1/catalog/node/%s" % name, self.client.catalog.node, name, dc=dc)
                if not catalog:
                    continue
                _i, checks = self._call("GET /v1/health/node/%s" % name, self.client.health.node, name, dc=dc)
                node = catalog["Node"]
                serf = [c for c in checks if c["CheckID"] == "serfHealth"]
                node_records.append(NodeRecord(name=node["Node"], address=node["Address"],
                                               datacenter=node.get("Datacenter") or dc,
                                               meta=dict(node.get("Meta") or {}),
                                               status=serf[0]["Status"] if serf else "unknown"))
                by_service = {}
                for check in checks:
                    if check.get("ServiceID"):
                        by_service.setdefault(check["ServiceID"], []).append(check)
                for service_id, service in sorted((catalog.get("Services") or {}).items(),
                                                  key=lambda item: (item[1]["Service"], item[0])):
                    # the shape of a /v1/health/service entry: the node's serfHealth first, as Consul lists it
                    entry = {"Node": node, "Service": service, "Checks": serf + by_service.get(service_id, [])}
                    services.append(self._service(entry, {node["Node"]: node["Address"]}, dc))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise RegistryError("Consul at %s answered with an unexpected shape (%s: %s)"
                                % (self.endpoint, type(exc).__name__, exc))
        datacenter = dc or (node_records[0].datacenter if node_records else None)
        return Discovery(source="consul", nodes=node_records, services=services, datacenter=datacenter)

    def _build(self, dc, nodes, checks, names):
        if not isinstance(nodes, list) or not isinstance(checks, list) or not isinstance(names, dict):
            raise TypeError("nodes, checks or services are not the JSON types Consul returns")
        serf = {c["Node"]: c["Status"] for c in checks if c["CheckID"] == "serfHealth"}
        node_records = [
            NodeRecord(name=n["Node"], address=n["Address"], datacenter=n.get("Datacenter") or dc,
                       meta=dict(n.get("Meta") or {}), status=serf.get(n["Node"], "unknown"))
            for n in nodes
        ]
        addresses = {n.name: n.address for n in node_records}
        services = []
        for name in sorted(names):
            path = "GET /v1/health/service/%s" % name
            _i, entries = self._call(path, self.client.health.service, name, dc=dc)
            if not isinstance(entries, list):
                raise TypeError("%s is not a list" % path)
            for entry in entries:
                services.append(self._service(entry, addresses, dc))
        datacenter = dc or (node_records[0].datacenter if node_records else None)
        return Discovery(source="consul", nodes=node_records, services=services, datacenter=datacenter)

    def _service(self, entry, addresses, dc):
        node, service = entry["Node"], entry["Service"]
        checks = [
            {"id": c["CheckID"], "name": c["Name"], "status": c["Status"], "output": c.get("Output", ""),
             "service_id": c.get("ServiceID", "")}
            for c in entry["Checks"]
        ]
        return ServiceRecord(
            name=service["Service"],
            id=service["ID"],
            node=node["Node"],
            address=service.get("Address") or addresses.get(node["Node"]) or node.get("Address"),
            # Consul registers itself with its server RPC port; its API is where we asked.
            port=self.settings["port"] if service["Service"] == "consul" else (service.get("Port") or None),
            tags=list(service.get("Tags") or []),
            meta=dict(service.get("Meta") or {}),
            # serfHealth is among the checks, so a dead node's services are never passing.
            status=worst_status(c["status"] for c in checks),
            checks=checks,
            datacenter=node.get("Datacenter") or dc,
        )

    # -- registration (as go-mod-registry does it: service, then its HTTP check) --------
    def register(self, service):
        validate_name(service.name)
        service_id = service.id or service.name
        wanted = {"Service": service.name, "Address": service.address or "", "Port": service.port or 0,
                  "Tags": sorted(service.tags or []), "Meta": dict(service.meta or {})}
        current = self._call("GET /v1/agent/services", self.client.agent.services).get(service_id)
        if current is not None and {
            "Service": current.get("Service"), "Address": current.get("Address") or "",
            "Port": current.get("Port") or 0, "Tags": sorted(current.get("Tags") or []),
            "Meta": dict(current.get("Meta") or {}),
        } == wanted:
            return False
        self._call("PUT /v1/agent/service/register", self.client.agent.service.register, service.name,
                   service_id=service_id, address=service.address, port=service.port, tags=service.tags or None,
                   meta=service.meta or None)
        if service.health_path and service.port:
            url = "http://%s:%d%s" % (service.address, service.port, service.health_path or PING_PATH)
            self._call("PUT /v1/agent/check/register", self.client.agent.check.register,
                       "Health Check: %s" % service.name, check=consul.Check.http(url, DEFAULT_CHECK_INTERVAL),
                       check_id=service_id, service_id=service_id, notes="Check the health of the API")
        return True

    def deregister(self, service_id, node=None):
        validate_name(service_id, "service id")
        if node is not None and node != self._agent_node():
            # Another node's agent is not ours to talk to: remove it from the catalog.
            return bool(self._call("PUT /v1/catalog/deregister", self.client.catalog.deregister, node,
                                   service_id=service_id))
        existed = self._call("PUT /v1/agent/service/deregister", self.client.agent.service.deregister, service_id)
        if existed:
            # go-mod-registry registers the check separately under the service's id.
            self._call("PUT /v1/agent/check/deregister", self.client.agent.check.deregister, service_id)
        return bool(existed)

    def _agent_node(self):
        agent = self._call("GET /v1/agent/self", self.client.agent.self)
        return agent["Config"]["NodeName"]

    # -- configuration ---------------------------------------------------------
    def kv_get(self, key, recurse=False):
        _i, entries = self._call("GET /v1/kv/%s" % key, self.client.kv.get, key, recurse=recurse)
        if entries is None:
            return {}
        if not recurse:
            entries = [entries]
        return {e["Key"]: (e["Value"] or b"").decode("utf-8", "replace") for e in entries}

    def kv_put(self, key, value):
        current = self.kv_get(key)
        if current.get(key) == value:
            return False
        return bool(self._call("PUT /v1/kv/%s" % key, self.client.kv.put, key, value))


def _short(exc, limit=300):
    text = str(exc).strip()
    return text if len(text) <= limit else text[:limit] + "..."
