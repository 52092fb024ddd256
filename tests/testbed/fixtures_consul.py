"""Consul for tests: a fresh emulator process per test, or a real Consul when CONSUL_HTTP_ADDR is set.

Tests talk to the handle (`consul.settings()`, `consul.client()`, `consul.url`) and never
to the emulator directly, so they run unchanged against a real Consul. What only the
emulator can do (stop it, inject faults, seed nodes, ACLs) skips on a real Consul.
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings

import pytest

EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "consul_emulator.py")


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_listening(host, port, timeout=10.0, process=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %s:%d" % (process.returncode, host, port))
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%d after %.0fs" % (host, port, timeout))


class ServerProcess(object):
    """A test server as a subprocess, restartable on the same port: subclasses give
    ``host``, ``port``, ``log_path`` and ``argv()``."""

    process = None

    def start(self):
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(self.argv(), stdout=log, stderr=log)
        wait_listening(self.host, self.port, process=self.process)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class EmulatorProcess(ServerProcess):
    """The Consul emulator as a subprocess.

    acl_master_token turns ACLs on (default policy ``acl_default_policy``, deny unless told);
    acl_default_token is the agent's acl.tokens.default (what a request without a token acts
    as); tls = (cert, key) serves HTTPS.
    """

    def __init__(self, port=None, nodes=(("gw1", "127.0.0.1", "dc1"),), acl_master_token=None,
                 log_path=None, python=sys.executable, data_file=None, acl_default_token=None,
                 acl_default_policy="deny", tls=None):
        self.port = port or free_port()
        self.data_file = data_file
        self.nodes = list(nodes)
        self.acl_master_token = acl_master_token
        self.acl_default_token = acl_default_token
        self.acl_default_policy = acl_default_policy
        self.tls = tls
        self.log_path = log_path
        self.python = python

    @property
    def host(self):
        return self.nodes[0][1]

    def start(self):
        ServerProcess.start(self)
        for _name, address, _dc in self.nodes[1:]:  # every agent, not just the first
            wait_listening(address, self.port, process=self.process)
        return self

    def argv(self):
        argv = [self.python, EMULATOR, "--port", str(self.port)]
        for name, address, dc in self.nodes:
            argv += ["--node", "%s=%s@%s" % (name, address, dc)]
        if self.acl_master_token:
            argv += ["--acl-master-token", self.acl_master_token, "--acl-default-policy", self.acl_default_policy]
        if self.acl_default_token:
            argv += ["--acl-default-token", self.acl_default_token]
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        if self.data_file:
            argv += ["--data-file", self.data_file]
        return argv


def start_consul_emulator(port=None, nodes=(("gw1", "127.0.0.1", "dc1"),), acl_master_token=None, log_path=None):
    """For scripts (test-bed, benchmarks): a started EmulatorProcess."""
    return EmulatorProcess(port, nodes, acl_master_token, log_path).start()


class ConsulHandle(object):
    """What a test needs to reach Consul, real or emulated."""

    def __init__(self, host, port, scheme="http", token=None, emulator=None, ca=None):
        self.host = host
        self.port = port
        self.scheme = scheme
        self.token = token
        self.emulator = emulator
        self.ca = ca  # the CA file a client should trust (HTTPS with the test CA)

    @property
    def is_emulator(self):
        return self.emulator is not None

    def with_token(self, token):
        """The same Consul seen with another token ("" : none at all, an anonymous request)."""
        return ConsulHandle(self.host, self.port, self.scheme, token, self.emulator, self.ca)

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def url(self):
        return "%s://%s" % (self.scheme, self.addr)

    def settings(self, **overrides):
        settings = {"registry_type": "consul", "host": self.host, "port": self.port, "scheme": self.scheme,
                    "token": self.token, "timeout": 5.0, "validate_certs": True}
        if self.ca:
            settings["ca_path"] = self.ca
        settings.update(overrides)
        return settings

    def client(self, token=None, **kwargs):
        import consul

        if self.ca and "verify" not in kwargs:
            kwargs["verify"] = self.ca
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="consul.base")
            return consul.Consul(host=self.host, port=self.port, scheme=self.scheme,
                                 token=token if token is not None else self.token, **kwargs)

    def ssl_context(self):
        if self.scheme != "https":
            return None
        return ssl.create_default_context(cafile=self.ca)

    def request(self, method, path, body=None, token=None, timeout=10, headers=None):
        """Raw HTTP for what python-consul2 does not expose (headers, blocking waits); error
        statuses raise urllib.error.HTTPError. token="" sends none (an anonymous request)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        token = token if token is not None else self.token
        if token:
            request.add_header("X-Consul-Token", token)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        return urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context())

    def answer(self, method, path, body=None, token=None, timeout=10, headers=None):
        """(status, headers, body bytes) whatever the status, without following redirects."""
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        token = token if token is not None else self.token
        if token:
            request.add_header("X-Consul-Token", token)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=self.ssl_context()))
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def register(self, node, name, node_address="127.0.0.1", service_id=None, address="", port=0,
                 checks="passing", datacenter=None, tags=(), meta=None, token=None):
        """A registration through /v1/catalog/register (a real Consul API, so this works on a
        real Consul too): ``address`` as the service registers it ("edgex-core-data" for a
        container host name, "" for none), ``checks`` "passing", "critical" or None (no
        service check at all: its health is then its node's serfHealth)."""
        service = {"ID": service_id or name, "Service": name, "Address": address, "Port": port,
                   "Tags": list(tags), "Meta": dict(meta or {})}
        body = {"Node": node, "Address": node_address, "Service": service}
        if datacenter:
            body["Datacenter"] = datacenter
        if checks:
            body["Check"] = {"CheckID": "service:%s" % service["ID"], "Name": "Health Check: %s" % name,
                             "ServiceID": service["ID"], "Status": checks}
        with self.request("PUT", "/v1/catalog/register", body, token=token) as response:
            return json.loads(response.read())

    # -- emulator only ----------------------------------------------------------
    def _need_emulator(self, what):
        if not self.is_emulator:
            pytest.skip("%s needs the Consul emulator (CONSUL_HTTP_ADDR points at a real Consul)" % what)

    def _control(self, path, body=None):
        self._need_emulator("emulator control %s" % path)
        data = json.dumps(body if body is not None else {}).encode()
        method = "GET" if body is None and path.endswith("stats") else "POST"
        request = urllib.request.Request(self.url + "/_emulator/" + path, data=None if method == "GET" else data,
                                         method=method)
        with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()) as response:
            return json.loads(response.read() or b"null")

    def stop(self):
        self._need_emulator("stopping Consul")
        self.emulator.stop()

    def start(self):
        self._need_emulator("starting Consul")
        self.emulator.start()

    def fault(self, mode, delay=None, datacenter=None, path=None, method=None, rate=None, status=None, times=None):
        """A fault: without ``path`` the global one for every /v1/ endpoint (mode None clears it
        and every rule); with ``path`` (a regex searched in the decoded path) one for those
        endpoints only (mode None clears that rule). Modes: emulator_http.FAULT_MODES."""
        body = {"mode": mode, "delay": delay, "datacenter": datacenter}
        for key, value in (("path", path), ("method", method), ("rate", rate), ("status", status),
                           ("times", times)):
            if value is not None:
                body[key] = value
        return self._control("fault", body)

    def add_node(self, name, address, datacenter="dc1", meta=None):
        return self._control("node", {"name": name, "address": address, "datacenter": datacenter, "meta": meta})

    def fail_node(self, name, status="critical", datacenter=None):
        return self._control("node/%s/serf" % name, {"status": status, "datacenter": datacenter})

    def seed(self, nodes, services, datacenter="dc1", service_address="node", checks="passing", node_prefix=None):
        """service_address: "node", "container" (edgex-<service>) or "none"; checks:
        "passing", "critical" or "none"."""
        return self._control("seed", {"nodes": nodes, "services": services, "datacenter": datacenter,
                                      "service_address": service_address, "checks": checks,
                                      "node_prefix": node_prefix})

    def stats(self):
        return self._control("stats")

    def reset_stats(self):
        return self._control("stats/reset", {})

    def make_token(self, rules, description="test token", secret=None):
        """A token with ACL rules {"service_prefix": {"": "read"}, "key_prefix": {...}, ...}."""
        body = {"rules": rules, "description": description}
        if secret:
            body["secret"] = secret
        return self._control("token", body)["SecretID"]

    def read_only_token(self, nodes=None, services=None, keys=None):
        """A token that may read only the nodes, services and keys whose names start with the
        given prefixes (None: nothing of that kind; "" : all of it)."""
        rules = {}
        for kind, prefixes in (("node_prefix", nodes), ("service_prefix", services), ("key_prefix", keys)):
            if prefixes is not None:
                rules[kind] = {prefix: "read" for prefix in ([prefixes] if isinstance(prefixes, str) else prefixes)}
        return self.make_token(rules, "read-only test token")


def real_consul_handle():
    addr = os.environ.get("CONSUL_HTTP_ADDR")
    if not addr:
        return None
    scheme = "https" if os.environ.get("CONSUL_HTTP_SSL", "").lower() in ("1", "true") else "http"
    if "://" in addr:
        scheme, addr = addr.split("://", 1)
    host, _sep, port = addr.rpartition(":")
    return ConsulHandle(host, int(port), scheme, os.environ.get("CONSUL_HTTP_TOKEN"))


@pytest.fixture
def consul(tmp_path):
    """A Consul to test against: the emulator (one node gw1 on 127.0.0.1, dc1) or $CONSUL_HTTP_ADDR."""
    real = real_consul_handle()
    if real is not None:
        yield real
        return
    emulator = EmulatorProcess(log_path=str(tmp_path / "consul-emulator.log")).start()
    try:
        yield ConsulHandle(emulator.host, emulator.port, emulator=emulator)
    finally:
        emulator.stop()


@pytest.fixture
def consul_acl(tmp_path):
    """The emulator with ACLs on and default policy deny; `.token` is the management token."""
    if real_consul_handle() is not None:
        pytest.skip("ACL tests run on the emulator only (their tokens are made through its control API)")
    master = "root-token-for-tests"
    emulator = EmulatorProcess(acl_master_token=master, log_path=str(tmp_path / "consul-emulator.log")).start()
    try:
        yield ConsulHandle(emulator.host, emulator.port, token=master, emulator=emulator)
    finally:
        emulator.stop()


@pytest.fixture
def consul_emulator(tmp_path):
    """A factory for emulators a test configures itself (emulator only):

        handle = consul_emulator(acl=True, default_token="agent-default", tls=tls_certs.good, ca=tls_certs.ca,
                                 nodes=[("gw1", "127.0.0.1", "dc1"), ("gw2", "127.0.0.2", "dc2")])

    acl=True turns ACLs on (default policy deny) with the management token in ``handle.token``;
    default_token makes the agent act with that token for requests that send none (the token
    must then be made with ``handle.make_token(..., secret=default_token)``); tls=(cert, key)
    serves HTTPS, and ``ca`` is what the handle's clients trust. Every emulator is stopped at
    the end of the test."""
    if real_consul_handle() is not None:
        pytest.skip("configured emulators only (CONSUL_HTTP_ADDR points at a real Consul)")
    started = []

    def start(acl=False, default_token=None, default_policy="deny", tls=None, ca=None,
              nodes=(("gw1", "127.0.0.1", "dc1"),)):
        master = "root-token-for-tests" if acl else None
        emulator = EmulatorProcess(nodes=nodes, acl_master_token=master, acl_default_token=default_token,
                                   acl_default_policy=default_policy, tls=tls,
                                   log_path=str(tmp_path / ("consul-emulator-%d.log" % len(started))))
        emulator.start()
        started.append(emulator)
        return ConsulHandle(emulator.host, emulator.port, "https" if tls else "http", token=master,
                            emulator=emulator, ca=ca)

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()
