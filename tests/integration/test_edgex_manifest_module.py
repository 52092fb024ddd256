"""edgex.sysmgmt.edgex_manifest through ansible-playbook: sync, import, register/deregister."""

import os

import yaml

from tests.integration.playbook import REPO, run_play
from tests.testbed.fixtures_consul import free_port

NAPA = os.path.join(REPO, "tests", "unit", "data", "compose", "napa-3.1.1-no-secty.yml")


def task(module_args, check=False):
    lines = "".join("        %s: %s\n" % (k, v) for k, v in module_args.items())
    return "    - edgex.sysmgmt.edgex_manifest:\n%s" % lines


def test_synced_from_consul_keeps_executor_targets_and_is_idempotent(consul, tmp_path):
    path = tmp_path / "manifest.yml"
    client = consul.client()
    client.agent.service.register("core-data", address="127.0.0.1", port=59880, tags=["edgex"])
    client.agent.service.register("core-metadata", address="127.0.0.1", port=59881)
    args = {"manifest_path": str(path), "state": "synced", "host": consul.host, "port": consul.port}
    if consul.token:
        args["token"] = consul.token

    first = run_play(tmp_path, task(args), diff=True)
    assert first.returncode == 0, first.stdout + first.stderr
    result = first.task()
    assert result["changed"] is True and result["source"] == "consul" and result["complete"] is True
    assert "core-data" in result["diff"]["after"]
    assert "manifest" not in result and result["summary"]["services_added"] >= 2  # a summary, not the file
    data = yaml.safe_load(path.read_text())
    node = [h for h in data["hosts"] if "core-data" in data["hosts"][h]["services"]][0]
    assert data["hosts"][node]["services"]["core-data"]["port"] == 59880

    # What Consul does not know, added by hand, survives the next sync.
    edit = {"manifest_path": str(path), "state": "present", "node": node, "service": "core-data",
            "executor": "docker", "target": "edgex-core-data", "depends_on": "[core-metadata]"}
    assert run_play(tmp_path, task(edit)).task()["changed"] is True
    mtime = os.stat(str(path)).st_mtime_ns
    again = run_play(tmp_path, task(args))
    assert again.task()["changed"] is False
    assert os.stat(str(path)).st_mtime_ns == mtime
    kept = yaml.safe_load(path.read_text())["hosts"][node]["services"]["core-data"]
    assert (kept["executor"], kept["target"], kept["depends_on"]) == ("docker", "edgex-core-data", ["core-metadata"])


def test_synced_never_writes_from_a_failed_read(tmp_path):
    path = tmp_path / "manifest.yml"
    path.write_text("version: 1\nhosts:\n  gw1: {address: 127.0.0.1, services: {}}\n")
    before = path.read_text()
    result = run_play(tmp_path, task({"manifest_path": str(path), "state": "synced", "port": free_port(),
                                      "timeout": 1}))
    assert result.returncode != 0
    assert "unreachable" in result.task()["msg"]
    assert path.read_text() == before


def test_import_from_compose_then_check_mode_and_diff(tmp_path):
    path = tmp_path / "manifest.yml"
    args = {"manifest_path": str(path), "state": "present", "node": "gw1", "address": "127.0.0.1", "src": NAPA}
    check = run_play(tmp_path, task(args), check=True, diff=True)
    assert check.task()["changed"] is True and not path.exists()
    assert "edgex-core-data" in check.task()["diff"]["after"]

    result = run_play(tmp_path, task(args)).task()
    assert result["changed"] is True and result["source"] == "compose"
    services = yaml.safe_load(path.read_text())["hosts"]["gw1"]["services"]
    assert services["core-data"]["target"] == "edgex-core-data"
    assert services["core-data"]["executor"] == "docker"
    assert "database" in services["core-data"]["depends_on"]
    assert run_play(tmp_path, task(args)).task()["changed"] is False


def test_register_and_deregister_with_registry_type_manifest(tmp_path):
    path = tmp_path / "manifest.yml"
    base = {"manifest_path": str(path), "registry_type": "manifest", "node": "gw1"}
    present = dict(base, state="present", address="127.0.0.1", service="device-modbus", executor="docker",
                   target="edgex-device-modbus", service_port=59901, health="/api/v3/ping")
    assert run_play(tmp_path, task(present)).task()["changed"] is True
    assert run_play(tmp_path, task(present)).task()["changed"] is False
    absent = dict(base, state="absent", service="device-modbus")
    diff = run_play(tmp_path, task(absent), diff=True).task()
    assert diff["changed"] is True and "device-modbus" in diff["diff"]["before"]
    assert "device-modbus" not in diff["diff"]["after"]
    assert run_play(tmp_path, task(absent)).task()["changed"] is False
    assert os.path.exists(str(path) + ".bak")


def test_bad_input_fails_clearly_and_loses_nothing(tmp_path):
    path = tmp_path / "manifest.yml"
    path.write_text("version: 1\nhosts:\n  gw1: {address: 127.0.0.1, services: {core-data: {port: 59880}}}\n")
    before = path.read_text()
    hostile = run_play(tmp_path, task({"manifest_path": str(path), "state": "present", "node": "gw1",
                                       "service": "'core-data; rm -rf /'"}))
    assert hostile.returncode != 0 and "invalid service name" in hostile.task()["msg"]
    cycle = run_play(tmp_path, task({"manifest_path": str(path), "state": "present", "node": "gw1",
                                     "service": "core-data", "depends_on": "[core-data]"}))
    assert cycle.returncode != 0 and "dependency cycle" in cycle.task()["msg"]
    path.write_text(before + "  gw1: {address: 127.0.0.2}\n")
    broken = path.read_text()
    dup = run_play(tmp_path, task({"manifest_path": str(path), "state": "absent", "node": "gw1"}))
    assert dup.returncode != 0 and "duplicate key 'gw1'" in dup.task()["msg"]
    assert path.read_text() == broken
