"""_catalog: what the collection knows of EdgeX, checked against edgex-compose's names and ports."""

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._catalog import (
    EXECUTORS,
    KNOWN_SERVICES,
    PING_PATH,
    default_container,
    default_health_path,
    default_port,
    tier_of,
)


@pytest.mark.parametrize("key, container, port", [
    ("core-data", "edgex-core-data", 59880), ("core-metadata", "edgex-core-metadata", 59881),
    ("core-command", "edgex-core-command", 59882), ("support-scheduler", "edgex-support-scheduler", 59861),
    ("database", "edgex-redis", 6379), ("rules-engine", "edgex-kuiper", 59720), ("ui", "edgex-ui-go", 4000),
])
def test_known_services_use_edgex_compose_names_and_ports(key, container, port):
    assert default_container(key) == container and default_port(key) == port


def test_unknown_services_get_edgex_compose_conventions():
    assert default_container("device-modbus") == "edgex-device-modbus"
    assert default_port("device-modbus") is None
    assert default_health_path("device-modbus") == PING_PATH == "/api/v3/ping"


def test_health_paths_by_kind():
    assert default_health_path("consul") == "/v1/status/leader"
    assert default_health_path("redis") is None  # TCP only
    assert default_health_path("core-keeper") == PING_PATH


def test_tiers_order_start_up():
    order = ["consul", "redis", "core-common-config-bootstrapper", "core-metadata", "core-data",
             "support-notifications", "device-virtual", "ui"]
    assert [tier_of(k) for k in order] == sorted(tier_of(k) for k in order)
    assert tier_of("core-keeper") == tier_of("consul")
    assert tier_of("core-anything") == tier_of("core-data") and tier_of("support-x") == tier_of("support-scheduler")
    assert tier_of("app-custom") == tier_of("device-x") == tier_of("device-virtual")


def test_every_known_service_is_well_formed():
    assert EXECUTORS == ("docker", "compose", "systemd", "snap")
    for key, known in KNOWN_SERVICES.items():
        assert known.key == key and known.container.startswith("edgex-")
