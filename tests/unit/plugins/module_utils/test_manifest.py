"""The manifest: validation with precise errors, atomic writes, merge from a registry read."""

import json
import os
import subprocess
import sys
import textwrap

import jsonschema
import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.edits import merge_discovery, remove_service, set_service
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.schema import MANIFEST_SCHEMA, schema_errors, validate
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore, parse
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.manifest import ManifestRegistry
from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import InvalidNameError, ManifestError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import discover
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def collections_root():
    """The directory holding the ansible_collections this run imports the collection from
    (.collections in the repository; wherever ansible-test put it for an installed tarball)."""
    path = os.path.abspath(sys.modules[ManifestStore.__module__].__file__)
    while os.path.basename(path) != "ansible_collections":
        path = os.path.dirname(path)
    return os.path.dirname(path)


GOOD = textwrap.dedent("""\
    version: 1
    generated_from: manual
    updated_at: "2026-11-24T23:00:00Z"
    hosts:
      gw1:
        address: 127.0.0.1
        datacenter: dc1
        services:
          database: {executor: docker, target: edgex-redis, port: 6379}
          core-metadata:
            executor: docker
            target: edgex-core-metadata
            port: 59881
            health: /api/v3/ping
            depends_on: [database]
          core-data:
            executor: compose
            target: edgex/core-data
            port: 59880
            depends_on: [core-metadata, database]
            tags: [edgex]
            meta: {version: "3.1.1"}
    """)


def write(tmp_path, text, name="manifest.yml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        ManifestStore(path).read()
    return str(info.value)


def test_good_manifest_loads_into_a_discovery(tmp_path):
    store = ManifestStore(write(tmp_path, GOOD))
    discovery = store.to_discovery()
    assert discovery.source == "manifest"
    assert [n.name for n in discovery.nodes] == ["gw1"]
    data = {s.name: s for s in discovery.services}
    assert sorted(data) == ["core-data", "core-metadata", "database"]
    assert data["core-data"].executor == "compose" and data["core-data"].target == "edgex/core-data"
    assert data["core-data"].depends_on == ["core-metadata", "database"]
    assert data["core-data"].address == "127.0.0.1"  # inherited from the host
    assert data["core-data"].status == "unknown"  # a file knows no live health
    assert data["core-metadata"].health_path == "/api/v3/ping"
    assert discovery.manifest_age > 0


@pytest.mark.parametrize("mutation, expected", [
    (("gw1:\n", "gw1:\n    colour: blue\n"), "hosts/gw1/colour: unknown key"),
    (("port: 59880", "port: fifty"), "hosts/gw1/services/core-data/port: must be integer or null, not string"),
    (("port: 59880", "port: 70000"), "hosts/gw1/services/core-data/port: must be at most 65535"),
    (("executor: compose", "executor: podman"), "hosts/gw1/services/core-data/executor: must be one of"),
    (("depends_on: [database]", "depends_on: [nosuch]"),
     "hosts/gw1/services/core-metadata/depends_on: names 'nosuch', which is not a service on host gw1"),
    (("depends_on: [database]", "depends_on: [core-data]"), "dependency cycle: core-data -> core-metadata -> core-data"),
    (("  gw1:\n", "  'gw1; rm -rf /':\n"), "invalid name"),
    (("version: 1", "version: 2"), "version: must be one of 1"),
    (("      database:", "      core-data: {}\n      database:"), "duplicate key 'core-data'"),
    (("      core-metadata:\n", "      meta2:\n        id: database\n      core-metadata:\n"),
     "duplicate service id 'database'"),
])
def test_bad_input_names_file_path_and_cause(tmp_path, mutation, expected):
    old, new = mutation
    assert old in GOOD
    message = load_error(tmp_path, GOOD.replace(old, new, 1))
    assert str(tmp_path / "manifest.yml") in message
    assert expected in message


@pytest.mark.parametrize("text, expected", [
    ("hosts: [\n", "is not valid YAML"),
    ("- just\n- a list\n", "must be a mapping"),
    ("version: 1\n", "missing required key 'hosts'"),
])
def test_not_a_manifest(tmp_path, text, expected):
    assert expected in load_error(tmp_path, text)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot read manifest .*nope.yml"):
        ManifestStore(str(tmp_path / "nope.yml")).read()
    assert ManifestStore(str(tmp_path / "nope.yml")).read(missing_ok=True)["hosts"] == {}


def test_schema_file_is_the_schema_the_code_validates_with():
    with open(os.path.join(REPO, "docs", "manifest.schema.json")) as handle:
        assert json.load(handle) == MANIFEST_SCHEMA


@pytest.mark.parametrize("text, valid", [
    (GOOD, True),
    (GOOD.replace("port: 59880", "port: '59880'"), False),
    (GOOD.replace("gw1:\n", "gw1:\n    colour: blue\n", 1), False),
    (GOOD.replace("executor: compose", "executor: podman"), False),
])
def test_our_validator_agrees_with_jsonschema(text, valid):
    data = yaml.safe_load(text)
    jsonschema_ok = not list(jsonschema.Draft202012Validator(MANIFEST_SCHEMA).iter_errors(data))
    ours_ok = not list(schema_errors(data, MANIFEST_SCHEMA))
    assert jsonschema_ok == ours_ok == valid


def test_write_is_idempotent_and_keeps_a_backup(tmp_path):
    path = write(tmp_path, GOOD)
    store = ManifestStore(path)
    data = store.read()
    changed = store.write(data)[0]
    assert changed is False
    assert not os.path.exists(store.backup_path)
    mtime = os.stat(path).st_mtime_ns

    data["hosts"]["gw1"]["services"]["core-data"]["port"] = 59999
    changed, written = store.write(data)
    assert changed is True
    assert written["updated_at"] != "2026-11-24T23:00:00Z"
    assert store.read()["hosts"]["gw1"]["services"]["core-data"]["port"] == 59999
    assert open(store.backup_path).read() == GOOD
    assert os.stat(path).st_mtime_ns >= mtime
    assert not [f for f in os.listdir(str(tmp_path)) if f.endswith(".tmp")]


def test_invalid_data_is_never_written(tmp_path):
    path = write(tmp_path, GOOD)
    store = ManifestStore(path)
    data = store.read()
    data["hosts"]["gw1"]["services"]["core-data"]["depends_on"] = ["ghost"]
    with pytest.raises(ManifestError, match="to be written to"):
        store.write(data)
    assert open(path).read() == GOOD


def test_check_mode_touches_nothing(tmp_path):
    path = write(tmp_path, GOOD)
    store = ManifestStore(path)
    changed, before, after = store.update(lambda d: dict(d, generated_from="elsewhere"), check_mode=True)
    assert changed and after["generated_from"] == "elsewhere" and before["generated_from"] == "manual"
    assert open(path).read() == GOOD


def test_a_writer_killed_mid_write_leaves_the_old_manifest(tmp_path):
    """SIGKILL a process while it writes a large manifest over and over: every state of
    the file that the reader sees is a complete, valid manifest."""
    path = write(tmp_path, GOOD)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore
        store = ManifestStore(%r)
        n = 0
        while True:
            data = store.read()
            hosts = {"gw%%d" %% i: {"address": "127.0.0.%%d" %% (i %% 250 + 1), "services": {}} for i in range(2000)}
            hosts["gw1"] = data["hosts"]["gw1"]
            data["hosts"] = hosts
            data["generated_from"] = "round %%d" %% n
            store.write(data)
            n += 1
            print(n, flush=True)
    """) % (collections_root(), path)], stdout=subprocess.PIPE)
    assert writer.stdout.readline()  # at least one full write happened
    writer.stdout.readline()
    writer.kill()
    writer.wait()
    data = ManifestStore(path).read()
    assert data["hosts"]["gw1"]["services"]["core-data"]["port"] == 59880
    assert len(data["hosts"]) == 2000


def test_merge_keeps_what_the_registry_does_not_know(tmp_path):
    data = parse(GOOD)
    data["hosts"]["gw9"] = {"address": "10.9.9.9", "datacenter": "dc2", "services": {}}
    discovery = Discovery(source="consul", datacenter="dc1", nodes=[
        NodeRecord("gw1", "127.0.0.1", "dc1"), NodeRecord("gw2", "127.0.0.2", "dc1"),
    ], services=[
        ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59880, status="passing"),
        ServiceRecord("support-notifications", "gw1", address="127.0.0.1", port=59860, tags=["b", "a"]),
        ServiceRecord("core-data", "gw2", address="127.0.0.2", port=59880),
    ])
    merged = merge_discovery(data, discovery, "consul://127.0.0.1:8500/dc1")
    validate(merged)
    gw1 = merged["hosts"]["gw1"]["services"]
    # executor/target/depends_on survive; the registry's address/port win
    assert gw1["core-data"]["executor"] == "compose" and gw1["core-data"]["target"] == "edgex/core-data"
    assert gw1["core-data"]["depends_on"] == ["core-metadata", "database"]
    # deployed but not registered (stopped): kept because it has an executor
    assert "core-metadata" in gw1 and "database" in gw1
    assert gw1["support-notifications"] == {"id": "support-notifications", "address": "127.0.0.1",
                                            "port": 59860, "tags": ["a", "b"], "meta": {}, "depends_on": []}
    assert merged["hosts"]["gw2"]["services"]["core-data"]["port"] == 59880
    assert merged["hosts"]["gw9"] == data["hosts"]["gw9"]  # another datacenter: untouched
    assert merged["generated_from"] == "consul://127.0.0.1:8500/dc1"


def test_merge_drops_a_node_the_registry_no_longer_has():
    data = parse(GOOD)
    discovery = Discovery(source="consul", datacenter="dc1", nodes=[NodeRecord("gw2", "127.0.0.2", "dc1")])
    merged = merge_discovery(data, discovery, "consul")
    assert sorted(merged["hosts"]) == ["gw2"]


def test_manifest_registry_registers_and_deregisters(tmp_path):
    path = str(tmp_path / "m.yml")
    registry = ManifestRegistry({"manifest_path": path})
    record = ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59880, executor="docker",
                           target="edgex-core-data", health_path="/api/v3/ping")
    assert registry.register(record) is True
    assert registry.register(record) is False
    assert [s.name for s in registry.discover().services] == ["core-data"]
    assert registry.register(ServiceRecord("core-metadata", "gw1", port=59881)) is True
    assert registry.deregister("core-data") is True
    assert registry.deregister("core-data") is False
    assert [s.name for s in registry.discover().services] == ["core-metadata"]


def test_discover_with_type_manifest_and_none_reads_the_file(tmp_path):
    path = write(tmp_path, GOOD)
    for registry_type in ("manifest", "none"):
        discovery = discover({"registry_type": registry_type, "manifest_path": path})
        assert discovery.source == "manifest"
        assert len(discovery.services) == 3


def test_removing_a_service_others_depend_on_is_refused(tmp_path):
    data = parse(GOOD)
    with pytest.raises(ManifestError, match="cannot remove database from host gw1: core-data, core-metadata depend on it"):
        remove_service(data, "gw1", "database")
    assert remove_service(data, "gw1", "core-data") == [("gw1", "core-data")]
    assert remove_service(data, "gw1", "core-data") == []


def test_set_service_keeps_fields_not_given_and_needs_an_address_for_new_hosts():
    data = parse(GOOD)
    set_service(data, "gw1", "core-data", {"port": 59999})
    service = data["hosts"]["gw1"]["services"]["core-data"]
    assert service["port"] == 59999 and service["target"] == "edgex/core-data"
    with pytest.raises(ManifestError, match="host gw7 is not in the manifest; give its address"):
        set_service(data, "gw7", "core-data", {"port": 1})
    set_service(data, "gw7", "core-data", {"port": 1}, address="127.0.0.7", datacenter="dc9")
    assert data["hosts"]["gw7"] == {"address": "127.0.0.7", "datacenter": "dc9",
                                    "services": {"core-data": {"port": 1}}}
    with pytest.raises(InvalidNameError, match="invalid service name"):
        set_service(data, "gw1", "core data; reboot", {})


def test_validation_against_a_trusted_manifest_still_checks_every_host_that_changed():
    trusted = parse(GOOD)
    edited = parse(GOOD)
    edited["hosts"]["gw1"]["services"]["core-data"]["depends_on"] = ["ghost"]
    edited["hosts"]["Bad Name"] = {"address": "10.0.0.9"}
    with pytest.raises(ManifestError) as info:
        validate(edited, "edited", trusted=trusted)
    assert "hosts/Bad Name: invalid name" in str(info.value)
    del edited["hosts"]["Bad Name"]
    with pytest.raises(ManifestError, match="names 'ghost', which is not a service on host gw1"):
        validate(edited, "edited", trusted=trusted)
    edited["version"] = 2
    with pytest.raises(ManifestError, match="version: must be one of 1"):
        validate(edited, "edited", trusted=trusted)
