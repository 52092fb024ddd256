"""The manifest's deployment fields (one_shot, api_version, depends_on conditions and optional
dependencies, published, container_port): schema, rules, and every way they travel (issue 12)."""

import copy
import json
import os

import jsonschema
import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ManifestError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.edits import merge_discovery, to_discovery
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.schema import MANIFEST_SCHEMA, validate
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import overlay_manifest
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord

MANIFEST = {
    "version": 1,
    "hosts": {"gw1": {"address": "127.0.0.1", "services": {
        "consul": {"executor": "docker", "target": "edgex-core-consul", "port": 8500},
        "security-proxy-setup": {"executor": "docker", "target": "edgex-security-proxy-setup", "one_shot": True},
        "core-data": {"executor": "docker", "target": "edgex-core-data", "port": 59880, "health": "/api/v2/ping",
                      "api_version": "v2", "container_port": 59880, "published": True,
                      "depends_on": ["consul", "security-proxy-setup"],
                      "depends_on_conditions": {"security-proxy-setup": "service_completed_successfully"},
                      "depends_on_optional": ["consul"]},
        "device-virtual": {"executor": "docker", "target": "edgex-device-virtual", "published": False,
                           "container_port": 59900},
    }}},
}


def test_the_fields_are_valid_for_our_validator_and_for_jsonschema():
    validate(copy.deepcopy(MANIFEST))
    assert not list(jsonschema.Draft202012Validator(MANIFEST_SCHEMA).iter_errors(MANIFEST))


@pytest.mark.parametrize("service, change, expected", [
    ("core-data", {"api_version": "v4"}, "api_version: must be one of v2, v3, not 'v4'"),
    ("core-data", {"one_shot": "yes"}, "one_shot: must be boolean or null"),
    ("core-data", {"depends_on_conditions": {"consul": "service_ready"}},
     "depends_on_conditions/consul: must be one of service_started"),
    ("core-data", {"depends_on_conditions": {"database": "service_started"}},
     "depends_on_conditions: names 'database', which is not in depends_on"),
    ("core-data", {"depends_on_optional": ["database"]}, "depends_on_optional: names 'database', which is not in"),
    ("device-virtual", {"port": 59900}, "port: published is false: a port that is not published cannot be reached"),
    ("core-data", {"container_port": 0}, "container_port: must be at least 1"),
])
def test_what_is_refused_is_named(service, change, expected):
    data = copy.deepcopy(MANIFEST)
    data["hosts"]["gw1"]["services"][service].update(change)
    with pytest.raises(ManifestError) as info:
        validate(data, "m.yml")
    assert "hosts/gw1/services/%s/%s" % (service, expected) in str(info.value)


def test_the_manifest_gives_them_to_its_records():
    records = {s.name: s for s in to_discovery(MANIFEST).services}
    core_data = records["core-data"]
    assert (core_data.api_version, core_data.published, core_data.container_port) == ("v2", True, 59880)
    assert core_data.depends_on_conditions == {"security-proxy-setup": "service_completed_successfully"}
    assert core_data.depends_on_optional == ["consul"]
    assert records["security-proxy-setup"].one_shot is True
    assert records["consul"].one_shot is None  # the manifest does not say: the catalog's default applies
    assert (records["device-virtual"].published, records["device-virtual"].port) == (False, None)


def test_a_live_record_is_completed_with_them():
    manifest = to_discovery(MANIFEST)
    live = Discovery(source="consul", nodes=[NodeRecord("gw1", "127.0.0.1")],
                     services=[ServiceRecord("core-data", "gw1", address="edgex-core-data", port=59880)])
    overlaid = {s.name: s for s in overlay_manifest(live, manifest)}
    assert overlaid["core-data"].api_version == "v2" and overlaid["core-data"].registered
    assert overlaid["core-data"].depends_on_conditions == {"security-proxy-setup": "service_completed_successfully"}
    assert overlaid["security-proxy-setup"].one_shot is True and not overlaid["security-proxy-setup"].registered


def test_a_sync_from_the_registry_keeps_them():
    live = Discovery(source="consul", datacenter="dc1", nodes=[NodeRecord("gw1", "127.0.0.1")],
                     services=[ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59880),
                               ServiceRecord("device-virtual", "gw1", address="127.0.0.1", port=59900)])
    merged = merge_discovery(copy.deepcopy(MANIFEST), live, "consul://127.0.0.1:8500/dc1")
    services = merged["hosts"]["gw1"]["services"]
    assert services["core-data"]["api_version"] == "v2"
    assert services["core-data"]["depends_on_optional"] == ["consul"]
    assert services["security-proxy-setup"]["one_shot"] is True  # deployed, not registered: kept
    assert services["device-virtual"]["published"] is False and services["device-virtual"]["container_port"] == 59900


def test_the_documented_schema_has_them():
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
    with open(os.path.join(repo, "docs", "manifest.schema.json")) as handle:
        service = json.load(handle)["properties"]["hosts"]["additionalProperties"]["properties"]["services"]
    fields = service["additionalProperties"]["properties"]
    assert {"one_shot", "api_version", "depends_on_conditions", "depends_on_optional", "published",
            "container_port"} <= set(fields)
    with open(os.path.join(repo, "docs", "manifest.md")) as handle:
        text = handle.read()
    for field in ("one_shot", "api_version", "depends_on_conditions", "depends_on_optional", "published",
                  "container_port"):
        assert "%s:" % field in text, field


def test_where_the_compose_file_publishes_a_service_wins_over_its_registration():
    # Real EdgeX services register their container host name and port (edgex-core-data:59880), which
    # the gateway cannot resolve; the compose import knows where it is published.
    data = copy.deepcopy(MANIFEST)
    data["hosts"]["gw1"]["services"]["core-data"]["address"] = "127.0.0.1"
    data["hosts"]["gw1"]["services"]["core-data"]["port"] = 49880
    manifest = to_discovery(data)
    live = Discovery(source="consul", datacenter="dc1", nodes=[NodeRecord("gw1", "127.0.0.1")], services=[
        ServiceRecord("core-data", "gw1", address="edgex-core-data", port=59880),
        ServiceRecord("device-virtual", "gw1", address="edgex-device-virtual", port=59900),
        ServiceRecord("consul", "gw1", address="127.0.0.1", port=8300)])
    overlaid = {s.name: s for s in overlay_manifest(live, manifest)}
    assert (overlaid["core-data"].address, overlaid["core-data"].port) == ("127.0.0.1", 49880)
    assert overlaid["device-virtual"].port is None and overlaid["device-virtual"].published is False
    assert overlaid["consul"].port == 8300  # an entry that says nothing of publishing: the registration's
    merged = merge_discovery(data, live, "consul")["hosts"]["gw1"]["services"]
    assert (merged["core-data"]["address"], merged["core-data"]["port"]) == ("127.0.0.1", 49880)
    assert "port" not in merged["device-virtual"] and "address" not in merged["device-virtual"]
    validate(merged and {"version": 1, "hosts": {"gw1": {"address": "127.0.0.1", "services": merged}}})
