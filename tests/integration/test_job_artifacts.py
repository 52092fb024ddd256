"""Job artifacts as AWX gets them: the collection's playbooks run by ansible-runner (its Python
API, as AWX's execution nodes run it, without a container here), on the test-bed, and what the
runner writes under artifacts/<ident>/ is read back: the playbook_on_stats event's artifact_data
(what AWX stores as the job's `artifacts`) and the health report beside it."""

import glob
import json
import os
import subprocess
import sys

import ansible_runner
import pytest

from tests.integration.playbook import REPO
from tests.testbed.fixtures_docker import wait_until

pytestmark = pytest.mark.docker
BIN = os.path.dirname(sys.executable)
CONSUL_INVENTORY = os.path.join(REPO, "inventories", "consul", "edgex.edgex.yml")
STOPPED = "support-scheduler"


def registered(name):
    import urllib.request

    with urllib.request.urlopen("http://127.0.0.1:8500/v1/agent/services", timeout=5) as response:
        return name in json.loads(response.read())


class Job(object):
    """One ansible-runner run of a project wrapper playbook (`import_playbook: edgex.sysmgmt.<name>`),
    as an AWX project holds them."""

    def __init__(self, private_data_dir, playbook, testbed, inventory=CONSUL_INVENTORY, **extra_vars):
        project = os.path.join(private_data_dir, "project")
        os.makedirs(project, exist_ok=True)
        with open(os.path.join(project, playbook + ".yml"), "w") as handle:
            handle.write("---\n- name: edgex.sysmgmt.%s\n  ansible.builtin.import_playbook: edgex.sysmgmt.%s\n"
                         % (playbook, playbook))
        variables = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                     "edgex_manifest_path": testbed["manifest"], "edgex_wait_timeout": 30, "edgex_stop_timeout": 5}
        variables.update(extra_vars)
        self.runner = ansible_runner.run(
            private_data_dir=private_data_dir, playbook=playbook + ".yml", inventory=inventory,
            extravars=variables, quiet=True,
            envvars={"ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".collections"),
                     "PATH": BIN + os.pathsep + os.environ["PATH"]},
            timeout=600)
        self.artifact_dir = self.runner.config.artifact_dir

    def stats_event(self):
        """The playbook_on_stats event, read from the files runner wrote (job_events/*.json)."""
        for path in glob.glob(os.path.join(self.artifact_dir, "job_events", "*.json")):
            with open(path) as handle:
                event = json.load(handle)
            if event.get("event") == "playbook_on_stats":
                return event["event_data"]
        raise AssertionError("no playbook_on_stats event under %s:\n%s" % (self.artifact_dir, self.stdout()))

    def stdout(self):
        with open(os.path.join(self.artifact_dir, "stdout")) as handle:
            return handle.read()[-4000:]


@pytest.fixture
def private_data_dir(tmp_path):
    yield str(tmp_path / "runner")


@pytest.fixture
def one_service_stopped(testbed):
    subprocess.run(["docker", "stop", "-t", "5", "edgex-" + STOPPED], check=True, stdout=subprocess.DEVNULL)
    wait_until(lambda: not registered(STOPPED), what="%s deregistered on stop" % STOPPED)
    yield testbed
    subprocess.run(["docker", "start", "edgex-" + STOPPED], check=True, stdout=subprocess.DEVNULL)
    wait_until(lambda: registered(STOPPED), what="%s registered again" % STOPPED)


def test_health_publishes_its_verdicts_and_the_report_travels_with_the_artifacts(one_service_stopped,
                                                                                 private_data_dir):
    job = Job(private_data_dir, "health", one_service_stopped)
    # The gate fails the job (a service is unhealthy) and the answer is published all the same.
    assert job.runner.rc != 0, job.stdout()
    stats = job.stats_event()
    assert sum(stats["failures"].values()) == 1, stats  # the gate's one failed task
    published = stats["artifact_data"]["edgex_health"]

    not_healthy = {entry["name"]: entry for entry in published["not_healthy"]}
    assert set(not_healthy) == {STOPPED}, published["not_healthy"]
    assert not_healthy[STOPPED]["host"] == "gw1" and not_healthy[STOPPED]["verdict"] == "unhealthy"
    assert set(not_healthy[STOPPED]) == {"host", "name", "verdict", "reasons"}
    assert any("not registered" in reason for reason in not_healthy[STOPPED]["reasons"])
    assert published["without_result"] == {}

    # With no edgex_report_dir given, the report lands in runner's artifact directory.
    report_dir = os.path.join(job.artifact_dir, "edgex-report")
    assert published["report"] == {"json": os.path.join(report_dir, "health.json"),
                                   "html": os.path.join(report_dir, "health.html")}
    with open(published["report"]["json"]) as handle:
        report = json.load(handle)
    assert report["summary"] == published["summary"]
    assert published["summary"]["unhealthy"] == 1 and published["summary"]["healthy"] >= 8
    assert os.path.getsize(published["report"]["html"]) > 0
    assert not os.path.exists(os.path.join(job.runner.config.project_dir, "edgex-report"))


def test_health_names_a_gateway_without_result(testbed, private_data_dir, tmp_path):
    inventory = tmp_path / "hosts.yml"
    # gw9 is no registry node and no manifest host: its check fails before checking anything.
    inventory.write_text("edgex:\n  hosts:\n    gw1: {}\n    gw9: {}\n")
    report_dir = tmp_path / "report"
    job = Job(private_data_dir, "health", testbed, inventory=str(inventory), edgex_report_dir=str(report_dir))
    assert job.runner.rc != 0, job.stdout()
    published = job.stats_event()["artifact_data"]["edgex_health"]
    assert list(published["without_result"]) == ["gw9"] and published["without_result"]["gw9"]
    assert published["summary"]["hosts"] == 2 and published["summary"]["hosts_without_result"] == 1
    # An edgex_report_dir that is given wins over the artifact directory.
    assert published["report"]["json"] == str(report_dir / "health.json")
    assert (report_dir / "health.json").is_file()


def test_control_playbooks_publish_what_changed(testbed, private_data_dir, tmp_path):
    def control(playbook, **extra_vars):
        job = Job(str(tmp_path / playbook), playbook, testbed, **extra_vars)
        assert job.runner.rc == 0, job.stdout()
        return job.stats_event()["artifact_data"]["edgex_control"]

    stopped = control("stop", edgex_services_names=["core-command"])
    assert stopped["state"] == "stopped"
    assert stopped["hosts"]["gw1"]["changed"] == ["core-command"]
    assert stopped["hosts"]["gw1"]["source"] == "consul"

    started = control("start")
    assert started["state"] == "started" and started["hosts"]["gw1"]["changed"] == ["core-command"]
    assert started["hosts"]["gw1"]["services"] >= 9
    assert control("start")["hosts"]["gw1"]["changed"] == []

    restarted = control("restart", edgex_services_names=["core-command"])
    assert restarted == {"state": "restarted",
                         "hosts": {"gw1": {"source": "consul", "services": 1, "changed": ["core-command"]}}}

    bounced = control("bounce_all")
    assert bounced["state"] == "bounced"
    assert "core-data" in bounced["hosts"]["gw1"]["changed"] and "consul" in bounced["hosts"]["gw1"]["changed"]
