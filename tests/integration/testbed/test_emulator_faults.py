"""Faults chosen per endpoint at run time, in both emulators: a rule (mode, path regex, method,
times, ...) damages or replaces the answers of the endpoints it matches and leaves the others
alone; the global fault of old keeps working. Timing is asserted only as lower bounds (a slow
peer is at least that slow) or generous upper bounds.
"""

import json
import socket
import time
import urllib.error
import urllib.request
from http.client import IncompleteRead, RemoteDisconnected

import pytest


def raw_exchange(host, port, request, until=None, timeout=30):
    """Send a raw request; read until ``until`` is in what came back (or the peer closes).
    Returns (bytes, seconds)."""
    started = time.time()
    data = b""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        while until is None or until not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data, time.time() - started


def get_request(path, host="127.0.0.1"):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode()


# -- Consul ------------------------------------------------------------------------------------


def test_consul_404_is_the_one_real_consul_gives_for_that_kind_of_endpoint(consul):
    consul.fault("404", path=r"^/v1/agent/self$")
    consul.fault("404", path=r"^/v1/kv/")
    consul.fault("404", path=r"^/v1/agent/service/deregister/")
    status, headers, raw = consul.answer("GET", "/v1/agent/self")
    assert (status, raw) == (404, b"Invalid URL path: not a recognized HTTP API endpoint\n")
    assert "X-Consul-Default-Acl-Policy" not in headers  # the mux's Index handler, not an endpoint
    status, headers, raw = consul.answer("GET", "/v1/kv/anything")
    assert (status, raw) == (404, b"") and int(headers["X-Consul-Index"]) > 0
    status, _headers, raw = consul.answer("PUT", "/v1/agent/service/deregister/core-data")
    assert status == 404 and raw.startswith(b'Unknown service ID "core-data"')
    assert consul.answer("GET", "/v1/catalog/services")[0] == 200  # other endpoints are fine
    consul.fault(None, path=r"^/v1/agent/self$")
    assert consul.answer("GET", "/v1/agent/self")[0] == 200


def test_consul_html_500_and_times(consul):
    consul.fault("html", path=r"^/v1/catalog/services$", status=502)
    status, headers, raw = consul.answer("GET", "/v1/catalog/services")
    assert status == 502 and headers["Content-Type"] == "text/html" and raw.startswith(b"<html>")
    consul.fault("html", path=r"^/v1/catalog/nodes$")
    status, headers, raw = consul.answer("GET", "/v1/catalog/nodes")
    assert status == 200 and b"<h1>200 OK</h1>" in raw
    consul.fault("500", path=r"^/v1/health/", times=2)
    for _attempt in range(2):
        status, _headers, raw = consul.answer("GET", "/v1/health/state/any")
        assert (status, raw) == (500, b"rpc error making call: emulated failure")
    assert consul.answer("GET", "/v1/health/state/any")[0] == 200  # the rule is used up
    consul.fault("500", path=r"^/v1/status/leader$", method="PUT")
    assert consul.answer("GET", "/v1/status/leader")[0] == 200  # only PUTs would fail
    rules = consul.fault(None)  # clears the global fault and every rule
    assert rules["rules"] == []
    assert consul.answer("GET", "/v1/catalog/services")[0] == 200


def test_consul_truncated_answers_are_whole_http_messages_with_broken_json(consul):
    whole = consul.answer("GET", "/v1/catalog/nodes")[2]
    consul.fault("truncated", path=r"^/v1/catalog/nodes$")
    status, headers, raw = consul.answer("GET", "/v1/catalog/nodes")
    assert status == 200 and int(headers["Content-Length"]) == len(raw) < len(whole)
    assert whole.startswith(raw)
    with pytest.raises(ValueError):
        json.loads(raw)


def test_consul_disconnect_ends_the_connection_inside_the_body(consul):
    consul.fault("disconnect", path=r"^/v1/catalog/nodes$")
    with pytest.raises((IncompleteRead, RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        with consul.request("GET", "/v1/catalog/nodes") as response:
            response.read()


def test_consul_trickles_the_status_line_or_the_body(consul):
    consul.fault("trickle-status", path=r"^/v1/status/leader$", rate=40)
    data, elapsed = raw_exchange(consul.host, consul.port, get_request("/v1/status/leader"), until=b"\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert elapsed >= (len(b"HTTP/1.1 200 OK\r\n") - 1) / 40.0 * 0.9
    consul.fault("trickle-body", path=r"^/v1/catalog/nodes$", rate=100)
    data, elapsed_head = raw_exchange(consul.host, consul.port, get_request("/v1/catalog/nodes"), until=b"\r\n\r\n")
    assert elapsed_head < 5  # the headers come at once
    data, elapsed = raw_exchange(consul.host, consul.port, get_request("/v1/catalog/nodes"))
    head, _sep, body = data.partition(b"\r\n\r\n")
    assert json.loads(body)[0]["Node"] == "gw1"  # all of it arrives, slowly
    assert elapsed >= (len(body) - 2) / 100.0 * 0.9


def test_consul_hang_accepts_and_never_answers(consul):
    consul.fault("hang", path=r"^/v1/catalog/services$")
    started = time.time()
    with pytest.raises((socket.timeout, urllib.error.URLError)):
        consul.request("GET", "/v1/catalog/services", timeout=1)
    assert time.time() - started < 10
    assert consul.answer("GET", "/v1/catalog/nodes")[0] == 200  # the others are served meanwhile
    assert consul.stats()["by_path"]["/v1/catalog/services"] == 1  # the request did arrive


def test_consul_rules_can_target_one_datacenter(consul_emulator):
    handle = consul_emulator(nodes=[("gw1", "127.0.0.1", "dc1"), ("gw2", "127.0.0.2", "dc2")])
    handle.fault("500", path=r"^/v1/catalog/", datacenter="dc2")
    assert handle.answer("GET", "/v1/catalog/nodes")[0] == 200
    assert handle.answer("GET", "/v1/catalog/nodes?dc=dc2")[0] == 500


def test_consul_bad_rules_are_refused(consul):
    consul._need_emulator("fault rules")
    for body in ({"mode": "explode"}, {"mode": "500", "path": "("}, {"mode": "trickle-body", "rate": 0}):
        request = urllib.request.Request(consul.url + "/_emulator/fault", data=json.dumps(body).encode(),
                                         method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 400


# -- keeper ----------------------------------------------------------------------------------


def test_keeper_faults_per_route(keeper):
    keeper.fault("404", path=r"/registry/all$")
    assert keeper.request("GET", "/api/v3/registry/all") == (404, {"message": "Not Found"})
    assert keeper.request("GET", "/api/v3/ping")[0] == 200
    keeper.fault("500", path=r"/ping$")  # a rule fails whatever it matches, /ping included
    status, answer = keeper.request("GET", "/api/v3/ping")
    assert (status, answer["message"]) == (500, "emulated failure")
    keeper.fault("html", path=r"/version$", status=503)
    status, headers, raw = keeper.answer("GET", "/api/v3/version")
    assert status == 503 and headers["Content-Type"] == "text/html"
    keeper.fault("truncated", path=r"/config$")
    status, headers, raw = keeper.answer("GET", "/api/v3/config")
    assert status == 200 and int(headers["Content-Length"]) == len(raw)
    with pytest.raises(ValueError):
        json.loads(raw)
    keeper.fault(None)
    assert keeper.request("GET", "/api/v3/ping")[0] == 200


def test_keeper_trickle_and_hang(keeper):
    keeper.fault("trickle-body", path=r"/registry/all$", rate=50)
    data, elapsed = raw_exchange(keeper.host, keeper.port, get_request("/api/v3/registry/all"))
    body = data.partition(b"\r\n\r\n")[2]
    assert json.loads(body)["totalCount"] == 0
    assert elapsed >= (len(body) - 1) / 50.0 * 0.9
    keeper.fault("hang", path=r"/registry/all$")
    with pytest.raises((socket.timeout, urllib.error.URLError)):
        urllib.request.urlopen(keeper.url + "/api/v3/registry/all", timeout=1)
    assert keeper.request("GET", "/api/v3/ping")[0] == 200
