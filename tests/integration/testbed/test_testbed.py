"""The whole test-bed: registry container, the Napa service set, the manifest it writes."""

import subprocess

import pytest
import yaml

from tests.testbed import testbed as testbed_cli

pytestmark = pytest.mark.docker
NAPA_COMPOSE = "napa-3.1.1-no-secty.yml"


def test_every_service_registered_and_passing(testbed):
    import consul

    client = consul.Consul(port=8500)
    _index, entries = client.health.state("passing")
    passing = {c["ServiceID"] for c in entries if c["ServiceID"]}
    api_services = {s for s, (_p, kind, _d) in testbed_cli.NAPA_SERVICES.items() if kind == "api"}
    assert api_services <= passing
    names = subprocess.run(["docker", "ps", "--filter", "label=edgex.testbed=1", "--format", "{{.Names}}"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert {"edgex-core-consul", "edgex-core-data", "edgex-core-metadata", "edgex-redis"} <= set(names)


def test_manifest_records_the_deployment(testbed):
    with open(testbed["manifest"]) as handle:
        manifest = yaml.safe_load(handle)
    services = manifest["hosts"]["gw1"]["services"]
    assert services["core-data"]["target"] == "edgex-core-data"
    assert services["core-data"]["executor"] == "docker"
    assert services["consul"]["target"] == "edgex-core-consul"
    assert services["database"]["health"] is None


def test_depends_on_follows_the_napa_compose_file():
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "unit", "data", "compose", NAPA_COMPOSE)
    if not os.path.exists(path):
        pytest.skip("compose sample not in the repo")
    with open(path) as handle:
        compose = yaml.safe_load(handle)["services"]
    for service, (port, _kind, deps) in testbed_cli.NAPA_SERVICES.items():
        assert sorted(compose[service].get("depends_on") or {}) == sorted(deps), service
        assert compose[service]["ports"][0]["target"] == port


def test_services_read_their_configuration_from_consul(testbed):
    """As edgex-compose runs them (-cp=consul...): common configuration pushed by the bootstrapper job,
    private configuration seeded by each service, Writable changes applied live."""
    import json
    import urllib.request

    import consul

    from tests.testbed.fixtures_docker import wait_until

    client = consul.Consul(port=8500)
    assert client.kv.get("edgex/v3/core-common-config-bootstrapper/IsCommonConfigReady")[1]["Value"] == b"true"
    assert client.kv.get("edgex/v3/core-data/Service/Port")[1]["Value"] == b"59880"
    names = subprocess.run(["docker", "ps", "-a", "--filter", "label=edgex.testbed=1", "--format", "{{.Names}}"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert not [n for n in names if "bootstrapper" in n]  # the one-shot job is gone once it ran

    def log_level():
        with urllib.request.urlopen("http://127.0.0.1:59881/api/v3/config", timeout=3) as response:
            return json.loads(response.read())["config"]["Writable"]["LogLevel"]

    assert log_level() == "INFO"
    client.kv.put("edgex/v3/core-metadata/Writable/LogLevel", "DEBUG")
    try:
        wait_until(lambda: log_level() == "DEBUG", what="core-metadata's LogLevel applied live in its container")
    finally:
        client.kv.put("edgex/v3/core-metadata/Writable/LogLevel", "INFO")
        wait_until(lambda: log_level() == "INFO", what="LogLevel back to INFO")
