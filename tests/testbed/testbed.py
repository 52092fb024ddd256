#!/usr/bin/env python3
"""The edgex.sysmgmt test-bed: gateways of EdgeX stand-ins around a Consul emulator, on Docker.

    testbed.py image                 build (or reuse) the stand-in image, print its tag
    testbed.py up [--gateways N]     start the registry and every gateway's services
    testbed.py status                what runs and what the registry knows
    testbed.py down                  remove everything the test-bed started (idempotent)

Gateway gwN answers on 127.0.0.N (loopback only). The registry container
``edgex-core-consul`` runs the Consul emulator with one agent per gateway, on port 8500 of
each gateway address. Each gateway runs the Napa (3.1) service set as containers named as
edgex-compose names them (``edgex-core-data``; ``gwN-edgex-core-data`` past the first gateway),
all on ``--network host``. ``testbed-state/manifest.yml`` records the deployment in the
collection's manifest format.
"""

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from tests.testbed.images import LABEL, standin_image  # noqa: E402

STATE_DIR = os.environ.get("EDGEX_TESTBED_STATE", os.path.join(REPO, "testbed-state"))
LOCK_PATH = "/tmp/edgex-testbed.lock"
REGISTRY_CONTAINER = "edgex-core-consul"
CONSUL_PORT = 8500

# service key -> (port, kind, depends_on): the Napa 3.1.1 no-secty compose file's set,
# without the one-shot config bootstrapper, eKuiper and the UI (not EdgeX-API services).
NAPA_SERVICES = {
    "database": (6379, "tcp", []),
    "core-metadata": (59881, "api", ["consul", "database"]),
    "core-data": (59880, "api", ["consul", "core-metadata", "database"]),
    "core-command": (59882, "api", ["consul", "core-metadata", "database"]),
    "support-notifications": (59860, "api", ["consul", "database"]),
    "support-scheduler": (59861, "api", ["consul", "database"]),
    "device-virtual": (59900, "api", ["consul", "core-data", "core-metadata"]),
    "app-rules-engine": (59701, "api", ["consul", "core-data"]),
}
CONTAINER_OF = {"database": "edgex-redis"}


def log(message):
    sys.stderr.write("testbed: %s\n" % message)
    sys.stderr.flush()


def gateway_address(number):
    return "127.0.0.%d" % number


def container_name(gateway, service):
    base = CONTAINER_OF.get(service, "edgex-%s" % service)
    return base if gateway == "gw1" else "%s-%s" % (gateway, base)


def docker(*argv, check=True, capture=True):
    result = subprocess.run(["docker"] + list(argv), capture_output=capture, text=True)
    if check and result.returncode != 0:
        raise RuntimeError("docker %s failed: %s" % (" ".join(argv), (result.stderr or "").strip()))
    return result.stdout if capture else ""


def run_container(image, name, gateway, service, command, env=None, entrypoint=None):
    # --pull never: the image is built here; a missing one must fail, not reach for a registry.
    argv = ["run", "-d", "--pull", "never", "--name", name, "--network", "host", "--label", LABEL,
            "--label", "edgex.gateway=%s" % gateway, "--label", "edgex.service=%s" % service,
            "--stop-timeout", "5"]
    for key, value in (env or {}).items():
        argv += ["-e", "%s=%s" % (key, value)]
    if entrypoint:
        argv += ["--entrypoint", entrypoint]
    docker(*(argv + [image] + command))


def wait_http(url, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return json.loads(response.read() or b"null")
        except (OSError, ValueError):
            time.sleep(0.1)
    raise RuntimeError("%s did not answer within %.0fs" % (url, timeout))


def standin_command(service, address, check_interval, registry_port=CONSUL_PORT):
    port, kind, _deps = NAPA_SERVICES[service]
    return ["--service", service, "--host", address, "--port", str(port), "--kind", kind,
            "--registry", "consul", "--registry-host", address, "--registry-port", str(registry_port),
            "--check-interval", check_interval]


def manifest(gateways, check_interval):
    """The deployment in the collection's manifest format (docs/manifest.md)."""
    hosts = {}
    for number in range(1, gateways + 1):
        gateway = "gw%d" % number
        address = gateway_address(number)
        services = {"consul": {
            "executor": "docker", "target": REGISTRY_CONTAINER, "address": address, "port": CONSUL_PORT,
            "health": "/v1/status/leader", "depends_on": [], "tags": [], "meta": {}}}
        for service, (port, kind, deps) in NAPA_SERVICES.items():
            services[service] = {
                "executor": "docker", "target": container_name(gateway, service), "address": address, "port": port,
                "health": "/api/v3/ping" if kind == "api" else None, "depends_on": list(deps), "tags": [],
                "meta": {}}
        hosts[gateway] = {"address": address, "datacenter": "dc1", "meta": {}, "services": services}
    return {"version": 1, "generated_from": "testbed", "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "hosts": hosts}


def write_yaml(path, data):
    import yaml

    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        yaml.safe_dump(data, handle, sort_keys=False, default_flow_style=False)
    os.replace(tmp, path)


class Lock(object):
    """The flock every docker-using test and the CLI hold, so runs never collide on names or ports.

    Re-entrant within one process (a fixture holding it may call code that takes it again)."""

    _depth = 0
    _handle = None

    def __init__(self, path=LOCK_PATH):
        self.path = path

    def __enter__(self):
        if Lock._depth == 0:
            Lock._handle = open(self.path, "w")
            fcntl.flock(Lock._handle, fcntl.LOCK_EX)
        Lock._depth += 1
        return self

    def __exit__(self, *exc):
        Lock._depth -= 1
        if Lock._depth == 0:
            fcntl.flock(Lock._handle, fcntl.LOCK_UN)
            Lock._handle.close()
            Lock._handle = None


def our_containers():
    out = docker("ps", "-aq", "--filter", "label=%s" % LABEL)
    return out.split()


def down():
    ids = our_containers()
    if ids:
        log("removing %d container(s)" % len(ids))
        docker("rm", "-f", *ids)
    for name in ("manifest.yml", "testbed.json"):
        path = os.path.join(STATE_DIR, name)
        if os.path.exists(path):
            os.remove(path)


def wait_registered(consul_url, gateways, timeout=30.0):
    """Until every API stand-in is registered and its check has run once."""
    wanted = sum(1 for s in NAPA_SERVICES.values() if s[1] == "api") * gateways
    deadline = time.time() + timeout
    seen = 0
    while time.time() < deadline:
        checks = wait_http(consul_url + "/v1/health/state/passing")
        seen = sum(1 for c in checks if c["ServiceID"] and c["ServiceID"] != "consul")
        if seen >= wanted:
            return
        time.sleep(0.2)
    raise RuntimeError("only %d of %d services registered and passing after %.0fs" % (seen, wanted, timeout))


def up(gateways=1, check_interval="10s"):
    image = standin_image()
    down()
    os.makedirs(STATE_DIR, exist_ok=True)
    nodes = []
    for number in range(1, gateways + 1):
        nodes += ["--node", "gw%d=%s" % (number, gateway_address(number))]
    log("starting %s (Consul emulator, agents %s)" % (REGISTRY_CONTAINER, " ".join(nodes[1::2])))
    run_container(image, REGISTRY_CONTAINER, "gw1", "consul",
                  # The data file lives in the container: a restart keeps what agents registered.
                  ["/opt/edgex-testbed/consul_emulator.py", "--port", str(CONSUL_PORT),
                   "--data-file", "/var/tmp/consul-emulator.json"] + nodes,
                  entrypoint="python3")
    consul_url = "http://%s:%d" % (gateway_address(1), CONSUL_PORT)
    wait_http(consul_url + "/v1/status/leader")
    for number in range(1, gateways + 1):
        gateway, address = "gw%d" % number, gateway_address(number)
        for service in NAPA_SERVICES:
            run_container(image, container_name(gateway, service), gateway, service,
                          standin_command(service, address, check_interval))
    wait_registered(consul_url, gateways)
    write_yaml(os.path.join(STATE_DIR, "manifest.yml"), manifest(gateways, check_interval))
    with open(os.path.join(STATE_DIR, "testbed.json"), "w") as handle:
        json.dump({"gateways": gateways, "consul": consul_url, "image": image,
                   "manifest": os.path.join(STATE_DIR, "manifest.yml")}, handle)
    log("up: %d gateway(s), registry %s, manifest %s" % (gateways, consul_url,
                                                        os.path.join(STATE_DIR, "manifest.yml")))
    return consul_url


def status():
    for line in docker("ps", "-a", "--filter", "label=%s" % LABEL, "--format",
                       "{{.Names}}\t{{.Status}}").splitlines():
        print(line)
    try:
        checks = wait_http("http://127.0.0.1:%d/v1/health/state/any" % CONSUL_PORT, timeout=2)
    except RuntimeError:
        print("registry: not answering on 127.0.0.1:%d" % CONSUL_PORT)
        return
    for check in checks:
        if check["ServiceID"]:
            print("%-6s %-24s %s" % (check["Node"], check["ServiceID"], check["Status"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("image")
    start = sub.add_parser("up")
    start.add_argument("--gateways", type=int, default=1)
    start.add_argument("--check-interval", default="10s", help="EdgeX registers 10s; tests use less")
    sub.add_parser("down")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    if args.command == "image":
        print(standin_image())
    elif args.command == "up":
        with Lock():
            up(args.gateways, args.check_interval)
    elif args.command == "down":
        with Lock():
            down()
    else:
        status()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, socket.error) as exc:
        log("error: %s" % exc)
        sys.exit(1)
