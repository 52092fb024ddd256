"""state=synced on the manifest side (issue 10, items 1, 10 and 11; issue 11 item 11): an
incomplete answer is never an answer about absence, the same content is no change (no rewrite,
.bak untouched, generated_from kept), the manifest's age is the time since a registry last
confirmed it, and a HALT service the manifest knows is kept."""

import json
import os

import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.edits import RegistrySync, merge_discovery
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord

FILTERED = "Consul filtered the answer by ACLs (X-Consul-Results-Filtered-By-ACLs: true)"
OLD = "2026-01-01T00:00:00Z"
ORIGIN = "consul://127.0.0.1:8500/dc1"


def fleet():
    """Three gateways of dc1, each with what Consul knows and what only the manifest knows."""
    hosts = {}
    for n in (1, 2, 3):
        hosts["gw%d" % n] = {"address": "10.0.0.%d" % n, "datacenter": "dc1", "services": {
            "database": {"id": "database", "address": "10.0.0.%d" % n, "port": 6379, "tags": [], "meta": {},
                         "depends_on": [], "executor": "docker", "target": "edgex-redis"},
            "core-data": {"id": "core-data", "address": "10.0.0.%d" % n, "port": 59880, "tags": [], "meta": {},
                          "depends_on": ["database"], "executor": "docker", "target": "edgex-core-data",
                          "health": "/api/v3/ping"},
            "device-rest": {"id": "device-rest", "address": "10.0.0.%d" % n, "port": 59986, "tags": [], "meta": {},
                            "depends_on": []},
        }}
    return {"version": 1, "generated_from": ORIGIN, "updated_at": OLD, "hosts": hosts}


def registry_view(gateways=(1, 2, 3), gaps=(), datacenter="dc1", port=59880):
    """What Consul answers for ``gateways`` (all services registered)."""
    nodes = [NodeRecord("gw%d" % n, "10.0.0.%d" % n, "dc1") for n in gateways]
    services = []
    for n in gateways:
        address = "10.0.0.%d" % n
        services += [ServiceRecord("database", "gw%d" % n, address=address, port=6379, datacenter="dc1"),
                     ServiceRecord("core-data", "gw%d" % n, address=address, port=port, datacenter="dc1"),
                     ServiceRecord("device-rest", "gw%d" % n, address=address, port=59986, datacenter="dc1")]
    return Discovery(source="consul", nodes=nodes, services=services, datacenter=datacenter, gaps=list(gaps))


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(fleet(), sort_keys=True))
    return str(path)


def sync(path, discovery, check_mode=False):
    store = ManifestStore(path)
    change = RegistrySync(discovery, ORIGIN if discovery.datacenter else "consul://127.0.0.1:8500")
    changed, before, after = store.update(change, check_mode=check_mode, confirmed=discovery.complete)
    return store, change, changed, after


def untouched(path, before_text, before_mtime):
    return open(path).read() == before_text and os.stat(path).st_mtime_ns == before_mtime


# -- issue 10 item 1: a filtered answer never erases ----------------------------------------
@pytest.mark.parametrize("datacenter", ["dc1", None], ids=["with-datacenter", "without-datacenter"])
def test_a_filtered_empty_answer_removes_nothing_and_rewrites_nothing(manifest, datacenter):
    text, mtime = open(manifest).read(), os.stat(manifest).st_mtime_ns
    store, change, changed, after = sync(manifest, Discovery(source="consul", datacenter=datacenter, gaps=[FILTERED]))
    assert changed is False and untouched(manifest, text, mtime)
    assert not os.path.exists(store.backup_path)
    assert change.hosts_not_removed == ["gw1", "gw2", "gw3"]
    assert after["generated_from"] == ORIGIN and len(after["hosts"]) == 3


def test_a_partial_answer_updates_what_it_lists_and_keeps_the_hidden_gateway_whole(manifest):
    hidden = fleet()["hosts"]["gw2"]
    store, change, changed, after = sync(manifest, registry_view(gateways=(1, 3), gaps=[FILTERED], port=59999))
    assert changed is True
    assert after["hosts"]["gw2"] == hidden  # executor, target, depends_on: all there
    assert after["hosts"]["gw1"]["services"]["core-data"]["port"] == 59999
    assert after["hosts"]["gw1"]["services"]["core-data"]["target"] == "edgex-core-data"
    assert change.hosts_not_removed == ["gw2"] and change.services_not_removed == []


def test_a_partial_answer_keeps_unlisted_services_of_the_gateways_it_lists(manifest):
    view = registry_view(gaps=["skipped the registration '../x' on gw1 (not a plain name)"])
    view.services = [s for s in view.services if not (s.node == "gw1" and s.name == "device-rest")]
    _store, change, changed, after = sync(manifest, view)
    assert changed is False and "device-rest" in after["hosts"]["gw1"]["services"]
    assert change.services_not_removed == ["gw1/device-rest"]


def test_only_a_complete_answer_removes_and_it_says_what(manifest):
    view = registry_view(gateways=(1, 2))
    view.services = [s for s in view.services if s.name != "device-rest"]
    _store, change, changed, after = sync(manifest, view)
    assert changed is True and sorted(after["hosts"]) == ["gw1", "gw2"]
    assert "device-rest" not in after["hosts"]["gw1"]["services"]  # no executor: gone
    assert change.not_removed() == []


# -- issue 10 item 1 / "synced is idempotent" -----------------------------------------------
def test_the_same_content_is_no_change_and_the_confirmation_is_kept_beside_the_file(manifest):
    sync(manifest, registry_view(port=59999))  # a change: written, with a .bak
    store = ManifestStore(manifest)
    text, mtime = open(manifest).read(), os.stat(manifest).st_mtime_ns
    backup = open(store.backup_path).read()
    _store, _change, changed, after = sync(manifest, registry_view(port=59999))
    assert changed is False and untouched(manifest, text, mtime)
    assert open(store.backup_path).read() == backup
    assert after["generated_from"] == ORIGIN
    record = json.load(open(store.confirmation_path))
    assert record["confirmed_at"] >= yaml.safe_load(text)["confirmed_at"]
    assert store.to_discovery().manifest_age < 600


def test_a_confirmation_counts_only_for_the_bytes_it_confirmed(manifest):
    store, _change, changed, _after = sync(manifest, registry_view(port=59880))
    assert changed is False  # the fleet already matched: confirmed beside the file
    assert store.to_discovery().manifest_age < 600
    with open(manifest, "a") as handle:  # another version of the file (restored, edited by hand)
        handle.write("\n")
    assert ManifestStore(manifest).to_discovery().manifest_age > 3600  # its own stamp: 2026-01-01


# -- a stale manifest must not look fresh after a filtered read -------------------------------
@pytest.mark.parametrize("recorded", [True, False], ids=["confirmed_at", "legacy-updated_at-only"])
def test_an_incomplete_read_that_changes_the_file_keeps_the_old_confirmation(tmp_path, recorded):
    data = fleet()
    if recorded:
        data["confirmed_at"] = OLD
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(data))
    _store, _change, changed, after = sync(str(path), registry_view(gateways=(1,), gaps=[FILTERED], port=59999))
    assert changed is True and after["updated_at"] > OLD
    assert after["confirmed_at"] == OLD
    assert ManifestStore(str(path)).to_discovery().manifest_age > 3600


def test_a_complete_read_that_changes_the_file_confirms_it_in_the_file(manifest):
    store, _change, changed, after = sync(manifest, registry_view(port=59999))
    assert changed is True and after["confirmed_at"] == after["updated_at"] == store.confirmed_at
    assert ManifestStore(manifest).to_discovery().manifest_age < 600


def test_an_edit_neither_confirms_nor_forgets(manifest):
    sync(manifest, registry_view(port=59999))  # written and confirmed now
    store = ManifestStore(manifest)
    confirmed = store.read()["confirmed_at"]
    changed, _before, after = store.update(lambda d: dict(d, generated_from="manual"))
    assert changed is True and after["confirmed_at"] == confirmed


def test_check_mode_records_no_confirmation(manifest):
    store, _change, changed, _after = sync(manifest, registry_view(), check_mode=True)
    assert changed is False and not os.path.exists(store.confirmation_path)


def test_a_manifest_nobody_confirmed_ages_from_its_last_write(tmp_path):
    path = tmp_path / "m.yml"
    path.write_text("version: 1\nupdated_at: '%s'\nhosts: {}\n" % OLD)
    assert ManifestStore(str(path)).to_discovery().manifest_age > 3600


# -- issue 10 item 11: HALT is cleanly stopped ------------------------------------------------
def keeper_manifest():
    return {"version": 1, "generated_from": "keeper://127.0.0.1:59890", "hosts": {
        "127.0.0.1": {"address": "127.0.0.1", "services": {
            "core-data": {"id": "core-data", "port": 59880},
            "device-virtual": {"id": "device-virtual", "port": 59900},  # no executor
            "app-gone": {"id": "app-gone", "port": 59701}}},  # no executor, unknown to keeper now
        "gw2": {"address": "10.0.0.2", "services": {}}}}  # another keeper's gateway, no datacenter


def test_a_halted_service_the_manifest_knows_is_kept_as_deployed_but_stopped():
    discovery = Discovery(source="keeper", nodes=[NodeRecord("127.0.0.1", "127.0.0.1", status="passing")], services=[
        ServiceRecord("core-data", "127.0.0.1", address="127.0.0.1", port=59880, status="passing"),
        ServiceRecord("device-virtual", "127.0.0.1", address="127.0.0.1", port=59900, registered=False,
                      meta={"keeper_status": "HALT"}),
        ServiceRecord("app-unknown", "127.0.0.1", address="127.0.0.1", port=59702, registered=False,
                      meta={"keeper_status": "HALT"}),
    ])
    change = RegistrySync(discovery, "keeper://127.0.0.1:59890")
    merged = change(keeper_manifest())
    services = merged["hosts"]["127.0.0.1"]["services"]
    assert services["device-virtual"] == {"id": "device-virtual", "port": 59900}
    assert "app-gone" not in services and "app-unknown" not in services  # a HALT we never knew is not added
    assert change.services_kept_stopped == ["127.0.0.1/device-virtual"]
    assert merged["hosts"]["gw2"] == {"address": "10.0.0.2", "services": {}}  # not this keeper's to remove


def test_merge_discovery_leaves_its_input_alone():
    data = fleet()
    before = json.dumps(data, sort_keys=True)
    merge_discovery(data, registry_view(gateways=(1,)), ORIGIN)
    assert json.dumps(data, sort_keys=True) == before
