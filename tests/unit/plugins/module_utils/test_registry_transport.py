"""_net.client and the Consul provider's transport against small local servers: one total deadline
(a trickling peer, a hanging resolver), TLS failures told apart from an unreachable registry,
ACL-filtered answers, hostile registrations, unexpected answers named with endpoint and status,
and the token sent on every request whatever the library does."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import (
    RegistryError,
    RegistryFilteredError,
    RegistryTLSError,
    RegistryUnavailableError,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._net import client as http
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.consul import ConsulRegistry
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import discover
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.keeper import KeeperRegistry
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import resolve_registry_settings

# Generous bounds: the point is "about the timeout", not "seconds or minutes".
SLACK = 3.0


def listen():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server


def serve_in_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def trickle(server, first_line_only):
    """Accepts, then sends an answer one byte every 0.2 s (the status line, or a body)."""
    while True:
        try:
            conn, _peer = server.accept()
        except OSError:
            return
        conn.recv(65536)
        answer = b"HTTP/1.0 200 OK\r\n" if first_line_only else \
            b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n" + b"[" * 100
        try:
            for index in range(len(answer)):
                conn.sendall(answer[index:index + 1])
                time.sleep(0.2)
        except OSError:
            pass
        conn.close()


@pytest.mark.parametrize("first_line_only", [True, False], ids=["status line", "body"])
def test_a_trickling_registry_is_cut_off_at_the_deadline(first_line_only):
    server = listen()
    serve_in_thread(trickle, server, first_line_only)
    settings = resolve_registry_settings({"port": server.getsockname()[1], "timeout": 1.0}, {})
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match=r"unreachable \(GET /v1/catalog/nodes: TimeoutError\)"):
        ConsulRegistry(settings).discover()
    keeper = resolve_registry_settings({"registry_type": "keeper", "port": server.getsockname()[1], "timeout": 1.0}, {})
    with pytest.raises(RegistryUnavailableError, match="TimeoutError"):
        KeeperRegistry(keeper).discover()
    assert time.monotonic() - started < 2 * 1.0 + SLACK
    server.close()


def test_a_resolver_that_hangs_costs_the_deadline_not_more(monkeypatch):
    release = threading.Event()

    def hanging_getaddrinfo(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
    started = time.monotonic()
    with pytest.raises(http.Unreachable, match="TimeoutError"):
        http.request("GET", "http", "consul.invalid", 8500, "/v1/status/leader", timeout=0.5)
    assert time.monotonic() - started < 0.5 + SLACK
    release.set()


def test_path_segments_are_escaped():
    assert http.path_segment("../x") == "..%2Fx"
    assert http.path_segment("a?b#c d") == "a%3Fb%23c%20d"
    assert http.target("/v1/kv/" + http.path_segment("a/b"), {"recurse": "true"}) == "/v1/kv/a%2Fb?recurse=true"


# -- a fake Consul --------------------------------------------------------------------------------
class FakeConsul(object):
    """Canned answers by path; records what each request carried."""

    def __init__(self, routes, headers=None):
        self.routes = routes  # path -> (status, body object or bytes)
        self.extra_headers = headers or {}
        self.seen = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                outer.seen.append((self.command, self.path, self.headers.get("X-Consul-Token")))
                path = self.path.split("?")[0]
                status, body = outer.routes.get(path, (404, b""))
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Consul-Index", "7")
                for name, value in outer.extra_headers.get(path, {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_thread(self.server.serve_forever)

    def settings(self, **overrides):
        return resolve_registry_settings(dict({"port": self.server.server_address[1], "timeout": 2.0}, **overrides), {})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def catalog(nodes=("gw1",), services=None):
    services = services if services is not None else {"core-data": []}
    routes = {
        "/v1/catalog/nodes": (200, [{"Node": n, "Address": "127.0.0.1", "Datacenter": "dc1"} for n in nodes]),
        "/v1/health/state/any": (200, [{"Node": n, "CheckID": "serfHealth", "Status": "passing"} for n in nodes]),
        "/v1/catalog/services": (200, services),
    }
    for name in services:
        routes["/v1/health/service/%s" % http.path_segment(name)] = (200, [
            {"Node": {"Node": nodes[0], "Address": "127.0.0.1", "Datacenter": "dc1"},
             "Service": {"ID": name, "Service": name, "Port": 59880, "Address": "", "Tags": [], "Meta": {}},
             "Checks": []}])
    return routes


@pytest.fixture
def fake_consul():
    made = []

    def make(routes, headers=None):
        made.append(FakeConsul(routes, headers))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_an_answer_filtered_by_acls_is_never_taken_for_the_fleet(fake_consul, tmp_path):
    consul = fake_consul(catalog(), headers={"/v1/catalog/nodes": {"X-Consul-Results-Filtered-By-ACLs": "true"}})
    with pytest.raises(RegistryFilteredError) as error:
        ConsulRegistry(consul.settings()).discover()
    assert "filtered its answer by ACLs (GET /v1/catalog/nodes" in str(error.value)
    assert "the token cannot see the whole catalogue" in str(error.value)
    manifest = tmp_path / "manifest.yml"
    manifest.write_text("version: 1\nhosts:\n  gw9: {address: 127.0.0.9}\n")
    with pytest.raises(RegistryFilteredError):
        discover(consul.settings(manifest_path=str(manifest)))
    fallback = discover(consul.settings(manifest_path=str(manifest), fallback_on_auth_error=True))
    assert fallback.source == "manifest" and [n.name for n in fallback.nodes] == ["gw9"]
    assert "consul registry filtered its answer" in fallback.warnings[0]


def test_hostile_registrations_are_skipped_and_the_rest_is_served(fake_consul):
    consul = fake_consul(catalog(nodes=("gw1", "bad;node"), services={"core-data": [], "../x": [], "$(id)": []}))
    discovery = ConsulRegistry(consul.settings()).discover()
    assert [s.name for s in discovery.services] == ["core-data"] and [n.name for n in discovery.nodes] == ["gw1"]
    assert not discovery.complete
    assert any("skipped service '../x'" in gap for gap in discovery.gaps)
    assert any("skipped node 'bad;node'" in warning for warning in discovery.warnings)
    asked = [path for _method, path, _token in consul.seen]
    assert not any(".." in path or "$(" in path for path in asked), asked


@pytest.mark.parametrize("route, answer, message", [
    ("/v1/catalog/nodes", (404, b""), "answered GET /v1/catalog/nodes with 404"),
    ("/v1/catalog/nodes", (200, b"<html>captive portal</html>"),
     "answered GET /v1/catalog/nodes (HTTP 200) with something that is not Consul JSON"),
    ("/v1/catalog/nodes", (200, b'[{"Node": "gw1"'), "(HTTP 200) with something that is not Consul JSON"),
    ("/v1/catalog/services", (200, [1, 2]), "answered GET /v1/catalog/services with an unexpected shape (list, not dict)"),
])
def test_unexpected_answers_name_the_endpoint_and_status(fake_consul, route, answer, message):
    routes = catalog()
    routes[route] = answer
    with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        ConsulRegistry(fake_consul(routes).settings()).discover()
    assert not isinstance(error.value, RegistryUnavailableError)


def test_an_agent_self_404_is_named_not_a_crash(fake_consul):
    consul = fake_consul({"/v1/agent/self": (404, b"")})
    with pytest.raises(RegistryError, match=r"answered GET /v1/agent/self with 404"):
        ConsulRegistry(consul.settings()).deregister("core-data", node="gw2")


def test_the_token_goes_with_every_request_and_the_environment_cannot_replace_it(fake_consul, monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-the-environment")
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "consul.example")  # python-consul2 itself would refuse this form
    consul = fake_consul(dict(catalog(), **{"/v1/agent/services": (200, {})}))
    registry = ConsulRegistry(consul.settings(token="explicit"))
    registry.discover()
    registry.client.agent.services()  # py-consul sends no token here on its own
    assert {token for _method, _path, token in consul.seen} == {"explicit"}
    assert os.environ["CONSUL_HTTP_TOKEN"] == "from-the-environment"  # put back after building the client


# -- TLS --------------------------------------------------------------------------------------------
def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1/localhost signed by it, one for another name, and an
    expired one."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    work = str(tmp_path_factory.mktemp("tls"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=edgex test CA", cwd=work)
    for name, days, san in (("good", "2", "IP:127.0.0.1,DNS:localhost"), ("other", "2", "DNS:consul.example"),
                            ("expired", "-1", "IP:127.0.0.1")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + name, cwd=work)
        with open(os.path.join(work, name + ".ext"), "w") as handle:
            handle.write("subjectAltName=%s\n" % san)
        # x509 -days -1 makes a certificate that expired yesterday
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".pem", "-days", days, "-extfile", name + ".ext", cwd=work)
    return work


def tls_server(certificates, name):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(certificates, name + ".pem"), os.path.join(certificates, name + ".key"))
    server = listen()

    def serve():
        while True:
            try:
                conn, _peer = server.accept()
            except OSError:
                return
            try:
                tls = context.wrap_socket(conn, server_side=True)
                tls.recv(65536)
                tls.sendall(b'HTTP/1.0 200 OK\r\nContent-Length: 16\r\n\r\n"127.0.0.1:8300"')
                tls.close()
            except (OSError, ssl.SSLError):
                conn.close()

    serve_in_thread(serve)
    return server


@pytest.mark.parametrize("name, ca, reason", [
    ("good", False, "unable to get local issuer certificate"),
    ("other", True, "IP address mismatch, certificate is not valid for '127.0.0.1'"),
    ("expired", True, "certificate has expired"),
])
def test_a_certificate_that_fails_verification_is_a_tls_error_not_unreachable(certificates, name, ca, reason):
    server = tls_server(certificates, name)
    settings = resolve_registry_settings({"port": server.getsockname()[1], "scheme": "https", "timeout": 3.0,
                                          "ca_path": os.path.join(certificates, "ca.pem") if ca else None}, {})
    with pytest.raises(RegistryTLSError) as error:
        ConsulRegistry(settings).discover()
    assert reason in str(error.value) and "failed the TLS check" in str(error.value)
    server.close()


def test_a_certificate_from_the_given_ca_is_trusted(certificates):
    server = tls_server(certificates, "good")
    answer = http.request("GET", "https", "127.0.0.1", server.getsockname()[1], "/v1/status/leader", timeout=3.0,
                          tls=http.tls_context({"ca_path": os.path.join(certificates, "ca.pem")}))
    assert answer.status == 200 and answer.body == b'"127.0.0.1:8300"'
    server.close()
