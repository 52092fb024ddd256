import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._ordering import (
    DependencyCycleError,
    find_cycle,
    restart_levels,
    start_levels,
    stop_levels,
)

# depends_on as in edgex-compose Napa 3.1.1 (no-secty), trimmed to the services used here.
NAPA = {
    "consul": [],
    "database": [],
    "core-common-config-bootstrapper": ["consul"],
    "core-metadata": ["consul", "database"],
    "core-data": ["consul", "core-metadata", "database"],
    "core-command": ["consul", "core-metadata", "database"],
    "support-scheduler": ["consul", "database"],
    "device-virtual": ["consul", "core-data", "core-metadata"],
    "app-rules-engine": ["consul", "core-data"],
    "ui": [],
}


def position(levels):
    return {name: index for index, level in enumerate(levels) for name in level}


def test_start_levels_respect_every_dependency_and_tier():
    levels = start_levels(NAPA)
    where = position(levels)
    assert sorted(where) == sorted(NAPA)
    for service, deps in NAPA.items():
        for dep in deps:
            assert where[dep] < where[service], (dep, service)
    assert levels[0] == ["consul"]
    assert where["database"] < where["core-metadata"]
    assert levels[-1] == ["ui"]
    assert where["core-data"] == where["core-command"]


def test_stop_is_start_reversed():
    assert stop_levels(NAPA) == list(reversed(start_levels(NAPA)))
    assert stop_levels(NAPA)[-1] == ["consul"]


def test_dependency_outside_selection_is_ignored():
    assert start_levels({"core-data": ["core-metadata"]}) == [["core-data"]]


def test_explicit_dependency_overrides_tier():
    # A core service that depends on a device service must still wait for it.
    where = position(start_levels({"core-data": ["device-virtual"], "device-virtual": []}))
    assert where["device-virtual"] < where["core-data"]


def test_cycle_is_reported_with_its_path():
    graph = {"a-svc": ["b-svc"], "b-svc": ["c-svc"], "c-svc": ["a-svc"], "d-svc": []}
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and set(cycle) == {"a-svc", "b-svc", "c-svc"}
    with pytest.raises(DependencyCycleError) as err:
        start_levels(graph)
    assert "a-svc" in str(err.value) and " -> " in str(err.value)


def test_restart_puts_registry_and_protected_last():
    levels = restart_levels(NAPA, protected=["core-command"])
    assert levels[-1] == ["consul", "core-command"]
    where = position(levels[:-1])
    assert "consul" not in where and "core-command" not in where
    assert where["core-metadata"] < where["core-data"]


def test_restart_of_registry_alone():
    assert restart_levels({"consul": []}) == [["consul"]]
