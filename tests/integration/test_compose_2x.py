"""An EdgeX 2.x gateway from its compose file to healthy (issue 12): a Levski-style compose file (short
2.x compose keys, images tagged 2.3.0, a one-shot job) is imported with edgex_manifest, started cold
with edgex_service in dependency order, job included, and found healthy with edgex_health.

The containers are what the file describes, realised on the test-bed: stand-ins (``--version 2.3.0``:
``/api/v2``, 404 on ``/api/v3``, registration in Consul with a check on ``/api/v2/ping``, the 2.x KV
layout), the Consul emulator as the ``consul`` service, and a job that runs two seconds and exits 0.
The engine here has no bridge network, so every container runs in the host's network, on the port
the file publishes.
"""

import json
import os
import subprocess

import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.probe import probe_ping
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.compose import manifest_from_compose
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord
from tests.integration.playbook import run_play
from tests.testbed.fixtures_consul import free_port
from tests.testbed.images import LABEL

pytestmark = pytest.mark.docker
NODE = "gw12"
LEVSKI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit", "data", "compose",
                      "levski-2.3-no-secty.yml")
PREFIX = "c12-"  # container names of this test, apart from the test-bed's
VERSION = "2.3.0"

# compose key -> (service key, stand-in --kind, depends_on in the file)
SERVICES = {
    "consul": ("consul", None, []),
    "database": ("database", "redis", []),
    "notifications": ("support-notifications", "api", ["consul", "database"]),
    "metadata": ("core-metadata", "api", ["consul", "database", "notifications"]),
    "data": ("core-data", "api", ["consul", "database", "metadata"]),
    "command": ("core-command", "api", ["consul", "database", "metadata"]),
    "system": ("sys-mgmt-agent", "api", ["command", "consul", "data", "metadata", "notifications"]),
    "proxy-setup": ("security-proxy-setup", None, ["consul"]),
    "app-service-rules": ("app-rules-engine", "api", None),  # long form, below
}
CONTAINER_PORTS = {"consul": 8500, "database": 6379, "notifications": 59860, "metadata": 59881, "data": 59880,
                   "command": 59882, "system": 58890, "app-service-rules": 59701}
IMAGES = {"consul": "consul:1.13.2", "database": "redis:7.0.5-alpine", "notifications": "support-notifications",
          "metadata": "core-metadata", "data": "core-data", "command": "core-command", "system": "sys-mgmt-agent",
          "proxy-setup": "security-proxy-setup", "app-service-rules": "app-service-configurable"}


def docker(*argv):
    return subprocess.run(["docker"] + list(argv), capture_output=True, text=True, check=True).stdout


def inspect_state(container):
    return json.loads(docker("inspect", container))[0]["State"]


def compose_file(ports):
    """The gateway's compose file in Levski's shape, publishing each service on its host port."""
    services = {}
    for key, (_service_key, _kind, depends_on) in SERVICES.items():
        image = IMAGES[key] if ":" in IMAGES[key] else "edgexfoundry/%s:%s" % (IMAGES[key], VERSION)
        definition = {"container_name": PREFIX + "edgex-" + _service_key, "image": image, "read_only": True}
        if key in CONTAINER_PORTS:
            definition["ports"] = ["127.0.0.1:%d:%d/tcp" % (ports[key], CONTAINER_PORTS[key])]
        if depends_on:
            definition["depends_on"] = depends_on
        if key != "proxy-setup":  # as in 2.x: the job has no restart key
            definition["restart"] = "always"
        services[key] = definition
    services["consul"]["container_name"] = PREFIX + "edgex-core-consul"
    services["database"]["container_name"] = PREFIX + "edgex-redis"
    # The app service waits for the job to have completed, as OpenZiti-style files make services wait.
    services["app-service-rules"]["depends_on"] = {
        "consul": {"condition": "service_started"}, "data": {"condition": "service_started"},
        "proxy-setup": {"condition": "service_completed_successfully"}}
    return {"version": "3.7", "networks": {"edgex-network": {"driver": "bridge"}}, "services": services}


def create_containers(image, ports, compose):
    """The file's containers, created and not started (as after `docker compose create`)."""
    names = []
    consul_port = ports["consul"]
    for key, definition in compose["services"].items():
        name = definition["container_name"]
        service_key, kind, _deps = SERVICES[key]
        argv = ["create", "--pull", "never", "--name", name, "--network", "host", "--label", LABEL,
                "--label", "edgex.gateway=%s" % NODE, "--label", "edgex.service=%s" % service_key,
                "--stop-timeout", "5"]
        if key == "consul":
            argv += ["--entrypoint", "python3", image, "/opt/edgex-testbed/consul_emulator.py", "--port",
                     str(consul_port), "--node", "%s=127.0.0.1@dc1" % NODE]
        elif key == "proxy-setup":  # configures, then exits 0
            argv += ["--entrypoint", "python3", image, "-c", "import time; time.sleep(2)"]
        else:
            argv += [image, "--service", service_key, "--host", "127.0.0.1", "--port", str(ports[key]),
                     "--kind", kind, "--version", VERSION, "--check-interval", "1s"]
            if kind == "api":
                argv += ["--registry", "consul", "--registry-host", "127.0.0.1", "--registry-port", str(consul_port),
                         "--config-provider", "consul.http://127.0.0.1:%d" % consul_port]
        docker(*argv)
        names.append(name)
    return names


@pytest.fixture
def gateway_2x(standin_image_tag, testbed_lock, tmp_path):
    ports = {key: free_port() for key in CONTAINER_PORTS}
    compose = compose_file(ports)
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(compose, sort_keys=True))
    stale = [d["container_name"] for d in compose["services"].values()]
    subprocess.run(["docker", "rm", "-f"] + stale, capture_output=True, check=False)
    names = []
    try:
        names = create_containers(standin_image_tag, ports, compose)
        yield {"compose": str(path), "ports": ports, "manifest": str(tmp_path / "manifest.yml"),
               "containers": {SERVICES[k][0]: d["container_name"] for k, d in compose["services"].items()}}
    finally:
        if names:
            subprocess.run(["docker", "rm", "-f"] + names, capture_output=True, check=False)


def module(module_name, **args):
    return "    - edgex.sysmgmt.%s: %s\n" % (module_name, json.dumps(args))


def test_a_2x_compose_file_imports_starts_in_order_and_is_healthy(gateway_2x, tmp_path):
    registry = {"host": "127.0.0.1", "port": gateway_2x["ports"]["consul"], "manifest_path": gateway_2x["manifest"]}

    imported = run_play(tmp_path, module("edgex_manifest", manifest_path=gateway_2x["manifest"], state="present",
                                         node=NODE, address="127.0.0.1", src=gateway_2x["compose"]))
    assert imported.returncode == 0, imported.failures()
    with open(gateway_2x["manifest"]) as stream:
        services = yaml.safe_load(stream)["hosts"][NODE]["services"]
    assert sorted(services) == ["app-rules-engine", "consul", "core-command", "core-data", "core-metadata",
                                "database", "security-proxy-setup", "support-notifications", "sys-mgmt-agent"]
    assert services["sys-mgmt-agent"]["health"] == "/api/v2/ping" and services["security-proxy-setup"]["one_shot"]

    # Cold start: every container created, none running; Consul is one of them, so the registry is down
    # and the manifest stands in for it (and says so).
    started = run_play(tmp_path, module("edgex_service", name="all", state="started", node=NODE, wait_timeout=60,
                                        **registry))
    assert started.returncode == 0, started.failures()
    task = started.task()
    assert task["source"] == "manifest" and task["changed"] is True
    levels = task["levels"]
    level_of = {name: index for index, level in enumerate(levels) for name in level}
    assert level_of["consul"] < level_of["support-notifications"] < level_of["core-metadata"] < level_of["core-data"]
    assert level_of["security-proxy-setup"] < level_of["app-rules-engine"]
    results = {s["name"]: s for s in task["services"]}
    assert (results["security-proxy-setup"]["before"], results["security-proxy-setup"]["after"]) == (
        "pending", "completed")
    assert all(results[n]["after"] == "running" for n in results if n != "security-proxy-setup")

    containers = gateway_2x["containers"]
    job = inspect_state(containers["security-proxy-setup"])
    assert (job["Status"], job["ExitCode"]) == ("exited", 0)
    # service_completed_successfully: the app service started only after the job had exited 0
    assert job["FinishedAt"] < inspect_state(containers["app-rules-engine"])["StartedAt"]
    assert inspect_state(containers["core-metadata"])["StartedAt"] < inspect_state(containers["core-data"])["StartedAt"]

    again = run_play(tmp_path, module("edgex_service", name="all", state="started", node=NODE, **registry)).task()
    assert again["changed"] is False  # the finished job is not run again
    assert inspect_state(containers["security-proxy-setup"])["StartedAt"] == job["StartedAt"]

    health = run_play(tmp_path, module("edgex_health", name="all", node=[NODE], wait_for="healthy", wait_timeout=60,
                                       probe_timeout=2.0, check_executor=True, **registry))
    assert health.returncode == 0, health.failures()
    checked = {s["name"]: s for s in health.task()["services"]}
    assert {n: s["verdict"] for n, s in checked.items()} == dict.fromkeys(services, "healthy")
    assert health.task()["source"] == "consul"
    assert checked["sys-mgmt-agent"]["target"] == "http://127.0.0.1:%d/api/v2/ping" % gateway_2x["ports"]["system"]
    assert checked["core-data"]["checks"]  # registered in Consul, as 2.x go-mod-registry does
    assert checked["security-proxy-setup"]["executor_state"] == "completed"


def test_a_2x_service_answers_the_imported_health_path_and_not_v3(local_standin):
    port = free_port()
    standin = local_standin("sys-mgmt-agent", port, version="2.3.0").wait()
    entry = manifest_from_compose(LEVSKI)["hosts"]["localhost"]["services"]["sys-mgmt-agent"]
    record = ServiceRecord("sys-mgmt-agent", "gw1", address="127.0.0.1", port=port, health_path=entry["health"])
    probe = probe_ping(record, 5.0)
    assert probe.ok and probe.target.endswith("/api/v2/ping"), probe
    v3 = probe_ping(ServiceRecord("sys-mgmt-agent", "gw1", address="127.0.0.1", port=port,
                                  health_path="/api/v3/ping"), 5.0)
    assert (v3.ok, v3.http_status) == (False, 404), standin.log_text()
