#!/usr/bin/env python3
"""A stand-in EdgeX service: the common API, registration and configuration of a real one.

No EdgeX image can be pulled here, so the test-bed runs this instead. It behaves as an EdgeX
Go service built on go-mod-bootstrap, go-mod-registry and go-mod-configuration does, for the
release its ``--version`` names (2.x, 3.x or 4.x):

Start-up, in go-mod-bootstrap's order (one start-up timer, EDGEX_STARTUP_DURATION seconds,
default 60, retried every EDGEX_STARTUP_INTERVAL, default 1):
  1. configuration. Without a configuration provider: its defaults (the service's
     res/configuration file merged over the common configuration). With one (``-cp``):
     - 3.x/4.x: waits for <stem>/core-common-config-bootstrapper/IsCommonConfigReady = true, reads
       the common configuration (all-services, then app-services or device-services for app-* and
       device-* services), then its private configuration <stem>/<service>/...; when that is absent
       it seeds it from its defaults (one key per leaf, string values). Private overrides common.
     - 2.x: no common configuration; edgex/<core|appservices|devices|security>/2.0/<service>/...
       holds the whole configuration, seeded from the defaults when absent.
     Never reachable in time: "configuration provider is not available", exit 1.
  2. registration (``--registry``): Consul agent service + HTTP check on <api>/ping, or core-keeper;
     retried until the start-up timer runs out, then "unable to register with Registry in allotted
     time", exit 1 -- a real service never serves without the registry it was told to use.
  3. the HTTP server: GET <api>/ping, /version, /config (2.x also /metrics), <api> = /api/v2 for
     2.x, /api/v3 for 3.x and 4.x. Other routes: 404 as the service's router answers (gorilla/mux
     text in 2.x, echo JSON from 3.0).
Then it watches the Writable keys of its private configuration and of the common sections it
loaded (Consul: blocking queries with ?index=; core-keeper: real 4.x services learn of changes on
the message bus, which the test-bed does not run, so this polls keeper's KV every
``--config-poll-interval`` seconds) and applies them live; a change outside Writable shows only
after a restart. On SIGTERM it deregisters (Consul: the service; keeper: status HALT) and exits 0.

``--service core-common-config-bootstrapper`` (3.x/4.x) pushes the common configuration into the
provider when it is absent, sets IsCommonConfigReady, and exits 0, as the real one-shot job does.
``--kind tcp|redis|mqtt`` is a bare listener (redis answers PING, mqtt CONNECT/PINGREQ) that never
registers and reads no configuration, as Redis and the MQTT broker do.

Fault knobs (environment), so tests can produce what real fleets see:
  STANDIN_START_DELAY=s        start (configuration, registration, listening) only after s seconds
  STANDIN_PING_HANG=1          ping never answers
  STANDIN_PING_STATUS=500      ping answers with that status
  STANDIN_CRASH_AFTER=s        exit 1 after s seconds of serving (deregistering first, unless below)
  STANDIN_CRASH_NO_DEREGISTER=1  crash without deregistering (a stale registration stays)
  STANDIN_CRASH_ON_START=1     exit 1 at once, before anything else
  STANDIN_IGNORE_SIGTERM=1     SIGTERM does nothing (a service stuck on shutdown): only a SIGKILL ends it

Limits: it always listens on and registers --host/--port (a Service/Port changed in the provider
shows in /config after a restart but does not move the listener); it has no Go structs, so values
take the type of its defaults and keys it does not know are dropped, except inside sections that
are maps in the real configuration (InsecureSecrets, Telemetry/Metrics, Clients, ...).

Standard library only; runs on Python 3.9+ (a Debian minbase image with python3).
"""

import argparse
import base64
import copy
import gc
import json
import os
import re
import resource
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOOTSTRAPPER = "core-common-config-bootstrapper"
COMMON_CONFIG_READY = "IsCommonConfigReady"
DEFAULT_CHECK_INTERVAL = "10s"  # Service.HealthCheckInterval in every release's configuration
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")


# -- logging, time ---------------------------------------------------------------------------


class Log(object):
    """EdgeX's log line (level=... ts=... app=... msg=...), filtered by Writable.LogLevel."""

    app = "standin"
    level = "INFO"

    @classmethod
    def write(cls, message, level="INFO"):
        threshold = LOG_LEVELS.index(cls.level) if cls.level in LOG_LEVELS else 2
        if LOG_LEVELS.index(level) < threshold:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        sys.stderr.write('level=%s ts=%s app=%s msg=%s\n' % (level, stamp, cls.app, json.dumps(message)))
        sys.stderr.flush()


def log(message, level="INFO"):
    Log.write(message, level)


def go_unix_date(now=None):
    """Go's time.UnixDate ("Mon Jan _2 15:04:05 MST 2006") in UTC, as EdgeX's ping returns."""
    t = time.gmtime(now)
    return "%s %s %2d %02d:%02d:%02d UTC %d" % (
        WEEKDAYS[t.tm_wday], MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_year)


def env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def env_seconds(name, default):
    """go-mod-bootstrap's start-up settings: a positive integer, anything else is the default."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


class Stopped(Exception):
    """SIGTERM arrived while starting."""


class StartupError(Exception):
    """What makes a real service's bootstrap fail: it logs the message and exits 1."""


class StartupTimer(object):
    """go-mod-bootstrap's startup.Timer: one deadline for the whole start, a fixed retry interval."""

    def __init__(self, stop):
        self.stop = stop
        self.deadline = time.monotonic() + env_seconds("EDGEX_STARTUP_DURATION", 60)
        self.interval = env_seconds("EDGEX_STARTUP_INTERVAL", 1)

    def has_not_elapsed(self):
        if self.stop.is_set():
            raise Stopped()
        return time.monotonic() < self.deadline

    def sleep(self):
        if self.stop.wait(self.interval):
            raise Stopped()


# -- releases --------------------------------------------------------------------------------


class Release(object):
    """What the release (the major of --version) decides: API base, KV layout, common config."""

    def __init__(self, version):
        try:
            self.major = int(version.split(".")[0])
        except ValueError:
            self.major = 0
        if self.major not in (2, 3, 4):
            raise ValueError("unsupported EdgeX release %r (2.x, 3.x or 4.x)" % version)
        self.version = version
        self.api_version = "v2" if self.major == 2 else "v3"
        self.api_base = "/api/" + self.api_version
        self.has_common_config = self.major >= 3
        self.has_metrics_route = self.major == 2  # removed in 3.0: metrics go to the message bus
        self.stem = None if self.major == 2 else "edgex/v%d" % self.major

    def base_key(self, service):
        """Where the service's own configuration lives in the provider."""
        if self.major == 2:
            # go-mod-core-contracts v2: ConfigStem{Core,App,Device,Security} + ConfigMajorVersion "2.0/"
            return "edgex/%s/2.0/%s" % (v2_config_class(service), service)
        return "%s/%s" % (self.stem, service)

    def common_key(self, section=None):
        base = "%s/%s" % (self.stem, BOOTSTRAPPER)
        return base if section is None else "%s/%s" % (base, section)


def v2_config_class(service):
    if service.startswith("app-"):
        return "appservices"
    if service.startswith("device-"):
        return "devices"
    if service.startswith("security-"):
        return "security"
    return "core"  # core-*, support-*, sys-mgmt-agent


def service_type_section(service):
    """The common-configuration section a 3.x/4.x service loads after all-services, if any."""
    if service.startswith("app-"):
        return "app-services"
    if service.startswith("device-"):
        return "device-services"
    return None


# -- default configurations (trimmed from edgex-go / app-service-configurable / device-sdk res/) -

STARTUP_MESSAGES = {
    "core-data": "This is the Core Data Microservice",
    "core-metadata": "This is the EdgeX Core Metadata Microservice",
    "core-command": "This is the Core Command Microservice",
    "support-notifications": "This is the Support Notifications Microservice",
    "support-scheduler": "This is the Support Scheduler Microservice",
    "sys-mgmt-agent": "This is the System Management Agent Microservice",
}
DATABASE_NAMES = {"core-data": "coredata", "core-metadata": "metadata", "support-notifications": "notifications",
                  "support-scheduler": "scheduler"}
# What a service's own res/configuration adds beyond the common settings.
SERVICE_EXTRAS = {
    "core-data": {"MaxEventSize": 25000, "Writable": {"PersistData": True, "Telemetry": {"Metrics": {
        "EventsPersisted": False, "ReadingsPersisted": False}}}},
    "core-metadata": {"Writable": {"ProfileChange": {"StrictDeviceProfileChanges": False,
                                                     "StrictDeviceProfileDeletes": False},
                                   "UoM": {"Validation": False}}},
    "support-notifications": {"Writable": {"ResendLimit": 2, "ResendInterval": "5s"}},
    "support-scheduler": {"ScheduleIntervalTime": 500},
    "sys-mgmt-agent": {"ExecutorPath": "/sys-mgmt-executor", "MetricsMechanism": "executor"},
}
# Sections that are Go maps in the real configuration: keys the defaults do not name survive there.
OPEN_MAPS = ("Writable/InsecureSecrets", "Writable/Telemetry/Metrics", "Writable/Telemetry/Tags", "Clients",
             "MessageBus/Optional", "MessageQueue/Optional", "Databases", "ApplicationSettings",
             "Writable/Pipeline/Functions")
BOOL_MAPS = ("Writable/Telemetry/Metrics",)


def deep_merge(*trees):
    """Later trees win, key by key (go-mod-bootstrap's MergeValues on maps)."""
    merged = {}
    for tree in trees:
        for key, value in tree.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = deep_merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def private_defaults(args, release):
    """The service's res/configuration as compose runs it (its SERVICE_HOST/PORT overrides applied)."""
    service = args.service
    startup = STARTUP_MESSAGES.get(service, "%s has Started" % service)
    if release.major == 2:
        config = {
            "Writable": {"LogLevel": "INFO",
                         "InsecureSecrets": {"DB": {"path": "redisdb", "Secrets": {"username": "", "password": ""}}},
                         "Telemetry": {"Interval": "30s", "PublishTopicPrefix": "edgex/telemetry"}},
            "Service": {"HealthCheckInterval": args.check_interval, "Host": args.host, "Port": args.port,
                        "ServerBindAddr": "", "StartupMsg": startup, "MaxResultCount": 1024, "MaxRequestSize": 0,
                        "RequestTimeout": "5s"},
            "Registry": {"Host": "localhost", "Port": 8500, "Type": "consul"},
            "Clients": {"core-metadata": {"Protocol": "http", "Host": "localhost", "Port": 59881}},
            "MessageQueue": {"Protocol": "redis", "Host": "localhost", "Port": 6379, "Type": "redis",
                             "AuthMode": "usernamepassword", "SecretName": "redisdb",
                             "PublishTopicPrefix": "edgex/events/core", "Optional": {"ClientId": service}},
            "SecretStore": {"Type": "vault", "Host": "localhost", "Port": 8200, "Path": service + "/",
                            "Protocol": "http",
                            "TokenFile": "/tmp/edgex/secrets/%s/secrets-token.json" % service,
                            "Authentication": {"AuthType": "X-Vault-Token"}},
        }
        if service in DATABASE_NAMES:
            config["Databases"] = {"Primary": {"Host": "localhost", "Name": DATABASE_NAMES[service], "Port": 6379,
                                               "Timeout": 5000, "Type": "redisdb"}}
        return deep_merge(config, SERVICE_EXTRAS.get(service, {}))
    config = {"Writable": {"LogLevel": "INFO"},
              "Service": {"Host": args.host, "Port": args.port, "StartupMsg": startup},
              "MessageBus": {"Optional": {"ClientId": service}}}
    if args.check_interval != DEFAULT_CHECK_INTERVAL:
        # As a SERVICE_HEALTHCHECKINTERVAL override would: only what differs from the common value.
        config["Service"]["HealthCheckInterval"] = args.check_interval
    if service in DATABASE_NAMES:
        config["Database"] = {"Name": DATABASE_NAMES[service]}
    return deep_merge(config, SERVICE_EXTRAS.get(service, {}))


def common_defaults(release, registry_host, registry_port, registry_type=None):
    """core-common-config-bootstrapper's res/configuration.yaml (3.x/4.x), with the registry overrides
    compose gives it (ALL_SERVICES_REGISTRY_HOST ...)."""
    keeper = release.major >= 4
    metadata_client = {"core-metadata": {"Protocol": "http", "Host": "localhost", "Port": 59881}}
    return {
        "all-services": {
            "Writable": {
                "InsecureSecrets": {"DB": {"SecretName": "postgres" if keeper else "redisdb",
                                           "SecretData": {"username": "", "password": ""}}},
                "Telemetry": {"Interval": "30s", "Metrics": {"SecuritySecretsRequested": False,
                                                             "SecuritySecretsStored": False}}},
            "Service": {"HealthCheckInterval": DEFAULT_CHECK_INTERVAL, "ServerBindAddr": "", "MaxResultCount": 1024,
                        "MaxRequestSize": 0, "RequestTimeout": "5s",
                        "CORSConfiguration": {"EnableCORS": False, "CORSAllowCredentials": False,
                                              "CORSAllowedOrigin": "https://localhost",
                                              "CORSAllowedMethods": "GET, POST, PUT, PATCH, DELETE",
                                              "CORSMaxAge": 3600}},
            "Registry": {"Host": registry_host, "Port": registry_port,
                         "Type": registry_type or ("keeper" if keeper else "consul")},
            "Database": {"Host": "localhost", "Port": 5432 if keeper else 6379, "Timeout": "5s",
                         "Type": "postgres" if keeper else "redisdb"},
            "MessageBus": {"Protocol": "tcp" if keeper else "redis", "Host": "localhost",
                           "Port": 1883 if keeper else 6379, "Type": "mqtt" if keeper else "redis",
                           "AuthMode": "none" if keeper else "usernamepassword", "SecretName": "redisdb",
                           "BaseTopicPrefix": "edgex",
                           "Optional": {"Qos": "0", "KeepAlive": "10", "Retained": "false", "AutoReconnect": "true",
                                        "ConnectTimeout": "5", "SkipCertVerify": "false"}},
        },
        "app-services": {
            "Writable": {"StoreAndForward": {"Enabled": False, "RetryInterval": "5m", "MaxRetryCount": 10},
                         "Telemetry": {"Metrics": {"MessagesReceived": False, "PipelineMessagesProcessed": False}}},
            "Clients": metadata_client,
            "Trigger": {"Type": "edgex-messagebus", "SubscribeTopics": "events/#"},
        },
        "device-services": {
            "MaxEventSize": 0,
            "Writable": {"Reading": {"ReadingUnits": True},
                         "Telemetry": {"Metrics": {"EventsSent": False, "ReadingsSent": False}}},
            "Clients": metadata_client,
            "Device": {"DataTransform": True, "MaxCmdOps": 128, "MaxCmdValueLen": 256,
                       "ProfilesDir": "./res/profiles", "DevicesDir": "./res/devices", "EnableAsyncReadings": True,
                       "AsyncBufferSize": 16, "Discovery": {"Enabled": False, "Interval": "30s"}},
        },
    }


# -- key/value form: one key per leaf, string values (go-mod-configuration) -------------------


def go_string(value):
    """How a leaf is stored: Go's strconv forms (true/false, decimal integers), strings as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(tree, prefix=""):
    pairs = {}
    for key, value in tree.items():
        path = "%s/%s" % (prefix, key) if prefix else key
        if isinstance(value, dict):
            pairs.update(flatten(value, path))
        else:
            pairs[path] = go_string(value)
    return pairs


def unflatten(pairs):
    tree = {}
    for path, value in sorted(pairs.items()):
        parts = [p for p in path.split("/") if p]
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = value
    return tree


class TypeCheckError(Exception):
    pass


GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def convert(text, like, path):
    """A stored string decoded into the Go field's type (the type of the default)."""
    if isinstance(like, bool):
        if text in GO_TRUE:
            return True
        if text in GO_FALSE:
            return False
        raise TypeCheckError("%s: %r is not a bool" % (path, text))
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise TypeCheckError("%s: %r is not an integer" % (path, text))
    if isinstance(like, float):
        try:
            return float(text)
        except ValueError:
            raise TypeCheckError("%s: %r is not a number" % (path, text))
    return text


def shape(tree, skeleton, path=""):
    """The provider's strings as the service's configuration struct decodes them."""
    result = {}
    for key, value in tree.items():
        sub = "%s/%s" % (path, key) if path else key
        known = skeleton.get(key) if isinstance(skeleton, dict) else None
        in_map = any(sub.startswith(m + "/") for m in OPEN_MAPS)
        if isinstance(value, dict):
            if isinstance(known, dict) or (known is None and in_map):
                result[key] = shape(value, known or {}, sub)
        elif known is not None and not isinstance(known, dict):
            result[key] = convert(value, known, sub)
        elif known is None and in_map:
            bool_map = any(sub.startswith(m + "/") for m in BOOL_MAPS)
            result[key] = convert(value, True if bool_map else "", sub)
    return result


def sorted_tree(tree):
    """Go's encoding/json writes map keys sorted."""
    if isinstance(tree, dict):
        return {key: sorted_tree(tree[key]) for key in sorted(tree)}
    return tree


# -- configuration providers -----------------------------------------------------------------


class ProviderError(Exception):
    pass


def http_call(method, url, body=None, headers=None, timeout=10):
    """(status, body bytes, headers); HTTP error statuses are returned, transport errors raise."""
    request = urllib.request.Request(url, data=body, method=method)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise ProviderError(str(getattr(exc, "reason", exc)))


def token_headers():
    token = os.environ.get("CONSUL_HTTP_TOKEN") or os.environ.get("EDGEX_REGISTRY_TOKEN")
    return {"X-Consul-Token": token} if token else {}


class ConsulKV(object):
    """go-mod-configuration's Consul client: KV under a base path, watches by blocking queries."""

    kind = "consul"

    def __init__(self, host, port, scheme="http"):
        self.url = "%s://%s:%d" % (scheme, host, port)

    def _kv(self, key):
        return self.url + "/v1/kv/" + urllib.parse.quote(key, safe="/")

    def is_alive(self):
        try:
            status = http_call("GET", self.url + "/v1/status/leader", timeout=5)[0]
        except ProviderError:
            return False
        return 200 <= status < 300

    def _read(self, prefix, query="", timeout=10):
        status, raw, headers = http_call("GET", self._kv(prefix + "/") + "?recurse" + query, headers=token_headers(),
                                         timeout=timeout)
        index = int(headers.get("X-Consul-Index") or 0) if headers else 0
        if status == 404:
            return {}, index
        if status != 200:
            raise ProviderError("GET %s: %d %s" % (prefix, status, raw[:200].decode("utf-8", "replace")))
        pairs = {}
        for entry in json.loads(raw or b"[]"):
            relative = entry["Key"][len(prefix) + 1:]
            if relative and not relative.endswith("/"):  # folders made in the Consul UI hold no value
                pairs[relative] = base64.b64decode(entry.get("Value") or "").decode("utf-8", "replace")
        return pairs, index

    def get_tree(self, prefix):
        return self._read(prefix)[0]

    def get_value(self, key):
        status, raw, _headers = http_call("GET", self._kv(key), headers=token_headers())
        if status == 404:
            return None
        if status != 200:
            raise ProviderError("GET %s: %d" % (key, status))
        entries = json.loads(raw or b"[]")
        return base64.b64decode(entries[0].get("Value") or "").decode("utf-8", "replace") if entries else None

    def put(self, key, text):
        status, raw, _headers = http_call("PUT", self._kv(key), text.encode("utf-8"), token_headers())
        if status != 200 or raw.strip() != b"true":
            raise ProviderError("PUT %s: %d %s" % (key, status, raw[:200].decode("utf-8", "replace")))

    def watch(self, prefix, on_change, stop, poll_interval):
        """Blocking queries on the prefix: each answer (and the first) goes to on_change."""
        index = 0
        while not stop.is_set():
            try:
                pairs, new_index = self._read(prefix, "&index=%d&wait=30s" % index if index else "", timeout=45)
            except (ProviderError, ValueError) as exc:
                log("error occurred during listening to the configuration changes: %s" % exc, "ERROR")
                # The agent may have restarted with a lower index: ask afresh rather than block on ours.
                index = 0
                stop.wait(1)
                continue
            on_change(pairs)
            # Consul's rule for blocking clients: an index that goes backwards starts over.
            index = new_index if new_index >= index else 0


class KeeperKV(object):
    """go-mod-configuration's core-keeper client; watching polls (see the module docstring)."""

    kind = "keeper"

    def __init__(self, host, port, scheme="http"):
        self.url = "%s://%s:%d" % (scheme, host, port)

    def _kvs(self, key, query=""):
        return self.url + "/api/v3/kvs/key/" + urllib.parse.quote(key, safe="/") + query

    def is_alive(self):
        try:
            return http_call("GET", self.url + "/api/v3/ping", timeout=5)[0] == 200
        except ProviderError:
            return False

    def _values(self, key):
        status, raw, _headers = http_call("GET", self._kvs(key, "?plaintext=true"))
        if status == 404:
            return []
        if status != 200:
            raise ProviderError("GET %s: %d %s" % (key, status, raw[:200].decode("utf-8", "replace")))
        return json.loads(raw).get("response") or []

    def get_tree(self, prefix):
        pairs = {}
        for entry in self._values(prefix):
            if entry["key"].startswith(prefix + "/"):
                value = entry.get("value")
                pairs[entry["key"][len(prefix) + 1:]] = value if isinstance(value, str) else json.dumps(value)
        return pairs

    def get_value(self, key):
        for entry in self._values(key):
            if entry["key"] == key:
                return entry.get("value") if isinstance(entry.get("value"), str) else json.dumps(entry.get("value"))
        return None

    def put(self, key, text):
        body = json.dumps({"value": text}).encode()
        status, raw, _headers = http_call("PUT", self._kvs(key, "?flatten=false"), body,
                                          {"Content-Type": "application/json"})
        if status != 200:
            raise ProviderError("PUT %s: %d %s" % (key, status, raw[:200].decode("utf-8", "replace")))

    def watch(self, prefix, on_change, stop, poll_interval):
        while not stop.is_set():
            try:
                on_change(self.get_tree(prefix))
            except (ProviderError, ValueError) as exc:
                log("error occurred during listening to the configuration changes: %s" % exc, "ERROR")
            stop.wait(poll_interval)


PROVIDER_PORTS = {"consul": 8500, "keeper": 59890}
PROVIDER_URL = re.compile(r"^(consul|keeper)\.(https?)://([^:/]+):(\d+)/?$")


def make_provider(spec, args):
    """-cp's forms: consul.http://host:8500, keeper.http://host:59890, or just consul/keeper (then
    the registry's host, and its port when the registry is the same kind)."""
    if spec in (None, "", "none"):
        return None
    found = PROVIDER_URL.match(spec)
    if found:
        kind, scheme, host, port = found.group(1), found.group(2), found.group(3), int(found.group(4))
    elif spec in PROVIDER_PORTS:
        kind, scheme, host = spec, "http", args.registry_host
        port = args.registry_port if args.registry == spec else PROVIDER_PORTS[spec]
    else:
        raise ValueError("configuration provider %r is not consul|keeper[.http://host:port] or none" % spec)
    return (ConsulKV if kind == "consul" else KeeperKV)(host, port, scheme)


# -- the service's configuration --------------------------------------------------------------


class Configuration(object):
    """Layers as go-mod-bootstrap merges them: common all-services, the service-type section, then
    the private configuration; Writable of each layer follows the provider, the rest is fixed at start."""

    def __init__(self, args, release):
        self.args = args
        self.release = release
        self.lock = threading.Lock()
        self.private_defaults = private_defaults(args, release)
        self.type_section = service_type_section(args.service) if release.has_common_config else None
        if release.has_common_config:
            registry_type = args.registry if args.registry != "none" else None
            common = common_defaults(release, args.registry_host, args.registry_port, registry_type)
            self.common_defaults = [("all-services", common["all-services"])]
            if self.type_section:
                self.common_defaults.append((self.type_section, common[self.type_section]))
        else:
            self.common_defaults = []
        self.skeleton = deep_merge(*([tree for _name, tree in self.common_defaults] + [self.private_defaults]))
        self.layers = [(name, copy.deepcopy(tree)) for name, tree in self.common_defaults]
        self.layers.append(("private", copy.deepcopy(self.private_defaults)))
        self.effective = self._merge()

    def _merge(self):
        return deep_merge(*[tree for _name, tree in self.layers])

    def snapshot(self):
        with self.lock:
            return copy.deepcopy(self.effective)

    def get(self, *path, default=None):
        with self.lock:
            node = self.effective
            for part in path:
                if not isinstance(node, dict) or part not in node:
                    return default
                node = node[part]
            return node

    def _shape(self, pairs, what):
        try:
            return shape(unflatten(pairs), self.skeleton)
        except TypeCheckError as exc:
            raise StartupError("configuration from Configuration provider failed type check (%s): %s" % (what, exc))

    def load(self, provider, timer):
        """Process() of go-mod-bootstrap with a provider; StartupError when it cannot finish in time."""
        release, service = self.release, self.args.service
        while not provider.is_alive():
            if not timer.has_not_elapsed():
                raise StartupError("configuration provider is not available")
            log("Waiting for configuration provider to be available", "WARN")
            timer.sleep()
        layers = []
        if release.has_common_config:
            self._wait_for_common_config(provider, timer)
            for name, _defaults in self.common_defaults:
                layers.append((name, self._shape(self._read(provider, release.common_key(name), timer), name)))
            log("Common configuration loaded from the Configuration Provider. No overrides applied")
        base = release.base_key(service)
        log("Using Configuration provider (%s) from: %s with base path of %s" % (provider.kind, provider.url, base))
        existing = self._read(provider, base, timer)
        if existing and not self.args.overwrite:
            private = self._shape(existing, "private")
            log("Private configuration loaded from the Configuration Provider. No overrides applied")
        else:
            private = copy.deepcopy(self.private_defaults)
            self._seed(provider, base, flatten(private), timer)
            log("Private configuration has been pushed to into Configuration Provider with overrides applied")
        layers.append(("private", private))
        with self.lock:
            self.layers = layers
            self.effective = self._merge()
        Log.level = self.get("Writable", "LogLevel", default="INFO")

    def _read(self, provider, prefix, timer):
        while True:
            try:
                return provider.get_tree(prefix)
            except (ProviderError, ValueError) as exc:
                if not timer.has_not_elapsed():
                    raise StartupError("could not get configuration from Configuration provider: %s" % exc)
                log("could not read %s: %s" % (prefix, exc), "WARN")
                timer.sleep()

    def _seed(self, provider, base, pairs, timer):
        for key in sorted(pairs):
            while True:
                try:
                    provider.put("%s/%s" % (base, key), pairs[key])
                    break
                except ProviderError as exc:
                    if not timer.has_not_elapsed():
                        raise StartupError("could not push private configuration into Configuration Provider: %s"
                                           % exc)
                    timer.sleep()

    def _wait_for_common_config(self, provider, timer):
        ready_key = "%s/%s" % (self.release.common_key(), COMMON_CONFIG_READY)
        while timer.has_not_elapsed():
            try:
                if provider.get_value(ready_key) in GO_TRUE:
                    return
            except (ProviderError, ValueError):
                pass
            log("waiting for Common Configuration to be available from config provider", "WARN")
            timer.sleep()
        raise StartupError("common config is not loaded - check to make sure %s ran" % BOOTSTRAPPER)

    def watch_prefixes(self):
        """(layer name, provider prefix of its Writable) for each layer the service listens to."""
        release, prefixes = self.release, []
        for name, _tree in self.layers:
            base = release.base_key(self.args.service) if name == "private" else release.common_key(name)
            prefixes.append((name, base + "/Writable"))
        return prefixes

    def apply_writable(self, layer_name, pairs):
        """A watched Writable changed (or the watch's first answer): re-merge Writable only."""
        try:
            writable = shape({"Writable": unflatten(pairs)}, self.skeleton).get("Writable", {})
        except TypeCheckError as exc:
            log("ListenForChanges() type check failed: %s" % exc, "ERROR")
            return
        with self.lock:
            layer = dict(self.layers)[layer_name]
            if layer.get("Writable", {}) == writable:
                return
            layer["Writable"] = writable
            before = self.effective.get("Writable", {})
            self.effective["Writable"] = self._merge().get("Writable", {})
            after = self.effective["Writable"]
        if before == after:
            log("ignoring changed writable keys of %s overwritten in private writable" % layer_name)
            return
        log("Writeable configuration has been updated from the Configuration Provider")
        level = after.get("LogLevel")
        if level != before.get("LogLevel"):
            Log.level = level
            log("Logging level changed to %s" % level)


# -- registration (go-mod-registry) ----------------------------------------------------------


class Registry(object):
    def __init__(self, args, release):
        self.args = args
        self.release = release
        self.base = "http://%s:%d" % (args.registry_host, args.registry_port)
        self.registered = threading.Event()
        self.interval = DEFAULT_CHECK_INTERVAL

    def _call(self, method, path, body=None):
        headers = dict(token_headers(), **{"Content-Type": "application/json"})
        data = None if body is None else json.dumps(body).encode()
        return http_call(method, self.base + path, data, headers, timeout=5)

    def _expect(self, result, *ok):
        status, raw, _headers = result
        if status not in ok:
            raise ProviderError("%d %s" % (status, raw[:200].decode("utf-8", "replace")))
        return status, raw

    def is_alive(self):
        path = "/v1/status/leader" if self.args.registry == "consul" else "/api/v3/ping"
        try:
            return 200 <= self._call("GET", path)[0] < 300
        except ProviderError:
            return False

    def _check_path(self):
        return self.release.api_base + "/ping"

    def _consul_register(self):
        a = self.args
        # ID defaults to Name: go-mod-registry sends no ID.
        self._expect(self._call("PUT", "/v1/agent/service/register", {"Name": a.service, "Address": a.host,
                                                                       "Port": a.port}), 200)
        self._expect(self._call("PUT", "/v1/agent/check/register", {
            "ID": a.service,
            "Name": "Health Check: %s" % a.service,
            "Notes": "Check the health of the API",
            "ServiceID": a.service,
            "HTTP": "http://%s:%d%s" % (a.host, a.port, self._check_path()),
            "Interval": self.interval,
        }), 200)

    def _keeper_body(self, status=None):
        a = self.args
        # dtos.Registration.HealthCheck has no json tag: Go writes it as "HealthCheck".
        registration = {"serviceId": a.service, "host": a.host, "port": a.port,
                        "HealthCheck": {"interval": self.interval, "path": self._check_path(), "type": "http"}}
        if status:
            registration["status"] = status
        return {"apiVersion": "v3", "registration": registration}

    def _keeper_register(self):
        known = self._call("GET", "/api/v3/registry/serviceId/%s" % urllib.parse.quote(self.args.service))[0]
        if known == 200:
            self._expect(self._call("PUT", "/api/v3/registry", self._keeper_body()), 200, 204)
        else:
            self._expect(self._call("POST", "/api/v3/registry", self._keeper_body()), 200, 201)

    def register_within(self, timer, interval):
        """RegisterWithRegistry: retried on the start-up timer, a StartupError when it runs out."""
        self.interval = interval
        register = self._consul_register if self.args.registry == "consul" else self._keeper_register
        while timer.has_not_elapsed():
            try:
                if not self.is_alive():
                    raise ProviderError("registry is not available")
                register()
                self.registered.set()
                log("registered %s in %s at %s" % (self.args.service, self.args.registry, self.base))
                return
            except ProviderError as exc:
                log("could not register service with Registry: %s" % exc, "WARN")
            timer.sleep()
        raise StartupError("unable to register with Registry in allotted time")

    def deregister(self):
        if not self.registered.is_set():
            return
        try:
            if self.args.registry == "consul":
                # Deregistering the service removes its checks with it.
                self._expect(self._call("PUT", "/v1/agent/service/deregister/%s" % self.args.service), 200)
            else:
                self._expect(self._call("PUT", "/api/v3/registry", self._keeper_body("HALT")), 200, 204)
            log("deregistered %s" % self.args.service)
        except ProviderError as exc:
            log("deregistration failed: %s" % exc, "ERROR")


# -- the common API ----------------------------------------------------------------------------


class RuntimeMetrics(object):
    """2.x's /metrics numbers, from this Python process (Go's runtime.MemStats names)."""

    started = time.monotonic()

    @classmethod
    def sample(cls):
        page = resource.getpagesize()
        try:
            with open("/proc/self/statm") as handle:
                size, resident = (int(v) * page for v in handle.read().split()[:2])
        except OSError:
            size = resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        freed = sum(s.get("collected", 0) for s in gc.get_stats())
        live = len(gc.get_objects())
        times = os.times()
        elapsed = max(time.monotonic() - cls.started, 1e-6)
        busy = int(min(100, max(0, 100 * (times.user + times.system) / elapsed)))
        return {"memAlloc": resident, "memFrees": freed, "memLiveObjects": live, "memMallocs": live + freed,
                "memSys": size, "memTotalAlloc": resident, "cpuBusyAvg": busy}


def make_handler(args, release, config):
    hang = env_flag("STANDIN_PING_HANG")
    ping_status = int(os.environ.get("STANDIN_PING_STATUS", "200") or 200)
    api = release.api_version
    routes = {release.api_base + "/ping": "ping", release.api_base + "/version": "version",
              release.api_base + "/config": "config"}
    if release.has_metrics_route:
        routes[release.api_base + "/metrics"] = "metrics"

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgex-standin"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *fmt_args):  # requests show at DEBUG, as EdgeX's middleware logs them
            log("%s %s" % (self.command, self.path), "DEBUG")

        def _raw(self, status, data, content_type, extra=None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send(self, status, body):
            data = json.dumps(body, separators=(",", ":")).encode()  # Go's encoding/json is compact
            self._raw(status, data, "application/json", {"X-Correlation-ID": "standin-%d" % (time.time() * 1e6)})

        def _not_routed(self, path):
            known = path in routes
            if release.major == 2:  # gorilla/mux: text 404, empty 405
                if known:
                    self._raw(405, b"", "text/plain; charset=utf-8")
                else:
                    self._raw(404, b"404 page not found\n", "text/plain; charset=utf-8",
                              {"X-Content-Type-Options": "nosniff"})
            else:  # echo's default error handler
                message = "Method Not Allowed" if known else "Not Found"
                body = json.dumps({"message": message}, separators=(",", ":")).encode() + b"\n"
                self._raw(405 if known else 404, body, "application/json")

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            what = routes.get(path)
            if what == "ping":
                if hang:
                    time.sleep(3600)
                    return
                if ping_status != 200:
                    self._send(ping_status, {"apiVersion": api, "statusCode": ping_status,
                                             "message": "stand-in told to fail its ping"})
                    return
                self._send(200, {"apiVersion": api, "timestamp": go_unix_date(), "serviceName": args.service})
            elif what == "version":
                self._send(200, {"apiVersion": api, "version": args.version, "serviceName": args.service})
            elif what == "config":
                self._send(200, {"apiVersion": api, "config": sorted_tree(config.snapshot()),
                                 "serviceName": args.service})
            elif what == "metrics":
                self._send(200, {"apiVersion": api, "metrics": RuntimeMetrics.sample(), "serviceName": args.service})
            else:
                self._not_routed(path)

        def _other_method(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self._not_routed(self.path.split("?", 1)[0])

        do_POST = do_PUT = do_DELETE = do_PATCH = _other_method  # noqa: N815

    return Handler


class APIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# -- bare listeners: Redis, MQTT broker, any TCP port ----------------------------------------


class RedisHandler(socketserver.BaseRequestHandler):
    """Enough Redis for a probe: PING -> +PONG, QUIT -> +OK, anything else an error (inline or RESP)."""

    def handle(self):
        buffered = b""
        while True:
            try:
                data = self.request.recv(4096)
            except OSError:
                return
            if not data:
                return
            buffered += data
            while b"\n" in buffered:
                line, _sep, buffered = buffered.partition(b"\n")
                word = line.strip()
                if not word or word[:1] in (b"*", b"$"):
                    continue  # RESP array and bulk-string headers: the command word is the next line
                if word.upper() == b"PING":
                    self.request.sendall(b"+PONG\r\n")
                elif word.upper() == b"QUIT":
                    self.request.sendall(b"+OK\r\n")
                    return
                else:
                    self.request.sendall(b"-ERR unknown command '" + word[:32] + b"'\r\n")


class MQTTHandler(socketserver.BaseRequestHandler):
    """Enough MQTT 3.1.1 for a probe: CONNECT -> CONNACK accepted, PINGREQ -> PINGRESP."""

    def _read(self, count):
        data = b""
        while len(data) < count:
            chunk = self.request.recv(count - len(data))
            if not chunk:
                raise EOFError()
            data += chunk
        return data

    def handle(self):
        try:
            while True:
                packet_type = self._read(1)[0] >> 4
                length, multiplier = 0, 1
                while True:
                    byte = self._read(1)[0]
                    length += (byte & 0x7F) * multiplier
                    multiplier *= 128
                    if not byte & 0x80:
                        break
                self._read(length)
                if packet_type == 1:  # CONNECT
                    self.request.sendall(b"\x20\x02\x00\x00")
                elif packet_type == 12:  # PINGREQ
                    self.request.sendall(b"\xd0\x00")
                elif packet_type == 14:  # DISCONNECT
                    return
        except (EOFError, OSError):
            return


class TCPStandin(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, kind):
        handler = {"redis": RedisHandler, "mqtt": MQTTHandler}.get(kind, socketserver.BaseRequestHandler)
        socketserver.ThreadingTCPServer.__init__(self, address, handler)


# -- the one-shot common configuration job ---------------------------------------------------


def run_common_config_bootstrapper(args, release, provider, timer):
    """core-common-config-bootstrapper: push the common configuration unless it is there, mark it ready."""
    if not release.has_common_config:
        log("%s does not exist before EdgeX 3.0" % BOOTSTRAPPER, "ERROR")
        return 1
    if provider is None:
        log("failed to create provider client for the common configuration: no configuration provider", "ERROR")
        return 1
    base = release.common_key()
    while True:
        try:
            exists = bool(provider.get_tree(base))
            break
        except (ProviderError, ValueError) as exc:
            if not timer.has_not_elapsed():
                log("failed to determine if common configuration exists in the provider: %s" % exc, "ERROR")
                return 1
            log("Unable to determine if common configuration exists in the provider, will try again: %s" % exc,
                "WARN")
            timer.sleep()
    if exists and not args.overwrite:
        log("Skipped pushing common configuration. It already exists and overwrite flag not set")
        return 0
    host, port = provider.url.rsplit("//", 1)[1].rsplit(":", 1)
    pairs = flatten(common_defaults(release, host, int(port), provider.kind))
    try:
        provider.put("%s/%s" % (base, COMMON_CONFIG_READY), "false")
        for key in sorted(pairs):
            provider.put("%s/%s" % (base, key), pairs[key])
        provider.put("%s/%s" % (base, COMMON_CONFIG_READY), "true")
    except ProviderError as exc:
        log("failed to push common configuration: %s" % exc, "ERROR")
        return 1
    log("Common configuration has been pushed to into Configuration Provider with overrides applied")
    return 0


# -- main ------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--service", required=True, help="EdgeX service key, e.g. core-data")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on and register")
    parser.add_argument("--port", type=int, help="port to listen on and register (not for the bootstrapper)")
    parser.add_argument("--version", default="3.1.1",
                        help="the release this service is (2.x: /api/v2, edgex/<class>/2.0 KV; 3.x: edgex/v3; "
                             "4.x: edgex/v4); /version reports it")
    parser.add_argument("--registry", choices=("consul", "keeper", "none"), default="none")
    parser.add_argument("--registry-host", default="127.0.0.1")
    parser.add_argument("--registry-port", type=int)
    parser.add_argument("-cp", "--config-provider", "--configProvider", dest="config_provider",
                        help="none (default), consul, keeper, or consul.http://host:port / keeper.http://host:port "
                             "as EdgeX's -cp; EDGEX_CONFIG_PROVIDER overrides it, as in EdgeX")
    parser.add_argument("-o", "--overwrite", action="store_true",
                        help="push the defaults into the provider even when a configuration is there")
    parser.add_argument("--config-poll-interval", type=float, default=1.0,
                        help="seconds between reads of core-keeper's Writable keys (no message bus here)")
    parser.add_argument("--check-interval", default=DEFAULT_CHECK_INTERVAL,
                        help="Service.HealthCheckInterval of the defaults (the registry check interval)")
    parser.add_argument("--kind", choices=("api", "tcp", "redis", "mqtt"), default="api")
    args = parser.parse_args(argv)
    if args.registry_port is None:
        args.registry_port = PROVIDER_PORTS.get(args.registry, 8500)
    if args.port is None and args.service != BOOTSTRAPPER:
        parser.error("--port is required")
    try:
        args.release = Release(args.version)
    except ValueError as exc:
        parser.error(str(exc))
    env_provider = os.environ.get("EDGEX_CONFIG_PROVIDER")
    if env_provider:
        args.config_provider = env_provider
    try:
        args.provider = make_provider(args.config_provider, args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.provider is not None and args.provider.kind == "keeper" and args.release.major < 4:
        parser.error("core-keeper is the configuration provider of EdgeX 4.x only (this is %s)" % args.version)
    return args


def main(argv=None):
    args = parse_args(argv)
    release = args.release
    Log.app = args.service
    if env_flag("STANDIN_CRASH_ON_START"):
        log("%s: crashing on start as told" % args.service, "ERROR")
        return 1
    stop = threading.Event()
    state = {"server": None, "registry": None}

    def shutdown(signum, frame):
        if state["registry"] is not None:
            state["registry"].deregister()
        stop.set()
        if state["server"] is not None:
            threading.Thread(target=state["server"].shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, signal.SIG_IGN if env_flag("STANDIN_IGNORE_SIGTERM") else shutdown)
    signal.signal(signal.SIGINT, shutdown)
    delay = float(os.environ.get("STANDIN_START_DELAY", "0") or 0)
    if delay:
        log("%s: slow start, starting in %.1fs" % (args.service, delay))
        if stop.wait(delay):
            return 0

    timer = StartupTimer(stop)
    try:
        if args.service == BOOTSTRAPPER:
            return run_common_config_bootstrapper(args, release, args.provider, timer)
        if args.kind != "api":
            log("%s (%s) never registers itself nor reads a configuration provider" % (args.service, args.kind))
            return serve(TCPStandin((args.host, args.port), args.kind), args, stop, state)
        config = Configuration(args, release)
        if args.provider is not None:
            config.load(args.provider, timer)
        if args.registry != "none":
            registry = Registry(args, release)
            registry.register_within(timer, config.get("Service", "HealthCheckInterval",
                                                       default=DEFAULT_CHECK_INTERVAL))
            state["registry"] = registry
    except Stopped:
        return 0
    except StartupError as exc:
        log(exc.args[0], "ERROR")
        return 1

    if args.provider is not None:
        for layer, prefix in config.watch_prefixes():
            threading.Thread(target=args.provider.watch, daemon=True, name="watch-%s" % layer,
                             args=(prefix, lambda pairs, layer=layer: config.apply_writable(layer, pairs), stop,
                                   args.config_poll_interval)).start()
    server = APIServer((args.host, args.port), make_handler(args, release, config))
    return serve(server, args, stop, state)


def serve(server, args, stop, state):
    state["server"] = server
    if stop.is_set():  # SIGTERM before the server existed
        server.server_close()
        return 0
    registry = state["registry"]
    no_deregister = env_flag("STANDIN_CRASH_NO_DEREGISTER")
    crash_after = float(os.environ.get("STANDIN_CRASH_AFTER", "0") or 0)
    if crash_after:
        def crash():
            if stop.wait(crash_after):
                return
            log("%s: crashing as told%s" % (args.service, " without deregistering" if no_deregister else ""), "ERROR")
            if registry is not None and not no_deregister:
                registry.deregister()
            os._exit(1)
        threading.Thread(target=crash, daemon=True).start()
    log("%s (%s, EdgeX %s) listening on %s:%d" % (args.service, args.kind, args.version, args.host, args.port))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as exc:
        if isinstance(exc, socket.error) or exc.errno:
            log("cannot start: %s" % exc, "ERROR")
            sys.exit(2)
        raise
