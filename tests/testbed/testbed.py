#!/usr/bin/env python3
"""The edgex.sysmgmt test-bed: gateways of EdgeX stand-ins around a Consul emulator, on Docker.

    testbed.py image                 build (or reuse) the stand-in image, print its tag
    testbed.py up [--gateways N] [--release 2|3]
                                     start the registry and every gateway's services
    testbed.py status                what runs and what the registry knows
    testbed.py down                  remove everything the test-bed started (idempotent)

Gateway gwN answers on 127.0.0.N (loopback only). The registry container
``edgex-core-consul`` runs the Consul emulator with one agent per gateway, on port 8500 of
each gateway address. Each gateway runs a release's service set (``releases.py``: Napa 3.1 by
default, Levski 2.3 with ``--release 2``) as containers named as edgex-compose names them
(``edgex-core-data``; ``gwN-edgex-core-data`` past the first gateway), all on ``--network host``.
As in edgex-compose, Consul is both registry and configuration provider (``-cp``): for 3.x the
one-shot core-common-config-bootstrapper pushes the common configuration first (its container is
removed once it exited 0), then each service seeds its own. The gateways are agents of one Consul
datacenter, so they share one KV store. ``testbed-state/manifest.yml`` records the deployment in
the collection's manifest format.
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

from tests.testbed import releases  # noqa: E402
from tests.testbed.images import LABEL, standin_image  # noqa: E402

STATE_DIR = os.environ.get("EDGEX_TESTBED_STATE", os.path.join(REPO, "testbed-state"))
LOCK_PATH = "/tmp/edgex-testbed.lock"
REGISTRY_CONTAINER = "edgex-core-consul"
CONSUL_PORT = 8500

BOOTSTRAPPER = "core-common-config-bootstrapper"
NAPA_SERVICES = releases.NAPA_SERVICES  # the default set (3.x); releases.py has the others
CONTAINER_OF = releases.CONTAINER_OF


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


def config_provider_url(address):
    return "consul.http://%s:%d" % (address, CONSUL_PORT)


def standin_command(service, address, check_interval, registry_port=CONSUL_PORT, release=releases.DEFAULT_RELEASE):
    spec = releases.release(release)
    port, kind, _deps = spec["services"][service]
    command = ["--service", service, "--host", address, "--port", str(port), "--kind", kind,
               "--registry", "consul", "--registry-host", address, "--registry-port", str(registry_port),
               "--check-interval", check_interval, "--version", spec["version"]]
    if kind == "api":  # as compose runs them: -cp=consul.http://edgex-core-consul:8500 --registry
        command += ["--config-provider", config_provider_url(address)]
    return command


def manifest(gateways, check_interval, release=releases.DEFAULT_RELEASE):
    """The deployment in the collection's manifest format (docs/manifest.md)."""
    spec = releases.release(release)
    hosts = {}
    for number in range(1, gateways + 1):
        gateway = "gw%d" % number
        address = gateway_address(number)
        services = {"consul": {
            "executor": "docker", "target": REGISTRY_CONTAINER, "address": address, "port": CONSUL_PORT,
            "health": "/v1/status/leader", "depends_on": [], "tags": [], "meta": {}}}
        for service, (port, kind, deps) in spec["services"].items():
            services[service] = {
                "executor": "docker", "target": container_name(gateway, service), "address": address, "port": port,
                "health": "/api/%s/ping" % spec["api"] if kind == "api" else None, "depends_on": list(deps),
                "tags": [], "meta": {}}
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


def wait_registered(consul_url, gateways, timeout=60.0, release=releases.DEFAULT_RELEASE):
    """Until every API stand-in is registered and its check has run once. The timeout is the
    stand-ins' own start-up deadline (EDGEX_STARTUP_DURATION, 60 s, as go-mod-bootstrap's)."""
    services = releases.release(release)["services"]
    wanted = {("gw%d" % number, name) for number in range(1, gateways + 1)
              for name, (_port, kind, _deps) in services.items() if kind == "api"}
    deadline = time.time() + timeout
    passing = set()
    while time.time() < deadline:
        checks = wait_http(consul_url + "/v1/health/state/passing")
        passing = {(c["Node"], c["ServiceName"]) for c in checks if c["ServiceID"] and c["ServiceID"] != "consul"}
        if wanted <= passing:
            return
        time.sleep(0.2)
    missing = sorted(wanted - passing)
    raise RuntimeError("%d of %d services registered and passing after %.0fs; not: %s" % (
        len(wanted & passing), len(wanted), timeout,
        "; ".join("%s on %s (%s)" % (name, node, container_report(container_name(node, name)))
                  for node, name in missing)))


def container_report(name):
    """A container's state and its last log lines, for an error that says why it is missing."""
    state = docker("inspect", "--format", "{{.State.Status}} exit {{.State.ExitCode}}", name, check=False).strip()
    logs = subprocess.run(["docker", "logs", "--tail", "5", name], capture_output=True, text=True)
    return "container %s: %s; last log lines: %s" % (name, state or "missing",
                                                     " | ".join((logs.stdout + logs.stderr).strip().splitlines()))


def push_common_config(image, address, version):
    """The one-shot core-common-config-bootstrapper (3.x+): pushes the common configuration into
    Consul and exits 0; services wait for its IsCommonConfigReady. Removed once it has run."""
    argv = ["run", "--rm", "--pull", "never", "--network", "host", "--label", LABEL, "--label", "edgex.gateway=gw1",
            "--label", "edgex.service=%s" % BOOTSTRAPPER, image, "--service", BOOTSTRAPPER,
            "--version", version, "--config-provider", config_provider_url(address)]
    result = subprocess.run(["docker"] + argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("%s failed: %s" % (BOOTSTRAPPER, result.stderr.strip()))


def up(gateways=1, check_interval="10s", release=releases.DEFAULT_RELEASE):
    spec = releases.release(release)
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
    if spec["common_config"]:
        push_common_config(image, gateway_address(1), spec["version"])
    for number in range(1, gateways + 1):
        gateway, address = "gw%d" % number, gateway_address(number)
        for service in spec["services"]:
            run_container(image, container_name(gateway, service), gateway, service,
                          standin_command(service, address, check_interval, release=release))
    wait_registered(consul_url, gateways, release=release)
    write_yaml(os.path.join(STATE_DIR, "manifest.yml"), manifest(gateways, check_interval, release))
    with open(os.path.join(STATE_DIR, "testbed.json"), "w") as handle:
        json.dump({"gateways": gateways, "consul": consul_url, "image": image, "release": spec["version"],
                   "manifest": os.path.join(STATE_DIR, "manifest.yml")}, handle)
    log("up: %d gateway(s) of EdgeX %s (%s), registry %s, manifest %s" % (
        gateways, spec["version"], spec["name"], consul_url, os.path.join(STATE_DIR, "manifest.yml")))
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
    start.add_argument("--release", default=releases.DEFAULT_RELEASE,
                       help="EdgeX release of the gateways' services: 3 (Napa 3.1, default) or 2 (Levski 2.3)")
    sub.add_parser("down")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    if args.command == "image":
        print(standin_image())
    elif args.command == "up":
        with Lock():
            up(args.gateways, args.check_interval, args.release)
    elif args.command == "down":
        with Lock():
            down()
    else:
        status()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, ValueError, socket.error) as exc:
        log("error: %s" % exc)
        sys.exit(1)
