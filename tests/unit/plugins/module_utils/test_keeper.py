"""KeeperRegistry against the core-keeper emulator, and against canned answers for the error
branches the emulator cannot produce (401/403, shapes of other keeper versions)."""

import json
import socket

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import (
    InvalidNameError,
    RegistryAuthError,
    RegistryError,
    RegistryUnavailableError,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._net import client as http
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.keeper import KeeperRegistry
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import open_registry
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord

SETTINGS = {"registry_type": "keeper", "scheme": "http", "host": "gw1.example", "port": 59890, "timeout": 5.0,
            "validate_certs": True}


def seed(keeper, service_id, status, port=59880, interval="1h"):
    """A registration as an EdgeX service would make it; a long interval keeps keeper's
    checks from changing the seeded status during the test."""
    assert keeper.request("POST", "/api/v3/registry", {"apiVersion": "v3", "registration": {
        "serviceId": service_id, "host": "edgex-%s" % service_id, "port": port, "status": status,
        "healthCheck": {"interval": interval, "path": "/api/v3/ping", "type": "http"}}})[0] == 201


def record(name="core-data", address="127.0.0.1", port=59880, **kwargs):
    return ServiceRecord(name=name, node="gw1", address=address, port=port, **kwargs)


def in_keeper(keeper, service_id):
    status, answer = keeper.request("GET", "/api/v3/registry/serviceId/%s" % service_id)
    return answer["registration"] if status == 200 else None


# -- against the emulator ------------------------------------------------------------------


def test_open_registry_builds_a_keeper_registry(keeper):
    registry = open_registry(keeper.settings())
    assert isinstance(registry, KeeperRegistry) and registry.type == "keeper"
    assert registry.discover().source == "keeper"


def test_discover_maps_statuses_and_reports_halt_as_stopped_in_one_request(keeper):
    seed(keeper, "core-data", "UP")
    seed(keeper, "core-metadata", "DOWN", port=59881)
    seed(keeper, "core-command", "UNKNOWN", port=59882)
    seed(keeper, "device-virtual", "HALT", port=59900)
    keeper.reset_stats()

    discovery = KeeperRegistry(keeper.settings()).discover()

    assert keeper.stats()["requests"] == 1
    assert discovery.source == "keeper"
    assert [(n.name, n.address, n.status) for n in discovery.nodes] == [("127.0.0.1", "127.0.0.1", "passing")]
    by_name = {s.name: s for s in discovery.services if s.registered}
    assert sorted(by_name) == ["core-command", "core-data", "core-metadata"]
    # HALT: deregistered on a clean stop, so deployed but not running, and no longer checked by keeper
    (halted,) = [s for s in discovery.services if not s.registered]
    assert (halted.name, halted.status, halted.checks, halted.meta) == (
        "device-virtual", "unknown", [], {"keeper_status": "HALT"})
    assert {n: s.status for n, s in by_name.items()} == {
        "core-data": "passing", "core-metadata": "critical", "core-command": "unknown"}
    data = by_name["core-data"]
    assert (data.id, data.node, data.address, data.port, data.health_path) == (
        "core-data", "127.0.0.1", "edgex-core-data", 59880, "/api/v3/ping")
    assert data.meta == {"keeper_status": "UP"}
    assert data.checks == [{"id": "core-data", "name": "Health Check: core-data", "status": "passing",
                            "output": "core-keeper status UP (GET http://edgex-core-data:59880/api/v3/ping every 1h)",
                            "service_id": "core-data"}]
    assert discovery.services_on("127.0.0.1") == discovery.services


def test_register_is_idempotent_and_updates_only_on_difference(keeper):
    registry = KeeperRegistry(keeper.settings())
    assert registry.register(record()) is True
    stored = in_keeper(keeper, "core-data")
    assert stored["HealthCheck"] == {"interval": "10s", "path": "/api/v3/ping", "type": "http"}
    assert (stored["host"], stored["port"], stored["status"]) == ("127.0.0.1", 59880, "UNKNOWN")

    keeper.reset_stats()
    assert registry.register(record()) is False
    assert keeper.stats()["by_path"] == {"/api/v3/registry/serviceId/core-data": 1}  # read only

    assert registry.register(record(port=59999, health_path="/api/v3/version")) is True
    stored = in_keeper(keeper, "core-data")
    assert (stored["port"], stored["HealthCheck"]["path"]) == (59999, "/api/v3/version")
    assert registry.register(record(port=59999, health_path="/api/v3/version")) is False


def test_register_uses_the_service_id_when_it_differs_from_the_name(keeper):
    assert KeeperRegistry(keeper.settings()).register(record(name="device-rest", id="device-rest-2")) is True
    assert in_keeper(keeper, "device-rest-2") is not None
    assert in_keeper(keeper, "device-rest") is None


def test_register_needs_address_and_port(keeper):
    with pytest.raises(RegistryError, match="core-data .*needs an address and a port"):
        KeeperRegistry(keeper.settings()).register(record(port=None))
    assert in_keeper(keeper, "core-data") is None


def test_deregister_halts_like_go_mod_registry_and_register_revives(keeper):
    registry = KeeperRegistry(keeper.settings())
    registry.register(record())
    assert registry.deregister("core-data") is True
    assert in_keeper(keeper, "core-data")["status"] == "HALT"  # kept, marked halted
    assert [(s.name, s.registered) for s in registry.discover().services] == [("core-data", False)]
    assert registry.deregister("core-data") is False
    assert registry.deregister("never-registered") is False

    assert registry.register(record()) is True  # same fields, but HALT: re-register
    assert in_keeper(keeper, "core-data")["status"] == "UNKNOWN"
    assert [s.name for s in registry.discover().services] == ["core-data"]


def test_kv_put_get_idempotent_and_recurse(keeper):
    registry = KeeperRegistry(keeper.settings())
    key = "edgex/v4/core-data/Writable/LogLevel"
    assert registry.kv_get(key) == {}
    assert registry.kv_put(key, "INFO") is True
    assert registry.kv_put(key, "INFO") is False
    assert registry.kv_get(key) == {key: "INFO"}
    assert registry.kv_put(key, "DEBUG") is True
    registry.kv_put("edgex/v4/core-data/Writable/Telemetry/Interval", "30s")
    registry.kv_put("edgex/v4/core-data-other", "x")

    assert registry.kv_get("edgex/v4/core-data/Writable") == {}  # only children: no such key
    assert registry.kv_get("edgex/v4/core-data/Writable", recurse=True) == {
        key: "DEBUG", "edgex/v4/core-data/Writable/Telemetry/Interval": "30s"}
    assert registry.kv_put("edgex/v4/empty", "") is True
    assert registry.kv_get("edgex/v4/empty") == {"edgex/v4/empty": ""}
    # ; and = are keeper key characters and must reach it unescaped
    assert registry.kv_put("edgex/v4/a;b=c~d", "v") is True
    assert registry.kv_get("edgex/v4/a;b=c~d") == {"edgex/v4/a;b=c~d": "v"}


@pytest.mark.parametrize("name", ["Core-Data", "core data", "../x", "a/b", "$(id)", ""])
def test_names_are_validated_before_any_request(keeper, name):
    registry = KeeperRegistry(keeper.settings())
    keeper.reset_stats()
    with pytest.raises(InvalidNameError):
        registry.register(record(name=name))
    with pytest.raises(InvalidNameError):
        registry.deregister(name)
    assert keeper.stats()["requests"] == 0


@pytest.mark.parametrize("key", ["edgex/v4/core:data", "edgex/../secrets", "a b", "a?b", "a#b", "a%2Fb", "", None])
def test_keys_keeper_would_refuse_are_refused_here(keeper, key):
    registry = KeeperRegistry(keeper.settings())
    keeper.reset_stats()
    with pytest.raises(InvalidNameError):
        registry.kv_get(key)
    with pytest.raises(InvalidNameError):
        registry.kv_put(key, "x")
    assert keeper.stats()["requests"] == 0


def test_stopped_keeper_is_unavailable_naming_endpoint_and_route(keeper):
    keeper.stop()
    with pytest.raises(RegistryUnavailableError) as err:
        KeeperRegistry(keeper.settings()).discover()
    assert str(err.value) == ("core-keeper at %s is unreachable (GET /api/v3/registry/all: ConnectionRefusedError)"
                              % keeper.url)


def test_500_is_unavailable_with_keepers_message(keeper):
    keeper.fault("500")
    with pytest.raises(RegistryUnavailableError) as err:
        KeeperRegistry(keeper.settings()).discover()
    assert str(err.value) == "core-keeper at %s failed GET /api/v3/registry/all: 500 emulated failure" % keeper.url


def test_garbage_is_a_registry_error_not_unavailable(keeper):
    keeper.fault("garbage")
    with pytest.raises(RegistryError) as err:
        KeeperRegistry(keeper.settings()).discover()
    assert not isinstance(err.value, RegistryUnavailableError)
    assert "answered GET /api/v3/registry/all with something that is not keeper JSON" in str(err.value)


def test_slow_keeper_times_out_as_unavailable(keeper):
    keeper.fault("slow", 2.0)
    with pytest.raises(RegistryUnavailableError, match=r"unreachable \(GET /api/v3/registry/all: \w*Timeout"):
        KeeperRegistry(keeper.settings(timeout=0.3)).discover()


# -- canned answers ------------------------------------------------------------------------


class FakeSend(object):
    """Stands in for _net.client.request: plays answers in order, (status, payload) or an OSError
    (mapped as the real request maps it), and keeps every request as
    (method, url, body, headers, timeout)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, method, scheme, host, port, path, query, headers, body, timeout, tls):
        self.requests.append((method, "%s://%s:%s%s" % (scheme, host, port, http.target(path, query)), body,
                              dict(headers), timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise http.failure(answer, scheme)
        status, payload = answer
        return http.Response(status, {}, payload if isinstance(payload, bytes) else json.dumps(payload).encode())


def edgex_error(status, message):
    return {"apiVersion": "v3", "message": message, "statusCode": status}


def registration(service_id="core-data", status="UP", health_key="HealthCheck"):
    return {"serviceId": service_id, "status": status, "host": "edgex-" + service_id, "port": 59880,
            health_key: {"interval": "10s", "path": "/api/v3/ping", "type": "http"}}


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refusal_never_echoes_the_token(status):
    opener = FakeSend((status, edgex_error(status, "invalid JWT")))
    registry = KeeperRegistry(dict(SETTINGS, token="s3cret-jwt"), send=opener)
    with pytest.raises(RegistryAuthError) as err:
        registry.discover()
    assert str(err.value) == ("core-keeper at http://gw1.example:59890 refused GET /api/v3/registry/all: "
                              "%d invalid JWT" % status)
    assert "s3cret" not in str(err.value)
    method, url, _data, headers, timeout = opener.requests[0]
    assert (method, url, timeout) == ("GET", "http://gw1.example:59890/api/v3/registry/all?deregistered=true", 5.0)
    assert headers["Authorization"] == "Bearer s3cret-jwt"


def test_no_token_no_authorization_header():
    opener = FakeSend((200, {"apiVersion": "v3", "statusCode": 200, "totalCount": 0, "registrations": []}))
    KeeperRegistry(SETTINGS, send=opener).discover()
    assert "Authorization" not in opener.requests[0][3]


def test_404_on_a_route_is_an_error_not_a_fallback():
    opener = FakeSend((404, {"message": "Not Found"}))  # echo's answer: no keeper there
    with pytest.raises(RegistryError) as err:
        KeeperRegistry(SETTINGS, send=opener).discover()
    assert not isinstance(err.value, RegistryUnavailableError)
    assert str(err.value).endswith("rejected GET /api/v3/registry/all: 404 Not Found")


@pytest.mark.parametrize("answer", [{"message": "Not Found"}, b"<html>404</html>"])
def test_404_that_is_not_keepers_answer_is_not_taken_for_absent(answer):
    with pytest.raises(RegistryError, match=r"rejected GET /api/v3/kvs/key/edgex/v4/x: 404"):
        KeeperRegistry(SETTINGS, send=FakeSend((404, answer))).kv_get("edgex/v4/x")
    with pytest.raises(RegistryError, match=r"rejected GET /api/v3/registry/serviceId/core-data: 404"):
        KeeperRegistry(SETTINGS, send=FakeSend((404, answer))).deregister("core-data")


def test_400_names_the_route_and_keepers_message():
    opener = FakeSend((404, edgex_error(404, "registration not found by serviceId")),
                      (400, edgex_error(400, "*requests.AddRegistrationRequest json decoding failed")))
    with pytest.raises(RegistryError, match=r"rejected POST /api/v3/registry: 400 \*requests\.AddRegistration"):
        KeeperRegistry(SETTINGS, send=opener).register(record())


@pytest.mark.parametrize("failure, name", [
    (ConnectionRefusedError(111, "refused"), "ConnectionRefusedError"),
    (socket.timeout("timed out"), "TimeoutError"),
    (socket.gaierror(-2, "Name or service not known"), "gaierror"),
])
def test_network_failures_are_unavailable(failure, name):
    with pytest.raises(RegistryUnavailableError) as err:
        KeeperRegistry(SETTINGS, send=FakeSend(failure)).kv_get("edgex/v4/core-data")
    assert str(err.value) == ("core-keeper at http://gw1.example:59890 is unreachable "
                              "(GET /api/v3/kvs/key/edgex/v4/core-data: %s)" % name)


def test_502_from_a_proxy_with_html_is_unavailable():
    opener = FakeSend((502, b"<html>Bad Gateway</html>"))
    with pytest.raises(RegistryUnavailableError, match="failed GET /api/v3/registry/all: 502 <html>Bad Gateway"):
        KeeperRegistry(SETTINGS, send=opener).discover()


@pytest.mark.parametrize("payload, detail", [
    ({"apiVersion": "v3", "statusCode": 200}, "no registrations list"),
    ({"registrations": {"core-data": {}}}, "no registrations list"),
    ({"registrations": ["core-data"]}, "a registration is not an object"),
    ({"registrations": [{"host": "h", "port": 1}]}, "a registration without serviceId or port"),
    ({"registrations": [{"serviceId": "core-data", "port": "59880"}]}, "a registration without serviceId or port"),
    ([], "no registrations list"),
])
def test_unexpected_shapes_are_registry_errors(payload, detail):
    with pytest.raises(RegistryError) as err:
        KeeperRegistry(SETTINGS, send=FakeSend((200, payload))).discover()
    assert not isinstance(err.value, RegistryUnavailableError)
    assert str(err.value) == ("core-keeper at http://gw1.example:59890 answered GET /api/v3/registry/all with an "
                              "unexpected shape (%s)" % detail)


def test_openapi_spelling_and_halt_from_a_keeper_that_ignores_deregistered():
    payload = {"registrations": [registration("core-data", "UP", health_key="healthCheck"),
                                 registration("core-command", "HALT"),
                                 registration("core-metadata", "SOMETHING-NEW")]}
    discovery = KeeperRegistry(SETTINGS, send=FakeSend((200, payload))).discover()
    assert [(s.name, s.status, s.health_path) for s in discovery.services if s.registered] == [
        ("core-data", "passing", "/api/v3/ping"), ("core-metadata", "unknown", "/api/v3/ping")]
    assert [s.name for s in discovery.services if not s.registered] == ["core-command"]
    assert [n.name for n in discovery.nodes] == ["gw1.example"]


def test_register_race_409_falls_back_to_update():
    opener = FakeSend((404, edgex_error(404, "registration not found by serviceId")),
                      (409, edgex_error(409, "registry with service id 'core-data' already exists")),
                      (204, b""))
    assert KeeperRegistry(SETTINGS, send=opener).register(record()) is True
    assert [r[0] for r in opener.requests] == ["GET", "POST", "PUT"]
    sent = json.loads(opener.requests[2][2])
    assert sent == {"apiVersion": "v3", "registration": {
        "serviceId": "core-data", "host": "127.0.0.1", "port": 59880,
        "healthCheck": {"interval": "10s", "path": "/api/v3/ping", "type": "http"}}}


def test_deregister_sends_the_current_registration_with_halt():
    opener = FakeSend((200, {"apiVersion": "v3", "statusCode": 200, "registration": registration()}), (204, b""))
    assert KeeperRegistry(SETTINGS, send=opener).deregister("core-data", node="gw1.example") is True
    method, url, data, _headers, _timeout = opener.requests[1]
    assert (method, url) == ("PUT", "http://gw1.example:59890/api/v3/registry")
    assert json.loads(data)["registration"] == {
        "serviceId": "core-data", "host": "edgex-core-data", "port": 59880, "status": "HALT",
        "healthCheck": {"interval": "10s", "path": "/api/v3/ping", "type": "http"}}


def test_kv_value_that_is_not_text_is_a_shape_error():
    payload = {"apiVersion": "v3", "statusCode": 200, "response": [{"key": "a", "value": {"x": 1}}]}
    with pytest.raises(RegistryError, match="a value that is not plain text"):
        KeeperRegistry(SETTINGS, send=FakeSend((200, payload))).kv_get("a")


def test_https_with_missing_ca_file_is_a_registry_error():
    settings = dict(SETTINGS, scheme="https", ca_path="/nonexistent/ca.pem")
    with pytest.raises(RegistryError, match="cannot set up TLS for core-keeper at https://gw1.example:59890"):
        KeeperRegistry(settings)


def test_a_hostile_registration_is_skipped_and_the_rest_served():
    payload = {"apiVersion": "v3", "statusCode": 200, "totalCount": 2,
               "registrations": [registration("core-data"), registration("../x"), registration("$(id)")]}
    discovery = KeeperRegistry(SETTINGS, send=FakeSend((200, payload))).discover()
    assert [s.name for s in discovery.services] == ["core-data"] and not discovery.complete
    assert discovery.warnings == ["skipped service '../x' from core-keeper: not a plain name "
                                  "(^[a-z0-9][a-z0-9_.-]{0,127}$)",
                                  "skipped service '$(id)' from core-keeper: not a plain name "
                                  "(^[a-z0-9][a-z0-9_.-]{0,127}$)"]
