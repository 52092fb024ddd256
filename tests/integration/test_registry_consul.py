"""The Consul provider and the fallback, against the emulator (or $CONSUL_HTTP_ADDR)."""

import textwrap

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import (
    RegistryAuthError,
    RegistryError,
    RegistryUnavailableError,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.consul import ConsulRegistry
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import discover
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord
from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import wait_until

MANIFEST = textwrap.dedent("""\
    version: 1
    updated_at: "2026-01-01T00:00:00Z"
    hosts:
      gw1:
        address: 127.0.0.1
        services:
          core-data: {executor: docker, target: edgex-core-data, port: 59880}
    """)


def service(discovery, name):
    return [s for s in discovery.services if s.name == name]


def test_a_registered_standin_is_discovered_with_its_health(consul, local_standin):
    port = free_port()
    standin = local_standin("core-data", port, registry="consul", registry_port=consul.port).wait()
    registry = ConsulRegistry(consul.settings())
    wait_until(lambda: service(registry.discover(), "core-data")
               and service(registry.discover(), "core-data")[0].status == "passing",
               what="core-data registered and passing")
    found = service(registry.discover(), "core-data")[0]
    assert (found.address, found.port, found.id) == ("127.0.0.1", port, "core-data")
    assert {c["id"] for c in found.checks} >= {"core-data", "serfHealth"}
    standin.stop()  # SIGTERM: deregisters, as EdgeX does
    wait_until(lambda: not service(registry.discover(), "core-data"), what="core-data deregistered")


def test_a_dead_node_makes_its_services_critical(consul):
    consul.add_node("gw2", "127.0.0.2")
    consul.client().catalog.register("gw2", "127.0.0.2", service={"Service": "core-data", "Port": 59880})
    registry = ConsulRegistry(consul.settings())
    assert service(registry.discover(), "core-data")[0].status == "passing"
    consul.fail_node("gw2")
    discovery = registry.discover()
    assert service(discovery, "core-data")[0].status == "critical"
    assert [n.status for n in discovery.nodes if n.name == "gw2"] == ["critical"]


def test_requests_do_not_grow_with_nodes(consul):
    consul.seed(nodes=200, services=6)
    consul.reset_stats()
    discovery = ConsulRegistry(consul.settings()).discover()
    names = {s.name for s in discovery.services}
    assert len(discovery.nodes) >= 200 and len(discovery.services) >= 1200
    assert consul.stats()["requests"] <= 3 + len(names)


def comparable(discovery):
    return (sorted((n.name, n.address, n.datacenter, n.status) for n in discovery.nodes),
            sorted((s.node, s.name, s.id, s.address, s.port, s.status, tuple(s.tags), str(s.checks))
                   for s in discovery.services))


def test_a_few_nodes_are_read_node_by_node_with_the_same_answer(consul):
    consul.seed(nodes=50, services=6)
    consul.fail_node("gw-dc1-00007")
    registry = ConsulRegistry(consul.settings())
    bulk = registry.discover()
    wanted = ["gw-dc1-00003", "gw-dc1-00007"]
    consul.reset_stats()
    scoped = discover(consul.settings(), nodes=wanted)
    # two requests per node, whatever the size of the datacenter
    assert consul.stats()["requests"] == 2 * len(wanted)
    kept = set(wanted)
    assert comparable(scoped) == comparable(type(bulk)(
        source="consul", nodes=[n for n in bulk.nodes if n.name in kept],
        services=[s for s in bulk.services if s.node in kept]))
    assert {s.status for s in scoped.services if s.node == "gw-dc1-00007"} == {"critical"}  # serfHealth counts
    # a node Consul does not know: the bulk answer, so that the error can name the nodes there are
    assert comparable(discover(consul.settings(), nodes=["gw-dc1-00003", "no-such-node"])) == comparable(bulk)
    # many nodes: the bulk read is cheaper
    consul.reset_stats()
    discover(consul.settings(), nodes=["gw-dc1-%05d" % i for i in range(20)])
    assert consul.stats()["requests"] <= 3 + 6 + 1


def test_register_is_idempotent_and_deregister_removes(consul):
    registry = ConsulRegistry(consul.settings())
    record = ServiceRecord("device-virtual", "gw1", address="127.0.0.1", port=59900, tags=["edgex"],
                           health_path="/api/v3/ping")
    assert registry.register(record) is True
    assert registry.register(record) is False
    checks = consul.client().agent.checks()
    assert checks["device-virtual"]["Name"] == "Health Check: device-virtual"
    assert registry.deregister("device-virtual") is True
    assert "device-virtual" not in consul.client().agent.services()
    assert "device-virtual" not in consul.client().agent.checks()


def test_kv_put_is_idempotent(consul):
    registry = ConsulRegistry(consul.settings())
    key = "edgex/v3/core-data/Writable/LogLevel"
    assert registry.kv_put(key, "DEBUG") is True
    assert registry.kv_put(key, "DEBUG") is False
    assert registry.kv_get(key) == {key: "DEBUG"}
    assert registry.kv_get("edgex/v3/core-data", recurse=True) == {key: "DEBUG"}
    assert registry.kv_get("edgex/v3/nothing-here") == {}


def test_unreachable_consul_falls_back_to_the_manifest_and_says_so(tmp_path):
    path = tmp_path / "manifest.yml"
    path.write_text(MANIFEST)
    settings = {"registry_type": "consul", "host": "127.0.0.1", "port": free_port(), "scheme": "http",
                "timeout": 2.0, "manifest_path": str(path)}
    with pytest.raises(RegistryUnavailableError, match="unreachable"):
        ConsulRegistry(settings).discover()
    discovery = discover(settings)
    assert discovery.source == "manifest"
    assert discovery.manifest_age > 3600
    assert "consul registry unreachable" in discovery.warnings[0]
    assert [s.name for s in discovery.services] == ["core-data"]
    settings.pop("manifest_path")
    with pytest.raises(RegistryUnavailableError, match="no manifest_path is set"):
        discover(settings)


@pytest.mark.parametrize("mode, error, message", [
    ("500", RegistryUnavailableError, "failed"),
    ("garbage", RegistryError, "not Consul JSON"),
])
def test_faults_are_named(consul, mode, error, message):
    consul.fault(mode)
    with pytest.raises(error, match=message):
        ConsulRegistry(consul.settings()).discover()


def test_slow_consul_is_unreachable_after_the_timeout(consul):
    consul.fault("slow", delay=3)
    with pytest.raises(RegistryUnavailableError, match="ReadTimeout|Timeout"):
        ConsulRegistry(consul.settings(timeout=0.5)).discover()


def test_wrong_token_is_an_error_not_a_fallback(consul_acl, tmp_path):
    path = tmp_path / "manifest.yml"
    path.write_text(MANIFEST)
    settings = consul_acl.settings(token="not-a-token", manifest_path=str(path))
    with pytest.raises(RegistryAuthError, match="403") as info:
        discover(settings)
    assert "not-a-token" not in str(info.value)
    discovery = discover(dict(settings, fallback_on_auth_error=True))
    assert discovery.source == "manifest" and "fallback_on_auth_error" in discovery.warnings[0]
    assert ConsulRegistry(consul_acl.settings()).discover().source == "consul"


def test_environment_cannot_redirect_explicit_settings(consul, monkeypatch):
    """python-consul2 reads CONSUL_HTTP_ADDR itself; our resolved settings must win."""
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:%d" % free_port())
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "env-token")
    registry = ConsulRegistry(consul.settings())
    assert registry.discover().source == "consul"
