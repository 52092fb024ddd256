#!/usr/bin/env python3
"""A core-keeper (EdgeX 4.x registry and configuration) emulator for the edgex.sysmgmt test-bed.

No EdgeX image can be pulled on the test machines, so this program answers core-keeper's
REST API with its JSON shapes, status codes, error bodies and headers, as read in edgex-go
(internal/core/keeper: router.go, controller/http/{registry,kv}.go, application/*.go,
registry/registry.go, utils/*.go; internal/io/reader.go; internal/pkg/infrastructure/postgres/
{registry,kv}.go), go-mod-core-contracts (dtos/registration.go, dtos/requests/{registration,
kvs}.go, dtos/common/*.go, common/validator.go, errors/types.go, models/kvs.go), go-mod-bootstrap
(controller/commonapi.go, handlers/auth_middleware.go) and labstack/echo (router, errors):

  GET    /api/v3/ping                        never needs a token (and answers with the database down)
  GET    /api/v3/version, /api/v3/config
  POST   /api/v3/secret                      201; 500 "adding secret failed" without a secret store
  POST   /api/v3/registry                    201 {serviceName}; 409 when the serviceId exists
  PUT    /api/v3/registry                    204; 404 when the serviceId is unknown
  GET    /api/v3/registry/all?deregistered=  HALT registrations only with deregistered=true
  GET    /api/v3/registry/serviceId/{id}     404 "registration not found by serviceId"
  DELETE /api/v3/registry/serviceId/{id}     204; 404
  GET    /api/v3/kvs/key/{key}?keyOnly=&plaintext=   the key and every key under key/
  PUT    /api/v3/kvs/key/{key}?flatten=
  DELETE /api/v3/kvs/key/{key}?prefixMatch=

{id} and {key} are echo's last-segment parameters: they take the rest of the path, slashes
included (keeper's own clients send them %2F-escaped; both work), and cannot be empty (an
empty one is echo's 404). Errors keeper writes are EdgeX BaseResponses
{"apiVersion":"v3","message":...,"statusCode":N} with an X-Correlation-Id; echo's own (404,
405 with Allow, 401 in secure mode) are {"message":...} without it. A body is read as
json.NewDecoder does: a syntax error or an empty body is a 500 with Go's decoder message
("unexpected EOF", "EOF", "invalid character ..."), a type mismatch a 400 "Failed to unmarshal
request body as JSON.", a failed validation a 400 naming the fields.

Registrations are health-checked as keeper does: GET <type>://<host>:<port><path> every
interval/2 until UP, then every interval, 2xx UP, anything else DOWN; HALT registrations are
not checked. keeper's Registration DTO nests the health check under ``HealthCheck`` (Go's
encoding/json ignores the ",inline" option of a named field; any casing of the key is read):
interval, path and type sent inline in the registration fail validation, as in real keeper.

Not keeper (test control), under /_emulator/:
  POST /_emulator/fault        {"mode": M|null, "path": regex, "method", "delay", "rate", "status",
                                "times"}  (modes: emulator_http.FAULT_MODES; without "path" the
                                global fault, whose "500" is the database being down)
  POST /_emulator/token        {"token": "..."} -> another JWT secure mode accepts
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

from emulator_http import (EmulatorHandler, FaultError, FaultRules, RequestStats, Routes, Server, go_json,
                           tls_server_context)

API_VERSION = "v3"
API_BASE = "/api/v3"
KEEPER_VERSION = "4.0.0"
SERVICE_NAME = "core-keeper"
STATUSES = ("UP", "DOWN", "UNKNOWN", "HALT")
# KeyAllowedCharsRegexString of internal/core/keeper/constants, with the dash moved last.
KEY_ALLOWED = re.compile(r"^[a-zA-Z0-9_~;=./-]+$")
KEY_INVALID = "key only allows characters between a to z, A to Z, 0 to 9, or one of -_ ~;=./"
UNMARSHAL_FAILED = "Failed to unmarshal request body as JSON."
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The DTO validator parses intervals with str2duration: Go's units plus d and w.
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
          "d": 86400.0, "w": 604800.0}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# echo's routeMethods.updateAllowHeader order.
_ALLOW_ORDER = ("CONNECT", "DELETE", "GET", "HEAD", "PATCH", "POST", "PROPFIND", "PUT", "TRACE", "REPORT")
# What keeper's /config reports (its ConfigurationStruct, as the configuration.yaml of 4.0 sets it).
KEEPER_CONFIG = {
    "Writable": {"LogLevel": "INFO", "InsecureSecrets": {},
                 "Telemetry": {"Interval": "30s", "Metrics": {}, "Tags": None}},
    "MessageBus": {"Disabled": False, "Type": "mqtt", "Protocol": "tcp", "Host": "localhost", "Port": 1883,
                   "AuthMode": "none", "SecretName": "", "BaseTopicPrefix": "edgex", "Optional": {}},
    "Clients": {},
    "Database": {"Host": "localhost", "Port": 5432, "Timeout": "5s", "Type": "postgres", "Name": "edgex_db"},
    "Service": {"HealthCheckInterval": "10s", "Host": "localhost", "Port": 59890, "ServerBindAddr": "",
                "StartupMsg": "This is the Core Keeper Microservice", "MaxResultCount": 1024,
                "MaxRequestSize": 0, "RequestTimeout": "5s", "EnableNameFieldEscape": False,
                "CORSConfiguration": {"EnableCORS": False}},
}


class APIError(Exception):
    """An EdgeX error answer: the status code and keeper's first-level message."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message


class EchoError(Exception):
    """An error echo writes itself: {"message": ...}, no correlation id."""

    def __init__(self, status, message, headers=None):
        Exception.__init__(self, message)
        self.status = status
        self.message = message
        self.headers = headers or []


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


# --------------------------------------------------------------------------- Go's JSON decoder


class GoSyntaxError(Exception):
    """What json.Decoder.Decode returns before any UnmarshalJSON runs: its text is Go's."""


def _quote_char(c):
    """encoding/json's quoteChar."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\"}
    if c in escapes:
        return "'%s'" % escapes[c]
    if ord(c) < 0x20 or ord(c) == 0x7f:
        return "'\\x%02x'" % ord(c)
    return "'%s'" % c


class _GoScanner(object):
    """The first JSON value of a body, checked with the error messages of Go's scanner; what
    follows the value is never read (json.Decoder reads one value)."""

    WHITESPACE = " \t\r\n"

    def __init__(self, text):
        self.text = text
        self.pos = 0

    def _peek(self):
        if self.pos >= len(self.text):
            raise GoSyntaxError("unexpected EOF")
        return self.text[self.pos]

    def _bad(self, c, context):
        raise GoSyntaxError("invalid character %s %s" % (_quote_char(c), context))

    def _skip(self):
        while self.pos < len(self.text) and self.text[self.pos] in self.WHITESPACE:
            self.pos += 1

    def first_value(self):
        self._skip()
        if self.pos >= len(self.text):
            raise GoSyntaxError("EOF")
        start = self.pos
        self._value()
        return json.loads(self.text[start:self.pos])

    def _value(self):
        c = self._peek()
        if c == "{":
            self._object()
        elif c == "[":
            self._array()
        elif c == '"':
            self._string()
        elif c == "-" or c.isdigit():
            self._number()
        elif c in "tfn":
            self._literal({"t": "true", "f": "false", "n": "null"}[c])
        else:
            self._bad(c, "looking for beginning of value")

    def _object(self):
        self.pos += 1
        self._skip()
        if self._peek() == "}":
            self.pos += 1
            return
        while True:
            c = self._peek()
            if c != '"':
                self._bad(c, "looking for beginning of object key string")
            self._string()
            self._skip()
            c = self._peek()
            if c != ":":
                self._bad(c, "after object key")
            self.pos += 1
            self._skip()
            self._value()
            self._skip()
            c = self._peek()
            if c == "}":
                self.pos += 1
                return
            if c != ",":
                self._bad(c, "after object key:value pair")
            self.pos += 1
            self._skip()

    def _array(self):
        self.pos += 1
        self._skip()
        if self._peek() == "]":
            self.pos += 1
            return
        while True:
            self._value()
            self._skip()
            c = self._peek()
            if c == "]":
                self.pos += 1
                return
            if c != ",":
                self._bad(c, "after array element")
            self.pos += 1
            self._skip()

    def _string(self):
        self.pos += 1
        while True:
            c = self._peek()
            self.pos += 1
            if c == '"':
                return
            if c == "\\":
                e = self._peek()
                self.pos += 1
                if e == "u":
                    for _digit in range(4):
                        h = self._peek()
                        if h not in "0123456789abcdefABCDEF":
                            self._bad(h, "in \\u hexadecimal character escape")
                        self.pos += 1
                elif e not in '"\\/bfnrt':
                    self._bad(e, "in string escape code")
            elif ord(c) < 0x20:
                self._bad(c, "in string literal")

    def _digits(self):
        while self.pos < len(self.text) and self.text[self.pos].isdigit():
            self.pos += 1

    def _number(self):
        if self.text[self.pos] == "-":
            self.pos += 1
            c = self._peek()
            if not c.isdigit():
                self._bad(c, "in numeric literal")
        if self.text[self.pos] == "0":
            self.pos += 1
        else:
            self._digits()
        if self.pos < len(self.text) and self.text[self.pos] == ".":
            self.pos += 1
            c = self._peek()
            if not c.isdigit():
                self._bad(c, "after decimal point in numeric literal")
            self._digits()
        if self.pos < len(self.text) and self.text[self.pos] in "eE":
            self.pos += 1
            c = self._peek()
            if c in "+-":
                self.pos += 1
                c = self._peek()
            if not c.isdigit():
                self._bad(c, "in exponent of numeric literal")
            self._digits()

    def _literal(self, word):
        for expected in word:
            c = self._peek()
            if c != expected:
                self._bad(c, "in literal %s (expecting %s)" % (word, _quote_char(expected)))
            self.pos += 1


def go_decode(raw):
    """json.NewDecoder(body).Decode: the first value, or GoSyntaxError with Go's message."""
    return _GoScanner(raw.decode("utf-8", "replace")).first_value()


def read_body(raw, unmarshal):
    """keeper's JsonDtoReader around a DTO whose UnmarshalJSON is ``unmarshal``: decoder errors
    are wrapped without a kind (500, Go's message); the DTO's own errors keep theirs."""
    try:
        value = go_decode(raw)
    except GoSyntaxError as exc:
        raise APIError(500, str(exc))
    return unmarshal(value)


# encoding/json into a struct: what each Go type accepts from a JSON value (null leaves the zero).
def _go_string(value):
    if value is not None and not isinstance(value, str):
        raise APIError(400, UNMARSHAL_FAILED)
    return value or ""


def _go_int(value, bits=64):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not -2 ** (bits - 1) <= value < 2 ** (bits - 1):
        raise APIError(400, UNMARSHAL_FAILED)
    return value


def _go_struct(value):
    if value is not None and not isinstance(value, dict):
        raise APIError(400, UNMARSHAL_FAILED)
    return value or {}


# --------------------------------------------------------------------------- state


class State(object):
    """Registrations and keys, as keeper's database holds them; optionally kept in a file so
    that a restarted emulator still knows them, as keeper does with PostgreSQL."""

    def __init__(self, data_file=None, request_timeout=5.0, tokens=()):
        self.lock = threading.RLock()
        self.registrations = {}  # serviceId -> stored registration (flat dict)
        self.kv = {}  # key -> {"value": base64 text, "created": ms, "modified": ms}
        self.runners = {}  # serviceId -> HealthRunner
        self.data_file = data_file
        self.request_timeout = request_timeout
        self.faults = FaultRules()
        self.stats = RequestStats()
        # Secure mode: the JWTs its secret store would accept (empty: security off).
        self.tokens = set(tokens)
        self.secure = bool(self.tokens)
        self.secrets = {}  # secretName -> {key: value}, what POST /secret stored
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


def _validation_messages(dto_name, fields):
    """common.Validate's messages, in struct field order, joined as it joins them."""
    messages = []
    for path, tag in fields:
        name = "%s.%s" % (dto_name, path)
        if tag == "required":
            messages.append("%s field is required" % name)
        elif tag == "edgex-dto-duration":
            messages.append("%s field should follows the ISO 8601 Durations format. Eg,100ms, 24h" % name)
        else:
            messages.append("%s field validation failed on the %s tag" % (name, tag))
    return "; ".join(messages)


def registration_from_request(value):
    """AddRegistrationRequest.UnmarshalJSON (json.Unmarshal into its alias, then Validate),
    into the stored (flat) form."""
    body = _go_struct(value)
    api_version = _go_string(go_field(body, "apiVersion"))
    request_id = _go_string(go_field(body, "requestId"))
    dto = _go_struct(go_field(body, "registration"))
    for stamp in ("created", "modified"):  # DBTimestamp's int64 fields, decoded and dropped
        _go_int(go_field(dto, stamp))
    health = _go_struct(go_field(dto, "healthCheck"))
    fields = {"serviceId": _go_string(go_field(dto, "serviceId")), "status": _go_string(go_field(dto, "status")),
              "host": _go_string(go_field(dto, "host")), "interval": _go_string(go_field(health, "interval")),
              "path": _go_string(go_field(health, "path")), "type": _go_string(go_field(health, "type"))}
    port = _go_int(go_field(dto, "port"))
    # validate:"required" on apiVersion, serviceId, host, port, interval, path, type;
    # requestId "len=0|uuid"; interval "required,edgex-dto-duration".
    failed = []
    if not api_version:
        failed.append(("BaseRequest.Versionable.ApiVersion", "required"))
    if request_id and not _UUID.match(request_id):
        failed.append(("BaseRequest.RequestId", "len=0|uuid"))
    for name, path in (("serviceId", "ServiceId"), ("host", "Host")):
        if not fields[name]:
            failed.append(("Registration." + path, "required"))
    if not port:
        failed.append(("Registration.Port", "required"))
    if not fields["interval"]:
        failed.append(("Registration.HealthCheck.Interval", "required"))
    elif parse_go_duration(fields["interval"]) is None:
        failed.append(("Registration.HealthCheck.Interval", "edgex-dto-duration"))
    for name, path in (("path", "Path"), ("type", "Type")):
        if not fields[name]:
            failed.append(("Registration.HealthCheck." + path, "required"))
    if failed:
        raise APIError(400, _validation_messages("AddRegistrationRequest", failed))
    if fields["status"] not in STATUSES:
        fields["status"] = "UNKNOWN"
    fields["port"] = port
    return fields


def keys_request_value(value):
    """UpdateKeysRequest.UnmarshalJSON: apiVersion is not required, only the value is checked."""
    body = _go_struct(value)
    _go_string(go_field(body, "apiVersion"))
    _go_string(go_field(body, "requestId"))
    found = go_field(body, "value")
    if found is None:
        raise APIError(400, "the value field is undefined")
    if found == {}:
        raise APIError(400, "the value field is an empty object")
    return found


def secret_from_request(raw):
    """SecretRequest as AddSecret reads it: any decoding or validation failure is 400
    "JSON decode failed" (the handler's own first-level message)."""
    try:
        value = go_decode(raw)
        body = _go_struct(value)
        _go_string(go_field(body, "apiVersion"))
        request_id = _go_string(go_field(body, "requestId"))
        name = _go_string(go_field(body, "secretName"))
        data = go_field(body, "secretData")
        if data is not None and not isinstance(data, list):
            raise APIError(400, UNMARSHAL_FAILED)
        pairs = {}
        for item in data or []:
            item = _go_struct(item)
            pairs[_go_string(go_field(item, "key"))] = _go_string(go_field(item, "value"))
        if not _go_string(go_field(body, "apiVersion")) or not name.strip() or not data \
                or any(not k or not v for k, v in pairs.items()):
            raise APIError(400, "validation failed")
    except (GoSyntaxError, APIError):
        raise APIError(400, "JSON decode failed")
    return request_id, name.strip(), pairs


def registration_dto(stored):
    """dtos.Registration as keeper encodes it: timestamps promoted, the health check nested
    under its Go field name ``HealthCheck``."""
    dto = {}
    for stamp in ("created", "modified"):
        if stored.get(stamp):
            dto[stamp] = stored[stamp]
    dto.update({"serviceId": stored["serviceId"], "status": stored["status"], "host": stored["host"],
                "port": stored["port"],
                "HealthCheck": {"interval": stored["interval"], "path": stored["path"], "type": stored["type"]}})
    return dto


def kv_dto(key, entry, plaintext):
    """models.KVS: key, then DBTimestamp's untagged Created/Modified, then value. The value's
    omitempty never drops it: it is an interface holding a string, and encoding/json calls an
    interface empty only when it is nil."""
    value = base64.b64decode(entry["value"]).decode("utf-8", "replace") if plaintext else entry["value"]
    return {"key": key, "Created": entry["created"], "Modified": entry["modified"], "value": value}


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
        # -- plumbing ----------------------------------------------------------
        def _send(self, status, payload=None, newline=True, correlated=True, headers=None):
            """An answer keeper writes (utils.WriteHttpHeader / pkg.EncodeAndWriteResponse): JSON,
            X-Correlation-Id, a trailing newline from json.Encoder (the common API's
            json.Marshal has none)."""
            text = "" if payload is None else go_json(payload) + ("\n" if newline else "")
            data = text.encode("utf-8", "replace")
            out = []
            if correlated == "request":
                # the common API's SendJsonResp echoes the request's header, empty when absent
                out.append(("X-Correlation-Id", self.headers.get("X-Correlation-ID") or ""))
            elif correlated:
                out.append(("X-Correlation-Id", self._correlation_id()))
            out.append(("Content-Type", "application/json"))
            self.respond(status, out + list(headers or []), data)

        def _correlation_id(self):
            # go-mod-bootstrap's correlation middleware: the caller's id, or a new one.
            if not getattr(self, "correlation_id", None):
                self.correlation_id = self.headers.get("X-Correlation-ID") or str(uuid.uuid4())
            return self.correlation_id

        def _echo_error(self, exc):
            """echo's DefaultHTTPErrorHandler: {"message": ...} and nothing of EdgeX's."""
            self.respond(exc.status, [("Content-Type", "application/json")] + exc.headers,
                         (go_json({"message": exc.message}) + "\n").encode())

        def _authorized(self):
            """go-mod-bootstrap's VaultAuthenticationHandlerFunc in secure mode: a Bearer JWT the
            secret store accepts, else 401 "Unauthorized" (missing and invalid alike)."""
            if not state.secure:
                return
            parts = (self.headers.get("Authorization") or "").split(" ")
            if len(parts) >= 2 and parts[0].lower() == "bearer" and parts[1] in state.tokens:
                return
            raise EchoError(401, "Unauthorized")

        def _database(self):
            """Routes that touch PostgreSQL fail while the global "500" fault (database down) is on."""
            fault = state.faults.global_fault
            if fault["mode"] == "500":
                raise APIError(500, "emulated failure")

        def _fault_answer(self, fault):
            """Answer as the fault says; False when the real answer is to follow (maybe damaged).
            The global 500 is the database being down: handled by the routes that use it."""
            mode = fault["mode"]
            if mode == "hang":
                self.hang()
            elif mode == "slow":
                time.sleep(fault["delay"] or 5.0)
                return False
            elif mode == "500":
                if fault.get("path") is None:
                    return False
                self._send(500, base_response(500, "emulated failure"))
            elif mode == "garbage":
                self.respond(200, [("Content-Type", "application/json")],
                             b"<html><body>502 Bad Gateway</body></html>")
            elif mode == "html":
                self.respond_html_page(fault.get("status") or 200)
            elif mode == "404":
                self._echo_error(EchoError(404, "Not Found"))
            else:
                return False
            return True

        def _dispatch(self):
            self._query()
            self.correlation_id = None
            state.stats.count(self.route_path)
            try:
                fault = state.faults.find(self.command, self.route_path, self.route_path.startswith(API_BASE + "/"))
                if fault:
                    self.fault = fault
                    if self._fault_answer(fault):
                        return
                fn, found = routes.find(self.command, self.route_path)
                if fn is not None:
                    fn(self, *found)
                    return
                if found:  # echo: another method serves this path
                    allow = ", ".join(["OPTIONS"] + [m for m in _ALLOW_ORDER if m in found])
                    if self.command == "OPTIONS":
                        self.respond(204, [("Allow", allow)])
                        return
                    raise EchoError(405, "Method Not Allowed", [("Allow", allow)])
                raise EchoError(404, "Not Found")
            except EchoError as exc:
                self._echo_error(exc)
            except APIError as exc:
                self._send(exc.status, base_response(exc.status, exc.message))
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

        # -- common (go-mod-bootstrap's CommonController) ------------------------------
        @route("GET", API_BASE + "/ping")
        def ping(self):
            self._send(200, {"apiVersion": API_VERSION, "timestamp": go_unix_date(), "serviceName": SERVICE_NAME},
                       newline=False, correlated="request")

        @route("GET", API_BASE + "/version")
        def version(self):
            self._authorized()
            self._send(200, {"apiVersion": API_VERSION, "version": KEEPER_VERSION, "serviceName": SERVICE_NAME},
                       newline=False, correlated="request")

        @route("GET", API_BASE + "/config")
        def config(self):
            self._authorized()
            self._send(200, {"apiVersion": API_VERSION, "config": KEEPER_CONFIG, "serviceName": SERVICE_NAME},
                       newline=False, correlated="request")

        @route("POST", API_BASE + "/secret")
        def secret(self):
            self._authorized()
            try:
                request_id, name, pairs = secret_from_request(self._body())
                if not state.secure:
                    # the insecure secret provider cannot store secrets
                    raise APIError(500, "adding secret failed")
            except APIError as exc:  # SendJsonErrResp: the request's correlation header too
                self._send(exc.status, base_response(exc.status, exc.message), newline=False, correlated="request")
                return
            with state.lock:
                state.secrets[name] = pairs
            response = {"apiVersion": API_VERSION}
            if request_id:
                response["requestId"] = request_id
            response["statusCode"] = 201
            self._send(201, response, newline=False, correlated="request")

        # -- registry ------------------------------------------------------------
        @route("POST", API_BASE + "/registry")
        def register(self):
            self._authorized()
            registration = read_body(self._body(), registration_from_request)
            self._database()
            state.add(registration)
            response = base_response(201)
            response["serviceName"] = registration["serviceId"]
            self._send(201, response)

        @route("PUT", API_BASE + "/registry")
        def update_register(self):
            self._authorized()
            registration = read_body(self._body(), registration_from_request)
            self._database()
            state.update(registration)
            self._send(204)

        @route("GET", API_BASE + "/registry/all")
        def registrations(self):
            self._authorized()
            deregistered = parse_go_bool("deregistered", self.q.get("deregistered"))
            self._database()
            with state.lock:
                found = [registration_dto(r) for r in state.registrations.values()
                         if deregistered or r["status"] != "HALT"]
            response = base_response(200)
            response.update({"totalCount": len(found), "registrations": found})
            self._send(200, response)

        @route("GET", API_BASE + "/registry/serviceId/(.+)")
        def registration(self, service_id):
            self._authorized()
            self._database()
            with state.lock:
                stored = state.registrations.get(service_id)
                dto = registration_dto(stored) if stored is not None else None
            if dto is None:
                raise APIError(404, "registration not found by serviceId")
            response = base_response(200)
            response["registration"] = dto
            self._send(200, response)

        @route("DELETE", API_BASE + "/registry/serviceId/(.+)")
        def deregister(self, service_id):
            self._authorized()
            self._database()
            state.delete(service_id)
            self._send(204)

        # -- key/value -----------------------------------------------------------
        @route("GET", API_BASE + "/kvs/key/(.+)")
        def keys(self, key):
            self._authorized()
            key_only = parse_go_bool("keyOnly", self.q.get("keyOnly"))
            plaintext = parse_go_bool("plaintext", self.q.get("plaintext"))
            if not KEY_ALLOWED.match(key):
                raise APIError(400, KEY_INVALID)
            self._database()
            found = state.kv_select(key)
            if not found:
                raise APIError(404, "no key starting with '%s' found" % key)
            if key_only:
                result = [k for k, _entry in found]
            else:
                result = [kv_dto(k, e, plaintext) for k, e in found]
            response = base_response(200)
            response["response"] = result
            self._send(200, response)

        @route("PUT", API_BASE + "/kvs/key/(.+)")
        def add_keys(self, key):
            self._authorized()
            flatten = parse_go_bool("flatten", self.q.get("flatten"))
            value = read_body(self._body(), keys_request_value)
            if not KEY_ALLOWED.match(key):
                raise APIError(400, KEY_INVALID)
            self._database()
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

        @route("DELETE", API_BASE + "/kvs/key/(.+)")
        def delete_keys(self, key):
            self._authorized()
            prefix_match = parse_go_bool("prefixMatch", self.q.get("prefixMatch"))
            if not KEY_ALLOWED.match(key):
                raise APIError(400, KEY_INVALID)
            self._database()
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

        def _control(self, status, payload):
            self.respond(status, [("Content-Type", "application/json")], json.dumps(payload).encode())

        @route("POST", r"/_emulator/fault")
        def control_fault(self):
            try:
                self._control(200, state.faults.configure(self._control_body()))
            except FaultError as exc:
                self._control(400, {"message": str(exc)})

        @route("POST", r"/_emulator/token")
        def control_token(self):
            token = self._control_body().get("token") or str(uuid.uuid4())
            with state.lock:
                state.tokens.add(token)
                state.secure = True
            self._control(200, {"token": token})

        @route("GET", r"/_emulator/stats")
        def control_stats(self):
            self._control(200, state.stats.snapshot())

        @route("POST", r"/_emulator/stats/reset")
        def control_stats_reset(self):
            state.stats.reset()
            self._control(200, {"requests": 0})

    return Handler


def serve(host, port, data_file=None, request_timeout=5.0, tokens=(), tls_context=None):
    """Start the emulator in threads; returns (state, server)."""
    state = State(data_file, request_timeout, tokens)
    server = Server((host, port), make_handler(state))
    server.tls_context = tls_context
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
    parser.add_argument("--token", action="append", default=[],
                        help="secure mode: a JWT the secret store accepts (repeatable); without one, security is off")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (chain) file")
    parser.add_argument("--tls-key", help="the key of --tls-cert")
    args = parser.parse_args(argv)
    timeout = parse_go_duration(args.request_timeout)
    if not timeout or timeout <= 0:
        parser.error("--request-timeout wants a positive Go duration, got %r" % args.request_timeout)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    tls_context = tls_server_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    state, server = serve(args.host, args.port, args.data_file, timeout, args.token, tls_context)
    sys.stderr.write("keeper-emulator: listening on %s:%d%s%s\n" % (
        args.host, server.server_address[1], " (HTTPS)" if tls_context else "", " (secure)" if state.secure else ""))
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
