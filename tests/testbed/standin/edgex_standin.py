#!/usr/bin/env python3
"""A stand-in EdgeX service: honours the v3 common API and registers like go-mod-registry.

No EdgeX image can be pulled here, so the test-bed runs this instead. It answers
GET /api/v3/ping, /api/v3/version and /api/v3/config with EdgeX's JSON shapes as the
service it is told to be, registers in Consul (agent service + HTTP check on the ping
route) or core-keeper at start, and deregisters on SIGTERM. With ``--kind tcp`` it is
only a TCP listener (redis, postgres, MQTT broker stand-ins).

Fault knobs (environment), so tests can produce what real fleets see:
  STANDIN_START_DELAY=s        listen (and register) only after s seconds
  STANDIN_PING_HANG=1          ping never answers
  STANDIN_PING_STATUS=500      ping answers with that status
  STANDIN_CRASH_AFTER=s        exit 1 after s seconds (deregistering first, unless below)
  STANDIN_CRASH_NO_DEREGISTER=1  crash without deregistering (a stale registration stays)
  STANDIN_CRASH_ON_START=1     exit 1 at once, before listening

Standard library only; runs on Python 3.9+ (a Debian minbase image with python3).
"""

import argparse
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_VERSION = "v3"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def go_unix_date(now=None):
    """Go's time.UnixDate ("Mon Jan _2 15:04:05 MST 2006") in UTC, as EdgeX's ping returns."""
    t = time.gmtime(now)
    return "%s %s %2d %02d:%02d:%02d UTC %d" % (
        WEEKDAYS[t.tm_wday], MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_year)


def log(message):
    sys.stderr.write("%s standin: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), message))
    sys.stderr.flush()


def env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


class Registry(object):
    """Registration as go-mod-registry does it; every call is best effort and retried."""

    def __init__(self, args):
        self.args = args
        self.base = "http://%s:%d" % (args.registry_host, args.registry_port)
        self.token = os.environ.get("CONSUL_HTTP_TOKEN") or os.environ.get("EDGEX_REGISTRY_TOKEN")
        self.registered = threading.Event()

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("X-Consul-Token", self.token)
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()

    def _consul_register(self):
        a = self.args
        self._call("PUT", "/v1/agent/service/register",
                   {"ID": a.service, "Name": a.service, "Address": a.host, "Port": a.port})
        self._call("PUT", "/v1/agent/check/register", {
            "ID": a.service,
            "Name": "Health Check: %s" % a.service,
            "Notes": "Check the health of the API",
            "ServiceID": a.service,
            "HTTP": "http://%s:%d/api/%s/ping" % (a.host, a.port, API_VERSION),
            "Interval": a.check_interval,
        })

    def _consul_deregister(self):
        self._call("PUT", "/v1/agent/service/deregister/%s" % self.args.service)
        self._call("PUT", "/v1/agent/check/deregister/%s" % self.args.service)

    def _keeper_body(self, status):
        a = self.args
        # Registration.HealthCheck is a named field: Go's encoding/json nests it (",inline" is ignored).
        return {"apiVersion": API_VERSION, "registration": {
            "serviceId": a.service, "host": a.host, "port": a.port, "status": status,
            "healthCheck": {"interval": a.check_interval, "path": "/api/%s/ping" % API_VERSION, "type": "http"}}}

    def _keeper_register(self):
        try:
            self._call("POST", "/api/v3/registry", self._keeper_body("UP"))
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already registered (e.g. after a restart): update instead
                raise
            self._call("PUT", "/api/v3/registry", self._keeper_body("UP"))

    def _keeper_deregister(self):
        self._call("PUT", "/api/v3/registry", self._keeper_body("HALT"))

    def register_until_done(self, stop):
        register = self._consul_register if self.args.registry == "consul" else self._keeper_register
        delay = 0.5
        while not stop.is_set():
            try:
                register()
                self.registered.set()
                log("registered %s in %s at %s" % (self.args.service, self.args.registry, self.base))
                return
            except (OSError, urllib.error.URLError) as exc:
                # EdgeX services keep serving on local config when the registry is absent.
                log("registry not reachable (%s); retrying" % exc)
            stop.wait(delay)
            delay = min(delay * 2, 5)

    def deregister(self):
        if not self.registered.is_set():
            return
        try:
            if self.args.registry == "consul":
                self._consul_deregister()
            else:
                self._keeper_deregister()
            log("deregistered %s" % self.args.service)
        except (OSError, urllib.error.URLError) as exc:
            log("deregistration failed: %s" % exc)


def service_config(args):
    """A trimmed EdgeX service configuration, in the shape /api/v3/config returns."""
    return {
        "Writable": {"LogLevel": "INFO", "InsecureSecrets": {}, "Telemetry": {"Interval": "30s"}},
        "Service": {
            "Host": args.host, "Port": args.port, "ServerBindAddr": "", "StartupMsg": "This is the %s Microservice"
            % args.service, "MaxResultCount": 1024, "MaxRequestSize": 0, "RequestTimeout": "5s",
            "HealthCheckInterval": args.check_interval,
        },
        "Registry": {"Host": args.registry_host, "Port": args.registry_port, "Type": args.registry},
        "Clients": {},
        "Database": {"Host": "localhost", "Port": 6379, "Timeout": "5s", "Type": "redisdb"},
        "MessageBus": {"Protocol": "redis", "Host": "localhost", "Port": 6379, "Type": "redis",
                       "BaseTopicPrefix": "edgex"},
    }


def make_handler(args):
    hang = env_flag("STANDIN_PING_HANG")
    ping_status = int(os.environ.get("STANDIN_PING_STATUS", "200") or 200)
    prefix = "/api/%s" % API_VERSION

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgex-standin"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *fmt_args):  # keep container logs quiet
            return

        def _send(self, status, body):
            data = json.dumps(body, separators=(",", ":")).encode()  # Go's encoding/json is compact
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Correlation-ID", "standin-%d" % (time.time() * 1e6))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == prefix + "/ping":
                if hang:
                    time.sleep(3600)
                    return
                if ping_status != 200:
                    self._send(ping_status, {"apiVersion": API_VERSION, "statusCode": ping_status,
                                             "message": "stand-in told to fail its ping"})
                    return
                self._send(200, {"apiVersion": API_VERSION, "timestamp": go_unix_date(),
                                 "serviceName": args.service})
            elif path == prefix + "/version":
                self._send(200, {"apiVersion": API_VERSION, "version": args.version, "serviceName": args.service})
            elif path == prefix + "/config":
                self._send(200, {"apiVersion": API_VERSION, "config": service_config(args),
                                 "serviceName": args.service})
            else:
                self._send(404, {"apiVersion": API_VERSION, "statusCode": 404,
                                 "message": "route %s not found" % path})

    return Handler


class TCPStandin(socketserver.ThreadingTCPServer):
    """Accepts connections and closes them: enough for a port probe of redis/postgres/MQTT."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address):
        socketserver.ThreadingTCPServer.__init__(self, address, socketserver.BaseRequestHandler)


class APIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--service", required=True, help="EdgeX service key, e.g. core-data")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on and register")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", default="3.1.1")
    parser.add_argument("--registry", choices=("consul", "keeper", "none"), default="none")
    parser.add_argument("--registry-host", default="127.0.0.1")
    parser.add_argument("--registry-port", type=int)
    parser.add_argument("--check-interval", default="10s")
    parser.add_argument("--kind", choices=("api", "tcp"), default="api")
    args = parser.parse_args(argv)
    if args.registry_port is None:
        args.registry_port = 59890 if args.registry == "keeper" else 8500
    return args


def main(argv=None):
    args = parse_args(argv)
    if env_flag("STANDIN_CRASH_ON_START"):
        log("%s: crashing on start as told" % args.service)
        return 1
    delay = float(os.environ.get("STANDIN_START_DELAY", "0") or 0)
    if delay:
        log("%s: slow start, listening in %.1fs" % (args.service, delay))
        time.sleep(delay)

    address = (args.host, args.port)
    server = TCPStandin(address) if args.kind == "tcp" else APIServer(address, make_handler(args))
    stop = threading.Event()
    registry = Registry(args) if args.registry != "none" and args.kind == "api" else None
    no_deregister = env_flag("STANDIN_CRASH_NO_DEREGISTER")

    def shutdown(signum, frame):
        if registry is not None:
            registry.deregister()
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if registry is not None:
        threading.Thread(target=registry.register_until_done, args=(stop,), daemon=True).start()

    crash_after = float(os.environ.get("STANDIN_CRASH_AFTER", "0") or 0)
    if crash_after:
        def crash():
            if stop.wait(crash_after):
                return
            log("%s: crashing as told%s" % (args.service, " without deregistering" if no_deregister else ""))
            if registry is not None and not no_deregister:
                registry.deregister()
            os._exit(1)
        threading.Thread(target=crash, daemon=True).start()

    log("%s (%s) listening on %s:%d" % (args.service, args.kind, args.host, args.port))
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
            log("cannot start: %s" % exc)
            sys.exit(2)
        raise
