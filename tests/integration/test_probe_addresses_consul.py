"""The address rule, probe kinds and reaping against the answers of the Consul emulator (real
Consul's shapes): services registered under container host names, a registration without
checks on a passing node, one on a node whose serfHealth is critical (issue 10 items 3 and 6).

The collection runs in-process, with name resolution pointed at a stub (socket.getaddrinfo
patched): the container names never reach a real resolver, and nothing is sent anywhere but
127.0.0.0/8."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway import addresses
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import check_health
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.ledger import empty_ledger
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.reaping import ReapingRun
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.select import Selection
from ansible_collections.edgex.sysmgmt.plugins.module_utils._net.dial import Resolver
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import discover
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord
from tests.testbed.fixtures_consul import free_port

REAL_GETADDRINFO = socket.getaddrinfo


def stub_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """IP literals as the real call parses them; container names (edgex-*) do not exist; any other
    name is a test error (it would have gone to a real resolver)."""
    try:
        return REAL_GETADDRINFO(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    if host.startswith("edgex-"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    raise AssertionError("a name outside the stub reached name resolution: %r" % host)


@pytest.fixture
def container_names_do_not_resolve(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", stub_getaddrinfo)
    monkeypatch.setattr(addresses, "RESOLVER", Resolver())


@pytest.fixture
def core_data_ping():
    """An EdgeX ping of core-data on 127.0.0.1, as edgex-compose publishes it; yields its port."""

    class Ping(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            body = json.dumps({"apiVersion": "v3", "timestamp": "Mon Nov 24 21:13:43 UTC 2026",
                               "serviceName": "core-data"}).encode()
            self.send_response(200 if self.path == "/api/v3/ping" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ping)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class AbsentTargets(object):
    """Executors that find no target anywhere (the containers are gone)."""

    class Docker(object):
        name = "docker"

    def for_service(self, service):
        return self.Docker(), "edgex-" + service.name


def test_container_names_are_probed_where_published_and_only_consul_decides_reaping(
        consul, container_names_do_not_resolve, core_data_ping):
    if not consul.is_emulator:
        pytest.skip("needs the emulator's second node with a critical serfHealth")
    container_ports = {name: free_port() for name in ("core-data", "device-rest", "device-virtual")}
    consul.register("gw1", "core-data", address="edgex-core-data", port=container_ports["core-data"])
    consul.register("gw1", "device-rest", address="edgex-device-rest", port=container_ports["device-rest"],
                    checks=None)
    consul.register("gw2", "device-virtual", node_address="127.0.0.2", address="edgex-device-virtual",
                    port=container_ports["device-virtual"], checks=None)
    consul.fail_node("gw2")

    discovery = discover(consul.settings())
    assert discovery.source == "consul"
    manifest = Discovery("manifest", nodes=[NodeRecord("gw1", "127.0.0.1")], services=[
        ServiceRecord("core-data", "gw1", address="127.0.0.1", port=core_data_ping)])
    selection = Selection(discovery, manifest, ["gw1", "gw2"], ["core-data", "device-rest", "device-virtual"])
    results = check_health(selection.services, selection.source, probe_timeout=2.0)
    found = {r.name: r for r in results}

    core_data = found["core-data"]
    assert (core_data.verdict, core_data.probe) == ("healthy", "edgex-ping")
    assert (core_data.address, core_data.port) == ("127.0.0.1", core_data_ping)
    registered = ("edgex-core-data", container_ports["core-data"])
    assert (core_data.registered_address, core_data.registered_port) == registered
    # no manifest entry: 127.0.0.1 (the node's address is this host's) and the registered port
    device_rest = found["device-rest"]
    assert (device_rest.address, device_rest.port) == ("127.0.0.1", container_ports["device-rest"])
    assert device_rest.reasons == ["ping failed: connection refused"]

    runs = {}
    for node in ("gw1", "gw2"):
        services = [s for s in selection.services if s.node == node]
        node_results = [r for r in results if r.node == node]
        run = ReapingRun(node, services, node_results, AbsentTargets(), critical_for=0, require_target="absent",
                         now=1000.0)
        for result in node_results:
            result.executor_state = "absent"
        run.decide_and_deregister(empty_ledger(), None)
        runs[node] = run.split()
    reaped_gw1, kept_gw1 = runs["gw1"]
    assert reaped_gw1 == []
    assert {e["name"]: (e["registry_status"], e["reason"]) for e in kept_gw1} == {
        "core-data": ("passing", "its registration is not critical"),
        # no checks, serfHealth passing, nothing answers at its (mapped) address: Consul says passing
        "device-rest": ("passing", "its registration is not critical")}
    reaped_gw2, kept_gw2 = runs["gw2"]
    assert kept_gw2 == []
    assert [(e["name"], e["registry_status"]) for e in reaped_gw2] == [("device-virtual", "critical")]
