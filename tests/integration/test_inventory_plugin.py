"""The edgex.sysmgmt.edgex inventory plugin through ansible-inventory and ansible-playbook."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.testbed.fixtures_consul import EmulatorProcess, ConsulHandle, free_port
from tests.testbed.fixtures_docker import wait_until

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)

MANIFEST = textwrap.dedent("""\
    version: 1
    updated_at: "2026-01-01T00:00:00Z"
    hosts:
      gw1:
        address: 127.0.0.1
        datacenter: dc1
        services:
          core-data: {executor: docker, target: edgex-core-data, port: 59880}
      gw-east:
        address: 127.0.0.20
        datacenter: dc2
        services:
          core-data: {executor: docker, target: edgex-core-data, port: 59880}
          device-virtual: {executor: docker, target: edgex-device-virtual, port: 59900}
    """)


def run_inventory(config_path, *args, env=None, check=True):
    environ = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
                   ANSIBLE_INVENTORY_UNPARSED_FAILED="true", **(env or {}))
    environ.pop("CONSUL_HTTP_ADDR", None)  # the config file says where Consul is
    result = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", str(config_path)] + list(args),
                            env=environ, capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def plain(value):
    """ansible-inventory writes values marked unsafe as {"__ansible_unsafe": value}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def inventory_list(config_path, *args, **kwargs):
    result = run_inventory(config_path, "--list", *args, **kwargs)
    return plain(json.loads(result.stdout)), result.stderr


def write_config(tmp_path, consul=None, name="test.edgex.yml", **options):
    config = {"plugin": "edgex.sysmgmt.edgex", "manifest_path": str(tmp_path / "manifest.yml"), "timeout": 2}
    if consul is not None:
        config.update(host=consul.host, port=consul.port)
        if consul.token:
            config["token"] = consul.token
    config.update(options)
    path = tmp_path / name
    path.write_text(json.dumps(config))  # JSON is YAML
    (tmp_path / "manifest.yml").write_text(MANIFEST)
    return path


def group(inventory, name):
    return sorted(inventory.get(name, {}).get("hosts", []))


def test_hosts_groups_and_health_follow_the_registry(consul, local_standin, tmp_path):
    port = free_port()
    standin = local_standin("core-data", port, registry="consul", registry_port=consul.port).wait()
    config = write_config(tmp_path, consul)
    wait_until(lambda: "gw1" in group(inventory_list(config)[0], "edgex_core_data_passing"),
               what="gw1 in edgex_core_data_passing")
    inventory = inventory_list(config)[0]
    node = list(inventory["_meta"]["hostvars"])[0]
    hostvars = inventory["_meta"]["hostvars"][node]
    assert hostvars["edgex_source"] == "consul"
    assert hostvars["edgex_services"]["core-data"]["port"] == port
    assert hostvars["edgex_services"]["core-data"]["status"] == "passing"
    assert {c["id"] for c in hostvars["edgex_services"]["core-data"]["checks"]} >= {"core-data"}
    assert node in group(inventory, "edgex_dc_dc1") and node in group(inventory, "edgex_source_consul")

    standin.process.kill()  # crash: no deregistration, the check goes critical
    wait_until(lambda: node in group(inventory_list(config)[0], "edgex_core_data_critical"), timeout=30,
               what="core-data critical after a crash")
    assert node not in group(inventory_list(config)[0], "edgex_core_data_passing")


def test_consul_down_falls_back_to_the_manifest_with_a_warning(tmp_path):
    config = write_config(tmp_path, host="127.0.0.1", port=free_port())
    inventory, stderr = inventory_list(config)
    assert "consul registry unreachable" in stderr
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(hostvars) == ["gw-east", "gw1"]
    assert hostvars["gw1"]["edgex_source"] == "manifest"
    assert hostvars["gw1"]["edgex_manifest_age"] > 3600
    assert group(inventory, "edgex_core_data_unknown") == ["gw-east", "gw1"]
    assert group(inventory, "edgex_source_manifest") == ["gw-east", "gw1"]


def test_one_datacenter_down_the_other_from_consul(tmp_path):
    dc1 = EmulatorProcess(nodes=(("gw1", "127.0.0.1", "dc1"),), log_path=str(tmp_path / "dc1.log")).start()
    try:
        ConsulHandle(dc1.host, dc1.port, emulator=dc1).client().agent.service.register(
            "core-command", address="127.0.0.1", port=59882)
        config = write_config(tmp_path, sources=[
            {"host": "127.0.0.1", "port": dc1.port, "datacenter": "dc1"},
            {"host": "127.0.0.1", "port": free_port(), "datacenter": "dc2"},
        ])
        inventory, stderr = inventory_list(config)
    finally:
        dc1.stop()
    hostvars = inventory["_meta"]["hostvars"]
    assert hostvars["gw1"]["edgex_source"] == "consul"
    assert sorted(hostvars["gw1"]["edgex_services"]) == ["consul", "core-command"]  # Consul's answer, not the file's
    assert hostvars["gw-east"]["edgex_source"] == "manifest"  # dc2 only, from the manifest
    assert group(inventory, "edgex_dc_dc2") == ["gw-east"]
    assert "dc2" in stderr and "unreachable" in stderr


def test_wrong_token_is_a_clear_error_and_never_printed(consul_acl, tmp_path):
    config = write_config(tmp_path, consul_acl, token="s3cret-wrong-token")
    result = run_inventory(config, "--list", check=False)
    assert result.returncode != 0
    assert "403" in result.stderr and "fallback_on_auth_error" in result.stderr
    assert "s3cret-wrong-token" not in result.stderr + result.stdout


def test_token_stays_out_of_output_and_cache(consul_acl, tmp_path):
    cache_dir = tmp_path / "cache"
    config = write_config(tmp_path, consul_acl, cache=True, cache_plugin="ansible.builtin.jsonfile",
                          cache_connection=str(cache_dir), cache_timeout=600)
    verbose = run_inventory(config, "--list", "-vvvv")
    inventory, stderr = inventory_list(config, "--flush-cache")
    assert "gw1" in inventory["_meta"]["hostvars"]
    cached = "".join(p.read_text() for p in cache_dir.iterdir())
    assert "gw1" in cached
    for text in (json.dumps(inventory), stderr, cached, verbose.stdout, verbose.stderr):
        assert consul_acl.token not in text


def test_cache_is_used_until_flushed(consul, tmp_path):
    if not consul.is_emulator:
        pytest.skip("counts requests on the emulator")
    cache_dir = tmp_path / "cache"
    config = write_config(tmp_path, consul, cache=True, cache_plugin="ansible.builtin.jsonfile",
                          cache_connection=str(cache_dir), cache_timeout=600)
    inventory_list(config)
    consul.client().agent.service.register("support-scheduler", address="127.0.0.1", port=59861)
    consul.reset_stats()
    assert "edgex_support_scheduler" not in inventory_list(config)[0]
    assert consul.stats()["requests"] == 0
    assert group(inventory_list(config, env={})[0], "edgex_support_scheduler") == []
    flushed = inventory_list(config, "--flush-cache")[0]
    assert group(flushed, "edgex_support_scheduler") == ["gw1"]


def test_garbage_from_consul_is_a_clear_error(consul, tmp_path):
    consul.fault("garbage")
    config = write_config(tmp_path, consul)
    result = run_inventory(config, "--list", check=False)
    assert result.returncode != 0
    assert "not Consul JSON" in result.stderr


def test_registry_values_are_never_templated(consul, tmp_path):
    marker = tmp_path / "pwned"
    consul.client().agent.service.register(
        "core-data", address="127.0.0.1", port=59880,
        meta={"note": "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % marker})
    config = write_config(tmp_path, consul)
    raw = json.loads(run_inventory(config, "--list").stdout)
    note = raw["_meta"]["hostvars"]["gw1"]["edgex_services"]["core-data"]["meta"]["note"]
    assert set(note) == {"__ansible_unsafe"}  # marked unsafe, as ansible-inventory shows it
    playbook = tmp_path / "show.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: edgex_core_data
          gather_facts: false
          connection: local
          tasks:
            - ansible.builtin.debug:
                msg: "{{ edgex_services['core-data'].meta.note }}"
        """))
    environ = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"))
    result = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(config), str(playbook)],
                            env=environ, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lookup('ansible.builtin.pipe'" in result.stdout
    assert not marker.exists()


def test_manifest_only_and_constructed_groups(tmp_path):
    config = write_config(tmp_path, registry_type="none", keyed_groups=[{"key": "edgex_datacenter", "prefix": "site"}],
                          groups={"has_device_services": "'device-virtual' in edgex_services"},
                          compose={"core_data_port": "edgex_services['core-data'].port"})
    inventory, stderr = inventory_list(config)
    assert "unreachable" not in stderr
    assert group(inventory, "site_dc2") == ["gw-east"]
    assert group(inventory, "has_device_services") == ["gw-east"]
    assert inventory["_meta"]["hostvars"]["gw1"]["core_data_port"] == 59880


def test_hostile_node_names_are_skipped(consul, tmp_path):
    consul.add_node("bad;name", "127.0.0.9")
    inventory, stderr = inventory_list(write_config(tmp_path, consul))
    assert "bad;name" not in inventory["_meta"]["hostvars"]
    assert "skipped node 'bad;name'" in stderr


def test_core_keeper_registrations_become_hosts_and_groups(keeper, local_standin, tmp_path):
    port = free_port()
    local_standin("core-data", port, registry="keeper", registry_port=keeper.port, check_interval="1s").wait()
    config = write_config(tmp_path, registry_type="keeper", host=keeper.host, port=keeper.port)
    wait_until(lambda: group(inventory_list(config)[0], "edgex_core_data_passing"), what="core-data UP in keeper")
    inventory = inventory_list(config)[0]
    hostvars = inventory["_meta"]["hostvars"][keeper.host]
    assert hostvars["edgex_source"] == "keeper"
    assert hostvars["edgex_services"]["core-data"]["port"] == port
