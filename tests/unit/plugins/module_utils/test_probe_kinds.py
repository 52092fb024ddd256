"""Probe by kind (issue 10 item 5): EdgeX services get the EdgeX ping, known infrastructure its own
cheap probe, anything else a TCP connect; the result says which. Each kind against a tiny
in-process server speaking just enough of the protocol."""

import struct

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import check_services
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.probe import probe_kind, probe_ping, probe_services
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord

from ping_servers import RawPeers, free_port


@pytest.fixture
def peer():
    """One connection after the other, so that peer.received is in the order they came."""
    with RawPeers(timeout=5) as peers:
        yield peers


def read_until(connection, marker):
    data = b""
    while marker not in data:
        chunk = connection.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def http(status, body):
    def handler(connection, peers):
        peers.received.append(read_until(connection, b"\r\n\r\n"))
        connection.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                           % (status, len(body), body))
    return handler


def redis(reply):
    def handler(connection, peers):
        peers.received.append(read_until(connection, b"\r\n"))
        connection.sendall(reply)
    return handler


def postgres(reply):
    def handler(connection, peers):
        request = b""
        while len(request) < 8:
            request += connection.recv(8 - len(request))
        peers.received.append(request)
        connection.sendall(reply)
    return handler


def mqtt(code):
    def handler(connection, peers):
        head = connection.recv(2)
        body = b""
        while len(body) < head[1]:
            body += connection.recv(head[1] - len(body))
        peers.received.append(head + body)
        connection.sendall(bytes([0x20, 2, 0, code]))
        peers.received.append(connection.recv(2))  # DISCONNECT after a CONNACK 0
    return handler


def service(name, port, **fields):
    return ServiceRecord(name=name, node="gw1", address="127.0.0.1", port=port, **fields)


def probe(name, port, **fields):
    return probe_ping(service(name, port, **fields), 2.0)


@pytest.mark.parametrize("name, port, fields, kind", [
    ("core-data", 59880, {}, "edgex-ping"),
    ("device-modbus", 59901, {}, "edgex-ping"),  # not in the catalog, but an EdgeX service key
    ("core-data", 59880, {"health_path": "/api/v2/ping"}, "edgex-ping"),
    ("device-foo", 1, {"health_path": "/healthz"}, "http"),
    ("consul", 8500, {}, "consul-leader"),
    ("redis", 6379, {}, "redis-ping"),
    ("database", 6379, {}, "redis-ping"),  # EdgeX 3.x
    ("database", 5432, {}, "postgres-ssl-request"),  # EdgeX 4.x
    ("postgres", 5432, {"health_path": "/api/v3/ping"}, "postgres-ssl-request"),  # infrastructure wins
    ("mqtt-broker", 1883, {}, "mqtt-connect"),
    ("secret-store", 8200, {}, "vault-health"),
    ("vault", 8200, {}, "vault-health"),
    ("rules-engine", 59720, {}, "tcp"),  # eKuiper: no EdgeX ping
    ("grafana", 3000, {}, "tcp"),  # a third-party registration
])
def test_the_probe_kind_follows_what_is_known(name, port, fields, kind):
    assert probe_kind(service(name, port, **fields))[0] == kind


def test_edgex_ping_is_the_health_path(peer):
    port = peer(http(200, b'{"apiVersion":"v2","timestamp":"t","serviceName":"core-data"}'))
    result = probe("core-data", port, health_path="/api/v2/ping")
    assert (result.ok, result.kind, result.target) == (True, "edgex-ping", "http://127.0.0.1:%d/api/v2/ping" % port)
    assert peer.received[0].startswith(b"GET /api/v2/ping HTTP/1.0\r\n")


def test_a_third_party_service_is_never_sent_the_edgex_ping(peer):
    port = peer(redis(b""))  # accepts, reads nothing useful, closes
    (result,) = check_services([service("grafana", port, status="passing")], timeout=2.0, registry_source="consul")
    assert (result.probe, result.verdict, result.target) == ("tcp", "healthy", "127.0.0.1:%d" % port)


@pytest.mark.parametrize("reply, ok, error", [
    (b"+PONG\r\n", True, None),
    (b"-NOAUTH Authentication required.\r\n", True, None),  # alive; it wants a password
    (b"-LOADING Redis is loading the dataset in memory\r\n", False,
     "redis PING answered -LOADING Redis is loading the dataset in memory"),
    (b"HTTP/1.1 400 Bad Request\r\n", False, "redis PING answered HTTP/1.1 400 Bad Request"),
])
def test_redis_answers_its_inline_ping(peer, reply, ok, error):
    result = probe("redis", peer(redis(reply)))
    assert (result.kind, result.ok, result.error) == ("redis-ping", ok, error)
    assert peer.received == [b"PING\r\n"]


@pytest.mark.parametrize("reply, ok", [(b"N", True), (b"S", True), (b"E", False)])
def test_postgres_answers_an_ssl_request_before_any_authentication(peer, reply, ok):
    result = probe("postgres", peer(postgres(reply)))
    assert (result.kind, result.ok) == ("postgres-ssl-request", ok)
    assert peer.received == [struct.pack("!II", 8, 80877103)]
    if not ok:
        assert result.error == "PostgreSQL did not answer its SSLRequest with S or N"


@pytest.mark.parametrize("code, ok, error", [
    (0, True, None),
    (5, True, None),  # a broker refusing an anonymous client is alive
    (3, False, "MQTT broker refused CONNECT with code 3 (server unavailable)"),
])
def test_an_mqtt_broker_answers_connect_with_connack(peer, code, ok, error):
    result = probe("mqtt-broker", peer(mqtt(code)))
    assert (result.kind, result.ok, result.error) == ("mqtt-connect", ok, error)
    connect = peer.received[0]
    assert connect[0] == 0x10 and connect[2:9] == b"\x00\x04MQTT\x04" and connect[9] == 0x02  # 3.1.1, clean
    if code == 0:
        assert peer.handled.acquire(timeout=10)
        assert peer.received[1] == b"\xe0\x00"


@pytest.mark.parametrize("status, body, ok, error", [
    (200, b'{"initialized":true,"sealed":false,"standby":false}', True, None),
    (429, b'{"initialized":true,"sealed":false,"standby":true}', True, None),
    (503, b'{"initialized":true,"sealed":true}', False, "GET /v1/sys/health: sealed"),
    (501, b'{"initialized":false}', False, "GET /v1/sys/health: not initialized"),
])
def test_the_secret_store_answers_its_health_route(peer, status, body, ok, error):
    result = probe("secret-store", peer(http(status, body)))
    assert (result.kind, result.ok, result.error, result.http_status) == ("vault-health", ok, error, status)
    assert peer.received[0].startswith(b"GET /v1/sys/health HTTP/1.0\r\n")


@pytest.mark.parametrize("body, ok, error", [
    (b'"10.1.10.12:8300"', True, None),
    (b'""', False, "Consul has no leader"),
    (b"[]", False, "GET /v1/status/leader answered with something that is not a leader address"),
])
def test_consul_names_its_leader(peer, body, ok, error):
    result = probe("consul", peer(http(200, body)))
    assert (result.kind, result.ok, result.error) == ("consul-leader", ok, error)


def test_the_probe_kind_is_in_the_health_result(peer):
    port = peer(redis(b"+PONG\r\n"))
    (result,) = check_services([service("redis", port)], timeout=2.0)
    assert (result.probe, result.verdict, result.target) == ("redis-ping", "healthy", "127.0.0.1:%d" % port)


def test_probed_together_every_kind_gets_what_it_gets_alone(peer):
    # One thread probes them all at once (probe_services); each answer, refusal and silence must
    # come out as it does for a probe on its own.
    ping = b'{"apiVersion":"v3","timestamp":"t","serviceName":"%s"}'
    silent = peer(lambda connection, peers: connection.recv(1024) and connection.recv(1024))
    services = [
        service("core-data", peer(http(200, ping % b"core-data"))),
        service("core-data", peer(http(200, ping % b"core-metadata"))),
        service("core-data", peer(http(500, b"{}"))),
        service("redis", peer(redis(b"+PONG\r\n"))),
        service("redis", peer(redis(b"-LOADING Redis is loading\r\n"))),
        service("postgres", peer(postgres(b"N"))),
        service("mqtt-broker", peer(mqtt(0))),
        service("grafana", free_port()),
        service("core-data", silent),
    ]
    together = probe_services(services, 1.0, max_in_flight=32)
    alone = [probe_ping(s, 1.0) for s in services]

    def outcome(probe):
        return probe.kind, probe.ok, probe.error, probe.http_status, probe.target

    assert [outcome(p) for p in together] == [outcome(p) for p in alone]
    assert [p.ok for p in together] == [True, False, False, True, False, True, True, False, False]
    assert together[-1].error == "ping timed out after 1.0s"
    assert all(p.latency_ms is not None for p in together if p.ok)
