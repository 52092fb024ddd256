#!/usr/bin/env python3
"""A simulated EdgeX fleet on loopback: N gateways x M services, the Consul emulator seeded with
the same nodes and registrations, and the inventories to reach them.

    fleet.py up [--gateways 1000] [--services 12] [--hung 0.05] [--failing F] [--slow F]
                [--wrong F] [--warning F] [--down F] [--seed 1] [--base 127.10.0.0]
    fleet.py down
    fleet.py status

(``make fleet-up N=1000`` / ``make fleet-down``.) What ``up`` leaves in the state directory
(``fleet-state/`` at the repo root, or $EDGEX_FLEET_STATE):

  fleet.json        the spec: every gateway (node name, loopback address) and service (port, fault)
  edgex.edgex.yml   an inventory through the edgex inventory plugin, pointing at the emulator
  static.yml        the same hosts as a static YAML inventory (group ``edgex``)
  group_vars/all.yml  for both: ansible_connection local, the roles' registry variables
  docker.sock       a stand-in Docker engine: every container reads as running (check-mode plans)
  *.log, *.pid      the two processes: the Consul emulator and the gateways

Gateways: gateway i (0-based) is node ``gw-%05d`` % (i + 1) on address ``base + 1 + i`` (127.10.0.1,
127.10.0.2, ...: all of 127.0.0.0/8 is local on Linux; the docker test-bed keeps to 127.0.0.1-9).
Every service listens on its EdgeX port on its gateway's address and answers the EdgeX v3 common
API as tests/testbed/standin/edgex_standin.py does: GET /api/v3/ping, /api/v3/version and
/api/v3/config (HTTP/1.0 and 1.1, keep-alive), 404 with EdgeX's error JSON elsewhere. One asyncio
loop in one process serves every socket.

Faults (fractions of all services, drawn with --seed, at most one per service) act on the ping,
as the stand-in's knobs do, and the seeded Consul check says what Consul's HTTP check would:

  hung     accepts, reads the request, never answers              check critical (deadline exceeded)
  failing  answers 500 with EdgeX's error JSON                    check critical (500)
  slow     answers after --slow-delay seconds                     check passing
  wrong    answers as another service (serviceName mismatch)      check passing
  warning  answers normally                                       check warning (-> degraded)
  down     nothing listens (crashed without deregistering)        check critical (refused)

The Consul emulator (tests/testbed/consul_emulator.py, its own process) gets every node and
registration in one POST /_emulator/catalog; its own agent node is removed from the catalog so the
inventory holds the N gateways only. Checks keep their seeded status (nothing runs 12,000 HTTP
checks).

Cost (measured, 2 CPUs): one listening socket per service, so 1,000 x 12 needs 12,000 descriptors
plus one per open connection. ``serve`` raises its soft RLIMIT_NOFILE to the hard limit and refuses to
start when that is not enough (``make fleet-up`` raises the hard limit first, as root). See
bench/README.md ("fleet") for start-up time and memory per size.

Standard library only.
"""

import argparse
import asyncio
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STATE_DIR = os.environ.get("EDGEX_FLEET_STATE", os.path.join(REPO, "fleet-state"))
EMULATOR = os.path.join(HERE, "consul_emulator.py")

API_VERSION = "v3"
PING = "/api/%s/ping" % API_VERSION
# The Napa 3.1 services that register in Consul and answer the common API, with their ports.
SERVICES = (
    ("core-metadata", 59881), ("core-data", 59880), ("core-command", 59882),
    ("support-notifications", 59860), ("support-scheduler", 59861), ("app-rules-engine", 59701),
    ("device-virtual", 59900), ("device-rest", 59986), ("device-modbus", 59901), ("device-mqtt", 59982),
    ("app-http-export", 59704), ("app-external-mqtt-trigger", 59706),
)
FAULTS = ("hung", "failing", "slow", "wrong", "warning", "down")
# What edgex_health says of a service with each fault (None: no fault).
EXPECTED_VERDICTS = {None: "healthy", "slow": "healthy", "hung": "unhealthy", "failing": "unhealthy",
                     "wrong": "unhealthy", "down": "unhealthy", "warning": "degraded"}
DEFAULT_BASE = "127.10.0.0"
DEFAULT_CONSUL = "127.9.255.254"
REASONS = {200: "OK", 404: "Not Found", 400: "Bad Request", 500: "Internal Server Error"}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --------------------------------------------------------------------------- the spec


def gateway_name(index):
    return "gw-%05d" % (index + 1)


def gateway_address(base, index):
    address = ipaddress.IPv4Address(base) + 1 + index
    if address not in ipaddress.IPv4Network("127.0.0.0/8"):
        raise ValueError("gateway %d of base %s is outside 127.0.0.0/8" % (index, base))
    return str(address)


def build_spec(gateways, services=len(SERVICES), fractions=None, seed=1, base=DEFAULT_BASE, slow_delay=1.0,
               datacenter="dc1"):
    """The fleet as data: {"params", "gateways": [{"name", "address", "services": [{"name", "port",
    "fault"}]}]}. Deterministic for the same arguments."""
    if not 1 <= services <= len(SERVICES):
        raise ValueError("services must be 1..%d" % len(SERVICES))
    fractions = {fault: float(share) for fault, share in (fractions or {}).items() if share}
    unknown = set(fractions) - set(FAULTS)
    if unknown:
        raise ValueError("unknown fault(s) %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(FAULTS)))
    total = gateways * services
    counts = {fault: int(round(share * total)) for fault, share in fractions.items()}
    if sum(counts.values()) > total:
        raise ValueError("the fault fractions add up to more than every service")
    chosen = random.Random(seed).sample(range(total), sum(counts.values()))
    faults = {}
    for fault in FAULTS:  # a fixed order, so the same seed gives the same faults
        for _ in range(counts.get(fault, 0)):
            faults[chosen.pop()] = fault
    fleet = []
    for index in range(gateways):
        fleet.append({"name": gateway_name(index), "address": gateway_address(base, index), "services": [
            {"name": name, "port": port, "fault": faults.get(index * services + position)}
            for position, (name, port) in enumerate(SERVICES[:services])]})
    return {"params": {"gateways": gateways, "services": services, "fractions": fractions, "counts": counts,
                       "seed": seed, "base": base, "slow_delay": slow_delay, "datacenter": datacenter},
            "gateways": fleet}


def expected_verdicts(spec):
    """{(node, service): verdict} that edgex_health should give (probe timeout above slow_delay)."""
    return {(g["name"], s["name"]): EXPECTED_VERDICTS[s["fault"]] for g in spec["gateways"] for s in g["services"]}


def _check(gateway, service):
    """(status, output) of the Consul HTTP check that a service with this fault would have."""
    url = "http://%s:%d%s" % (gateway["address"], service["port"], PING)
    fault = service["fault"]
    if fault == "hung":
        return "critical", 'Get "%s": context deadline exceeded (Client.Timeout exceeded while awaiting headers)' % url
    if fault == "failing":
        return "critical", "HTTP GET %s: 500 Internal Server Error Output: " % url
    if fault == "down":
        return "critical", 'Get "%s": dial tcp %s:%d: connect: connection refused' % (
            url, gateway["address"], service["port"])
    if fault == "warning":
        return "warning", "HTTP GET %s: 429 Too Many Requests Output: " % url
    return "passing", "HTTP GET %s: 200 OK Output: " % url


def consul_catalog(spec):
    """The body of the emulator's POST /_emulator/catalog for ``spec``."""
    nodes = []
    for gateway in spec["gateways"]:
        services = []
        for service in gateway["services"]:
            status, output = _check(gateway, service)
            services.append({"id": service["name"], "name": service["name"], "port": service["port"],
                             "address": gateway["address"], "check": {"status": status, "output": output}})
        nodes.append({"name": gateway["name"], "address": gateway["address"],
                      "meta": {"edgex-site": "site-%d" % (int(gateway["name"][3:]) % 10)}, "services": services})
    return {"datacenter": spec["params"]["datacenter"], "nodes": nodes}


def static_inventory(spec, host_vars=None, group_vars=None):
    """A static YAML inventory of the fleet: group ``edgex``, ``ansible_host`` the gateway's address."""
    hosts = {}
    for gateway in spec["gateways"]:
        hosts[gateway["name"]] = dict({"ansible_host": gateway["address"]}, **(host_vars or {}))
    return {"all": {"children": {"edgex": {"hosts": hosts, "vars": dict(
        {"ansible_connection": "local"}, **(group_vars or {}))}}}}


def plugin_inventory(consul_host, consul_port, datacenter="dc1"):
    """The text of an edgex inventory plugin file (``*.edgex.yml``) pointing at the emulator.
    ansible_connection comes from group_vars/all.yml beside it: a ``compose`` would template it
    for every host, a cost that is not the plugin's."""
    return ("plugin: edgex.sysmgmt.edgex\nregistry_type: consul\nhost: %s\nport: %d\ndatacenter: %s\n"
            "timeout: 120\n" % (consul_host, consul_port, datacenter))


# --------------------------------------------------------------------------- the gateways


def go_unix_date(now=None):
    """Go's time.UnixDate in UTC, as EdgeX's ping returns it."""
    t = time.gmtime(now)
    return "%s %s %2d %02d:%02d:%02d UTC %d" % (
        WEEKDAYS[t.tm_wday], MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_year)


def http_answer(status, body, keep_alive):
    """An EdgeX service's answer as the stand-in sends it: HTTP/1.1, compact JSON (Go's encoding/json),
    Content-Length, X-Correlation-ID. bench/health/endpoints.py answers with it too."""
    data = json.dumps(body, separators=(",", ":")).encode()
    head = ("HTTP/1.1 %d %s\r\nServer: edgex-standin\r\nDate: %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\nX-Correlation-ID: standin-%d\r\n%s\r\n"
            % (status, REASONS.get(status, "Status"), time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
               len(data), time.time() * 1e6, "" if keep_alive else "Connection: close\r\n"))
    return head.encode("latin-1") + data


def service_config(address, service):
    """A trimmed EdgeX service configuration, the shape of GET /api/v3/config."""
    return {"Writable": {"LogLevel": "INFO", "InsecureSecrets": {}, "Telemetry": {"Interval": "30s"}},
            "Service": {"Host": address, "Port": service["port"], "ServerBindAddr": "",
                        "StartupMsg": "This is the %s Microservice" % service["name"], "MaxResultCount": 1024,
                        "RequestTimeout": "5s", "HealthCheckInterval": "10s"},
            "Registry": {"Host": "localhost", "Port": 8500, "Type": "consul"},
            "MessageBus": {"Protocol": "redis", "Host": "localhost", "Port": 6379, "Type": "redis"}}


class Counters(object):
    def __init__(self):
        self.requests = 0
        self.by_fault = dict.fromkeys(("ok",) + FAULTS, 0)


class ServiceProtocol(asyncio.Protocol):
    """One connection to one simulated EdgeX service."""

    def __init__(self, address, service, other_name, slow_delay, counters):
        self.address = address
        self.service = service
        self.other_name = other_name  # what a "wrong" service calls itself
        self.slow_delay = slow_delay
        self.counters = counters
        self.transport = None
        self.buffer = b""
        self.hung = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.hung:
            return  # a hung service reads and never answers
        self.buffer += data
        while not self.hung and b"\r\n\r\n" in self.buffer and not self.transport.is_closing():
            head, _sep, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self._answer(head.decode("latin-1").split("\r\n"))
        if len(self.buffer) > 65536:
            self.transport.close()

    def _answer(self, lines):
        parts = lines[0].split()
        if len(parts) != 3:
            self._send(400, {"apiVersion": API_VERSION, "statusCode": 400, "message": "bad request"}, False)
            return
        headers = {k.strip().lower(): v.strip() for k, _s, v in (line.partition(":") for line in lines[1:])}
        keep_alive = parts[2] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        path = parts[1].split("?", 1)[0]
        self.counters.requests += 1
        name, fault = self.service["name"], self.service["fault"]
        if path == PING:
            self.counters.by_fault[fault or "ok"] += 1
            if fault == "hung":
                self.hung = True
                return
            if fault == "failing":
                self._send(500, {"apiVersion": API_VERSION, "statusCode": 500, "message": "simulated failure"},
                           keep_alive)
                return
            body = {"apiVersion": API_VERSION, "timestamp": go_unix_date(),
                    "serviceName": self.other_name if fault == "wrong" else name}
            if fault == "slow":
                asyncio.get_running_loop().call_later(self.slow_delay, self._send, 200, body, keep_alive)
                self.hung = True  # nothing else is read until the slow answer is out
                return
            self._send(200, body, keep_alive)
        elif path == "/api/%s/version" % API_VERSION:
            self._send(200, {"apiVersion": API_VERSION, "version": "3.1.1", "serviceName": name}, keep_alive)
        elif path == "/api/%s/config" % API_VERSION:
            self._send(200, {"apiVersion": API_VERSION, "serviceName": name,
                             "config": service_config(self.address, self.service)}, keep_alive)
        else:
            self._send(404, {"apiVersion": API_VERSION, "statusCode": 404, "message": "route %s not found" % path},
                       keep_alive)

    def _send(self, status, body, keep_alive):
        if self.transport.is_closing():
            return
        self.transport.write(http_answer(status, body, keep_alive))
        if self.service["fault"] == "slow":
            self.hung = False
        if not keep_alive:
            self.transport.close()


class EngineProtocol(asyncio.Protocol):
    """A stand-in Docker engine on a unix socket: GET /containers/<name>/json says running, so
    executor state reads (check-mode plans, check_executor) work on simulated gateways."""

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        request_line = self.buffer.split(b"\r\n", 1)[0].decode("latin-1").split()
        path = request_line[1].split("?", 1)[0] if len(request_line) > 1 else ""
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[-1] == "json" and parts[-3] == "containers":
            name = parts[-2]
            body = {"Id": "%064x" % (hash(name) & (2 ** 256 - 1)), "Name": "/" + name,
                    "State": {"Status": "running", "Running": True, "Paused": False, "Restarting": False,
                              "OOMKilled": False, "Dead": False, "Pid": 1, "ExitCode": 0, "Error": ""}}
            self.transport.write(http_answer(200, body, False))
        else:
            self.transport.write(http_answer(404, {"message": "page not found"}, False))
        self.transport.close()


def listening_socket(address, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    # A burst of probes from 50 forks x 32 workers, or one controller-side task with many workers.
    sock.listen(256)
    sock.setblocking(False)
    return sock


def descriptors_needed(spec):
    """Listening sockets plus room for open connections and the process itself."""
    listening = sum(1 for g in spec["gateways"] for s in g["services"] if s["fault"] != "down")
    return listening + 4096


def raise_nofile(needed):
    """Soft RLIMIT_NOFILE up to the hard limit; an error naming both when that is not enough."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit("fleet: needs %d file descriptors, the hard limit is %d (ulimit -Hn; "
                             "make fleet-up raises it as root)" % (needed, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def serve_gateways(spec, engine_socket=None, ready=None):
    """Bind every service of ``spec`` (and the engine socket), call ready(), serve until SIGTERM."""
    loop = asyncio.get_running_loop()
    counters = Counters()
    slow_delay = spec["params"]["slow_delay"]
    names = [name for name, _port in SERVICES]
    servers = []
    for gateway in spec["gateways"]:
        for service in gateway["services"]:
            if service["fault"] == "down":
                continue
            other = names[(names.index(service["name"]) + 1) % len(names)]
            factory = (lambda a=gateway["address"], s=service, o=other:
                       ServiceProtocol(a, s, o, slow_delay, counters))
            sock = listening_socket(gateway["address"], service["port"])
            servers.append(await loop.create_server(factory, sock=sock))
    if engine_socket:
        if os.path.exists(engine_socket):
            os.unlink(engine_socket)
        servers.append(await loop.create_unix_server(EngineProtocol, path=engine_socket))
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready:
        ready(len(servers))
    await stop.wait()
    for server in servers:
        server.close()
    sys.stderr.write("fleet: %d requests; pings by fault: %s\n" % (counters.requests, json.dumps(counters.by_fault)))


def write_atomically(path, text):
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def serve_main(args):
    with open(args.spec) as handle:
        spec = json.load(handle)
    raise_nofile(descriptors_needed(spec))
    started = time.monotonic()

    def ready(count):
        write_atomically(args.ready_file, json.dumps({"pid": os.getpid(), "sockets": count,
                                                      "seconds": round(time.monotonic() - started, 3)}))
    asyncio.run(serve_gateways(spec, args.engine_socket, ready))
    return 0


# --------------------------------------------------------------------------- the whole fleet


def _free_port(host):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait_for_file(path, process, timeout, what):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if process.poll() is not None:
            raise RuntimeError("%s exited with %s before it was ready" % (what, process.returncode))
        if time.monotonic() > deadline:
            raise RuntimeError("%s not ready after %.0fs" % (what, timeout))
        time.sleep(0.05)
    with open(path) as handle:
        return handle.read()


def _post(url, body, timeout=300):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


class Fleet(object):
    """The simulated fleet's processes and files. ``gateways=False`` seeds Consul only (inventory
    benches need no listening services)."""

    def __init__(self, spec, state_dir, consul_address=DEFAULT_CONSUL, python=sys.executable, gateways=True):
        self.spec = spec
        self.dir = os.path.abspath(state_dir)
        self.consul_host = consul_address
        self.consul_port = None
        self.python = python
        self.with_gateways = gateways
        self.processes = {}
        self.timings = {}

    @property
    def consul_url(self):
        return "http://%s:%d" % (self.consul_host, self.consul_port)

    @property
    def group_vars(self):
        """group_vars/all.yml beside the inventories: local connections, and where the roles'
        modules find the registry."""
        return {"ansible_connection": "local", "edgex_registry_type": "consul",
                "edgex_registry_host": self.consul_host, "edgex_registry_port": self.consul_port}

    @property
    def engine_socket(self):
        return os.path.join(self.dir, "docker.sock")

    @property
    def plugin_inventory_path(self):
        return os.path.join(self.dir, "edgex.edgex.yml")

    @property
    def static_inventory_path(self):
        return os.path.join(self.dir, "static.yml")

    def _spawn(self, name, argv):
        log = open(os.path.join(self.dir, "%s.log" % name), "ab")
        # its own session: `fleet.py down` (or a test's finally) stops it, not the caller's terminal
        process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True, close_fds=True)
        log.close()
        self.processes[name] = process
        write_atomically(os.path.join(self.dir, "%s.pid" % name), str(process.pid))
        return process

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        spec_path = os.path.join(self.dir, "fleet.json")
        write_atomically(spec_path, json.dumps(self.spec))
        try:
            self._start_consul()
            if self.with_gateways:
                self._start_gateways(spec_path)
            self._write_inventories()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_consul(self):
        started = time.monotonic()
        self.consul_port = _free_port(self.consul_host)
        agent = "fleet-consul-server"
        process = self._spawn("consul", [self.python, EMULATOR, "--port", str(self.consul_port),
                                         "--datacenter", self.spec["params"]["datacenter"],
                                         "--node", "%s=%s" % (agent, self.consul_host)])
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((self.consul_host, self.consul_port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Consul emulator did not start (see %s/consul.log)" % self.dir)
                time.sleep(0.05)
        _post(self.consul_url + "/_emulator/catalog", consul_catalog(self.spec))
        # the emulator's own agent is no gateway: only the fleet's nodes stay in the catalog
        request = urllib.request.Request(self.consul_url + "/v1/catalog/deregister", method="PUT",
                                         data=json.dumps({"Node": agent}).encode())
        urllib.request.urlopen(request, timeout=60).close()
        self.timings["consul_seconds"] = round(time.monotonic() - started, 3)

    def _start_gateways(self, spec_path):
        ready_file = os.path.join(self.dir, "gateways.ready")
        if os.path.exists(ready_file):
            os.unlink(ready_file)
        process = self._spawn("gateways", [self.python, os.path.abspath(__file__), "serve", "--spec", spec_path,
                                           "--ready-file", ready_file, "--engine-socket", self.engine_socket])
        try:
            ready = json.loads(_wait_for_file(ready_file, process, 300, "the gateways process"))
        except RuntimeError as exc:
            with open(os.path.join(self.dir, "gateways.log"), "rb") as handle:
                last = handle.read().decode("utf-8", "replace").strip().splitlines()[-1:]
            raise RuntimeError("%s: %s" % (exc, last[0] if last else "see %s/gateways.log" % self.dir))
        self.timings["gateways_seconds"] = ready["seconds"]
        self.timings["sockets"] = ready["sockets"]

    def _write_inventories(self):
        import yaml  # the venv has PyYAML; the served fleet itself needs nothing beyond the standard library

        write_atomically(self.plugin_inventory_path, plugin_inventory(
            self.consul_host, self.consul_port, self.spec["params"]["datacenter"]))
        write_atomically(self.static_inventory_path, yaml.safe_dump(static_inventory(self.spec),
                                                                    default_flow_style=False))
        os.makedirs(os.path.join(self.dir, "group_vars"), exist_ok=True)
        write_atomically(os.path.join(self.dir, "group_vars", "all.yml"), yaml.safe_dump(self.group_vars))
        write_atomically(os.path.join(self.dir, "fleet-state.json"), json.dumps({
            "consul": self.consul_url, "engine_socket": self.engine_socket,
            "plugin_inventory": self.plugin_inventory_path, "static_inventory": self.static_inventory_path,
            "pids": {name: p.pid for name, p in self.processes.items()}, "timings": self.timings}, indent=2))

    def memory_kib(self):
        """{process: (RSS, PSS) in KiB} of the fleet's processes, from /proc."""
        memory = {}
        for name, process in self.processes.items():
            memory[name] = _memory_of(process.pid)
        return memory

    def stop(self):
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            pid_file = os.path.join(self.dir, "%s.pid" % name)
            if os.path.exists(pid_file):
                os.unlink(pid_file)
        self.processes = {}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _memory_of(pid):
    rss = pss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return {"rss_kib": rss, "pss_kib": pss}


def stop_from_pid_files(state_dir):
    """``fleet.py down``: stop what the pid files name, only if it is still our process."""
    stopped = []
    scripts = {"gateways": b"fleet.py", "consul": b"consul_emulator.py"}
    for name in ("gateways", "consul"):
        pid_file = os.path.join(state_dir, "%s.pid" % name)
        if not os.path.exists(pid_file):
            continue
        with open(pid_file) as handle:
            pid = int(handle.read().strip() or 0)
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                ours = scripts[name] in handle.read()
            if ours:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        stopped.append(name)
        os.unlink(pid_file)
    engine = os.path.join(state_dir, "docker.sock")
    if os.path.exists(engine):
        os.unlink(engine)
    return stopped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the fleet (Consul emulator + gateways) and write the inventories")
    up.add_argument("--gateways", type=int, default=1000)
    up.add_argument("--services", type=int, default=len(SERVICES))
    for fault in FAULTS:
        up.add_argument("--%s" % fault, type=float, default=0.05 if fault == "hung" else 0.0,
                        help="fraction of all services that are %s" % fault)
    up.add_argument("--slow-delay", type=float, default=1.0)
    up.add_argument("--seed", type=int, default=1)
    up.add_argument("--base", default=DEFAULT_BASE, help="gateway i listens on base + 1 + i")
    up.add_argument("--consul-address", default=DEFAULT_CONSUL)
    up.add_argument("--dir", default=STATE_DIR)
    down = sub.add_parser("down", help="stop what `up` started")
    down.add_argument("--dir", default=STATE_DIR)
    status = sub.add_parser("status", help="print fleet-state.json and the processes' memory")
    status.add_argument("--dir", default=STATE_DIR)
    serve = sub.add_parser("serve", help="(internal) serve the gateways of a spec")
    serve.add_argument("--spec", required=True)
    serve.add_argument("--ready-file", required=True)
    serve.add_argument("--engine-socket")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return serve_main(args)
    if args.command == "down":
        stopped = stop_from_pid_files(args.dir)
        print("fleet: stopped %s" % (", ".join(stopped) or "nothing (no pid files in %s)" % args.dir))
        return 0
    if args.command == "status":
        path = os.path.join(args.dir, "fleet-state.json")
        if not os.path.exists(path):
            print("fleet: not up (no %s)" % path)
            return 1
        with open(path) as handle:
            state = json.load(handle)
        state["memory"] = {name: _memory_of(pid) for name, pid in state["pids"].items()}
        print(json.dumps(state, indent=2))
        return 0

    stop_from_pid_files(args.dir)  # a fleet left running is replaced, not doubled
    fractions = {fault: getattr(args, fault) for fault in FAULTS}
    spec = build_spec(args.gateways, args.services, fractions, args.seed, args.base, args.slow_delay)
    fleet = Fleet(spec, args.dir, args.consul_address)
    fleet.start()
    fleet.processes = {}  # they outlive this command; `down` stops them through the pid files
    print("fleet: %d gateways x %d services (%s) up in %s; Consul at %s" % (
        args.gateways, args.services, json.dumps(spec["params"]["counts"]), json.dumps(fleet.timings),
        fleet.consul_url))
    print("  ansible-playbook -i %s playbooks/health.yml   (or -i %s)" % (
        fleet.plugin_inventory_path, fleet.static_inventory_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
