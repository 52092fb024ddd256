"""playbooks/configure.yml on the Docker test-bed (EdgeX 3.1 stand-ins reading their configuration from
the Consul emulator): a Writable change goes live and restarts nothing, a change outside Writable restarts
exactly the service it concerns, a common change restarts every service reading it, in dependency order,
and each run proves with GET /config that the running services took it. Runs in file order on one
test-bed: each test starts from what the one before left."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.docker import engine_time
from tests.integration.playbook import REPO, PlayResult, ansible_env
from tests.testbed import releases

pytestmark = pytest.mark.docker
API_SERVICES = [name for name, (_port, kind, _deps) in releases.NAPA_SERVICES.items() if kind == "api"]
V3 = "edgex/v3"


def configure(testbed, tmp_path, check=False, **extra_vars):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("edgex:\n  hosts:\n    gw1:\n")
    variables = {"ansible_connection": "local", "edgex_manifest_path": testbed["manifest"], "edgex_wait_timeout": 60,
                 "edgex_stop_timeout": 5, "edgex_registry_host": "127.0.0.1"}
    variables.update(extra_vars)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
            os.path.join(REPO, "playbooks", "configure.yml"), "-e", json.dumps(variables)]
    if check:
        argv.append("--check")
    completed = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=900, cwd=REPO,
                               check=False)
    result = PlayResult(completed)
    assert result.returncode == 0, result.failures()
    return result


def results(play, action):
    return [t["hosts"]["gw1"] for p in play.json["plays"] for t in p["tasks"]
            if "gw1" in t["hosts"] and t["hosts"]["gw1"].get("action") == action]


def started_at():
    """StartedAt of every container of gw1 (the database too), in seconds since the epoch."""
    names = [releases.CONTAINER_OF.get(s, "edgex-%s" % s) for s in releases.NAPA_SERVICES]
    out = subprocess.run(["docker", "inspect"] + names, capture_output=True, text=True, check=True).stdout
    by_container = {c["Name"].lstrip("/"): engine_time(c["State"]["StartedAt"]) for c in json.loads(out)}
    return {s: by_container[releases.CONTAINER_OF.get(s, "edgex-%s" % s)] for s in releases.NAPA_SERVICES}


def running(service):
    port = releases.NAPA_SERVICES[service][0]
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v3/config" % port, timeout=5) as answer:
        return json.loads(answer.read())["config"]


def kv(key):
    with urllib.request.urlopen("http://127.0.0.1:8500/v1/kv/%s?raw" % key, timeout=5) as answer:
        return answer.read().decode()


def test_a_writable_change_goes_live_and_restarts_nothing(testbed, tmp_path):
    before = started_at()
    play = configure(testbed, tmp_path, edgex_config_names=["core-data"],
                     edgex_config_settings={"Writable": {"LogLevel": "DEBUG"}})
    [change, proof] = results(play, "edgex.sysmgmt.edgex_config")
    assert change["applied_live"] == ["Writable/LogLevel"] and change["restart_required"] == []
    assert proof["in_sync"] is True and proof["changed"] is False
    assert results(play, "edgex.sysmgmt.edgex_service")[0].get("skipped") is True
    assert started_at() == before
    assert running("core-data")["Writable"]["LogLevel"] == "DEBUG"


def test_a_request_timeout_change_restarts_only_core_data(testbed, tmp_path):
    before = started_at()
    play = configure(testbed, tmp_path, edgex_config_names="core-data",
                     edgex_config_settings='{"Service": {"RequestTimeout": "10s"}}')  # YAML text, as AWX's survey
    [change, proof] = results(play, "edgex.sysmgmt.edgex_config")
    assert change["restart_required"] == ["core-data"] and change["applied_live"] == []
    [restart] = results(play, "edgex.sysmgmt.edgex_service")
    assert [s["name"] for s in restart["services"]] == ["core-data"]
    after = started_at()
    assert after["core-data"] > before["core-data"]
    assert {s: t for s, t in after.items() if s != "core-data"} == {s: t for s, t in before.items()
                                                                    if s != "core-data"}
    assert proof["in_sync"] is True and proof["services"][0]["pending_restart"] == []
    assert running("core-data")["Service"]["RequestTimeout"] == "10s"
    assert kv(V3 + "/core-data/Service/RequestTimeout") == "10s"
    gate = results(play, "edgex.sysmgmt.edgex_health")[0]
    assert gate["summary"] == {"healthy": 1, "degraded": 0, "unhealthy": 0, "unknown": 0, "total": 1}
    # The job artifact AWX and ansible-runner read (set_stats).
    [published] = results(play, "ansible.builtin.set_stats")
    assert published["ansible_stats"]["data"]["edgex_config"]["hosts"]["gw1"] == {
        "changes": [V3 + "/core-data/Service/RequestTimeout"], "applied_live": [], "restart_required": ["core-data"],
        "restarted": ["core-data"], "in_sync": True}


def test_check_mode_changes_and_restarts_nothing(testbed, tmp_path):
    before = started_at()
    play = configure(testbed, tmp_path, check=True, edgex_config_names=["all-services"],
                     edgex_config_settings={"Service": {"MaxResultCount": 4096}})
    [change, proof] = results(play, "edgex.sysmgmt.edgex_config")
    assert change["changed"] is True and set(change["restart_required"]) == set(API_SERVICES)
    assert proof.get("skipped") is True  # nothing to prove: nothing was written
    assert all(not s["changed"] or s["after"] == "running" for s in results(play, "edgex.sysmgmt.edgex_service")[0]
               ["services"])
    assert kv(V3 + "/core-common-config-bootstrapper/all-services/Service/MaxResultCount") == "1024"
    assert started_at() == before


def test_a_common_change_restarts_every_reader_in_dependency_order(testbed, tmp_path):
    before = started_at()
    play = configure(testbed, tmp_path, edgex_config_names=["all-services"],
                     edgex_config_settings={"Service": {"MaxResultCount": 2048, "RequestTimeout": "7s"}})
    [change, proof] = results(play, "edgex.sysmgmt.edgex_config")
    assert set(change["restart_required"]) == set(API_SERVICES)
    # core-data's own RequestTimeout (the test before) overrides the common one.
    core_data = [s for s in change["services"] if s["name"] == "core-data"][0]
    assert core_data["overridden"] == ["Service/RequestTimeout"]
    [restart] = results(play, "edgex.sysmgmt.edgex_service")
    assert restart["levels"][0] == ["core-metadata"]
    assert restart["levels"][1] == ["core-command", "core-data"]
    after = started_at()
    assert after["database"] == before["database"]
    assert all(after[s] > before[s] for s in API_SERVICES)
    assert after["core-metadata"] < after["core-data"] < after["device-virtual"]
    assert proof["in_sync"] is True
    for service in API_SERVICES:
        assert running(service)["Service"]["MaxResultCount"] == 2048, service
    assert running("core-data")["Service"]["RequestTimeout"] == "10s"
    assert running("core-metadata")["Service"]["RequestTimeout"] == "7s"
