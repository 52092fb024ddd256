"""The execution environment built from extensions/ee/ (tests/ee/build.py) runs the health
playbook as AWX's execution nodes do: ansible-runner with --process-isolation in container mode
(docker), the private data dir mounted at /runner, the collection and its Python packages from the
image only, host networking to reach the test-bed on loopback."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.ee.build import ee_image
from tests.integration.playbook import REPO
from tests.testbed.images import LABEL

pytestmark = pytest.mark.docker
BIN = os.path.dirname(sys.executable)
IDENT = "ee-health"


@pytest.fixture(scope="module")
def ee_tag(docker_engine):
    return ee_image()


def run_in_ee(ee_tag, private_data_dir, playbook):
    argv = [os.path.join(BIN, "ansible-runner"), "run", str(private_data_dir), "-p", playbook, "--ident", IDENT,
            "--process-isolation", "--process-isolation-executable", "docker", "--container-image", ee_tag,
            "--container-option=--network=host", "--container-option=--label=%s" % LABEL]
    # The runner process itself needs nothing of ours: no collections path, no venv site-packages.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)


def events(private_data_dir):
    found = []
    for path in glob.glob(os.path.join(str(private_data_dir), "artifacts", IDENT, "job_events", "*.json")):
        with open(path) as handle:
            found.append(json.load(handle))
    return sorted(found, key=lambda event: event["counter"])


def test_health_playbook_runs_inside_the_execution_environment(ee_tag, testbed, tmp_path):
    pdd = tmp_path / "runner"
    project = pdd / "project"
    project.mkdir(parents=True)
    # What an AWX project holds: the wrapper playbook and an edgex inventory file.
    shutil.copy(os.path.join(REPO, "extensions", "awx", "project", "health.yml"), str(project / "health.yml"))
    shutil.copy(testbed["manifest"], str(project / "manifest.yml"))
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "fleet.edgex.yml").write_text(
        "plugin: edgex.sysmgmt.edgex\nregistry_type: consul\nhost: 127.0.0.1\nport: 8500\n"
        "manifest_path: /runner/project/manifest.yml\n")
    (pdd / "env").mkdir()
    # The gateway is this machine's loopback: modules run in the container (connection local)
    # with the image's Python, which has python-consul2 and PyYAML only from the image.
    (pdd / "env" / "extravars").write_text(json.dumps({
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
        "edgex_manifest_path": "/runner/project/manifest.yml", "edgex_health_check_executor": False}))

    completed = run_in_ee(ee_tag, pdd, "health.yml")
    artifacts = pdd / "artifacts" / IDENT
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else completed.stdout
    assert completed.returncode == 0, stdout[-6000:] + completed.stderr[-3000:]

    # It ran in a container of the image, not on this host.
    command = json.loads((artifacts / "command").read_text())["command"]
    assert command[:2] == ["docker", "run"] and ee_tag in command

    stats = [event for event in events(pdd) if event["event"] == "playbook_on_stats"]
    assert len(stats) == 1, stdout[-4000:]
    published = stats[0]["event_data"]["artifact_data"]["edgex_health"]
    assert stats[0]["event_data"]["failures"] == {}
    assert published["summary"]["hosts"] == 1 and published["summary"]["total"] >= 9
    assert published["summary"]["healthy"] == published["summary"]["total"], published["not_healthy"]
    # The report was written in the container's artifact directory, which is this host's.
    assert published["report"]["json"] == "/runner/artifacts/%s/edgex-report/health.json" % IDENT
    report = json.loads((artifacts / "edgex-report" / "health.json").read_text())
    assert report["summary"] == published["summary"]
    # The inventory plugin and the module asked Consul from inside the container.
    assert report["hosts"]["gw1"]["source"] == "consul"
