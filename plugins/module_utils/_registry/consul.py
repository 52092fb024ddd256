# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Consul provider (EdgeX 2.x/3.x): python-consul2 (or its fork py-consul: same import ``consul``)
for the API, over a transport of our own.

The library builds the requests and reads the answers; our transport sends them, so that what
the two libraries do differently, or not at all, is done one way here: one total deadline per
call (name lookup, connect, TLS, the whole answer), TLS failures told apart from an unreachable
Consul, the token sent on every request (py-consul's agent calls send none), no environment
variable read behind our back (both libraries let ``CONSUL_HTTP_TOKEN`` override the token and
python-consul2 refuses ``CONSUL_HTTP_ADDR`` forms the Consul CLI accepts), path segments escaped,
and ``X-Consul-Results-Filtered-By-ACLs`` seen: a list Consul filtered by ACLs says nothing
about what is absent.

Discovery reads a datacenter in bulk: /v1/catalog/nodes, /v1/health/state/any,
/v1/catalog/services and one /v1/health/service/<name> per distinct service name,
so the request count does not grow with the number of nodes. A module acting on a few nodes
reads /v1/catalog/node/<name> and /v1/health/node/<name> of each instead, two plain GETs sent
without the library (its import is most of such a run's cost); the library is imported when a
run first needs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import warnings

from .._errors import (
    RegistryAuthError,
    RegistryError,
    RegistryFilteredError,
    RegistryServerError,
    RegistryTLSError,
)
from .._names import SAFE_NAME, validate_name
from .._net import client as http
from . import transport
from .model import Check, Discovery, KVEntry, NodeRecord, Registration, Registry, ServiceRecord, worst_status

# What python-consul2 and py-consul read from the environment in their constructor.
_LIBRARY_ENVIRONMENT = ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY")
_CONSTRUCTION = threading.Lock()
FILTERED_HEADER = "x-consul-results-filtered-by-acls"
# Consul does not hand a check's definition back; this collection writes it into the check's notes.
CHECK_NOTES = "; edgex.sysmgmt check: "
DEFAULT_POLICY_HEADER = "x-consul-default-acl-policy"


def _library():
    """The ``consul`` package, imported when a run first needs the library (``ConsulRegistry.client``)."""
    try:
        with warnings.catch_warnings():
            # Only python-consul2's notice about the legacy ACL API is muted.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="consul.base")
            import consul
            import consul.base
    except ImportError as exc:
        raise RegistryError("registry_type consul needs the python-consul2 package (or py-consul) on the host "
                            "running this (pip install python-consul2, or Debian's python3-consul2): %s" % exc)
    return consul


@contextlib.contextmanager
def _library_environment_hidden():
    """The library's constructor reads the Consul variables; our settings were already resolved
    from them (explicit > environment > default), so it must not see them again."""
    with _CONSTRUCTION:
        saved = {name: os.environ.pop(name) for name in _LIBRARY_ENVIRONMENT if name in os.environ}
        try:
            yield
        finally:
            os.environ.update(saved)


class _Headers(dict):
    """Response headers by lower-case name, looked up whatever the case (the libraries ask for
    ``X-Consul-Index``)."""

    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name):
        return dict.__contains__(self, name.lower())

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Transport(object):
    """Sends one request to Consul with our settings and deadline: the library's requests (see
    ``LibraryHTTP``) and the reads this provider makes itself (``ConsulRegistry._read``)."""

    def __init__(self, settings):
        self.settings = settings
        self.endpoint = "%s://%s:%s" % (settings["scheme"], settings["host"], settings["port"])
        try:
            self.tls = http.tls_context(settings) if settings["scheme"] == "https" else None
        except http.TLSFailure as exc:
            raise RegistryTLSError("cannot set up TLS for Consul at %s %s" % (self.endpoint, exc))
        self.filtered = []  # the requests whose answer Consul filtered by ACLs
        self.last_status = None

    def send(self, method, path, params=None, data=None):
        """The http.Response of ``method path`` (its segments escaped here); raises the registry
        errors of a transport failure."""
        segments = path.split("/")
        if any(segment in (".", "..") for segment in segments):
            raise RegistryError("refusing to send %s %s to Consul: a path segment is '.' or '..'" % (method, path))
        query = [(k, v) for k, v in (params.items() if isinstance(params, dict) else params or ()) if k != "token"]
        headers = {"Accept": "application/json"}
        if self.settings.get("token"):
            headers["X-Consul-Token"] = self.settings["token"]
        body = data.encode("utf-8") if isinstance(data, str) else data
        timeout = float(self.settings["timeout"])
        if any(k == "index" for k, _v in query):  # a blocking query answers when its wait is over
            timeout += 5 * 60 + 5
        what = "%s %s" % (method, path)
        response = transport.send("Consul", self.endpoint, what, http.request,
                                  method, self.settings["scheme"], self.settings["host"], self.settings["port"],
                                  "/".join(http.path_segment(s) for s in segments), query, headers,
                                  body if method != "GET" else None, timeout, self.tls)
        self.last_status = response.status
        if response.headers.get(FILTERED_HEADER, "").lower() == "true":
            self.filtered.append(what)
        elif not self.settings.get("token") and response.headers.get(DEFAULT_POLICY_HEADER, "").lower() == "deny":
            # Consul says nothing of filtering to a request without a token, but its default policy
            # tells: the anonymous token sees only what a policy lets it.
            self.filtered.append("%s without a token, default policy deny" % what)
        return response


class LibraryHTTP(object):
    """What python-consul2 and py-consul call to send a request (their HTTPClient's get, put,
    delete and post): sent through our Transport, answered in the library's Response."""

    def __init__(self, transport, response_class):
        self.transport = transport
        self.response_class = response_class

    def get(self, callback, path, params=None, headers=None, **_ignored):
        return self._answer(callback, self.transport.send("GET", path, params))

    def put(self, callback, path, params=None, data="", headers=None, **_ignored):
        return self._answer(callback, self.transport.send("PUT", path, params, data))

    def delete(self, callback, path, params=None, data="", headers=None, **_ignored):
        return self._answer(callback, self.transport.send("DELETE", path, params, data))

    def post(self, callback, path, params=None, *args, **kwargs):
        # python-consul2 orders (params, headers, data), py-consul (params, data, headers).
        data = kwargs.get("data", next((a for a in args if isinstance(a, (str, bytes))), ""))
        return self._answer(callback, self.transport.send("POST", path, params, data))

    def close(self):
        pass

    def _answer(self, callback, response):
        text = response.body.decode("utf-8", "replace")
        fields = dict(code=response.status, headers=_Headers(response.headers), body=text, content=response.body)
        return callback(self.response_class(*(fields[name] for name in self.response_class._fields)))


def _client(transport, datacenter):
    """A python-consul2 (or py-consul) client whose requests go through ``transport``."""
    library = _library()
    library_http = LibraryHTTP(transport, library.base.Response)

    class Client(library.base.Consul):
        @staticmethod
        def http_connect(*_args, **_kwargs):
            return library_http

    with _library_environment_hidden():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="consul.base")
            client = Client(dc=datacenter)
    client.token = None  # the transport sends the token itself, on every request
    return client


class ConsulRegistry(Registry):
    type = "consul"

    def __init__(self, settings):
        self.settings = settings
        self.endpoint = "%s://%s:%s" % (settings["scheme"], settings["host"], settings["port"])
        self.transport = Transport(settings)
        self._client = None

    @property
    def client(self):
        """The library's client, built on first use: a run that only reads its own node's
        services (``discover_nodes``) never imports the library, nor the requests stack it pulls in."""
        if self._client is None:
            self._client = _client(self.transport, self.settings.get("datacenter"))
        return self._client

    @property
    def library(self):
        """The ``consul`` package (its exceptions, ``Check``), imported with the client."""
        return _library()

    # -- error mapping -------------------------------------------------------
    def _call(self, what, fn, *args, **kwargs):
        """Run one API call; map failures to the registry errors (never echoing the token).
        A 404 is an error naming the endpoint unless ``allow_404`` (then the answer is None)."""
        allow_404 = kwargs.pop("allow_404", False)
        library = self.library
        transport = self.transport
        try:
            answer = fn(*args, **kwargs)
        except library.ACLPermissionDenied as exc:
            raise RegistryAuthError("Consul at %s refused %s: 403 %s" % (self.endpoint, what, _short(exc)))
        except library.ACLDisabled as exc:
            raise RegistryAuthError("Consul at %s refused %s: 401 %s" % (self.endpoint, what, _short(exc)))
        except library.NotFound as exc:
            raise RegistryError("Consul at %s answered %s with 404 %s" % (self.endpoint, what, _short(exc)))
        except library.ConsulException as exc:
            text = str(exc)
            if text.startswith("Failed to decode JSON"):  # py-consul's word for python-consul2's ValueError
                raise self._not_json(what, transport.last_status, exc)
            if text[:1] == "5":
                raise RegistryServerError("Consul at %s failed %s: %s" % (self.endpoint, what, _short(exc)))
            raise RegistryError("Consul at %s rejected %s: %s" % (self.endpoint, what, _short(exc)))
        except ValueError as exc:  # JSON decoding of a body that is not JSON
            raise self._not_json(what, transport.last_status, exc)
        except (KeyError, TypeError, AttributeError) as exc:
            raise RegistryError("Consul at %s answered %s (HTTP %s) with an unexpected shape (%s: %s)"
                                % (self.endpoint, what, transport.last_status, type(exc).__name__, exc))
        if transport.last_status == 404:
            if not allow_404:
                raise self._no_such_api(what)
            return None
        return answer

    def _not_json(self, what, status, exc):
        return RegistryError("Consul at %s answered %s (HTTP %s) with something that is not Consul JSON (%s)"
                             % (self.endpoint, what, status, _short(exc, 120)))

    def _no_such_api(self, what):
        return RegistryError("Consul at %s answered %s with 404: not the Consul HTTP API, or an API this "
                             "Consul does not have" % (self.endpoint, what))

    def _read(self, path):
        """The JSON answer of ``GET path`` in the settings' datacenter, sent by our transport without
        the library, its failures mapped as ``_call`` maps the library's. The node-scoped reads of
        ``discover_nodes`` use it: both libraries import the requests stack with their package, which
        costs a gateway's health check more CPU than its two requests and its probes together."""
        what = "GET %s" % path
        datacenter = self.settings.get("datacenter")
        response = self.transport.send("GET", path, [("dc", datacenter)] if datacenter else None)
        status, detail = response.status, _short(response.body.decode("utf-8", "replace"))
        if status in (401, 403):
            raise RegistryAuthError("Consul at %s refused %s: %d %s" % (self.endpoint, what, status, detail))
        if status == 404:
            raise self._no_such_api(what)
        if status >= 500:
            raise RegistryServerError("Consul at %s failed %s: %d %s" % (self.endpoint, what, status, detail))
        if status >= 400:
            raise RegistryError("Consul at %s rejected %s: %d %s" % (self.endpoint, what, status, detail))
        try:
            return json.loads(response.body)
        except ValueError as exc:
            raise self._not_json(what, status, exc)

    def _shape(self, what, value, kind):
        if not isinstance(value, kind):
            raise RegistryError("Consul at %s answered %s with an unexpected shape (%s, not %s)"
                                % (self.endpoint, what, type(value).__name__, kind.__name__))
        return value

    # -- discovery -------------------------------------------------------------
    def discover(self):
        dc = self.settings.get("datacenter")
        reads = [("GET /v1/catalog/nodes", self.client.catalog.nodes, (), list),
                 ("GET /v1/health/state/any", self.client.health.state, ("any",), list),
                 ("GET /v1/catalog/services", self.client.catalog.services, (), dict)]
        nodes, checks, names = [self._shape(what, self._call(what, fn, *args, dc=dc)[1], kind)
                                for what, fn, args, kind in reads]
        try:
            discovery = self._build(dc, nodes, checks, names)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise RegistryError("Consul at %s answered with an unexpected shape (%s: %s)"
                                % (self.endpoint, type(exc).__name__, exc))
        self._refuse_filtered()
        return discovery

    def discover_nodes(self, names):
        """A Discovery of the nodes ``names`` only: /v1/catalog/node/<name> and /v1/health/node/<name>
        each, so a module acting on one gateway reads its own services, not the whole datacenter
        (the bulk read grows with the fleet, and every gateway of a play would pay for it). A node
        Consul does not know is left out, as the bulk read leaves it out."""
        names = list(dict.fromkeys(names))
        if not all(isinstance(name, str) and SAFE_NAME.fullmatch(name) for name in names):
            return self.discover()  # the bulk read names, and skips, what is not a plain name
        dc = self.settings.get("datacenter")
        node_records, services, gaps = [], [], []
        try:
            for name in names:
                catalog = self._read("/v1/catalog/node/%s" % name)
                if not catalog:
                    continue
                checks = self._shape("GET /v1/health/node/%s" % name, self._read("/v1/health/node/%s" % name), list)
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
                    if not (_plain(service["Service"], "service", gaps) and _plain(service_id, "service id", gaps)):
                        continue
                    # the shape of a /v1/health/service entry: the node's serfHealth first, as Consul lists it
                    entry = {"Node": node, "Service": service, "Checks": serf + by_service.get(service_id, [])}
                    services.append(self._service(entry, {node["Node"]: node["Address"]}, dc))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise RegistryError("Consul at %s answered with an unexpected shape (%s: %s)"
                                % (self.endpoint, type(exc).__name__, exc))
        self._refuse_filtered()
        datacenter = dc or (node_records[0].datacenter if node_records else None)
        return Discovery(source="consul", nodes=node_records, services=services, datacenter=datacenter, gaps=gaps,
                         warnings=list(gaps))

    def _refuse_filtered(self):
        """An answer Consul filtered by ACLs says nothing about what is absent: refuse it."""
        if self.transport.filtered:
            raise RegistryFilteredError(
                "Consul at %s filtered its answer by ACLs (%s: X-Consul-Results-Filtered-By-ACLs): the token "
                "cannot see the whole catalogue, so the answer says nothing about what is absent; use a token that "
                "may read every node and service (node_prefix and service_prefix \"\" read)"
                % (self.endpoint, ", ".join(sorted(set(self.transport.filtered)))))

    def _build(self, dc, nodes, checks, names):
        gaps = []
        serf = {c["Node"]: c["Status"] for c in checks if c["CheckID"] == "serfHealth"}
        node_records = []
        for node in nodes:
            if _plain(node["Node"], "node", gaps):
                node_records.append(NodeRecord(name=node["Node"], address=node["Address"],
                                               datacenter=node.get("Datacenter") or dc,
                                               meta=dict(node.get("Meta") or {}),
                                               status=serf.get(node["Node"], "unknown")))
        addresses = {n.name: n.address for n in node_records}
        services = []
        for name in sorted(names):
            if not _plain(name, "service", gaps):
                continue
            path = "GET /v1/health/service/%s" % name
            entries = self._shape(path, self._call(path, self.client.health.service, name, dc=dc)[1], list)
            for entry in entries:
                if entry["Node"]["Node"] in addresses and _plain(entry["Service"]["ID"], "service id", gaps):
                    services.append(self._service(entry, addresses, dc))
        datacenter = dc or (node_records[0].datacenter if node_records else None)
        return Discovery(source="consul", nodes=node_records, services=services, datacenter=datacenter, gaps=gaps,
                         warnings=list(gaps))

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

    # -- registration (as go-mod-registry does it: service, then its check) ------------------
    def registration(self, service_id, node=None):
        """The agent's registration of ``service_id``: Consul keeps registrations with checks on the
        node's own agent, so ``node`` must be the agent's node. Consul does not return a check's
        definition, so the check is read from the notes this collection writes with it."""
        node = self._agent_node_for(node)
        validate_name(service_id, "service id")
        services = self._shape("GET /v1/agent/services", self._call("GET /v1/agent/services",
                                                                    self.client.agent.services), dict)
        current = services.get(service_id)
        if current is None:
            return None
        checks = self._shape("GET /v1/agent/checks", self._call("GET /v1/agent/checks", self.client.agent.checks),
                             dict)
        own = [c for c in checks.values() if isinstance(c, dict) and c.get("ServiceID") == service_id]
        check = Check(kind="none", interval="")
        if own:
            notes = own[0].get("Notes") or ""
            check = Check.parse(notes.partition(CHECK_NOTES)[2]) or Check(kind="unknown", interval="")
        return Registration(name=current.get("Service"), id=service_id, node=node,
                            address=current.get("Address") or None, port=current.get("Port") or None,
                            tags=sorted(current.get("Tags") or []), meta=dict(current.get("Meta") or {}), check=check)

    def apply_registration(self, registration):
        self._agent_node_for(registration.node)
        service_id = validate_name(registration.id, "service id")
        self._call("PUT /v1/agent/service/register", self.client.agent.service.register, registration.name,
                   service_id=service_id, address=registration.address, port=registration.port,
                   tags=registration.tags or None, meta=registration.meta or None)
        check = registration.check
        if check.kind in ("http", "tcp"):
            host = registration.address or "127.0.0.1"
            if check.kind == "http":
                definition = self.library.Check.http(
                    "http://%s:%d%s" % (_url_host(host), registration.port, check.path), check.interval,
                    timeout=check.timeout, deregister=check.deregister_critical_after)
            else:
                definition = self.library.Check.tcp(host, registration.port, check.interval, timeout=check.timeout,
                                                    deregister=check.deregister_critical_after)
            self._call("PUT /v1/agent/check/register", self.client.agent.check.register,
                       "Health Check: %s" % registration.name, check=definition, check_id=service_id,
                       service_id=service_id, notes="Check the health of the API" + CHECK_NOTES + check.describe())
        elif check.kind == "none":
            self._call("PUT /v1/agent/check/deregister", self.client.agent.check.deregister, service_id,
                       allow_404=True)

    def _agent_node_for(self, node):
        """The agent's node; ``node`` (when given) must be it."""
        agent_node = self._agent_node()
        if node is not None and node != agent_node:
            raise RegistryError("node %s is not the node of the Consul agent at %s (%s): register through that "
                                "node's own agent (its host and port)" % (node, self.endpoint, agent_node))
        return agent_node

    def deregister(self, service_id, node=None):
        validate_name(service_id, "service id")
        if node is not None and node != self._agent_node():
            # Another node's agent is not ours to talk to: remove it from the catalog.
            return bool(self._call("PUT /v1/catalog/deregister", self.client.catalog.deregister, node,
                                   service_id=service_id, allow_404=True))
        # 404: it was not registered (Consul's "Unknown service ID").
        existed = self._call("PUT /v1/agent/service/deregister", self.client.agent.service.deregister, service_id,
                             allow_404=True)
        if existed:
            # go-mod-registry registers the check separately under the service's id; Consul may have
            # removed it with the service already.
            self._call("PUT /v1/agent/check/deregister", self.client.agent.check.deregister, service_id,
                       allow_404=True)
        return bool(existed)

    def _agent_node(self):
        agent = self._shape("GET /v1/agent/self", self._call("GET /v1/agent/self", self.client.agent.self), dict)
        try:
            return agent["Config"]["NodeName"]
        except (KeyError, TypeError):
            raise RegistryError("Consul at %s answered GET /v1/agent/self without Config.NodeName" % self.endpoint)

    # -- configuration ---------------------------------------------------------
    def kv_get(self, key, recurse=False):
        answer = self._call("GET /v1/kv/%s" % key, self.client.kv.get, key, recurse=recurse, allow_404=True)
        if answer is None or answer[1] is None:
            return {}
        entries = answer[1]
        if not recurse:
            entries = [entries]
        return {e["Key"]: (e["Value"] or b"").decode("utf-8", "replace") for e in entries}

    def kv_put(self, key, value):
        current = self.kv_get(key)
        if current.get(key) == value:
            return False
        return bool(self._call("PUT /v1/kv/%s" % key, self.client.kv.put, key, value))

    # -- configuration with versions: what edgex_config reads and writes ------------------
    # Every write may be a check-and-set on the key's ModifyIndex, so that two writers never
    # silently overwrite each other.
    kv_check_and_set = True

    def kv_entries(self, folder):
        prefix = folder.rstrip("/") + "/"
        what = "GET /v1/kv/%s?recurse" % prefix
        filtered_before = len(self.transport.filtered)
        answer = self._call(what, self.client.kv.get, prefix, recurse=True, allow_404=True)
        if len(self.transport.filtered) > filtered_before:
            raise RegistryFilteredError(
                "Consul at %s filtered its answer to %s by ACLs (X-Consul-Results-Filtered-By-ACLs): the token "
                "cannot read every key under %s, so the configuration would be read in part; use a token with "
                "key_prefix \"%s\" read" % (self.endpoint, what, prefix, prefix))
        if answer is None or answer[1] is None:
            return {}
        entries = {}
        for entry in self._shape(what, answer[1], list):
            if entry["Key"].endswith("/"):  # a folder made in the Consul UI holds no value
                continue
            entries[entry["Key"]] = KVEntry((entry["Value"] or b"").decode("utf-8", "replace"), entry["ModifyIndex"])
        return entries

    def kv_write(self, key, value, index=None):
        what = "PUT /v1/kv/%s%s" % (key, "" if index is None else "?cas=%d" % index)
        return bool(self._call(what, self.client.kv.put, key, value, cas=index))

    def kv_delete(self, key, index=None):
        what = "DELETE /v1/kv/%s%s" % (key, "" if index is None else "?cas=%d" % index)
        return bool(self._call(what, self.client.kv.delete, key, cas=index))


def _short(exc, limit=300):
    text = str(exc).strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _plain(name, what, gaps):
    """Is a registry name plain (SAFE_NAME)? One that is not is left out, and said so: a hostile
    registration never reaches a URL path or an argv list, and never takes the fleet down."""
    if isinstance(name, str) and SAFE_NAME.fullmatch(name):
        return True
    gaps.append("skipped %s %s from Consul: not a plain name (%s)" % (what, repr(name)[:80], SAFE_NAME.pattern))
    return False


def _url_host(host):
    return "[%s]" % host if ":" in host else host
