"""ACLs in the Consul emulator as in real Consul (1.16): list endpoints filter what a token may
not read and answer 200, with X-Consul-Results-Filtered-By-ACLs: true -- except for a request
that carries no token at all, for which Consul masks the header (agent/consul/rpc.go
maskResultsFilteredByACLs; agent/agent_endpoint.go sets it only "if token != ''") unless the
agent has a default token (acl.tokens.default), which then stands in for the missing one.
An unknown token is 403 "ACL not found"; a missing right on a single object is 403
"Permission denied: ...". ACLs need the emulator's control API, so these tests skip on a real
Consul.
"""

import json

import consul
import pytest

FILTERED = "X-Consul-Results-Filtered-By-ACLs"
LIST_ENDPOINTS = ("/v1/catalog/nodes", "/v1/catalog/services", "/v1/catalog/service/core-data",
                  "/v1/health/state/any", "/v1/health/service/core-data", "/v1/health/checks/core-data",
                  "/v1/health/node/gw2", "/v1/agent/services", "/v1/agent/checks")


def get(handle, path, token):
    status, headers, raw = handle.answer("GET", path, token=token)
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw
    return status, headers, body


@pytest.fixture
def fleet(consul_emulator):
    """ACLs on (default deny); core-data on the agent's node gw1 and on gw2 and gw3 (catalog
    registrations, gw2's under its container host name), core-metadata on gw2, KV under edgex/v3/."""
    handle = consul_emulator(acl=True)
    client = handle.client()
    client.agent.service.register("core-data", service_id="core-data", address="127.0.0.1", port=59880)
    client.agent.check.register("Health Check: core-data", check_id="core-data", service_id="core-data",
                                check=consul.Check.ttl("30s"))
    handle.register("gw2", "core-data", node_address="127.0.0.2", address="edgex-core-data", port=59880)
    handle.register("gw2", "core-metadata", node_address="127.0.0.2", address="edgex-core-metadata", port=59881)
    handle.register("gw3", "core-data", node_address="127.0.0.3", address="127.0.0.3", port=59880, checks=None)
    for key in ("edgex/v3/core-data/Writable/LogLevel", "edgex/v3/core-data/Service/Port",
                "edgex/v3/core-metadata/Writable/LogLevel"):
        client.kv.put(key, "x")
    return handle


def test_anonymous_lists_are_empty_200_and_do_not_say_they_were_filtered(fleet):
    for path in LIST_ENDPOINTS:
        status, headers, body = get(fleet, path, token="")
        assert status == 200, path
        assert not body, (path, body)
        assert FILTERED not in headers, path  # masked for a request without a token
        assert headers["X-Consul-Default-Acl-Policy"] == "deny"


def test_a_token_that_may_read_no_service_gets_empty_lists_with_the_header(fleet):
    token = fleet.make_token({"node_prefix": {"": "read"}})
    nodes = get(fleet, "/v1/catalog/nodes", token)
    assert [n["Node"] for n in nodes[2]] == ["gw1", "gw2", "gw3"] and FILTERED not in nodes[1]
    for path in LIST_ENDPOINTS[1:]:
        status, headers, body = get(fleet, path, token)
        assert status == 200, path
        if path in ("/v1/health/node/gw2", "/v1/health/state/any"):  # node checks stay readable
            assert {c["CheckID"] for c in body} == {"serfHealth"}, body
        else:
            assert not body, (path, body)
        assert headers[FILTERED] == "true", path


def test_a_token_limited_to_one_node_gets_shortened_lists_with_the_header(fleet):
    token = fleet.read_only_token(nodes="gw1", services="")
    status, headers, nodes = get(fleet, "/v1/catalog/nodes", token)
    assert [n["Node"] for n in nodes] == ["gw1"] and headers[FILTERED] == "true"
    # Service names alone are filtered by service rules only: nothing hidden there.
    status, headers, services = get(fleet, "/v1/catalog/services", token)
    assert set(services) == {"consul", "core-data", "core-metadata"} and FILTERED not in headers
    for path in ("/v1/catalog/service/core-data", "/v1/health/service/core-data"):
        status, headers, entries = get(fleet, path, token)
        nodes = [e["Node"] if isinstance(e["Node"], str) else e["Node"]["Node"] for e in entries]
        assert nodes == ["gw1"], path
        assert headers[FILTERED] == "true", path
    for path in ("/v1/health/checks/core-data", "/v1/health/state/any"):
        status, headers, checks = get(fleet, path, token)
        assert {c["Node"] for c in checks} == {"gw1"} and headers[FILTERED] == "true", path
    status, headers, checks = get(fleet, "/v1/health/node/gw2", token)
    assert checks == [] and headers[FILTERED] == "true"
    # The agent's own lists: gw1 only, and all of it is readable.
    status, headers, services = get(fleet, "/v1/agent/services", token)
    assert list(services) == ["core-data"] and FILTERED not in headers


def test_agent_lists_say_when_they_were_filtered(fleet):
    token = fleet.read_only_token(nodes="", services="core-metadata")
    for path in ("/v1/agent/services", "/v1/agent/checks"):
        status, headers, body = get(fleet, path, token)
        assert (status, body) == (200, {}) and headers[FILTERED] == "true", path


def test_an_agent_default_token_stands_in_for_a_missing_one_and_unmasks_the_header(consul_emulator):
    handle = consul_emulator(acl=True, default_token="agent-default-token")
    handle.make_token({"node_prefix": {"": "read"}}, secret="agent-default-token")
    handle.client().agent.service.register("core-data", port=59880)
    status, headers, nodes = get(handle, "/v1/catalog/nodes", token="")
    assert [n["Node"] for n in nodes] == ["gw1"]  # read through the default token's rules
    status, headers, services = get(handle, "/v1/catalog/services", token="")
    assert services == {} and headers[FILTERED] == "true"


def test_an_unknown_token_is_403_acl_not_found_everywhere(fleet):
    for path in LIST_ENDPOINTS + ("/v1/kv/edgex/v3/?recurse", "/v1/agent/self"):
        status, _headers, body = get(fleet, path, "no-such-token")
        assert (status, body) == (403, b"ACL not found"), path


def test_missing_write_rights_are_403_permission_denied(fleet):
    reader = fleet.read_only_token(nodes="", services="", keys="")
    for method, path, body in (("PUT", "/v1/agent/service/register", {"Name": "core-data", "Port": 1}),
                               ("PUT", "/v1/kv/edgex/v3/core-data/Writable/LogLevel", b"DEBUG"),
                               ("DELETE", "/v1/kv/edgex/v3/?recurse", None),
                               ("PUT", "/v1/catalog/register", {"Node": "gw9", "Address": "127.0.0.9"})):
        status, _headers, raw = fleet.answer(method, path, body, token=reader)
        assert status == 403, path
        assert raw.decode().startswith("Permission denied: token with AccessorID '"), raw
        assert ":write'" in raw.decode(), raw


def test_kv_recursive_reads_are_filtered_and_filtered_to_nothing_is_404(fleet):
    token = fleet.read_only_token(keys="edgex/v3/core-data/")
    status, headers, entries = get(fleet, "/v1/kv/edgex/v3/?recurse", token)
    assert [e["Key"] for e in entries] == ["edgex/v3/core-data/Service/Port", "edgex/v3/core-data/Writable/LogLevel"]
    assert headers[FILTERED] == "true"
    status, headers, keys = get(fleet, "/v1/kv/edgex/v3/?keys&separator=/", token)
    assert keys == ["edgex/v3/core-data/"] and headers[FILTERED] == "true"
    status, headers, body = get(fleet, "/v1/kv/edgex/v3/core-metadata/?recurse", token)
    assert (status, body) == (404, None) and headers[FILTERED] == "true"
    status, headers, body = get(fleet, "/v1/kv/edgex/v3/core-metadata/?keys", token)
    assert status == 404 and headers[FILTERED] == "true"
    # A single key is not a list: no filtering, an error.
    status, _headers, raw = get(fleet, "/v1/kv/edgex/v3/core-metadata/Writable/LogLevel", token)
    assert status == 403 and b"lacks permission 'key:read'" in raw
    # Anonymous: the same 404, without the header.
    status, headers, body = get(fleet, "/v1/kv/edgex/v3/?recurse", token="")
    assert status == 404 and FILTERED not in headers


def test_recursive_delete_needs_write_on_everything_below_the_prefix(fleet):
    token = fleet.make_token({"key_prefix": {"edgex/": "write", "edgex/v3/core-metadata/": "read"}})
    status, _headers, raw = fleet.answer("DELETE", "/v1/kv/edgex/v3/?recurse", token=token)
    assert status == 403 and b"key:write" in raw
    status, _headers, raw = fleet.answer("DELETE", "/v1/kv/edgex/v3/core-data/?recurse", token=token)
    assert (status, raw) == (200, b"true")


def test_default_allow_lets_a_token_read_what_its_rules_do_not_name(consul_emulator):
    handle = consul_emulator(acl=True, default_policy="allow")
    handle.register("gw2", "core-data", node_address="127.0.0.2", port=59880)
    token = handle.make_token({"node": {"gw2": "deny"}})
    status, headers, nodes = get(handle, "/v1/catalog/nodes", token)
    assert [n["Node"] for n in nodes] == ["gw1"] and headers[FILTERED] == "true"
    assert headers["X-Consul-Default-Acl-Policy"] == "allow"


def test_token_precedence_query_then_header_then_bearer(fleet):
    reader = fleet.read_only_token(nodes="", services="")
    status, _h, _b = get(fleet, "/v1/catalog/services?token=%s" % reader, "no-such-token")
    assert status == 200  # ?token wins over X-Consul-Token
    status, _h, body = fleet.answer("GET", "/v1/catalog/services", token="",
                                    headers={"X-Consul-Token": "no-such-token", "Authorization": "Bearer " + reader})
    assert status == 403  # X-Consul-Token wins over Authorization
    status, _h, body = fleet.answer("GET", "/v1/catalog/services", token="",
                                    headers={"Authorization": "Bearer " + reader})
    assert status == 200 and "core-data" in json.loads(body)
