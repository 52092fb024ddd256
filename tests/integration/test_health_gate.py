"""playbooks/health.yml's last task, the gate, on its own: it fails the run on what each gateway's
edgex_health result says it matched (``failing``), and on gateways without a result, and re-derives
nothing from the verdicts. The results are given as inventory variables and the run starts at the
gate (--start-at-task), so no registry, container or module is involved."""

import json
import os

import pytest
import yaml

from tests.integration.playbook import BIN, REPO, PlayResult, ansible_env

GATE = "Fail the run on the services each gateway's gate matched"
UNHEALTHY_DATA = {"node": "gw1", "name": "core-data", "verdict": "unhealthy", "reasons": ["ping answered 500"]}
SERVICES = [{"name": "core-data", "verdict": "unhealthy"}, {"name": "core-metadata", "verdict": "healthy"}]


def run_gate(tmp_path, gateways):
    """``gateways``: host -> its variables (edgex_health_result, edgex_health_fail_on), or {}."""
    import subprocess

    inventory = {"all": {"children": {"edgex": {"hosts": gateways}},
                         "hosts": {"localhost": {"ansible_connection": "local",
                                                 "edgex_health_play_hosts": sorted(gateways)}}}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", str(path), os.path.join(REPO, "playbooks", "health.yml"),
            "--start-at-task", GATE]
    completed = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                               check=False)
    result = PlayResult(completed)
    assert result.json is not None, completed.stdout[-2000:] + completed.stderr[-2000:]
    gates = [t["hosts"]["localhost"] for play in result.json["plays"] for t in play["tasks"]
             if t["task"]["name"] == GATE]
    assert len(gates) == 1 and all(len(play["tasks"]) <= 1 for play in result.json["plays"])  # only the gate ran
    return result.returncode, gates[0]


def checked(failing, services=None, **extra):
    result = {"failing": failing, "services": SERVICES if services is None else services, "failed": bool(failing)}
    return {"edgex_health_result": dict(result, **extra)}


@pytest.mark.parametrize("gateways, message", [
    # What the module matched, named node/service: verdict.
    ({"gw1": checked([UNHEALTHY_DATA]), "gw2": checked([])}, "gw1/core-data: unhealthy"),
    ({"gw1": checked([UNHEALTHY_DATA, dict(UNHEALTHY_DATA, name="core-command", verdict="degraded", node=None)])},
     "gw1/core-data: unhealthy; gw1/core-command: degraded"),
    # A gateway without a result, and one whose check failed before checking anything.
    ({"gw1": checked([]), "gw2": {}}, "gw2: no health result (the check did not run)"),
    ({"gw1": {"edgex_health_result": {"failed": True, "msg": "Consul at http://127.0.0.1:8500 refused: 403"}}},
     "gw1: Consul at http://127.0.0.1:8500 refused: 403"),
])
def test_the_gate_fails_on_what_the_module_matched(tmp_path, gateways, message):
    returncode, gate = run_gate(tmp_path, gateways)
    assert returncode == 2 and gate["failed"] is True
    assert gate["msg"] == message


@pytest.mark.parametrize("gateways", [
    {"gw1": checked([]), "gw2": checked([])},
    # Unhealthy verdicts the gate did not match (fail_on never, or degraded under unhealthy): the
    # playbook does not judge verdicts again.
    {"gw1": checked([], services=[{"name": "core-data", "verdict": "unhealthy"}])},
    # Without a result, but the gateway's gate is never.
    {"gw1": checked([]), "gw2": {"edgex_health_fail_on": "never"}},
])
def test_the_gate_passes_when_nothing_was_matched(tmp_path, gateways):
    returncode, gate = run_gate(tmp_path, gateways)
    assert returncode == 0, json.dumps(gate)
    assert gate.get("skipped") is True
