"""The compose executor on the real engine with Debian's docker-compose 1.29.2 (compose v1).

A compose project of stand-ins (tests/testbed/compose_gateway.py) is created (``up --no-start``,
as a deployment that is installed but not running), imported with ``edgex_manifest src:``, then
started, stopped and restarted through ``executor: compose``; what happened is read back from
the engine (``docker inspect`` StartedAt/FinishedAt), never from the module.
"""

import json
import os
import shutil
import subprocess

import pytest

from tests.integration.playbook import run_play
from tests.testbed import compose_gateway as cg
from tests.testbed.testbed import Lock

pytestmark = pytest.mark.docker
SERVICES = list(cg.SERVICES)
EXECUTOR = "from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor\n"


@pytest.fixture
def compose_project(standin_image_tag, tmp_path):
    """The project written and created (containers exist, none started); removed at teardown."""
    if shutil.which("docker-compose") is None:
        message = "docker-compose (compose v1) is not installed: apt-get install docker-compose"
        if os.environ.get("EDGEX_REQUIRE_DOCKER"):
            pytest.fail(message)
        pytest.skip(message)
    directory = str(tmp_path / "gateway")
    path = cg.write_project(directory, standin_image_tag)
    with Lock():
        cg.compose(path, "down", "--remove-orphans", check=False)
        cg.compose(path, "up", "--no-start")
        try:
            yield {"directory": directory, "file": path}
        finally:
            cg.compose(path, "down", "--remove-orphans", "-t", "2", check=False)


def executor_details(project, services, **options):
    """details() of each service through the real compose executor (in this process)."""
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor

    executor = get_executor("compose", **options)
    return {s: executor.details("%s/%s" % (cg.PROJECT, s)) for s in services}


def state_of(project, service):
    return cg.inspect_state(cg.container_of(project["file"], service))


def test_the_executor_drives_a_real_compose_v1_project(compose_project):
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor

    executor = get_executor("compose", project_directory=compose_project["directory"],
                            files=[compose_project["file"]])
    target = "%s/database" % cg.PROJECT
    created = executor.details(target)
    # A created container has never run: "stopped", status "created", no pid.
    assert (created["state"], created["raw"], created["pid"]) == ("stopped", ["created"], None)
    assert created["containers"][0]["name"] == "%s_database_1" % cg.PROJECT  # v1 names with "_"
    assert executor.details("%s/no-such-service" % cg.PROJECT)["state"] == "absent"

    executor.start(target)
    running = executor.details(target)
    assert running["state"] == "running" and running["pid"] == state_of(compose_project, "database")["Pid"]
    first_start = running["started_at"]

    executor.restart(target, timeout=2)
    assert executor.details(target)["started_at"] > first_start

    executor.stop(target, timeout=2)
    stopped = executor.details(target)
    # SIGTERM ends the stand-in cleanly (exit 0): a stop, not a failure.
    assert (stopped["state"], stopped["exit_code"]) == ("stopped", 0)
    assert executor._command == ["docker-compose"] and executor._json_ps is False


def test_project_directory_alone_finds_the_projects_compose_file(compose_project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the project's directory: only the option can point there
    details = executor_details(compose_project, ["core-data"], project_directory=compose_project["directory"])
    assert details["core-data"]["state"] == "stopped"
    # Without it, compose v1 looks in the working directory and finds nothing: an error, not "absent".
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ExecutorError
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor

    with pytest.raises(ExecutorError, match="Can't find a suitable configuration file"):
        get_executor("compose").start("%s/core-data" % cg.PROJECT)


def test_files_alone_name_the_compose_file_wherever_it_is(compose_project, tmp_path, monkeypatch):
    renamed = os.path.join(compose_project["directory"], "edgex-gateway.yml")
    shutil.copy(compose_project["file"], renamed)
    monkeypatch.chdir(tmp_path)
    details = executor_details(compose_project, ["core-metadata"], files=[renamed])
    assert details["core-metadata"]["state"] == "stopped"


def import_manifest(tmp_path, project):
    manifest = tmp_path / "manifest.yml"
    args = {"manifest_path": str(manifest), "state": "present", "node": cg.NODE, "address": cg.ADDRESS,
            "src": project["file"], "executor": "compose", "project": cg.PROJECT}
    play = run_play(tmp_path, "    - edgex.sysmgmt.edgex_manifest: %s\n" % json.dumps(args))
    assert play.returncode == 0, play.failures()
    import yaml

    return manifest, yaml.safe_load(manifest.read_text())


def control(tmp_path, manifest, state, compose_file, names=("all",), check=False):
    args = {"name": list(names), "state": state, "node": cg.NODE, "executor": "compose",
            "registry_type": "consul", "host": cg.ADDRESS, "port": cg.REGISTRY_PORT,
            "manifest_path": str(manifest), "wait_timeout": 30, "stop_timeout": 2,
            "project_directory": os.path.dirname(compose_file), "compose_files": [compose_file]}
    play = run_play(tmp_path, "    - edgex.sysmgmt.edgex_service: %s\n" % json.dumps(args), check=check)
    return play.task(), play


def started_at(project):
    return {s: state_of(project, s)["StartedAt"] for s in SERVICES}


def in_level_order(times, levels, reverse=False):
    for before, after in zip(levels, levels[1:]):
        for first in before:
            for then in after:
                assert (times[first] > times[then]) if reverse else (times[first] < times[then]), (first, then, times)


def test_import_then_start_stop_restart_in_dependency_order(compose_project, tmp_path):
    manifest, imported = import_manifest(tmp_path, compose_project)
    services = imported["hosts"][cg.NODE]["services"]
    assert {s: (v["executor"], v["target"]) for s, v in services.items()} == {
        s: ("compose", "%s/%s" % (cg.PROJECT, s)) for s in SERVICES}
    assert services["core-data"]["depends_on"] == ["consul", "database", "core-metadata"]
    assert services["core-data"]["address"] == cg.ADDRESS and services["core-data"]["port"] == 59880

    task, play = control(tmp_path, manifest, "started", compose_project["file"])
    assert play.returncode == 0, play.failures()
    assert all(s["before"] == "stopped" and s["after"] == "running" for s in task["services"])
    first = started_at(compose_project)
    in_level_order(first, [["consul", "database"], ["core-metadata"], ["core-data", "core-command"],
                           ["device-virtual"]])

    again, _play = control(tmp_path, manifest, "started", compose_project["file"])
    assert again["changed"] is False and started_at(compose_project) == first

    check, _play = control(tmp_path, manifest, "stopped", compose_project["file"], check=True)
    assert check["changed"] is True and started_at(compose_project) == first
    assert all(state_of(compose_project, s)["Running"] for s in SERVICES)

    task, play = control(tmp_path, manifest, "restarted", compose_project["file"])
    assert play.returncode == 0, play.failures()
    restarted = started_at(compose_project)
    assert all(restarted[s] > first[s] for s in SERVICES)
    assert restarted["consul"] == max(restarted.values())  # the registry last

    task, play = control(tmp_path, manifest, "stopped", compose_project["file"])
    assert play.returncode == 0, play.failures()
    finished = {s: state_of(compose_project, s)["FinishedAt"] for s in SERVICES}
    assert not any(state_of(compose_project, s)["Running"] for s in SERVICES)
    in_level_order(finished, [["consul"], ["database"], ["core-metadata"], ["core-data", "core-command"],
                              ["device-virtual"]], reverse=True)


def test_compose_file_from_the_environment_as_compose_v1_reads_it(compose_project, tmp_path):
    # Without the module's options: COMPOSE_FILE is compose's own way, and the executor passes it on.
    manifest, _imported = import_manifest(tmp_path, compose_project)
    args = {"name": ["database"], "state": "started", "node": cg.NODE, "executor": "compose",
            "registry_type": "none", "manifest_path": str(manifest), "wait_timeout": 30}
    play = run_play(tmp_path, "    - edgex.sysmgmt.edgex_service: %s\n" % json.dumps(args),
                    env={"COMPOSE_FILE": compose_project["file"]})
    assert play.returncode == 0, play.failures()
    assert state_of(compose_project, "database")["Running"]
    # And without either, compose cannot find the project: the task says so.
    stop = dict(args, state="stopped")
    play = run_play(tmp_path, "    - edgex.sysmgmt.edgex_service: %s\n" % json.dumps(stop))
    assert play.returncode != 0
    assert "Can't find a suitable configuration file" in play.task()["msg"]


def test_recorded_compose_v1_outputs_still_match_the_real_tool(compose_project):
    # The unit tests feed these captured files to the executor; the real 1.29.2 must still answer so.
    import re

    data = os.path.join(os.path.dirname(os.path.dirname(__file__)), "unit", "data", "executors")
    version = subprocess.run(["docker-compose", "version", "--short"], capture_output=True, text=True,
                             check=True).stdout
    with open(os.path.join(data, "compose-version-v1.txt")) as handle:
        assert version == handle.read()
    container = cg.container_of(compose_project["file"], "device-virtual")
    labels = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True,
                                       check=True).stdout)[0]["Config"]["Labels"]
    assert {k: labels[k] for k in ("com.docker.compose.project", "com.docker.compose.service",
                                   "com.docker.compose.oneoff")} == {
        "com.docker.compose.project": cg.PROJECT, "com.docker.compose.service": "device-virtual",
        "com.docker.compose.oneoff": "False"}
    with open(os.path.join(data, "docker-ps-compose-v1-labels.txt")) as handle:
        assert re.fullmatch(r"[0-9a-f]{64}\n", handle.read())
