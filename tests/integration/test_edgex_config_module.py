"""edgex.sysmgmt.edgex_config and edgex_config_info through ansible-playbook, against the Consul and
core-keeper emulators and stand-in EdgeX services that read their configuration from them (as
go-mod-bootstrap does: seeded when absent, Writable watched and applied live, the rest at start).

The stand-ins run as local processes (no Docker): restarting one is stopping it and starting it
again. The configure playbook on the Docker test-bed (restarts through edgex_service) is in
test_configure_playbook.py."""

import json
import threading
import urllib.request

import pytest

from tests.integration.playbook import run_play
from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import bootstrap_common_config, wait_until

V3 = "edgex/v3"
START_TIMEOUT = 60.0  # a stand-in reads its configuration and registers before it listens


def task(module="edgex_config", register=None, **module_args):
    lines = "".join("        %s: %s\n" % (k, json.dumps(v)) for k, v in module_args.items())
    return "    - edgex.sysmgmt.%s:\n%s" % (module, lines) + ("      register: %s\n" % register if register else "")


def consul_args(consul, **extra):
    args = {"host": consul.host, "port": consul.port, "node": "gw1"}
    if consul.token:
        args["token"] = consul.token
    args.update(extra)
    return args


def running(port, api="v3"):
    """The configuration a stand-in reports (GET /api/<api>/config)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/api/%s/config" % (port, api), timeout=5) as answer:
        return json.loads(answer.read())["config"]


def kv(consul, key):
    """A key's value in Consul, None when absent."""
    _index, entry = consul.client().kv.get(key)
    return None if entry is None else (entry["Value"] or b"").decode()


class Gateway(object):
    """Stand-ins of one release reading their configuration from ``provider`` and registering there."""

    def __init__(self, local_standin, registry, port, provider, version="3.1.1"):
        self.local_standin, self.registry, self.registry_port = local_standin, registry, port
        self.provider, self.version = provider, version
        self.services = {}

    def start(self, name, port=None):
        port = port or (self.services[name].port if name in self.services else free_port())
        standin = self.local_standin(name, port, registry=self.registry, registry_port=self.registry_port,
                                     version=self.version, config_provider=self.provider)
        self.services[name] = standin.wait(START_TIMEOUT)
        return standin

    def restart(self, name):
        old = self.services[name]
        assert old.stop() == 0
        return self.start(name, old.port)


@pytest.fixture
def gateway(consul, local_standin):
    """EdgeX 3.1 on the Consul emulator: the common configuration pushed, core-metadata and core-data up."""
    provider = "consul.http://%s:%d" % (consul.host, consul.port)
    bootstrap_common_config(provider)
    gateway = Gateway(local_standin, "consul", consul.port, provider)
    gateway.start("core-metadata")
    gateway.start("core-data")
    return gateway


def test_a_writable_change_is_applied_live_without_a_restart(consul, gateway, tmp_path):
    core_data = gateway.services["core-data"]
    pid = core_data.process.pid
    play = run_play(tmp_path, task(name="core-data", settings={"Writable": {"LogLevel": "DEBUG"}},
                                   **consul_args(consul)))
    assert play.returncode == 0, play.failures()
    result = play.task()
    assert result["changed"] is True and result["applied_live"] == ["Writable/LogLevel"]
    assert result["restart_required"] == [] and result["check_and_set"] is True
    assert result["changes"] == [{"key": V3 + "/core-data/Writable/LogLevel", "name": "core-data",
                                  "before": "INFO", "after": "DEBUG"}]
    wait_until(lambda: running(core_data.port)["Writable"]["LogLevel"] == "DEBUG", timeout=30,
               what="core-data to report LogLevel DEBUG")
    assert core_data.process.poll() is None and core_data.process.pid == pid  # never restarted

    proof = run_play(tmp_path, task(name="core-data", settings={"Writable": {"LogLevel": "DEBUG"}},
                                    **consul_args(consul)), check=True)
    assert proof.returncode == 0, proof.failures()
    assert (proof.task()["changed"], proof.task()["in_sync"], proof.task()["restart_required"]) == (False, True, [])


def test_a_change_outside_writable_needs_a_restart_of_core_data_and_shows_after_it(consul, gateway, tmp_path):
    settings = {"Service": {"RequestTimeout": "10s"}}
    play = run_play(tmp_path, task(name="core-data", settings=settings, **consul_args(consul)))
    assert play.returncode == 0, play.failures()
    result = play.task()
    assert result["restart_required"] == ["core-data"] and result["applied_live"] == []
    [core_data] = result["services"]
    assert core_data["pending_restart"] == ["Service/RequestTimeout"] and core_data["reachable"] is True
    assert kv(consul, V3 + "/core-data/Service/RequestTimeout") == "10s"
    assert running(gateway.services["core-data"].port)["Service"]["RequestTimeout"] == "5s"  # not live

    # A re-run without a restart writes nothing, and still says core-data needs one.
    again = run_play(tmp_path, task(name="core-data", settings=settings, **consul_args(consul)))
    assert (again.task()["changed"], again.task()["restart_required"], again.task()["in_sync"]) == (
        False, ["core-data"], False)

    gateway.restart("core-data")
    assert running(gateway.services["core-data"].port)["Service"]["RequestTimeout"] == "10s"
    proof = run_play(tmp_path, task(name="core-data", settings=settings, **consul_args(consul)), check=True)
    assert (proof.task()["restart_required"], proof.task()["in_sync"]) == ([], True)


def test_a_common_change_reaches_every_reader_but_the_ones_overriding_it(consul, gateway, tmp_path):
    consul.client().kv.put(V3 + "/core-data/Service/MaxResultCount", "50")  # core-data's own value
    gateway.restart("core-data")
    play = run_play(tmp_path, task(name="all-services", settings={"Service": {"MaxResultCount": 2048}},
                                   **consul_args(consul)))
    assert play.returncode == 0, play.failures()
    result = play.task()
    assert result["restart_required"] == ["core-metadata"]
    by_name = {s["name"]: s for s in result["services"]}
    assert by_name["core-data"]["overridden"] == ["Service/MaxResultCount"]
    assert by_name["core-data"]["restart_required"] is False
    assert kv(consul, V3 + "/core-common-config-bootstrapper/all-services/Service/MaxResultCount") == "2048"


def test_check_mode_and_diff_write_nothing(consul, gateway, tmp_path):
    settings = {"Writable": {"LogLevel": "WARN"}, "Service": {"RequestTimeout": "9s"}}
    play = run_play(tmp_path, task(name=["core-data", "core-metadata"], settings=settings, **consul_args(consul)),
                    check=True, diff=True)
    assert play.returncode == 0, play.failures()
    result = play.task()
    assert result["changed"] is True and result["restart_required"] == ["core-metadata", "core-data"]
    assert result["diff"]["before"] == {V3 + "/core-data/Writable/LogLevel": "INFO",
                                        V3 + "/core-metadata/Writable/LogLevel": "INFO"}
    assert result["diff"]["after"][V3 + "/core-data/Service/RequestTimeout"] == "9s"
    assert kv(consul, V3 + "/core-data/Writable/LogLevel") == "INFO"
    assert kv(consul, V3 + "/core-data/Service/RequestTimeout") is None
    assert running(gateway.services["core-data"].port)["Writable"]["LogLevel"] == "INFO"


def test_absent_removes_the_keys_and_their_subtree(consul, gateway, tmp_path):
    secret = {"Writable": {"InsecureSecrets": {"mqtt": {"SecretName": "mqtt", "SecretData": {"username": "u"}}}}}
    assert run_play(tmp_path, task(name="core-data", settings=secret, **consul_args(consul))).task()["changed"]
    wait_until(lambda: "mqtt" in running(gateway.services["core-data"].port)["Writable"]["InsecureSecrets"],
               timeout=30, what="the new insecure secret to show live")
    gone = run_play(tmp_path, task(name="core-data", state="absent",
                                   settings={"Writable": {"InsecureSecrets": {"mqtt": None}}}, **consul_args(consul)))
    assert gone.returncode == 0, gone.failures()
    assert sorted(c["key"] for c in gone.task()["changes"]) == [
        V3 + "/core-data/Writable/InsecureSecrets/mqtt/SecretData/username",
        V3 + "/core-data/Writable/InsecureSecrets/mqtt/SecretName"]
    assert gone.task()["applied_live"] == ["Writable/InsecureSecrets/mqtt/SecretData/username",
                                           "Writable/InsecureSecrets/mqtt/SecretName"]
    assert kv(consul, V3 + "/core-data/Writable/InsecureSecrets/mqtt/SecretName") is None
    again = run_play(tmp_path, task(name="core-data", state="absent",
                                    settings={"Writable": {"InsecureSecrets": {"mqtt": None}}}, **consul_args(consul)))
    assert again.task()["changed"] is False


def test_info_shows_stored_and_running_side_by_side(consul, gateway, tmp_path):
    consul.client().kv.put(V3 + "/core-data/Service/RequestTimeout", "10s")
    play = run_play(tmp_path, task("edgex_config_info", name=["core-data", "all-services"], **consul_args(consul)),
                    check=True)
    assert play.returncode == 0, play.failures()
    core_data, common = play.task()["configurations"]
    assert core_data["folder"] == V3 + "/core-data" and core_data["release"] == 3
    assert core_data["stored"]["Service"]["RequestTimeout"] == "10s"
    [instance] = core_data["instances"]
    assert instance["running"]["Service"]["RequestTimeout"] == "5s"
    assert {"key": "Service/RequestTimeout", "stored": "10s", "running": "5s", "live": False} in \
        instance["differences"]
    assert common["kind"] == "common" and common["read_by"] == ["core-data", "core-metadata"]


def test_unknown_names_fail_naming_where_they_were_looked_for(consul, gateway, tmp_path):
    play = run_play(tmp_path, task(name="core-dta", settings={"Writable": {"LogLevel": "DEBUG"}},
                                   **consul_args(consul)))
    assert play.returncode != 0
    assert play.task()["msg"].startswith("no configuration for core-dta in Consul (looked under edgex/v4/core-dta/, "
                                         "edgex/v3/core-dta/, edgex/core/2.0/core-dta/)")


def test_a_lost_check_and_set_race_is_a_clear_error_and_a_rerun_converges(consul, tmp_path):
    key = V3 + "/core-data/Writable/LogLevel"
    consul.client().kv.put(key, "INFO")
    consul.reset_stats()
    # The module's write reaches Consul 20 s late; meanwhile another writer changes the key.
    consul.fault("slow", delay=20, path="^/v1/kv/%s$" % key, method="PUT", times=1)
    args = dict(name="core-data", settings={"Writable": {"LogLevel": "DEBUG"}}, check_running=False,
                **consul_args(consul, timeout=60))
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(play=run_play(tmp_path, task(**args))))
    worker.start()
    wait_until(lambda: consul.stats()["by_path"].get("/v1/kv/" + key), timeout=120,
               what="the module's check-and-set write to reach Consul")
    consul.client().kv.put(key, "WARN")  # the other writer
    worker.join(180)
    play = outcome["play"]
    assert play.returncode != 0
    result = play.task()
    assert result["msg"].startswith("check-and-set failed on %s: it changed in Consul after this task read it" % key)
    assert "Nothing was written" in result["msg"] and result["changed"] is False
    assert kv(consul, key) == "WARN"

    rerun = run_play(tmp_path, task(**args))
    assert rerun.returncode == 0, rerun.failures()
    assert rerun.task()["changes"] == [{"key": key, "name": "core-data", "before": "WARN", "after": "DEBUG"}]


def test_acl_denial_and_a_wrong_token_are_clear_errors_without_the_token(consul_acl, tmp_path):
    consul_acl.client().kv.put(V3 + "/core-data/Writable/LogLevel", "INFO")
    reader = consul_acl.make_token({"key_prefix": {"edgex/": "read"}, "node_prefix": {"": "read"},
                                    "service_prefix": {"": "read"}})
    args = dict(name="core-data", settings={"Writable": {"LogLevel": "DEBUG"}}, host=consul_acl.host,
                port=consul_acl.port, node="gw1")
    denied = run_play(tmp_path, task(token=reader, **args))
    assert denied.returncode != 0
    message = denied.task()["msg"]
    assert "refused PUT /v1/kv/edgex/v3/core-data/Writable/LogLevel?cas=" in message and ": 403" in message
    assert 'key_prefix "edgex/" read and write' in message
    assert reader not in denied.stdout + denied.stderr

    wrong = run_play(tmp_path, task(token="s3cret-wrong-token", **args))
    assert wrong.returncode != 0 and "403" in wrong.task()["msg"]
    assert "s3cret-wrong-token" not in wrong.stdout + wrong.stderr
    assert kv(consul_acl, V3 + "/core-data/Writable/LogLevel") == "INFO"


def test_edgex_2x_layout_and_api(consul, local_standin, tmp_path):
    provider = "consul.http://%s:%d" % (consul.host, consul.port)
    gateway = Gateway(local_standin, "consul", consul.port, provider, version="2.3.0")
    core_data = gateway.start("core-data")
    play = run_play(tmp_path, task(name="core-data", settings={"Service": {"RequestTimeout": "20s"},
                                                               "Writable": {"LogLevel": "DEBUG"}},
                                   **consul_args(consul)))
    assert play.returncode == 0, play.failures()
    result = play.task()
    assert result["targets"] == [{"name": "core-data", "kind": "service", "release": 2,
                                  "folder": "edgex/core/2.0/core-data"}]
    assert result["restart_required"] == ["core-data"] and result["applied_live"] == ["Writable/LogLevel"]
    assert result["services"][0]["reachable"] is True  # asked on /api/v2/config
    wait_until(lambda: running(core_data.port, "v2")["Writable"]["LogLevel"] == "DEBUG", timeout=30,
               what="the 2.x service to apply LogLevel live")
    common = run_play(tmp_path, task(name="all-services", settings={"Service": {"RequestTimeout": "1s"}},
                                     release="2", **consul_args(consul)))
    assert "EdgeX 2.x has no common configuration" in common.task()["msg"]


def test_core_keeper_4x(keeper, local_standin, tmp_path):
    provider = "keeper.http://%s:%d" % (keeper.host, keeper.port)
    bootstrap_common_config(provider, version="4.0.0")
    gateway = Gateway(local_standin, "keeper", keeper.port, provider, version="4.0.0")
    core_data = gateway.start("core-data")
    args = dict(registry_type="keeper", host=keeper.host, port=keeper.port, node=keeper.host)
    play = run_play(tmp_path, task(name="core-data", settings={"Writable": {"LogLevel": "DEBUG"},
                                                               "Service": {"RequestTimeout": "12s"}}, **args))
    assert play.returncode == 0, play.failures()
    result = play.task()
    assert result["targets"][0]["folder"] == "edgex/v4/core-data" and result["check_and_set"] is False
    assert result["applied_live"] == ["Writable/LogLevel"] and result["restart_required"] == ["core-data"]
    wait_until(lambda: running(core_data.port)["Writable"]["LogLevel"] == "DEBUG", timeout=30,
               what="core-data to pick LogLevel up from keeper")
    gateway.restart("core-data")
    proof = run_play(tmp_path, task(name="core-data", settings={"Writable": {"LogLevel": "DEBUG"},
                                                                "Service": {"RequestTimeout": "12s"}}, **args),
                     check=True)
    assert (proof.task()["changed"], proof.task()["in_sync"]) == (False, True), proof.task()
