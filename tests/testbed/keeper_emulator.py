#!/usr/bin/env python3
"""A core-keeper (EdgeX 4.x registry and configuration) emulator for the edgex.sysmgmt test-bed.

No EdgeX image can be pulled on the test machines, so this program answers core-keeper's
REST API with its JSON shapes, status codes and error bodies, as read in edgex-go
(internal/core/keeper: router.go, controller/http/{registry,kv}.go, application/*.go,
registry/registry.go; internal/pkg/infrastructure/postgres/{registry,kv}.go) and
go-mod-core-contracts (dtos/registration.go, dtos/requests/{registration,kvs}.go,
dtos/responses/{registration,kvs}.go, dtos/common/base.go, errors/types.go):

  GET    /api/v3/ping, /api/v3/version
  POST   /api/v3/registry                    201 {serviceName}; 409 when the serviceId exists
  PUT    /api/v3/registry                    204; 404 when the serviceId is unknown
  GET    /api/v3/registry/all?deregistered=  HALT registrations only with deregistered=true
  GET    /api/v3/registry/serviceId/{id}     404 "registration not found by serviceId"
  DELETE /api/v3/registry/serviceId/{id}     204; 404
  GET    /api/v3/kvs/key/{key}?keyOnly=&plaintext=   the key and every key under key/
  PUT    /api/v3/kvs/key/{key}?flatten=
  DELETE /api/v3/kvs/key/{key}?prefixMatch=

Errors are EdgeX BaseResponses: {"apiVersion":"v3","message":"...","statusCode":404}, with
the message keeper sends (its first-level message only). Registrations are health-checked
as keeper does: GET <type>://<host>:<port><path> every interval/2 until UP, then every
interval, 2xx UP, anything else DOWN; HALT registrations are not checked.

keeper's Registration DTO nests the health check under a ``HealthCheck`` object (Go's
encoding/json ignores the ",inline" tag on a named field): interval, path and type sent
inline in the registration are refused with 400, as real keeper does.

Not keeper (test control), under /_emulator/:
  POST /_emulator/fault        {"mode": null|"slow"|"500"|"garbage", "delay": s}
  GET  /_emulator/stats        {"requests": N, "by_path": {...}} (keeper requests only)
  POST /_emulator/stats/reset

Standard library only (Python 3.9+), so it also runs inside the stand-in image.
"""

import argparse
import base64
import json
import os
import posixpath
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from http.server import ThreadingHTTPServer

from emulator_http import EmulatorHandler, RequestStats, Routes

API_VERSION = "v3"
API_BASE = "/api/v3"
KEEPER_VERSION = "4.0.0"
SERVICE_NAME = "core-keeper"
STATUSES = ("UP", "DOWN", "UNKNOWN", "HALT")
# KeyAllowedCharsRegexString of internal/core/keeper/constants, with the dash moved last.
KEY_ALLOWED = re.compile(r"^[a-zA-Z0-9_~;=./-]+$")
KEY_INVALID = "key only allows characters between a to z, A to Z, 0 to 9, or one of -_ ~;=./"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The DTO validator parses intervals with str2duration: Go's units plus d and w.
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
          "d": 86400.0, "w": 604800.0}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class APIError(Exception):
    """An EdgeX error answer: the status code and keeper's first-level message."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message


def now_ms():
    return int(time.time() * 1000)


def go_unix_date(now=None):
    """Go's time.UnixDate, as the common ping answers (same format as the stand-in's)."""
    t = time.gmtime(now)
    return "%s %s %2d %02d:%02d:%02d UTC %d" % (
        WEEKDAYS[t.tm_wday], MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_year)


def parse_go_duration(text):
    """str2duration.ParseDuration: "10s", "1m30s", "500ms", "-1.5h", "1d", "0"; None when it refuses."""
    if not isinstance(text, str) or not text:
        return None
    sign = -1.0 if text[0] == "-" else 1.0
    body = text[1:] if text[0] in "+-" else text
    if body == "0":
        return 0.0
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    return sign * sum(float(n) * _UNITS[u] for n, u in parts)


def parse_go_bool(name, text):
    """strconv.ParseBool as keeper's ParseQueryStringToBool uses it (empty: false)."""
    text = (text or "").strip()
    if text == "":
        return False
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise APIError(400, 'failed to parse querystring %s into bool. Error:strconv.ParseBool: parsing %s: '
                        'invalid syntax' % (name, json.dumps(text)))


def go_field(obj, name, default=None):
    """encoding/json matches object keys to struct fields case-insensitively; the last match wins."""
    value = default
    for key, item in obj.items():
        if key.lower() == name.lower():
            value = item
    return value


def go_json(payload, sort_keys=False):
    """encoding/json output: compact, HTML characters escaped (json.Marshal sorts map keys)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def cast_to_string(value):
    """spf13/cast.ToString for what a JSON value decodes to; anything else (a list) becomes ""."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # strconv.FormatFloat(f, 'f', -1, 64): shortest digits, never an exponent.
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, str):
        return value
    return ""


def b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_body(raw, dto):
    """json.NewDecoder(body).Decode: the first JSON value counts, trailing bytes are ignored."""
    failed = APIError(400, "*requests.%s json decoding failed" % dto)
    text = raw.decode("utf-8", "replace").lstrip()
    try:
        value, _end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        raise failed
    if not isinstance(value, dict):
        raise failed
    return value


# --------------------------------------------------------------------------- state


class State(object):
    """Registrations and keys, as keeper's database holds them; optionally kept in a file so
    that a restarted emulator still knows them, as keeper does with PostgreSQL."""

    def __init__(self, data_file=None, request_timeout=5.0):
        self.lock = threading.RLock()
        self.registrations = {}  # serviceId -> stored registration (flat dict)
        self.kv = {}  # key -> {"value": base64 text, "created": ms, "modified": ms}
        self.runners = {}  # serviceId -> HealthRunner
        self.data_file = data_file
        self.request_timeout = request_timeout
        self.fault = {"mode": None, "delay": 0.0}
        self.stats = RequestStats()
        if data_file and os.path.exists(data_file):
            with open(data_file) as handle:
                saved = json.load(handle)
            self.registrations = saved.get("registrations", {})
            self.kv = saved.get("kv", {})

    def save(self):
        if not self.data_file:
            return
        # Under the lock, so that an older snapshot never replaces a newer one.
        with self.lock:
            tmp = self.data_file + ".tmp"
            with open(tmp, "w") as handle:
                json.dump({"registrations": self.registrations, "kv": self.kv}, handle, sort_keys=True)
            os.replace(tmp, self.data_file)

    # -- registry ------------------------------------------------------------
    def start_checks(self):
        """BootstrapHandler: every registration but the HALT ones gets a health check runner."""
        with self.lock:
            for registration in self.registrations.values():
                if registration["status"] != "HALT":
                    self._run(registration)

    def _run(self, registration):
        self._stop(registration["serviceId"])
        runner = HealthRunner(self, dict(registration))
        self.runners[registration["serviceId"]] = runner
        runner.start()

    def _stop(self, service_id):
        runner = self.runners.pop(service_id, None)
        if runner is not None:
            runner.stopped.set()

    def add(self, registration):
        with self.lock:
            service_id = registration["serviceId"]
            if service_id in self.registrations:
                raise APIError(409, "registry with service id '%s' already exists" % service_id)
            registration["created"] = registration["modified"] = now_ms()
            self.registrations[service_id] = registration
            # AddRegistration starts a runner whatever the status, HALT included.
            self._run(registration)
        self.save()

    def update(self, registration):
        with self.lock:
            service_id = registration["serviceId"]
            old = self.registrations.get(service_id)
            if old is None:
                raise APIError(404, "service id '%s' not found from registry table" % service_id)
            registration["created"] = old["created"]
            registration["modified"] = now_ms()
            self.registrations[service_id] = registration
            self._stop(service_id)
            if registration["status"] != "HALT":
                self._run(registration)
        self.save()

    def delete(self, service_id):
        with self.lock:
            if service_id not in self.registrations:
                raise APIError(404, "service id '%s' not found from registry table" % service_id)
            del self.registrations[service_id]
            self._stop(service_id)
        self.save()

    def set_status(self, runner, status):
        """What the runner's dbClient.UpdateRegistration does, unless the runner was replaced."""
        with self.lock:
            if self.runners.get(runner.service_id) is not runner:
                return False
            current = self.registrations.get(runner.service_id)
            if current is None:
                return False
            current["status"] = status
            current["modified"] = now_ms()
        self.save()
        return True

    def stop_all(self):
        with self.lock:
            for service_id in list(self.runners):
                self._stop(service_id)

    # -- key/value -------------------------------------------------------------
    def kv_select(self, key):
        """KeeperKeys: the key itself and every key below key/ (not key-something)."""
        with self.lock:
            return [(k, dict(self.kv[k])) for k in sorted(self.kv) if k == key or k.startswith(key + "/")]

    def kv_store(self, key, value_text):
        with self.lock:
            stamp = now_ms()
            entry = self.kv.get(key)
            if entry is None:
                self.kv[key] = {"value": b64(value_text), "created": stamp, "modified": stamp}
            else:
                entry["value"] = b64(value_text)
                entry["modified"] = stamp

    def kv_delete(self, key, prefix_match):
        with self.lock:
            exists = key in self.kv
            children = [k for k in sorted(self.kv) if k.startswith(key + "/")]
            deleted = []
            if exists:
                # Keeper deletes the exact key before it looks at the children, so a 409
                # below still leaves it deleted.
                del self.kv[key]
                deleted.append(key)
            if not children:
                if not exists:
                    raise APIError(404, "key '%s' not found" % key)
            elif prefix_match:
                for child in children:
                    del self.kv[child]
                deleted.extend(children)
            else:
                self.save()
                raise APIError(409, "keys having the same prefix %s exist and cannot be deleted" % key)
        self.save()
        return deleted


class HealthRunner(threading.Thread):
    """registry.go's healthCheckRunner: interval/2 until the service is UP, then interval."""

    def __init__(self, state, registration):
        threading.Thread.__init__(self, daemon=True, name="health-%s" % registration["serviceId"])
        self.state = state
        self.registration = registration
        self.service_id = registration["serviceId"]
        self.stopped = threading.Event()

    def url(self):
        r = self.registration
        return "%s://%s:%d%s" % (r["type"], r["host"], r["port"], r["path"])

    def run(self):
        interval = parse_go_duration(self.registration["interval"]) or 0.0
        if interval <= 0:
            return  # keeper's time.NewTicker panics on this; here the service is just never checked
        period = interval / 2
        while not self.stopped.wait(period):
            status = health_check(self.url(), self.state.request_timeout)
            if not self.state.set_status(self, status):
                return
            if status == "UP":
                period = interval


def health_check(url, timeout):
    """keeper's healthCheck(): 2xx is UP; an error or any other status is DOWN."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout) as response:
            return "UP" if 200 <= response.status < 300 else "DOWN"
    except (urllib.error.URLError, OSError, ValueError):
        return "DOWN"


# --------------------------------------------------------------------------- DTOs


def registration_from_request(body):
    """AddRegistrationRequest.UnmarshalJSON + Validate, into the stored (flat) form."""
    failed = APIError(400, "*requests.AddRegistrationRequest json decoding failed")
    api_version = go_field(body, "apiVersion")
    request_id = go_field(body, "requestId")
    dto = go_field(body, "registration")
    if dto is None:
        dto = {}
    if not isinstance(dto, dict) or not isinstance(api_version, (str, type(None))) \
            or not isinstance(request_id, (str, type(None))):
        raise failed
    health = go_field(dto, "healthCheck")
    if health is None:
        health = {}
    if not isinstance(health, dict):
        raise failed
    fields = {
        "serviceId": go_field(dto, "serviceId"), "status": go_field(dto, "status"), "host": go_field(dto, "host"),
        "interval": go_field(health, "interval"), "path": go_field(health, "path"), "type": go_field(health, "type"),
    }
    for name, value in fields.items():
        if not isinstance(value, (str, type(None))):
            raise failed
        fields[name] = value or ""
    port = go_field(dto, "port")
    if port is None:
        port = 0
    if isinstance(port, bool) or not isinstance(port, int):
        raise failed
    # validate:"required" on apiVersion, serviceId, host, port, interval, path, type;
    # requestId "len=0|uuid"; interval "edgex-dto-duration".
    if not api_version or (request_id and not _UUID.match(request_id)):
        raise failed
    if not (fields["serviceId"] and fields["host"] and port and fields["interval"] and fields["path"]
            and fields["type"]) or parse_go_duration(fields["interval"]) is None:
        raise failed
    if fields["status"] not in STATUSES:
        fields["status"] = "UNKNOWN"
    fields["port"] = port
    return fields


def registration_dto(stored):
    """dtos.Registration as keeper encodes it: timestamps promoted, the health check nested."""
    dto = {}
    for stamp in ("created", "modified"):
        if stored.get(stamp):
            dto[stamp] = stored[stamp]
    dto.update({"serviceId": stored["serviceId"], "status": stored["status"], "host": stored["host"],
                "port": stored["port"],
                "HealthCheck": {"interval": stored["interval"], "path": stored["path"], "type": stored["type"]}})
    return dto


def base_response(status, message=None):
    response = {"apiVersion": API_VERSION}
    if message:
        response["message"] = message
    response["statusCode"] = status
    return response


def flatten_into(state, key, value, stored):
    """updateMultiKVSInTx: maps become one key per leaf; empty maps and nulls store nothing."""
    if isinstance(value, dict):
        for inner, element in value.items():
            if isinstance(element, dict) and not element:
                continue
            flatten_into(state, posixpath.normpath(posixpath.join(key, inner)), element, stored)
    elif value is not None:
        state.kv_store(key, cast_to_string(value))
        stored.append(key)


# --------------------------------------------------------------------------- HTTP


def make_handler(state):
    routes = Routes()
    route = routes.route

    class Handler(EmulatorHandler):
        server_version = "echo"

        # -- plumbing ----------------------------------------------------------
        def _send(self, status, payload=None, raw=None):
            data = raw if raw is not None else (b"" if payload is None else (go_json(payload) + "\n").encode())
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Correlation-Id", self.headers.get("X-Correlation-ID") or str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)

        def _dispatch(self):
            self._query()
            state.stats.count(self.route_path)
            with state.lock:
                fault = dict(state.fault)
            try:
                if self.route_path.startswith(API_BASE + "/") and fault["mode"]:
                    if fault["mode"] == "slow":
                        time.sleep(fault["delay"] or 5.0)
                    elif fault["mode"] == "500":
                        self._body()
                        raise APIError(500, "emulated failure")
                    elif fault["mode"] == "garbage":
                        self._body()
                        self._send(200, raw=b"<html><body>502 Bad Gateway</body></html>")
                        return
                fn, found = routes.find(self.command, self.route_path)
                if fn is not None:
                    fn(self, *found)
                elif found:  # echo's own answers for an unknown method or route
                    self._send(405, {"message": "Method Not Allowed"})
                else:
                    self._send(404, {"message": "Not Found"})
            except APIError as exc:
                self._send(exc.status, base_response(exc.status, exc.message))
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch

        # -- common --------------------------------------------------------------
        @route("GET", API_BASE + "/ping")
        def ping(self):
            self._send(200, {"apiVersion": API_VERSION, "timestamp": go_unix_date(), "serviceName": SERVICE_NAME})

        @route("GET", API_BASE + "/version")
        def version(self):
            self._send(200, {"apiVersion": API_VERSION, "version": KEEPER_VERSION, "serviceName": SERVICE_NAME})

        # -- registry ------------------------------------------------------------
        @route("POST", API_BASE + "/registry")
        def register(self):
            registration = registration_from_request(decode_body(self._body(), "AddRegistrationRequest"))
            state.add(registration)
            response = base_response(201)
            response["serviceName"] = registration["serviceId"]
            self._send(201, response)

        @route("PUT", API_BASE + "/registry")
        def update_register(self):
            state.update(registration_from_request(decode_body(self._body(), "AddRegistrationRequest")))
            self._send(204)

        @route("GET", API_BASE + "/registry/all")
        def registrations(self):
            deregistered = parse_go_bool("deregistered", self.q.get("deregistered"))
            with state.lock:
                found = [registration_dto(r) for r in state.registrations.values()
                         if deregistered or r["status"] != "HALT"]
            response = base_response(200)
            response.update({"totalCount": len(found), "registrations": found})
            self._send(200, response)

        @route("GET", API_BASE + "/registry/serviceId/([^/]*)")
        def registration(self, service_id):
            if not service_id:
                raise APIError(400, "serviceId is empty")
            with state.lock:
                stored = state.registrations.get(service_id)
                dto = registration_dto(stored) if stored is not None else None
            if dto is None:
                raise APIError(404, "registration not found by serviceId")
            response = base_response(200)
            response["registration"] = dto
            self._send(200, response)

        @route("DELETE", API_BASE + "/registry/serviceId/([^/]*)")
        def deregister(self, service_id):
            if not service_id:
                raise APIError(400, "serviceId is empty")
            state.delete(service_id)
            self._send(204)

        # -- key/value -----------------------------------------------------------
        @route("GET", API_BASE + "/kvs/key/(.*)")
        def keys(self, key):
            key_only = parse_go_bool("keyOnly", self.q.get("keyOnly"))
            plaintext = parse_go_bool("plaintext", self.q.get("plaintext"))
            if not KEY_ALLOWED.match(key):
                raise APIError(400, KEY_INVALID)
            found = state.kv_select(key)
            if not found:
                raise APIError(404, "no key starting with '%s' found" % key)
            if key_only:
                result = [k for k, _entry in found]
            else:
                result = [{"key": k, "created": e["created"], "modified": e["modified"],
                           "value": base64.b64decode(e["value"]).decode("utf-8", "replace") if plaintext
                           else e["value"]} for k, e in found]
            response = base_response(200)
            response["response"] = result
            self._send(200, response)

        @route("PUT", API_BASE + "/kvs/key/(.*)")
        def add_keys(self, key):
            flatten = parse_go_bool("flatten", self.q.get("flatten"))
            body = decode_body(self._body(), "UpdateKeysRequest")
            value = go_field(body, "value")
            # UpdateKeysRequest.Validate: only the value is checked, apiVersion is not required.
            if value is None or value == {}:
                raise APIError(400, "*requests.UpdateKeysRequest json decoding failed")
            if not KEY_ALLOWED.match(key):
                raise APIError(400, KEY_INVALID)
            stored = []
            if flatten:
                flatten_into(state, key, value, stored)
            else:
                # updateKVS: scalars through cast.ToString, objects and lists as json.Marshal writes them
                text = cast_to_string(value) if isinstance(value, (str, int, float, bool)) else \
                    go_json(value, sort_keys=True)
                state.kv_store(key, text)
                stored.append(key)
            state.save()
            response = base_response(200)
            response["response"] = stored
            self._send(200, response)

        @route("DELETE", API_BASE + "/kvs/key/(.*)")
        def delete_keys(self, key):
            prefix_match = parse_go_bool("prefixMatch", self.q.get("prefixMatch"))
            if not KEY_ALLOWED.match(key):
                raise APIError(400, KEY_INVALID)
            response = base_response(200)
            response["response"] = state.kv_delete(key, prefix_match)
            self._send(200, response)

        # -- emulator control (not keeper) ---------------------------------------
        def _control_body(self):
            raw = self._body()
            try:
                return json.loads(raw.decode("utf-8")) if raw else {}
            except ValueError as exc:
                raise APIError(400, "control body is not JSON: %s" % exc)

        @route("POST", r"/_emulator/fault")
        def control_fault(self):
            body = self._control_body()
            mode = body.get("mode") or None
            if mode not in (None, "slow", "500", "garbage"):
                raise APIError(400, "unknown fault mode %r" % mode)
            with state.lock:
                state.fault = {"mode": mode, "delay": float(body.get("delay") or 0)}
                self._send(200, state.fault)

        @route("GET", r"/_emulator/stats")
        def control_stats(self):
            self._send(200, state.stats.snapshot())

        @route("POST", r"/_emulator/stats/reset")
        def control_stats_reset(self):
            state.stats.reset()
            self._send(200, {"requests": 0})

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(host, port, data_file=None, request_timeout=5.0):
    """Start the emulator in threads; returns (state, server)."""
    state = State(data_file, request_timeout)
    server = Server((host, port), make_handler(state))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    state.start_checks()
    return state, server


def main(argv=None):
    parser = argparse.ArgumentParser(description="core-keeper API emulator (edgex.sysmgmt test-bed)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=59890)
    parser.add_argument("--data-file", help="keep registrations and keys here across restarts (keeper's database)")
    parser.add_argument("--request-timeout", default="5s",
                        help="health check timeout (keeper's Service.RequestTimeout)")
    args = parser.parse_args(argv)
    timeout = parse_go_duration(args.request_timeout)
    if not timeout or timeout <= 0:
        parser.error("--request-timeout wants a positive Go duration, got %r" % args.request_timeout)
    state, server = serve(args.host, args.port, args.data_file, timeout)
    sys.stderr.write("keeper-emulator: listening on %s:%d\n" % (args.host, server.server_address[1]))
    sys.stderr.flush()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    state.stop_all()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
