"""The core-keeper emulator against what edgex-go's keeper does.

Expected values come from edgex-go (internal/core/keeper controllers, application and
registry; internal/pkg/infrastructure/postgres/{registry,kv}.go) and go-mod-core-contracts
(dtos, errors/types.go codeMapping): status codes, the error messages keeper sends, and
the JSON field names Go's encoding/json writes for its DTOs.
"""

import base64
import json
import os
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


REGISTRATION = "AddRegistrationRequest.Registration."


@pytest.mark.parametrize("request_body, status, message", [
    # json.Decoder errors, wrapped without a kind by keeper's JsonDtoReader: 500, Go's own words
    (b"", 500, "EOF"),
    (b"  \n", 500, "EOF"),
    (b'{"apiVersion":"v3","registration":{', 500, "unexpected EOF"),
    (b"not json", 500, "invalid character 'o' in literal null (expecting 'u')"),
    (b'{"apiVersion":"v3",}', 500, "invalid character '}' looking for beginning of object key string"),
    (b'{"apiVersion" "v3"}', 500, "invalid character '\"' after object key"),
    (b'{"a":1 "b":2}', 500, "invalid character '\"' after object key:value pair"),
    (b"[1,]", 500, "invalid character ']' looking for beginning of value"),
    (b'{"a":-x}', 500, "invalid character 'x' in numeric literal"),
    # json.Unmarshal into the DTO refused a type: UnmarshalJSON's 400
    (b"[]", 400, "Failed to unmarshal request body as JSON."),
    (b"5", 400, "Failed to unmarshal request body as JSON."),
    (body(port="59880"), 400, "Failed to unmarshal request body as JSON."),
    (body(port=59880.5), 400, "Failed to unmarshal request body as JSON."),
    ({"apiVersion": 3, "registration": body()["registration"]}, 400, "Failed to unmarshal request body as JSON."),
    (body(healthCheck="10s"), 400, "Failed to unmarshal request body as JSON."),
    # Validate (go-playground validator via common.Validate): 400 naming the fields
    ({"registration": body()["registration"]}, 400,
     "AddRegistrationRequest.BaseRequest.Versionable.ApiVersion field is required"),
    (body(service_id=""), 400, REGISTRATION + "ServiceId field is required"),
    (body(host=""), 400, REGISTRATION + "Host field is required"),
    (body(port=0), 400, REGISTRATION + "Port field is required"),
    (body(interval=""), 400, REGISTRATION + "HealthCheck.Interval field is required"),
    (body(interval="10"), 400, REGISTRATION + "HealthCheck.Interval field should follows the ISO 8601 "
                                              "Durations format. Eg,100ms, 24h"),
    ({"apiVersion": "v3", "requestId": "not-a-uuid", "registration": body()["registration"]}, 400,
     "AddRegistrationRequest.BaseRequest.RequestId field validation failed on the len=0|uuid tag"),
    ({"apiVersion": "v3", "registration": {"serviceId": "x", "host": "h", "port": 1, "healthCheck": {
        "interval": "1s", "path": "", "type": "http"}}}, 400, REGISTRATION + "HealthCheck.Path field is required"),
    (b"null", 400, "; ".join(["AddRegistrationRequest.BaseRequest.Versionable.ApiVersion field is required"] + [
        REGISTRATION + f + " field is required"
        for f in ("ServiceId", "Host", "Port", "HealthCheck.Interval", "HealthCheck.Path", "HealthCheck.Type")])),
])
def test_invalid_registrations_fail_as_keeper_fails_them(keeper, request_body, status, message):
    for method in ("POST", "PUT"):
        answer = keeper.request(method, "/api/v3/registry", request_body)
        assert answer[0] == status, (method, answer)
        assert edgex_error(answer[1], status) == message, method
    assert keeper.request("GET", "/api/v3/registry/all")[1]["totalCount"] == 0


def test_a_missing_interval_is_answered_word_for_word_as_real_keeper_did(keeper):
    """tests/testbed/data/keeper/registration_400.json: keeper v4.0's answer, from a real log."""
    sample_path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "testbed", "data", "keeper", "registration_400.json")
    with open(sample_path, "rb") as handle:
        sample = handle.read().strip()
    request = body()
    request["registration"]["healthCheck"].pop("interval")
    status, _headers, raw = keeper.answer("POST", "/api/v3/registry", request)
    assert (status, raw) == (400, sample + b"\n")


def test_only_the_first_json_value_of_a_body_counts(keeper):
    raw = json.dumps(body()).encode() + b" trailing garbage {"
    assert keeper.request("POST", "/api/v3/registry", raw)[0] == 201


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


def test_an_inline_health_check_fails_validation_as_in_real_keeper(keeper):
    inline = {"apiVersion": "v3", "registration": {"serviceId": "core-data", "host": "127.0.0.1", "port": 1,
                                                   "status": "UP", "interval": "1s", "path": "/api/v3/ping",
                                                   "type": "http"}}
    answer = keeper.request("POST", "/api/v3/registry", inline)[1]
    assert edgex_error(answer, 400) == "; ".join(
        REGISTRATION + "HealthCheck.%s field is required" % f for f in ("Interval", "Path", "Type"))
    assert keeper.request("POST", "/api/v3/registry", body())[0] == 201


@pytest.mark.parametrize("key", ["HealthCheck", "healthCheck", "HEALTHCHECK"])
def test_the_health_check_is_read_under_any_casing_and_written_as_HealthCheck(keeper, key):
    request = body()
    request["registration"][key] = request["registration"].pop("healthCheck")
    assert keeper.request("POST", "/api/v3/registry", request)[0] == 201
    registration = keeper.request("GET", "/api/v3/registry/serviceId/core-data")[1]["registration"]
    assert "HealthCheck" in registration and "healthCheck" not in registration


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
    # models.KVS: key, DBTimestamp's untagged Created/Modified (Go field names), value
    assert list(entry) == ["key", "Created", "Modified", "value"]
    assert entry["Created"] == entry["Modified"] > 1600000000000
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


@pytest.mark.parametrize("request_body, status, message", [
    ({"apiVersion": "v3"}, 400, "the value field is undefined"),
    ({"apiVersion": "v3", "value": None}, 400, "the value field is undefined"),
    ({"apiVersion": "v3", "value": {}}, 400, "the value field is an empty object"),
    ({"apiVersion": 3, "value": "x"}, 400, "Failed to unmarshal request body as JSON."),
    (b"[]", 400, "Failed to unmarshal request body as JSON."),
    (b"nope", 500, "invalid character 'o' in literal null (expecting 'u')"),
    (b"", 500, "EOF"),
    (b'{"value":"x', 500, "unexpected EOF"),
])
def test_put_with_a_bad_body_fails_as_keeper_fails_it(keeper, request_body, status, message):
    answer = keeper.request("PUT", "/api/v3/kvs/key/a/b", request_body)
    assert answer[0] == status
    assert edgex_error(answer[1], status) == message


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


# -- the common API, secure mode, the framework's own answers ------------------------------------


def test_config_and_version_answer_200_with_keepers_configuration(keeper):
    status, answer = keeper.request("GET", "/api/v3/config")
    assert status == 200 and set(answer) == {"apiVersion", "config", "serviceName"}
    assert answer["serviceName"] == "core-keeper"
    # keeper's ConfigurationStruct: Writable, MessageBus, Clients, Database, Service
    assert set(answer["config"]) == {"Writable", "MessageBus", "Clients", "Database", "Service"}
    assert answer["config"]["Writable"]["LogLevel"] == "INFO"


def test_secret_without_a_secret_store_is_500_and_a_bad_body_400(keeper):
    secret = {"apiVersion": "v3", "secretName": "mqtt", "secretData": [{"key": "username", "value": "u"}]}
    assert keeper.request("POST", "/api/v3/secret", secret) == (
        500, {"apiVersion": "v3", "message": "adding secret failed", "statusCode": 500})
    for bad in (b"", b"{", {"apiVersion": "v3", "secretName": "mqtt"}, {"secretName": "x", "secretData": []}):
        assert keeper.request("POST", "/api/v3/secret", bad) == (
            400, {"apiVersion": "v3", "message": "JSON decode failed", "statusCode": 400})


def test_secure_mode_wants_a_bearer_token_except_for_ping(keeper_emulator):
    secure = keeper_emulator(tokens=["jwt-for-tests"])
    unauthorized = (401, {"message": "Unauthorized"})
    for method, path, request_body in (("GET", "/api/v3/version", None), ("GET", "/api/v3/config", None),
                                       ("GET", "/api/v3/registry/all", None), ("POST", "/api/v3/registry", body()),
                                       ("GET", "/api/v3/registry/serviceId/core-data", None),
                                       ("GET", "/api/v3/kvs/key/edgex/v4", None),
                                       ("POST", "/api/v3/secret", {"apiVersion": "v3"})):
        assert secure.request(method, path, request_body, token="") == unauthorized, path
        assert secure.request(method, path, request_body, token="not-a-valid-jwt") == unauthorized, path
        assert secure.request(method, path, request_body, token="",
                              headers={"Authorization": "Basic jwt-for-tests"}) == unauthorized, path
    status, headers, _raw = secure.answer("GET", "/api/v3/registry/all", token="")
    assert "X-Correlation-Id" not in headers  # echo's own error
    assert secure.request("GET", "/api/v3/ping", token="")[0] == 200
    assert secure.request("POST", "/api/v3/registry", body())[0] == 201
    assert secure.request("GET", "/api/v3/registry/all")[1]["totalCount"] == 1
    secret = {"apiVersion": "v3", "secretName": "mqtt", "secretData": [{"key": "username", "value": "u"}]}
    assert secure.request("POST", "/api/v3/secret", secret) == (201, {"apiVersion": "v3", "statusCode": 201})
    # unknown routes stay 404 whatever the token: routing comes before authentication
    assert secure.request("GET", "/api/v3/nothing", token="") == (404, {"message": "Not Found"})


def test_a_token_added_at_run_time_turns_secure_mode_on(keeper):
    assert keeper.request("GET", "/api/v3/registry/all")[0] == 200
    token = keeper.add_token("late-jwt")
    assert keeper.request("GET", "/api/v3/registry/all")[0] == 401
    assert keeper.request("GET", "/api/v3/registry/all", token=token)[0] == 200


def test_database_down_fails_the_database_routes_only(keeper):
    keeper.request("POST", "/api/v3/registry", body())
    keeper.fault("500")
    for method, path in (("GET", "/api/v3/registry/all"), ("GET", "/api/v3/registry/serviceId/core-data"),
                         ("GET", "/api/v3/kvs/key/edgex"), ("DELETE", "/api/v3/registry/serviceId/core-data")):
        status, answer = keeper.request(method, path)
        assert edgex_error(answer, 500) == "emulated failure", path
    assert keeper.request("GET", "/api/v3/ping")[0] == 200  # keeper still answers ping
    assert keeper.request("GET", "/api/v3/version")[0] == 200
    assert keeper.request("GET", "/api/v3/config")[0] == 200
    # a body keeper cannot read fails before the database is touched
    assert keeper.request("POST", "/api/v3/registry", b"")[0] == 500
    assert keeper.request("POST", "/api/v3/registry", body(port=0))[0] == 400
    keeper.fault(None)
    assert keeper.request("GET", "/api/v3/registry/all")[1]["totalCount"] == 1


def test_empty_ids_and_keys_are_the_frameworks_404(keeper):
    for method, path in (("GET", "/api/v3/registry/serviceId/"), ("DELETE", "/api/v3/registry/serviceId/"),
                         ("GET", "/api/v3/kvs/key/"), ("PUT", "/api/v3/kvs/key/"), ("DELETE", "/api/v3/kvs/key/")):
        status, headers, raw = keeper.answer(method, path, {"value": "x"} if method == "PUT" else None)
        assert (status, json.loads(raw)) == (404, {"message": "Not Found"}), path
        assert "X-Correlation-Id" not in headers


def test_a_service_id_with_a_slash_reaches_keeper_and_is_not_found_there(keeper):
    for path in ("/api/v3/registry/serviceId/a/b", "/api/v3/registry/serviceId/a%2Fb"):
        status, headers, raw = keeper.answer("GET", path)
        assert status == 404 and edgex_error(json.loads(raw), 404) == "registration not found by serviceId"
        assert headers["X-Correlation-Id"]


def test_keys_with_slashes_work_escaped_or_not(keeper):
    assert kv(keeper, "PUT", "edgex%2Fv4%2Fcore-data%2FWritable%2FLogLevel", value="DEBUG")[0] == 200
    answer = kv(keeper, "GET", "edgex/v4/core-data/Writable/LogLevel", "?plaintext=true")[1]
    assert answer["response"][0]["key"] == "edgex/v4/core-data/Writable/LogLevel"
    assert answer["response"][0]["value"] == "DEBUG"


def test_headers_as_keeper_and_echo_send_them(keeper):
    status, headers, raw = keeper.answer("GET", "/api/v3/registry/all", headers={"X-Correlation-ID": "abc-123"})
    assert status == 200 and raw.endswith(b"\n")  # json.Encoder's newline
    assert headers["X-Correlation-Id"] == "abc-123" and headers["Content-Type"] == "application/json"
    assert "Server" not in headers and headers["Date"]
    status, headers, _raw = keeper.answer("GET", "/api/v3/registry/all")
    assert len(headers["X-Correlation-Id"]) == 36  # a new UUID when the caller sent none
    status, headers, raw = keeper.answer("GET", "/api/v3/ping")
    assert not raw.endswith(b"\n")  # the common API uses json.Marshal
    status, headers, raw = keeper.answer("GET", "/api/v3/registry")
    assert (status, json.loads(raw)) == (405, {"message": "Method Not Allowed"})
    assert headers["Allow"] == "OPTIONS, POST, PUT" and "X-Correlation-Id" not in headers
    status, headers, _raw = keeper.answer("PATCH", "/api/v3/kvs/key/a")
    assert status == 405 and headers["Allow"] == "OPTIONS, DELETE, GET, PUT"
    status, headers, _raw = keeper.answer("HEAD", "/api/v3/ping")
    assert status == 405 and headers["Allow"] == "OPTIONS, GET"  # echo v4 routes no HEAD by itself
    status, headers, raw = keeper.answer("OPTIONS", "/api/v3/registry/all")
    assert (status, raw, headers["Allow"]) == (204, b"", "OPTIONS, GET")
