"""The Consul emulator against real Consul's documented behaviour.

Every test here runs unchanged against a real Consul when CONSUL_HTTP_ADDR is set; the ones
that need emulator control (faults, extra nodes, ACL tokens) skip there.
"""

import json
import os
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import consul as consul_client
import pytest

from tests.testbed.fixtures_docker import wait_until

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "testbed", "data", "consul")


def load_sample(name):
    with open(os.path.join(SAMPLES, name)) as handle:
        return json.load(handle)


FREE_FORM_MAPS = ("Meta", "NodeMeta", "ServiceMeta")
# Keys of the docs' samples that OSS Consul does not send as shown: Namespace is Enterprise
# only; a service's TaggedAddresses in the samples are user-given "lan"/"wan" ones, while the
# agent adds lan_ipv4/wan_ipv4 with Address/Port keys, and only for an IP address (omitempty).
NOT_AS_SAMPLED = ("$.Service.TaggedAddresses", "$.ServiceTaggedAddresses", "$.Service.Namespace",
                  "$.Checks[0].Namespace", "$[0].Namespace", "$.Namespace", "$.TaggedAddresses")


def assert_same_shape(sample, actual, where="$"):
    """Every key of the real sample is present with the same JSON type (values differ)."""
    if isinstance(sample, dict):
        assert isinstance(actual, dict), "%s: expected object, got %r" % (where, actual)
        if where.rsplit(".", 1)[-1] in FREE_FORM_MAPS:  # user data: any keys, string values
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in actual.items()), where
            return
        for key, value in sample.items():
            if "%s.%s" % (where, key) in NOT_AS_SAMPLED:
                continue
            assert key in actual, "%s: key %s missing" % (where, key)
            if value is not None and actual[key] is not None:
                assert_same_shape(value, actual[key], "%s.%s" % (where, key))
    elif isinstance(sample, list):
        assert isinstance(actual, list), "%s: expected list, got %r" % (where, actual)
        if sample and actual:
            assert_same_shape(sample[0], actual[0], where + "[0]")
    elif isinstance(sample, bool):
        assert isinstance(actual, bool), where
    elif isinstance(sample, (int, float)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), where
    else:
        assert isinstance(actual, type(sample)), "%s: %r vs %r" % (where, sample, actual)


class PingServer(object):
    """A local HTTP endpoint whose answer a test controls: ok, 500, or hang."""

    def __init__(self):
        self.mode = "ok"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):
                if owner.mode == "hang":
                    time.sleep(5)
                    return
                status = 500 if owner.mode == "500" else 200
                body = b'{"apiVersion":"v3"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ping_server():
    server = PingServer()
    yield server
    server.close()


def register_web(client, ping_port, service_id="web-test", **check):
    check_def = {"HTTP": "http://127.0.0.1:%d/api/v3/ping" % ping_port, "Interval": "1s", "Timeout": "1s"}
    check_def.update(check)
    client.agent.service.register("web-test", service_id=service_id, address="127.0.0.1", port=ping_port,
                                  tags=["edgex"], meta={"edgex": "yes"}, check=check_def)


def status_of(client, service_name):
    _index, checks = client.health.checks(service_name)
    return [c["Status"] for c in checks]


def test_catalog_services_matches_sample(consul, ping_server):
    client = consul.client()
    register_web(client, ping_server.port)
    try:
        index, services = client.catalog.services()
        assert int(index) > 0
        sample = load_sample("catalog_services.json")
        # A map of service name -> tag list, like the sample's.
        for mapping in (sample, services):
            assert all(isinstance(k, str) and isinstance(v, list) and all(isinstance(t, str) for t in v)
                       for k, v in mapping.items())
        assert services["web-test"] == ["edgex"]
        assert "consul" in services
    finally:
        client.agent.service.deregister("web-test")


def test_catalog_and_health_service_match_samples(consul, ping_server):
    client = consul.client()
    register_web(client, ping_server.port)
    try:
        wait_until(lambda: status_of(client, "web-test") == ["passing"], what="web-test passing")
        _i, catalog = client.catalog.service("web-test")
        sample = load_sample("catalog_service.json")[0]
        # Namespace, ServiceTaggedAddresses are Enterprise / address-specific in the docs sample.
        for key in set(sample) - {"Namespace"}:
            assert key in catalog[0], key
        assert catalog[0]["ServiceID"] == "web-test" and catalog[0]["ServicePort"] == ping_server.port
        _i, health = client.health.service("web-test")
        assert_same_shape(dict(load_sample("health_service.json")[0]), health[0])
        check_ids = [c["CheckID"] for c in health[0]["Checks"]]
        assert "serfHealth" in check_ids and "service:web-test" in check_ids
        _i, states = client.health.state("any")
        assert_same_shape(load_sample("health_state.json"), states)
    finally:
        client.agent.service.deregister("web-test")


def test_register_then_deregister(consul, ping_server):
    client = consul.client()
    register_web(client, ping_server.port)
    assert "web-test" in client.agent.services()
    assert client.agent.services()["web-test"]["Meta"] == {"edgex": "yes"}
    client.agent.service.deregister("web-test")
    assert "web-test" not in client.agent.services()
    assert client.health.checks("web-test")[1] == []
    # Consul answers 404 "Unknown service ID"; python-consul2 turns that into False.
    assert client.agent.service.deregister("never-registered") is False


def test_http_check_flips_critical_when_hung_and_back(consul, ping_server):
    client = consul.client()
    register_web(client, ping_server.port)
    try:
        wait_until(lambda: status_of(client, "web-test") == ["passing"], what="passing")
        ping_server.mode = "hang"
        wait_until(lambda: status_of(client, "web-test") == ["critical"], what="critical after hang")
        _i, checks = client.health.checks("web-test")
        assert "deadline exceeded" in checks[0]["Output"] or "timeout" in checks[0]["Output"].lower()
        _i, passing = client.health.service("web-test", passing=True)
        assert passing == []
        ping_server.mode = "ok"
        wait_until(lambda: status_of(client, "web-test") == ["passing"], what="passing again")
        ping_server.mode = "500"
        wait_until(lambda: status_of(client, "web-test") == ["critical"], what="critical on 500")
        assert "500" in client.health.checks("web-test")[1][0]["Output"]
    finally:
        ping_server.mode = "ok"
        client.agent.service.deregister("web-test")


def test_deregister_critical_service_after_reaps(consul, ping_server):
    if not consul.is_emulator:
        pytest.skip("real Consul reaps on a 30 s timer with a 1 min minimum")
    client = consul.client()
    ping_server.mode = "500"
    register_web(client, ping_server.port, DeregisterCriticalServiceAfter="2s")
    wait_until(lambda: "web-test" not in client.agent.services(), timeout=10, what="reaping")
    assert client.catalog.service("web-test")[1] == []


def test_blocking_query_returns_on_change_and_on_timeout(consul):
    client = consul.client()
    client.kv.put("edgex/v3/core-data/Writable/LogLevel", "INFO")
    index, _value = client.kv.get("edgex/v3/core-data/Writable/LogLevel")
    started = time.time()
    _same, _v = client.kv.get("edgex/v3/core-data/Writable/LogLevel", index=index, wait="1s")
    assert _same == index
    assert 0.9 <= time.time() - started < 10  # at the end of its wait, long before the 10 s one below

    writer = consul.client()  # its own session: a requests session is not shared across threads

    def change():
        time.sleep(0.5)
        writer.kv.put("edgex/v3/core-data/Writable/LogLevel", "DEBUG")

    thread = threading.Thread(target=change)
    thread.start()
    started = time.time()
    new_index, value = client.kv.get("edgex/v3/core-data/Writable/LogLevel", index=index, wait="10s")
    thread.join()
    assert time.time() - started < 10  # the change ended the wait, not its 10 s
    assert int(new_index) > int(index)
    assert value["Value"] == b"DEBUG"


def test_read_headers(consul):
    with consul.request("GET", "/v1/catalog/services") as response:
        assert int(response.headers["X-Consul-Index"]) > 0
        assert response.headers["X-Consul-Knownleader"] == "true"
        assert response.headers["X-Consul-Lastcontact"] == "0"
    with consul.request("GET", "/v1/status/leader") as response:
        assert isinstance(json.loads(response.read()), str)


def test_kv_cas_recurse_keys_and_missing_key(consul):
    client = consul.client()
    client.kv.delete("edgex/v3/test/", recurse=True)
    assert client.kv.put("edgex/v3/test/a", "1", cas=0) is True
    assert client.kv.put("edgex/v3/test/a", "2", cas=0) is False
    _i, entry = client.kv.get("edgex/v3/test/a")
    assert client.kv.put("edgex/v3/test/a", "3", cas=entry["ModifyIndex"]) is True
    assert client.kv.put("edgex/v3/test/a", "4", cas=entry["ModifyIndex"]) is False
    client.kv.put("edgex/v3/test/sub/b", "x")
    _i, keys = client.kv.get("edgex/v3/test/", keys=True, separator="/")
    assert keys == ["edgex/v3/test/a", "edgex/v3/test/sub/"]
    _i, entries = client.kv.get("edgex/v3/test/", recurse=True)
    assert {e["Key"]: e["Value"] for e in entries} == {"edgex/v3/test/a": b"3", "edgex/v3/test/sub/b": b"x"}
    assert client.kv.get("edgex/v3/test/none")[1] is None
    with pytest.raises(urllib.error.HTTPError) as err:
        consul.request("GET", "/v1/kv/edgex/v3/test/none")
    assert err.value.code == 404
    client.kv.delete("edgex/v3/test/", recurse=True)


def test_dead_node_services_are_not_passing(consul, ping_server):
    client = consul.client()
    register_web(client, ping_server.port)
    try:
        wait_until(lambda: client.health.service("web-test", passing=True)[1], what="passing entry")
        consul.fail_node("gw1")
        _i, entries = client.health.service("web-test", passing=True)
        assert entries == []
        _i, entries = client.health.service("web-test")
        serf = [c for c in entries[0]["Checks"] if c["CheckID"] == "serfHealth"][0]
        assert serf["Status"] == "critical"
    finally:
        client.agent.service.deregister("web-test")


def test_unknown_datacenter_is_500_no_path(consul):
    with pytest.raises(urllib.error.HTTPError) as err:
        consul.request("GET", "/v1/catalog/services?dc=no-such-dc")
    assert err.value.code == 500
    assert b"No path to datacenter" in err.value.read()


def test_second_agent_registers_on_its_own_node(consul):
    consul._need_emulator("a second agent")
    from tests.testbed.fixtures_consul import EmulatorProcess

    emulator = EmulatorProcess(nodes=[("gw1", "127.0.0.1", "dc1"), ("gw2", "127.0.0.2", "dc1")]).start()
    try:
        import consul as c

        gw2 = c.Consul(host="127.0.0.2", port=emulator.port)
        gw2.agent.service.register("core-data", service_id="core-data", address="127.0.0.2", port=59880)
        _i, entries = c.Consul(host="127.0.0.1", port=emulator.port).catalog.service("core-data")
        assert [(e["Node"], e["Address"]) for e in entries] == [("gw2", "127.0.0.2")]
    finally:
        emulator.stop()


def test_faults_slow_500_garbage_and_stopped(consul):
    client = consul.client(timeout=1)
    consul.fault("500")
    with pytest.raises(consul_client.ConsulException) as err:
        client.catalog.services()
    assert "500" in str(err.value) or "rpc error" in str(err.value)
    consul.fault("garbage")
    with pytest.raises(ValueError):
        client.catalog.services()
    consul.fault("slow", delay=2)
    with pytest.raises(Exception) as err:
        client.catalog.services()
    assert "timed out" in str(err.value).lower() or "timeout" in type(err.value).__name__.lower()
    consul.fault(None)
    assert "consul" in client.catalog.services()[1]
    consul.stop()
    with pytest.raises(Exception) as err:
        client.catalog.services()
    assert "refused" in str(err.value).lower() or "connection" in type(err.value).__name__.lower()
    consul.start()
    assert "consul" in client.catalog.services()[1]


def test_acl_unknown_token_and_permission_denied(consul_acl):
    anonymous = consul_acl.client(token="")
    with pytest.raises(consul_client.ACLPermissionDenied):
        anonymous.agent.service.register("core-data", port=59880)
    with pytest.raises(urllib.error.HTTPError) as err:
        consul_acl.request("GET", "/v1/catalog/services", token="no-such-token")
    assert err.value.code == 403 and err.value.read() == b"ACL not found"
    admin = consul_acl.client()
    admin.agent.service.register("core-data", port=59880)
    admin.agent.service.register("core-metadata", port=59881)
    reader = consul_acl.make_token({"service": {"core-data": "read"}, "node_prefix": {"": "read"}})
    with consul_acl.request("GET", "/v1/catalog/services", token=reader) as response:
        assert json.loads(response.read()) == {"core-data": []}
        assert response.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    with pytest.raises(urllib.error.HTTPError) as err:
        consul_acl.request("PUT", "/v1/agent/service/register", {"Name": "core-data", "Port": 1}, token=reader)
    assert err.value.code == 403
    body = err.value.read().decode()
    assert body.startswith("Permission denied: token with AccessorID")
    assert "service:write" in body and '"core-data"' in body
    with pytest.raises(urllib.error.HTTPError) as err:
        consul_acl.request("GET", "/v1/kv/edgex/v3/core-data/x", token=reader)
    assert err.value.code == 403 and "key:read" in err.value.read().decode()


def test_agent_registrations_and_kv_survive_a_restart_with_a_data_file(tmp_path):
    """A real agent re-registers its services from its data dir; EdgeX services register once."""
    from tests.testbed.fixtures_consul import ConsulHandle, EmulatorProcess

    emulator = EmulatorProcess(data_file=str(tmp_path / "consul.json"), log_path=str(tmp_path / "log")).start()
    try:
        handle = ConsulHandle(emulator.host, emulator.port, emulator=emulator)
        client = handle.client()
        client.agent.service.register("core-data", service_id="core-data", port=59880)
        client.agent.check.register("Health Check: core-data", check_id="core-data", service_id="core-data",
                                    check=consul_client.Check.ttl("30s"))
        client.agent.service.register("gone", port=1)
        client.agent.check.register("Health Check: gone", check_id="gone", service_id="gone",
                                    check=consul_client.Check.ttl("30s"))
        client.agent.service.deregister("gone")  # takes its check along, as EdgeX's deregistration does
        client.kv.put("edgex/v3/core-data/Writable/LogLevel", "DEBUG")
        emulator.stop()
        emulator.start()
        assert sorted(client.agent.services()) == ["core-data"]
        assert sorted(client.agent.checks()) == ["core-data"]
        assert client.agent.checks()["core-data"]["ServiceID"] == "core-data"
        assert client.kv.get("edgex/v3/core-data/Writable/LogLevel")[1]["Value"] == b"DEBUG"
    finally:
        emulator.stop()


def test_kv_entry_and_keys_match_samples(consul):
    client = consul.client()
    session = client.session.create(lock_delay=0)
    try:
        assert client.kv.put("edgex-test/web/foo", "test", acquire=session) is True
        client.kv.put("edgex-test/web/subdir/x", "y")
        with consul.request("GET", "/v1/kv/edgex-test/web/foo") as response:
            entries = json.loads(response.read())
        assert_same_shape(load_sample("kv_get.json"), entries)  # Session included: the key is held
        with consul.request("GET", "/v1/kv/edgex-test/web/?keys&separator=/") as response:
            keys = json.loads(response.read())
        assert_same_shape(load_sample("kv_keys.json"), keys)
        assert keys == ["edgex-test/web/foo", "edgex-test/web/subdir/"]
    finally:
        client.session.destroy(session)
        client.kv.delete("edgex-test/", recurse=True)


def test_agent_services_match_the_sample(consul, ping_server):
    client = consul.client()
    register_web(client, ping_server.port)
    try:
        with consul.request("GET", "/v1/agent/services") as response:
            services = json.loads(response.read())
        assert_same_shape(load_sample("agent_services.json")["redis"], services["web-test"])
        assert services["web-test"]["TaggedAddresses"] == {
            "lan_ipv4": {"Address": "127.0.0.1", "Port": ping_server.port},
            "wan_ipv4": {"Address": "127.0.0.1", "Port": ping_server.port}}
    finally:
        client.agent.service.deregister("web-test")
