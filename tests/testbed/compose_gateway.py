"""A compose gateway: the EdgeX stand-ins as one Docker Compose project, written for the test-bed.

The file is shaped like edgex-compose's no-secty files (``depends_on`` between services,
``restart: always``), with three test-bed differences: the image is the stand-in image,
never pulled (``pull_policy: never``; it is built here); every service is on the host network
(``network_mode: host``, as ``--bridge=none`` leaves no other) and binds the gateway's own
loopback address, 127.0.61.1, so it never collides with the docker gateways on 127.0.0.N
and their ports; and every container carries the test-bed label, so ``testbed.py down``
removes it.
"""

import os
import subprocess

import yaml

from tests.testbed.images import LABEL

ADDRESS = "127.0.61.1"
PROJECT = "edgexcmp"
NODE = "cmpgw"
REGISTRY_PORT = 8500

# compose service (= EdgeX service key) -> (port, kind, depends_on), as in edgex-compose 3.1.
SERVICES = {
    "consul": (REGISTRY_PORT, "registry", []),
    "database": (6379, "redis", []),
    "core-metadata": (59881, "api", ["consul", "database"]),
    "core-data": (59880, "api", ["consul", "database", "core-metadata"]),
    "core-command": (59882, "api", ["consul", "database", "core-metadata"]),
    "device-virtual": (59900, "api", ["consul", "core-data", "core-metadata"]),
}
START_ORDER = [["consul", "database"], ["core-metadata"], ["core-data", "core-command"], ["device-virtual"]]


def compose_file(image, check_interval="1s"):
    label_key, label_value = LABEL.split("=", 1)
    services = {}
    for name, (port, kind, depends_on) in SERVICES.items():
        service = {"image": image, "pull_policy": "never", "network_mode": "host", "restart": "always",
                   "labels": {label_key: label_value, "edgex.gateway": NODE, "edgex.service": name},
                   "stop_grace_period": "5s"}
        if kind == "registry":
            service["entrypoint"] = ["python3", "/opt/edgex-testbed/consul_emulator.py"]
            service["command"] = ["--port", str(port), "--node", "%s=%s" % (NODE, ADDRESS),
                                  "--data-file", "/var/tmp/consul-emulator.json"]
        else:
            service["command"] = ["--service", name, "--host", ADDRESS, "--port", str(port),
                                  "--kind", kind, "--registry", "consul",
                                  "--registry-host", ADDRESS, "--registry-port", str(REGISTRY_PORT),
                                  "--check-interval", check_interval]
        if depends_on:
            service["depends_on"] = list(depends_on)
        services[name] = service
    return {"version": "3.7", "services": services}


def write_project(directory, image, file_name="docker-compose.yml"):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file_name)
    with open(path, "w") as handle:
        handle.write("# The test-bed's compose gateway (tests/testbed/compose_gateway.py).\n")
        yaml.safe_dump(compose_file(image), handle, sort_keys=False)
    return path


def compose(path, *args, check=True):
    """docker-compose v1 on this project (as an operator would run it)."""
    argv = ["docker-compose", "-p", PROJECT, "-f", path] + list(args)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), result.stderr.strip()))
    return result


def inspect_state(container_id):
    import json

    out = subprocess.run(["docker", "inspect", container_id], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["State"]


def container_of(path, service):
    ids = compose(path, "ps", "--all", "-q", service).stdout.split()
    return ids[0] if ids else None
