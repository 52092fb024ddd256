"""Consul for tests: a fresh emulator process per test, or a real Consul when CONSUL_HTTP_ADDR is set.

Tests talk to the handle (`consul.settings()`, `consul.client()`, `consul.url`) and never
to the emulator directly, so they run unchanged against a real Consul. What only the
emulator can do (stop it, inject faults, seed nodes, ACLs) skips on a real Consul.
"""

import json
import os
import socket
import subprocess
import sys
import time
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
    """The Consul emulator as a subprocess."""

    def __init__(self, port=None, nodes=(("gw1", "127.0.0.1", "dc1"),), acl_master_token=None,
                 log_path=None, python=sys.executable, data_file=None):
        self.port = port or free_port()
        self.data_file = data_file
        self.nodes = list(nodes)
        self.acl_master_token = acl_master_token
        self.log_path = log_path
        self.python = python

    @property
    def host(self):
        return self.nodes[0][1]

    def argv(self):
        argv = [self.python, EMULATOR, "--port", str(self.port)]
        for name, address, dc in self.nodes:
            argv += ["--node", "%s=%s@%s" % (name, address, dc)]
        if self.acl_master_token:
            argv += ["--acl-master-token", self.acl_master_token]
        if self.data_file:
            argv += ["--data-file", self.data_file]
        return argv


def start_consul_emulator(port=None, nodes=(("gw1", "127.0.0.1", "dc1"),), acl_master_token=None, log_path=None):
    """For scripts (test-bed, benchmarks): a started EmulatorProcess."""
    return EmulatorProcess(port, nodes, acl_master_token, log_path).start()


class ConsulHandle(object):
    """What a test needs to reach Consul, real or emulated."""

    def __init__(self, host, port, scheme="http", token=None, emulator=None):
        self.host = host
        self.port = port
        self.scheme = scheme
        self.token = token
        self.emulator = emulator

    @property
    def is_emulator(self):
        return self.emulator is not None

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def url(self):
        return "%s://%s" % (self.scheme, self.addr)

    def settings(self, **overrides):
        settings = {"registry_type": "consul", "host": self.host, "port": self.port, "scheme": self.scheme,
                    "token": self.token, "timeout": 5.0, "validate_certs": True}
        settings.update(overrides)
        return settings

    def client(self, token=None, **kwargs):
        import consul

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="consul.base")
            return consul.Consul(host=self.host, port=self.port, scheme=self.scheme,
                                 token=token if token is not None else self.token, **kwargs)

    def request(self, method, path, body=None, token=None, timeout=10):
        """Raw HTTP for what python-consul2 does not expose (headers, blocking waits)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        token = token if token is not None else self.token
        if token:
            request.add_header("X-Consul-Token", token)
        return urllib.request.urlopen(request, timeout=timeout)

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
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def stop(self):
        self._need_emulator("stopping Consul")
        self.emulator.stop()

    def start(self):
        self._need_emulator("starting Consul")
        self.emulator.start()

    def fault(self, mode, delay=None, datacenter=None):
        return self._control("fault", {"mode": mode, "delay": delay, "datacenter": datacenter})

    def add_node(self, name, address, datacenter="dc1", meta=None):
        return self._control("node", {"name": name, "address": address, "datacenter": datacenter, "meta": meta})

    def fail_node(self, name, status="critical", datacenter=None):
        return self._control("node/%s/serf" % name, {"status": status, "datacenter": datacenter})

    def seed(self, nodes, services, datacenter="dc1"):
        return self._control("seed", {"nodes": nodes, "services": services, "datacenter": datacenter})

    def stats(self):
        return self._control("stats")

    def reset_stats(self):
        return self._control("stats/reset", {})

    def make_token(self, rules, description="test token"):
        """A token with ACL rules {"service_prefix": {"": "read"}, "key_prefix": {...}, ...}."""
        return self._control("token", {"rules": rules, "description": description})["SecretID"]


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
