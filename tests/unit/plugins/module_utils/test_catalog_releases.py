"""_catalog's knowledge of EdgeX releases: 2.x service keys, API versions, one-shot jobs (issue 12)."""

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._catalog import (
    KNOWN_SERVICES,
    ONE_SHOT_SERVICES,
    V2_COMPOSE_KEYS,
    api_health_path,
    api_path,
    api_version_of_image,
    default_health_path,
    one_shot_by_default,
)
from tests.testbed import releases


def test_v2_compose_keys_agree_with_the_test_bed_copy():
    # The test-bed keeps its own table (it must not import the collection): both must say the same.
    testbed = {key: service for key, (service, _container) in releases.LEVSKI_COMPOSE_KEYS.items()
               if service is not None and key != service}
    testbed.update({k: v for k, v in releases.LEVSKI_SECURE_COMPOSE_KEYS.items() if k != v})
    ours = {key: service for key, (service, _container) in V2_COMPOSE_KEYS.items()}
    assert {k: ours.get(k) for k in testbed} == testbed
    containers = {key: container for key, (_s, container) in releases.LEVSKI_COMPOSE_KEYS.items()}
    assert all(containers.get(key, container) == container for key, (_s, container) in V2_COMPOSE_KEYS.items())


def test_every_v2_service_key_is_a_go_mod_core_contracts_v2_key_or_a_known_service():
    for service, container in V2_COMPOSE_KEYS.values():
        assert service in releases.V2_SERVICE_KEYS or service in KNOWN_SERVICES, service
        assert KNOWN_SERVICES[service].container == container


def test_the_sma_and_the_security_services_are_known():
    assert (KNOWN_SERVICES["sys-mgmt-agent"].port, KNOWN_SERVICES["sys-mgmt-agent"].api) == (58890, True)
    for key in ("security-bootstrapper", "security-secretstore-setup", "security-proxy-setup"):
        assert KNOWN_SERVICES[key].api is False and default_health_path(key) is None


@pytest.mark.parametrize("image, version", [
    ("edgexfoundry/core-data:2.3.0", "v2"),
    ("edgexfoundry/sys-mgmt-agent:2.1.1", "v2"),
    ("edgexfoundry/core-data:2.3.0-dev.12", "v2"),
    ("nexus3.edgexfoundry.org:10004/core-data:2.3.0", "v2"),
    ("edgexfoundry/core-data:3.1.1", "v3"),
    ("edgexfoundry/core-keeper:4.0.1", "v3"),
    ("edgexfoundry/core-data:latest", None),
    ("edgexfoundry/core-data", None),
    ("edgexfoundry/core-data@sha256:0ed5d5928d4737458944eb604cc8509e245c3e19d02ad83935398bc4b991aac7", None),
    ("edgexfoundry/core-data:1.3.1", None),  # /api/v1 answered "pong": not supported
    ("myorg/device-foo:2.3.0", None),  # not EdgeX's image: its tag says nothing of the EdgeX release
    ("redis:7.0.15-alpine", None),
    (None, None),
])
def test_api_version_from_the_image_tag(image, version):
    assert api_version_of_image(image) == version


def test_paths_follow_the_api_version():
    assert api_path("v2", "config") == "/api/v2/config"
    assert api_path(None, "ping") == "/api/v3/ping"
    assert api_health_path("core-data", "v2") == "/api/v2/ping"
    assert api_health_path("sys-mgmt-agent", "v2") == "/api/v2/ping"
    assert api_health_path("device-modbus", "v3") == "/api/v3/ping"
    assert api_health_path("consul", "v2") == "/v1/status/leader"
    assert api_health_path("database", "v2") is None


def test_known_jobs():
    assert one_shot_by_default("core-common-config-bootstrapper") and one_shot_by_default("security-proxy-setup")
    assert not one_shot_by_default("core-data") and "core-data" not in ONE_SHOT_SERVICES
