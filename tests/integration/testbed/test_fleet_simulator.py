"""tests/testbed/fleet.py: the simulated fleet's spec, its answers per fault, its Consul
registrations and its inventories (a few gateways; the benchmark runs it at 1,000)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from tests.testbed import fleet as fleet_

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Its own loopback range: a fleet left by `make fleet-up` (127.10/16) or the fleet test (127.12/16) is not disturbed.
BASE = "127.13.0.0"


def test_spec_is_deterministic_and_draws_each_fault_once_per_service():
    fractions = {"hung": 0.1, "failing": 0.05, "wrong": 0.05, "warning": 0.05, "slow": 0.05, "down": 0.05}
    spec = fleet_.build_spec(40, 12, fractions, seed=7, base=BASE)
    assert spec == fleet_.build_spec(40, 12, fractions, seed=7, base=BASE)
    assert spec != fleet_.build_spec(40, 12, fractions, seed=8, base=BASE)
    faults = [s["fault"] for g in spec["gateways"] for s in g["services"]]
    assert len(faults) == 480
    expected = {"hung": 48, "failing": 24, "wrong": 24, "warning": 24, "slow": 24, "down": 24}
    assert {f: faults.count(f) for f in fleet_.FAULTS} == expected
    assert spec["params"]["counts"]["hung"] == 48
    assert [g["name"] for g in spec["gateways"][:2]] == ["gw-00001", "gw-00002"]
    assert [g["address"] for g in spec["gateways"][:2]] == ["127.13.0.1", "127.13.0.2"]
    assert [s["name"] for s in spec["gateways"][0]["services"]] == [name for name, _port in fleet_.SERVICES]


def test_spec_refuses_what_cannot_be():
    with pytest.raises(ValueError, match="more than every service"):
        fleet_.build_spec(2, 2, {"hung": 0.7, "down": 0.7})
    with pytest.raises(ValueError, match="unknown fault"):
        fleet_.build_spec(2, 2, {"flaky": 0.1})
    with pytest.raises(ValueError, match="outside 127.0.0.0/8"):
        fleet_.build_spec(2, 2, base="127.255.255.254")


def test_inventories_of_the_spec():
    spec = fleet_.build_spec(3, 2, base=BASE)
    static = fleet_.static_inventory(spec)
    edgex = static["all"]["children"]["edgex"]
    assert edgex["hosts"] == {"gw-00001": {"ansible_host": "127.13.0.1"}, "gw-00002": {"ansible_host": "127.13.0.2"},
                              "gw-00003": {"ansible_host": "127.13.0.3"}}
    assert edgex["vars"] == {"ansible_connection": "local"}
    plugin = yaml.safe_load(fleet_.plugin_inventory("127.9.255.254", 8500))
    assert plugin["plugin"] == "edgex.sysmgmt.edgex" and plugin["port"] == 8500 and "compose" not in plugin


def exchange(sock, request):
    """(status, body as JSON or None) of one request on a connected socket, read until the peer closes."""
    sock.sendall(request)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head, _sep, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


def http_get(address, port, path, http10=False, timeout=3.0):
    """A raw GET; raises socket.timeout when nothing answers."""
    sock = socket.create_connection((address, port), timeout=timeout)
    sock.settimeout(timeout)
    version = "HTTP/1.0" if http10 else "HTTP/1.1"
    try:
        return exchange(sock, ("GET %s %s\r\nHost: x\r\nConnection: close\r\n\r\n" % (path, version)).encode())
    finally:
        sock.close()


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory):
    spec = fleet_.build_spec(6, 12, {"hung": 0.05, "failing": 0.05, "slow": 0.05, "wrong": 0.05, "warning": 0.05,
                                     "down": 0.05}, seed=3, base=BASE, slow_delay=0.3)
    with fleet_.Fleet(spec, str(tmp_path_factory.mktemp("fleet"))) as running:
        yield running


def services_with(spec, fault):
    return [(g, s) for g in spec["gateways"] for s in g["services"] if s["fault"] == fault]


def test_each_service_answers_the_edgex_contract_on_its_gateway_address(small_fleet):
    gateway, service = services_with(small_fleet.spec, None)[0]
    for http10 in (False, True):
        status, body = http_get(gateway["address"], service["port"], "/api/v3/ping", http10=http10)
        assert status == 200 and body["serviceName"] == service["name"] and body["apiVersion"] == "v3"
    status, body = http_get(gateway["address"], service["port"], "/api/v3/version")
    assert status == 200 and body["serviceName"] == service["name"] and body["version"]
    status, body = http_get(gateway["address"], service["port"], "/api/v3/config")
    assert status == 200 and body["config"]["Service"]["Port"] == service["port"]
    assert http_get(gateway["address"], service["port"], "/api/v3/nothing")[0] == 404


def test_faults_answer_as_told(small_fleet):
    spec = small_fleet.spec
    gateway, service = services_with(spec, "hung")[0]
    with pytest.raises(socket.timeout):
        http_get(gateway["address"], service["port"], "/api/v3/ping", timeout=0.5)
    gateway, service = services_with(spec, "failing")[0]
    assert http_get(gateway["address"], service["port"], "/api/v3/ping")[0] == 500
    gateway, service = services_with(spec, "wrong")[0]
    status, body = http_get(gateway["address"], service["port"], "/api/v3/ping")
    assert status == 200 and body["serviceName"] != service["name"]
    gateway, service = services_with(spec, "slow")[0]
    started = time.monotonic()
    assert http_get(gateway["address"], service["port"], "/api/v3/ping")[0] == 200
    assert time.monotonic() - started >= 0.3
    gateway, service = services_with(spec, "down")[0]
    with pytest.raises(ConnectionRefusedError):
        http_get(gateway["address"], service["port"], "/api/v3/ping")


def test_consul_holds_the_same_nodes_and_registrations(small_fleet):
    spec = small_fleet.spec
    with urllib.request.urlopen(small_fleet.consul_url + "/v1/catalog/nodes", timeout=10) as response:
        nodes = {n["Node"]: n["Address"] for n in json.loads(response.read())}
    assert nodes == {g["name"]: g["address"] for g in spec["gateways"]}  # the emulator's own agent is gone
    gateway, service = services_with(spec, "hung")[0]
    with urllib.request.urlopen(small_fleet.consul_url + "/v1/health/node/" + gateway["name"], timeout=10) as response:
        checks = {c["CheckID"]: c for c in json.loads(response.read())}
    assert checks[service["name"]]["Status"] == "critical"
    assert "context deadline exceeded" in checks[service["name"]]["Output"]
    warning_gateway, warning_service = services_with(spec, "warning")[0]
    with urllib.request.urlopen(small_fleet.consul_url + "/v1/health/service/" + warning_service["name"],
                                timeout=10) as response:
        entries = json.loads(response.read())
    assert len(entries) == 6
    entry = [e for e in entries if e["Node"]["Node"] == warning_gateway["name"]][0]
    assert entry["Service"]["Address"] == warning_gateway["address"] and entry["Service"]["Port"] == warning_service["port"]
    assert [c["Status"] for c in entry["Checks"] if c["CheckID"] == warning_service["name"]] == ["warning"]


def test_the_stand_in_engine_says_running(small_fleet):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(small_fleet.engine_socket)
    status, body = exchange(sock, b"GET /v1.43/containers/edgex-core-data/json HTTP/1.0\r\nHost: docker\r\n\r\n")
    assert status == 200 and body["Name"] == "/edgex-core-data" and body["State"]["Status"] == "running"


def test_up_status_and_down_from_the_command_line(tmp_path):
    state = str(tmp_path / "state")
    script = os.path.join(REPO, "tests", "testbed", "fleet.py")
    up = subprocess.run([sys.executable, script, "up", "--gateways", "3", "--base", "127.14.0.0", "--dir", state],
                        capture_output=True, text=True, timeout=120, check=False)
    try:
        assert up.returncode == 0, up.stderr
        assert "3 gateways x 12 services" in up.stdout
        status = subprocess.run([sys.executable, script, "status", "--dir", state], capture_output=True, text=True,
                                timeout=30, check=True)
        listing = json.loads(status.stdout)
        assert listing["memory"]["gateways"]["rss_kib"] > 0 and os.path.exists(listing["static_inventory"])
        with open(os.path.join(state, "group_vars", "all.yml")) as handle:
            group_vars = yaml.safe_load(handle)
        assert group_vars["edgex_registry_port"] == int(listing["consul"].rsplit(":", 1)[1])
        assert group_vars["ansible_connection"] == "local"
        assert http_get("127.14.0.1", 59880, "/api/v3/ping")[0] == 200
    finally:
        down = subprocess.run([sys.executable, script, "down", "--dir", state], capture_output=True, text=True,
                              timeout=60, check=False)
    assert down.returncode == 0 and "stopped gateways, consul" in down.stdout
    assert not os.path.exists(os.path.join(state, "docker.sock"))
    with pytest.raises(OSError):
        http_get("127.14.0.1", 59880, "/api/v3/ping", timeout=1)
