"""Registrations as production fleets have them, and as real Consul (1.16) stores and serves them:
EdgeX services registered under their container host names, registrations without any service
check, a node whose serfHealth is critical, several nodes and datacenters, and hostile names
(Consul only warns that such names are not DNS-friendly, and stores them).

Paths: Consul's ServeMux (Go < 1.22) cleans the decoded path before routing, so a name with a
dot segment (``../x``, sent as ``..%2Fx``) is redirected (301) to a path no endpoint serves,
while other names -- spaces, ``$(id)``, unicode, even ``a/b`` -- reach the endpoint, which
takes the rest of the path as the name.
"""

import json

import pytest

HOSTILE = ("../x", "$(id)", "a b", "ünï", "a/b", "core-data;rm -rf")


def body_of(consul, path, token=None):
    status, headers, raw = consul.answer("GET", path, token=token)
    assert status == 200, (path, status, raw)
    return json.loads(raw), headers


def test_container_host_name_addresses_are_kept_and_get_no_tagged_addresses(consul):
    consul.register("gw-container", "edgex-test-core-data", node_address="127.0.0.2", address="edgex-core-data",
                    port=59880)
    try:
        (entry,), _h = body_of(consul, "/v1/health/service/edgex-test-core-data")
        assert entry["Service"]["Address"] == "edgex-core-data"
        assert entry["Node"]["Address"] == "127.0.0.2"  # the host's address is the node's
        assert "TaggedAddresses" not in entry["Service"]  # the agent adds them only for an IP
        (row,), _h = body_of(consul, "/v1/catalog/service/edgex-test-core-data")
        assert (row["ServiceAddress"], row["Address"]) == ("edgex-core-data", "127.0.0.2")
        assert "ServiceTaggedAddresses" not in row
    finally:
        consul.answer("PUT", "/v1/catalog/deregister", {"Node": "gw-container"})


def test_ip_addresses_get_lan_and_wan_ipv4_tagged_addresses(consul):
    consul.register("gw-ip", "edgex-test-core-data", node_address="127.0.0.3", address="127.0.0.3", port=59880)
    try:
        (entry,), _h = body_of(consul, "/v1/health/service/edgex-test-core-data")
        tagged = {"Address": "127.0.0.3", "Port": 59880}
        assert entry["Service"]["TaggedAddresses"] == {"lan_ipv4": tagged, "wan_ipv4": tagged}
        assert entry["Node"]["TaggedAddresses"]["lan_ipv4"] == "127.0.0.3"
    finally:
        consul.answer("PUT", "/v1/catalog/deregister", {"Node": "gw-ip"})


def test_a_registration_without_checks_is_judged_by_its_node_only(consul):
    consul.register("gw-nocheck", "edgex-test-redis", node_address="127.0.0.4", port=6379, checks=None)
    try:
        (entry,), _h = body_of(consul, "/v1/health/service/edgex-test-redis")
        assert [c["CheckID"] for c in entry["Checks"]] == ["serfHealth"]
        passing, _h = body_of(consul, "/v1/health/service/edgex-test-redis?passing")
        assert len(passing) == 1  # no service check: passing while its node is
        checks, _h = body_of(consul, "/v1/health/checks/edgex-test-redis")
        assert checks == []
    finally:
        consul.answer("PUT", "/v1/catalog/deregister", {"Node": "gw-nocheck"})


def test_a_node_with_critical_serf_health_takes_its_services_with_it(consul):
    consul.add_node("gw-dead", "127.0.0.5")  # emulator only (a real node's serfHealth comes from gossip)
    consul.register("gw-dead", "core-data", node_address="127.0.0.5", port=59880, checks=None)
    consul.register("gw-dead", "core-metadata", node_address="127.0.0.5", port=59881, checks="passing")
    consul.fail_node("gw-dead")
    node_checks, _h = body_of(consul, "/v1/health/node/gw-dead")
    serf = [c for c in node_checks if c["CheckID"] == "serfHealth"][0]
    assert (serf["Status"], serf["Output"]) == ("critical", "Agent not live or unreachable")
    critical, _h = body_of(consul, "/v1/health/state/critical")
    assert ("gw-dead", "serfHealth") in [(c["Node"], c["CheckID"]) for c in critical]
    for name in ("core-data", "core-metadata"):
        passing, _h = body_of(consul, "/v1/health/service/%s?passing" % name)
        assert "gw-dead" not in [e["Node"]["Node"] for e in passing]


def test_seeding_container_addresses_without_checks(consul):
    consul.seed(nodes=3, services=4, service_address="container", checks="none", node_prefix="edge-")
    entries, _h = body_of(consul, "/v1/health/service/core-data")
    seeded = [e for e in entries if e["Node"]["Node"].startswith("edge-")]
    assert len(seeded) == 3
    assert {e["Service"]["Address"] for e in seeded} == {"edgex-core-data"}
    assert all([c["CheckID"] for c in e["Checks"]] == ["serfHealth"] for e in seeded)
    consul.seed(nodes=1, services=2, checks="critical", node_prefix="sick-")
    (sick,), _h = body_of(consul, "/v1/health/checks/core-metadata")
    assert sick["Node"].startswith("sick-") and sick["Status"] == "critical"


def test_several_datacenters_in_one_emulator(consul_emulator):
    handle = consul_emulator(nodes=[("gw1", "127.0.0.1", "dc1"), ("gw2", "127.0.0.2", "dc2")])
    handle.register("gw7", "core-data", node_address="127.0.0.7", port=59880, datacenter="dc2")
    assert body_of(handle, "/v1/catalog/datacenters")[0] == ["dc1", "dc2"]
    assert [n["Node"] for n in body_of(handle, "/v1/catalog/nodes")[0]] == ["gw1"]
    assert [n["Node"] for n in body_of(handle, "/v1/catalog/nodes?dc=dc2")[0]] == ["gw2", "gw7"]
    assert body_of(handle, "/v1/catalog/service/core-data")[0] == []
    assert [e["Node"] for e in body_of(handle, "/v1/catalog/service/core-data?dc=dc2")[0]] == ["gw7"]


@pytest.fixture
def hostile(consul):
    for number, name in enumerate(HOSTILE):
        consul.register("gw-hostile", name, node_address="127.0.0.6", service_id=name, port=40000 + number)
    yield consul
    consul.answer("PUT", "/v1/catalog/deregister", {"Node": "gw-hostile"})


def test_hostile_names_are_stored_and_listed_as_given(hostile):
    services, _h = body_of(hostile, "/v1/catalog/services")
    assert set(HOSTILE) <= set(services)
    node, _h = body_of(hostile, "/v1/catalog/node/gw-hostile")
    assert set(node["Services"]) == set(HOSTILE)


@pytest.mark.parametrize("name, path", [("$(id)", "%24%28id%29"), ("a b", "a%20b"), ("ünï", "%C3%BCn%C3%AF"),
                                        ("a/b", "a%2Fb"), ("core-data;rm -rf", "core-data%3Brm%20-rf")])
def test_hostile_names_that_reach_the_endpoint(hostile, name, path):
    for endpoint in ("/v1/health/service/", "/v1/catalog/service/", "/v1/health/checks/"):
        entries, _h = body_of(hostile, endpoint + path)
        assert len(entries) == 1, endpoint
        assert name in json.dumps(entries, ensure_ascii=False)


def test_a_dot_segment_name_is_redirected_away_from_its_endpoint(hostile):
    status, headers, raw = hostile.answer("GET", "/v1/health/service/..%2Fx")
    assert status == 301 and headers["Location"] == "/v1/health/x"
    assert raw == b'<a href="/v1/health/x">Moved Permanently</a>.\n\n'
    status, headers, raw = hostile.answer("GET", "/v1/health/x")
    assert (status, raw) == (404, b"Invalid URL path: not a recognized HTTP API endpoint\n")
    assert "X-Consul-Index" not in headers
    status, headers, _raw = hostile.answer("PUT", "/v1/agent/service/deregister/..%2Fx")
    assert status == 301 and headers["Location"] == "/v1/agent/service/x"


def test_paths_the_mux_cleans_or_does_not_know(consul):
    status, headers, _raw = consul.answer("GET", "/v1/kv")  # a subtree pattern without its slash
    assert status == 301 and headers["Location"] == "/v1/kv/"
    status, headers, _raw = consul.answer("GET", "/v1//catalog/services?dc=dc1")
    assert status == 301 and headers["Location"] == "/v1/catalog/services?dc=dc1"
    status, _headers, raw = consul.answer("GET", "/v1/no/such/endpoint")
    assert (status, raw) == (404, b"Invalid URL path: not a recognized HTTP API endpoint\n")
    status, headers, raw = consul.answer("POST", "/v1/catalog/services")
    assert (status, raw) == (405, b"method POST not allowed") and headers["Allow"] == "OPTIONS,GET"
    status, _headers, raw = consul.answer("GET", "/v1/catalog/service/")
    assert (status, raw) == (400, b"Missing service name")
