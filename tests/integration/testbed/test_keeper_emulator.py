"""The core-keeper emulator against what edgex-go's keeper does.

Expected values come from edgex-go (internal/core/keeper controllers, application and
registry; internal/pkg/infrastructure/postgres/{registry,kv}.go) and go-mod-core-contracts
(dtos, errors/types.go codeMapping): status codes, the error messages keeper sends, and
the JSON field names Go's encoding/json writes for its DTOs.
"""

import base64
import re
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import wait_until


class ReusableServer(ThreadingHTTPServer):
    allow_reuse_address = True  # start() binds the port stop() just closed
    daemon_threads = True


class PingServer(object):
    """A local service whose ping a test controls: "ok" answers 200, "fail" 500; stop() closes
    the port and start() opens the same one again."""

    def __init__(self):
        self.mode = "ok"
        self.hits = 0
        self.port = 0
        self.server = None
        self.start()

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                return

            def do_GET(self):  # noqa: N802 (http.server's naming)
                owner.hits += 1
                self.send_response(200 if owner.mode == "ok" else 500)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ReusableServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def ping_server():
    server = PingServer()
    yield server
    server.stop()


def body(service_id="core-data", host="127.0.0.1", port=59880, interval="10s", status=None, **extra):
    registration = {"serviceId": service_id, "host": host, "port": port,
                    "healthCheck": {"interval": interval, "path": "/api/v3/ping", "type": "http"}}
    if status is not None:
        registration["status"] = status
    registration.update(extra)
    return {"apiVersion": "v3", "registration": registration}


def edgex_error(answer, status):
    """keeper's BaseResponse for an error: exactly apiVersion, message and statusCode."""
    assert set(answer) == {"apiVersion", "message", "statusCode"}, answer
    assert answer["apiVersion"] == "v3" and answer["statusCode"] == status
    return answer["message"]


def status_of(keeper, service_id):
    return keeper.request("GET", "/api/v3/registry/serviceId/%s" % service_id)[1]["registration"]["status"]


# -- common ------------------------------------------------------------------------------


def test_ping_and_version(keeper):
    status, answer = keeper.request("GET", "/api/v3/ping")
    assert status == 200
    assert answer["apiVersion"] == "v3" and answer["serviceName"] == "core-keeper"
    assert re.match(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d UTC \d{4}$",
                    answer["timestamp"]), answer["timestamp"]  # Go's time.UnixDate
    status, answer = keeper.request("GET", "/api/v3/version")
    assert (status, answer["serviceName"]) == (200, "core-keeper")


def test_unknown_route_and_method_answer_like_echo(keeper):
    assert keeper.request("GET", "/api/v3/nothing") == (404, {"message": "Not Found"})
    assert keeper.request("PATCH", "/api/v3/registry") == (405, {"message": "Method Not Allowed"})
    assert keeper.request("GET", "/api/v3/registry") == (405, {"message": "Method Not Allowed"})


# -- registry ------------------------------------------------------------------------------


def test_register_answers_201_with_service_name_then_409(keeper):
    assert keeper.request("POST", "/api/v3/registry", body()) == (
        201, {"apiVersion": "v3", "statusCode": 201, "serviceName": "core-data"})
    status, answer = keeper.request("POST", "/api/v3/registry", body())
    assert status == 409
    assert edgex_error(answer, 409) == "registry with service id 'core-data' already exists"


def test_registration_shape_nests_the_health_check_as_go_encodes_it(keeper):
    keeper.request("POST", "/api/v3/registry", body(status="UP"))
    status, answer = keeper.request("GET", "/api/v3/registry/serviceId/core-data")
    assert status == 200
    assert set(answer) == {"apiVersion", "statusCode", "registration"}
    registration = answer["registration"]
    # DBTimestamp is embedded (promoted); HealthCheck is a named field, so encoding/json nests it
    # under its Go name: the ",inline" tag option does not exist there.
    assert list(registration) == ["created", "modified", "serviceId", "status", "host", "port", "HealthCheck"]
    assert registration["HealthCheck"] == {"interval": "10s", "path": "/api/v3/ping", "type": "http"}
    assert registration["status"] == "UP"
    assert registration["created"] == registration["modified"] > 1600000000000  # milliseconds


@pytest.mark.parametrize("given, stored", [(None, "UNKNOWN"), ("up", "UNKNOWN"), ("BOGUS", "UNKNOWN"),
                                           ("DOWN", "DOWN"), ("HALT", "HALT")])
def test_status_outside_the_four_becomes_unknown(keeper, given, stored):
    keeper.request("POST", "/api/v3/registry", body(status=given))
    assert status_of(keeper, "core-data") == stored


def test_json_keys_match_case_insensitively_as_in_go(keeper):
    registration = {"ServiceID": "core-data", "HOST": "h", "Port": 1,
                    "HealthCheck": {"Interval": "1s", "PATH": "/p", "Type": "http"}}
    request = {"APIVERSION": "v3", "Registration": registration}
    assert keeper.request("POST", "/api/v3/registry", request)[0] == 201


@pytest.mark.parametrize("request_body", [
    b"", b"not json", b"[]",
    {"registration": body()["registration"]},  # apiVersion is required
    body(service_id=""), body(host=""), body(port=0), body(port="59880"), body(port=59880.5),
    body(interval=""), body(interval="10"), body(interval="soon"),
    {"apiVersion": "v3", "requestId": "not-a-uuid", "registration": body()["registration"]},
    {"apiVersion": "v3", "registration": {"serviceId": "x", "host": "h", "port": 1, "healthCheck": {
        "interval": "1s", "path": "", "type": "http"}}},
])
def test_invalid_registration_is_400_with_keepers_message(keeper, request_body):
    status, answer = keeper.request("POST", "/api/v3/registry", request_body)
    assert status == 400
    # keeper's JsonDtoReader fails in UnmarshalJSON (which validates) and sends its first-level message
    assert edgex_error(answer, 400) == "*requests.AddRegistrationRequest json decoding failed"
    assert keeper.request("GET", "/api/v3/registry/all")[1]["totalCount"] == 0


def test_uuid_request_id_and_day_intervals_are_accepted(keeper):
    request = body(interval="1d")
    request["requestId"] = "e6e8a2f4-eb14-4649-9e2b-175247911369"
    assert keeper.request("POST", "/api/v3/registry", request)[0] == 201


def test_update_is_204_without_body_and_404_when_unknown(keeper):
    keeper.request("POST", "/api/v3/registry", body())
    created = keeper.request("GET", "/api/v3/registry/serviceId/core-data")[1]["registration"]["created"]
    assert keeper.request("PUT", "/api/v3/registry", body(port=59999)) == (204, None)
    registration = keeper.request("GET", "/api/v3/registry/serviceId/core-data")[1]["registration"]
    assert (registration["port"], registration["created"]) == (59999, created)
    assert registration["modified"] >= created
    status, answer = keeper.request("PUT", "/api/v3/registry", body(service_id="core-metadata"))
    assert edgex_error(answer, 404) == "service id 'core-metadata' not found from registry table"


def test_get_unknown_is_404_and_delete_removes(keeper):
    status, answer = keeper.request("GET", "/api/v3/registry/serviceId/core-data")
    assert edgex_error(answer, 404) == "registration not found by serviceId"
    keeper.request("POST", "/api/v3/registry", body())
    assert keeper.request("DELETE", "/api/v3/registry/serviceId/core-data") == (204, None)
    assert keeper.request("GET", "/api/v3/registry/serviceId/core-data")[0] == 404
    status, answer = keeper.request("DELETE", "/api/v3/registry/serviceId/core-data")
    assert edgex_error(answer, 404) == "service id 'core-data' not found from registry table"


def test_all_hides_halt_unless_deregistered_true(keeper):
    keeper.request("POST", "/api/v3/registry", body("core-data"))
    keeper.request("POST", "/api/v3/registry", body("core-command", port=59882))
    keeper.request("PUT", "/api/v3/registry", body("core-command", port=59882, status="HALT"))

    status, answer = keeper.request("GET", "/api/v3/registry/all")
    assert status == 200 and set(answer) == {"apiVersion", "statusCode", "totalCount", "registrations"}
    assert [r["serviceId"] for r in answer["registrations"]] == ["core-data"]
    assert answer["totalCount"] == 1
    assert keeper.request("GET", "/api/v3/registry/all?deregistered=false")[1]["totalCount"] == 1
    everything = keeper.request("GET", "/api/v3/registry/all?deregistered=true")[1]
    assert sorted(r["serviceId"] for r in everything["registrations"]) == ["core-command", "core-data"]
    # a HALT registration is still found by id, as go-mod-registry's IsServiceAvailable expects
    assert status_of(keeper, "core-command") == "HALT"
    status, answer = keeper.request("GET", "/api/v3/registry/all?deregistered=maybe")
    assert edgex_error(answer, 400) == ('failed to parse querystring deregistered into bool. '
                                        'Error:strconv.ParseBool: parsing "maybe": invalid syntax')


def test_empty_registry_lists_an_empty_array(keeper):
    assert keeper.request("GET", "/api/v3/registry/all") == (
        200, {"apiVersion": "v3", "statusCode": 200, "totalCount": 0, "registrations": []})


def test_an_inline_health_check_is_refused_as_real_keeper_does(keeper):
    inline = {"apiVersion": "v3", "registration": {"serviceId": "core-data", "host": "127.0.0.1", "port": 1,
                                                   "status": "UP", "interval": "1s", "path": "/api/v3/ping",
                                                   "type": "http"}}
    answer = keeper.request("POST", "/api/v3/registry", inline)[1]
    assert edgex_error(answer, 400) == "*requests.AddRegistrationRequest json decoding failed"
    assert keeper.request("POST", "/api/v3/registry", body())[0] == 201


def test_registrations_and_keys_survive_a_restart(keeper):
    keeper.request("POST", "/api/v3/registry", body())
    keeper.request("PUT", "/api/v3/kvs/key/edgex/v4/core-data/Writable/LogLevel", {"value": "DEBUG"})
    keeper.stop()
    keeper.start()
    assert keeper.request("GET", "/api/v3/registry/serviceId/core-data")[0] == 200
    answer = keeper.request("GET", "/api/v3/kvs/key/edgex/v4/core-data/Writable/LogLevel?plaintext=true")[1]
    assert answer["response"][0]["value"] == "DEBUG"


# -- health checks -------------------------------------------------------------------------


def test_health_check_flips_up_down_up(keeper, ping_server):
    keeper.request("POST", "/api/v3/registry", body(port=ping_server.port, interval="500ms"))
    assert status_of(keeper, "core-data") == "UNKNOWN"
    wait_until(lambda: status_of(keeper, "core-data") == "UP", 5, what="UP after the first check")
    assert ping_server.hits >= 1

    ping_server.mode = "fail"  # a 500 is DOWN
    wait_until(lambda: status_of(keeper, "core-data") == "DOWN", 5, what="DOWN on a 500")
    ping_server.mode = "ok"
    wait_until(lambda: status_of(keeper, "core-data") == "UP", 5, what="UP again")

    ping_server.stop()  # refused is DOWN
    wait_until(lambda: status_of(keeper, "core-data") == "DOWN", 5, what="DOWN when nothing answers")
    ping_server.start()
    wait_until(lambda: status_of(keeper, "core-data") == "UP", 5, what="UP when it answers again")


def test_halt_registrations_are_not_checked(keeper, ping_server):
    keeper.request("POST", "/api/v3/registry", body(port=ping_server.port, interval="200ms"))
    wait_until(lambda: ping_server.hits >= 1, 5, what="the first check")
    assert keeper.request("PUT", "/api/v3/registry",
                          body(port=ping_server.port, interval="200ms", status="HALT"))[0] == 204
    hits = ping_server.hits
    time.sleep(1.0)
    assert ping_server.hits <= hits + 1  # at most a check already in flight
    assert status_of(keeper, "core-data") == "HALT"
    assert keeper.request("GET", "/api/v3/registry/all")[1]["totalCount"] == 0


def test_deleted_registration_is_no_longer_checked(keeper, ping_server):
    keeper.request("POST", "/api/v3/registry", body(port=ping_server.port, interval="200ms"))
    wait_until(lambda: ping_server.hits >= 1, 5, what="the first check")
    keeper.request("DELETE", "/api/v3/registry/serviceId/core-data")
    hits = ping_server.hits
    time.sleep(1.0)
    assert ping_server.hits <= hits + 1


# -- key/value -------------------------------------------------------------------------------


def kv(keeper, method, key, query="", value=None):
    payload = None if value is None else {"apiVersion": "v3", "value": value}
    return keeper.request(method, "/api/v3/kvs/key/%s%s" % (key, query), payload)


def test_put_and_get_one_key_base64_by_default(keeper):
    assert kv(keeper, "PUT", "edgex/v4/core-data/Writable/LogLevel", value="INFO") == (
        200, {"apiVersion": "v3", "statusCode": 200, "response": ["edgex/v4/core-data/Writable/LogLevel"]})
    status, answer = kv(keeper, "GET", "edgex/v4/core-data/Writable/LogLevel")
    assert status == 200 and set(answer) == {"apiVersion", "statusCode", "response"}
    entry = answer["response"][0]
    assert list(entry) == ["key", "created", "modified", "value"]
    assert entry["value"] == base64.b64encode(b"INFO").decode()
    assert kv(keeper, "GET", "edgex/v4/core-data/Writable/LogLevel", "?plaintext=true")[1]["response"][0][
        "value"] == "INFO"


def test_get_returns_the_key_and_keys_below_it_not_siblings_by_prefix(keeper):
    for key in ("edgex/v4/core-data", "edgex/v4/core-data/A", "edgex/v4/core-data/B/C", "edgex/v4/core-data-x"):
        kv(keeper, "PUT", key, value="v")
    answer = kv(keeper, "GET", "edgex/v4/core-data", "?keyOnly=true")[1]
    assert answer["response"] == ["edgex/v4/core-data", "edgex/v4/core-data/A", "edgex/v4/core-data/B/C"]
    status, answer = kv(keeper, "GET", "edgex/v4/nothing")
    assert edgex_error(answer, 404) == "no key starting with 'edgex/v4/nothing' found"


def test_put_scalars_and_objects_as_keeper_stores_them(keeper):
    kv(keeper, "PUT", "k/int", value=25000)
    kv(keeper, "PUT", "k/bool", value=True)
    kv(keeper, "PUT", "k/float", value=7.25)
    kv(keeper, "PUT", "k/obj", value={"b": 1, "a": "<x>"})
    values = {e["key"]: e["value"] for e in kv(keeper, "GET", "k", "?plaintext=true")[1]["response"]}
    assert values == {"k/int": "25000", "k/bool": "true", "k/float": "7.25",
                      "k/obj": '{"a":"\\u003cx\\u003e","b":1}'}


def test_put_flatten_stores_one_key_per_leaf(keeper):
    status, answer = kv(keeper, "PUT", "edgex/v4/core-data", "?flatten=true", {
        "MaxEventSize": 25000, "Writable": {"LogLevel": "INFO", "PersistData": True, "Empty": {}},
        "Labels": ["a", "b"]})
    assert status == 200
    assert sorted(answer["response"]) == ["edgex/v4/core-data/Labels", "edgex/v4/core-data/MaxEventSize",
                                          "edgex/v4/core-data/Writable/LogLevel",
                                          "edgex/v4/core-data/Writable/PersistData"]
    values = {e["key"]: e["value"] for e in kv(keeper, "GET", "edgex/v4/core-data", "?plaintext=true")[1]["response"]}
    # cast.ToString of a list is "" (cast cannot convert it): keeper really stores that
    assert values["edgex/v4/core-data/Labels"] == ""
    assert values["edgex/v4/core-data/Writable/PersistData"] == "true"


@pytest.mark.parametrize("request_body", [{"apiVersion": "v3"}, {"apiVersion": "v3", "value": None},
                                          {"apiVersion": "v3", "value": {}}, b"nope"])
def test_put_without_a_value_is_400(keeper, request_body):
    status, answer = keeper.request("PUT", "/api/v3/kvs/key/a/b", request_body)
    assert edgex_error(answer, 400) == "*requests.UpdateKeysRequest json decoding failed"


def test_put_needs_no_api_version(keeper):
    assert keeper.request("PUT", "/api/v3/kvs/key/a/b", {"value": "x"})[0] == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_keys_with_other_characters_are_400(keeper, method):
    status, answer = kv(keeper, method, "edgex/v4/core:data", value="x" if method == "PUT" else None)
    assert edgex_error(answer, 400) == "key only allows characters between a to z, A to Z, 0 to 9, or one of -_ ~;=./"


def test_delete_key_prefix_match_and_conflict(keeper):
    for key in ("app", "app/a", "app/b"):
        kv(keeper, "PUT", key, value="v")
    status, answer = kv(keeper, "DELETE", "app")
    assert edgex_error(answer, 409) == "keys having the same prefix app exist and cannot be deleted"
    # keeper deleted the exact key before refusing: the children are left
    assert kv(keeper, "GET", "app", "?keyOnly=true")[1]["response"] == ["app/a", "app/b"]
    assert kv(keeper, "DELETE", "app", "?prefixMatch=true") == (
        200, {"apiVersion": "v3", "statusCode": 200, "response": ["app/a", "app/b"]})
    status, answer = kv(keeper, "DELETE", "app")
    assert edgex_error(answer, 404) == "key 'app' not found"
    kv(keeper, "PUT", "single", value="v")
    assert kv(keeper, "DELETE", "single")[1]["response"] == ["single"]


# -- emulator control --------------------------------------------------------------------------


def test_faults_and_stats(keeper):
    keeper.reset_stats()
    keeper.request("GET", "/api/v3/ping")
    keeper.request("GET", "/api/v3/registry/all")
    stats = keeper.stats()
    assert stats["requests"] == 2 and stats["by_path"]["/api/v3/ping"] == 1

    keeper.fault("500")
    status, answer = keeper.request("GET", "/api/v3/registry/all")
    assert edgex_error(answer, 500) == "emulated failure"
    keeper.fault("garbage")
    with urllib.request.urlopen(keeper.url + "/api/v3/registry/all", timeout=5) as response:
        assert response.status == 200 and response.read().startswith(b"<html>")
    keeper.fault("slow", 0.6)
    started = time.time()
    assert keeper.request("GET", "/api/v3/ping")[0] == 200
    assert time.time() - started >= 0.6
    keeper.fault(None)
    assert keeper.request("GET", "/api/v3/ping")[0] == 200
    assert keeper.reset_stats() == {"requests": 0}


# -- the stand-in ------------------------------------------------------------------------------


def test_standin_registers_is_checked_and_halts_on_sigterm(keeper, local_standin):
    port = free_port()
    standin = local_standin("core-data", port, registry="keeper", registry_port=keeper.port,
                            check_interval="500ms").wait()
    wait_until(lambda: keeper.request("GET", "/api/v3/registry/serviceId/core-data")[0] == 200, 10,
               what="the stand-in's registration")
    registration = keeper.request("GET", "/api/v3/registry/serviceId/core-data")[1]["registration"]
    assert (registration["host"], registration["port"]) == ("127.0.0.1", port)
    assert registration["HealthCheck"] == {"interval": "500ms", "path": "/api/v3/ping", "type": "http"}
    wait_until(lambda: status_of(keeper, "core-data") == "UP", 5, what="keeper's check of the stand-in")
    assert standin.stop() == 0
    assert status_of(keeper, "core-data") == "HALT"
    assert keeper.request("GET", "/api/v3/registry/all")[1]["totalCount"] == 0
