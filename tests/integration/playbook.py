"""Run a play with ansible-playbook against this checkout and read its results as JSON."""

import json
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)


def ansible_env(**extra):
    # EDGEX_TEST_COLLECTIONS_PATH: where other collections (ansible.posix) are, for a venv without
    # the `ansible` package (tests/pyconsul.sh).
    collections = [os.path.join(REPO, ".collections")] + list(filter(None, [os.environ.get("EDGEX_TEST_COLLECTIONS_PATH")]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(collections),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               # as inventories/ansible.cfg recommends: a source that cannot be used fails the run
               ANSIBLE_INVENTORY_UNPARSED_FAILED="true", ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true")
    env.update(extra)
    return env


class PlayResult(object):
    def __init__(self, completed):
        self.returncode = completed.returncode
        self.stderr = completed.stderr
        self.stdout = completed.stdout
        self.json = json.loads(completed.stdout) if completed.stdout.strip().startswith("{") else None

    def tasks(self, host="localhost"):
        """Per-task results for one host, in play order."""
        return [task["hosts"][host] for play in self.json["plays"] for task in play["tasks"] if host in task["hosts"]]

    def task(self, index=0, host="localhost"):
        return self.tasks(host)[index]

    def failures(self):
        """host: task: msg of every failed task, for assertion messages."""
        if self.json is None:
            return self.stdout[-3000:] + self.stderr[-3000:]
        return "\n".join("%s: %s: %s" % (host, task["task"]["name"], result.get("msg"))
                         for play in self.json["plays"] for task in play["tasks"]
                         for host, result in task["hosts"].items() if result.get("failed")) or self.stderr[-3000:]

    @property
    def stats(self):
        return self.json["stats"]


def start_play(tmp_path, tasks_yaml, inventory="localhost,", extra_args=(), env=None, hosts="localhost",
               check=False, diff=False, connection="local"):
    """Write a one-play playbook with ``tasks_yaml`` (a YAML list, already indented by 4) and start
    it; the caller waits with finish_play(). For tests that act while the play runs.
    ``connection=None``: the inventory's own (e.g. community.docker.docker for a gateway container)."""
    playbook = tmp_path / "play.yml"
    header = "- hosts: %s\n  gather_facts: false\n" % hosts
    if connection:
        header += "  connection: %s\n" % connection
    playbook.write_text("%s  tasks:\n%s" % (header, tasks_yaml))
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), str(playbook)] + list(extra_args)
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    return subprocess.Popen(argv, env=ansible_env(**(env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=str(tmp_path))


def finish_play(process, timeout=300):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return PlayResult(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))


def run_play(tmp_path, tasks_yaml, inventory="localhost,", extra_args=(), env=None, hosts="localhost",
             check=False, diff=False, timeout=300, connection="local"):
    """Write a one-play playbook with ``tasks_yaml`` (a YAML list, already indented by 4) and run it."""
    return finish_play(start_play(tmp_path, tasks_yaml, inventory, extra_args, env, hosts, check, diff, connection),
                       timeout)
