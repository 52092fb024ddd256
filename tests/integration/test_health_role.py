"""Role edgex.sysmgmt.edgex_health takes the registry connection from role edgex_registry in each
entry point: main checks the registry variables (the registry role's argument check), check (the
fleet entry point of playbooks/health.yml) runs one task per gateway and leaves the values to the
module's own argument check. No Docker: the manifest registry and a port nothing listens on."""

import json

import pytest
import yaml

from tests.integration.playbook import run_play
from tests.testbed.fixtures_consul import free_port

GATEWAY = "rolegw"


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump({"version": 1, "hosts": {GATEWAY: {"address": "127.0.0.1", "services": {
        "core-data": {"executor": "docker", "target": "edgex-core-data", "address": "127.0.0.1",
                      "port": free_port(), "health": "/api/v3/ping"}}}}}))
    return str(path)


def role_play(tmp_path, manifest, entry_point, **variables):
    variables = dict({"edgex_registry_type": "manifest", "edgex_manifest_path": manifest, "edgex_node": GATEWAY,
                      "edgex_health_probe_timeout": 1.0}, **variables)
    tasks = ("    - ansible.builtin.import_role:\n        name: edgex.sysmgmt.edgex_health\n"
             "        tasks_from: %s\n" % entry_point)
    return run_play(tmp_path, tasks, extra_args=["-e", json.dumps(variables)])


def task_names(play):
    return [t["task"]["name"] for p in play.json["plays"] for t in p["tasks"]]


def test_check_is_one_task_with_the_registry_connection(tmp_path, manifest):
    play = role_play(tmp_path, manifest, "check")
    assert play.returncode == 0, play.failures()
    assert len(task_names(play)) == 1, task_names(play)
    result = play.task()
    assert result["source"] == "manifest"
    assert [(s["name"], s["verdict"]) for s in result["services"]] == [("core-data", "unhealthy")]


def test_main_checks_the_registry_variables(tmp_path, manifest):
    play = role_play(tmp_path, manifest, "main", edgex_registry_port="eighty")
    assert play.returncode != 0
    # the role's own argument check, then the registry role's, which fails; nothing runs after it
    names, failed = task_names(play), play.tasks()[-1]
    assert [n.split(" : ")[0] for n in names] == ["edgex.sysmgmt.edgex_health", "edgex.sysmgmt.edgex_registry"]
    assert failed["action"] == "ansible.builtin.validate_argument_spec" and failed["failed"]
    assert "argument 'edgex_registry_port' is of type str" in failed["msg"], failed["msg"]


def test_check_leaves_the_values_to_the_module(tmp_path, manifest):
    play = role_play(tmp_path, manifest, "check", edgex_registry_port="eighty")
    assert play.returncode != 0
    assert len(task_names(play)) == 1
    failed = play.task()
    assert failed["failed"] and "port" in failed["msg"] and "int" in failed["msg"], failed["msg"]
