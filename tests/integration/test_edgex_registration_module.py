"""edgex.sysmgmt.edgex_registration against Consul (the emulator, or $CONSUL_HTTP_ADDR), the keeper
emulator and the manifest: a service that never registers itself becomes visible to discovery and
health, is kept idempotently, deregistered, and every failure is named without the token."""

import json

import yaml

from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import discover
from tests.integration.playbook import run_play
from tests.integration.test_inventory_plugin import group, inventory_list, write_config
from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import wait_until


def play(tmp_path, module, check_mode=False, diff_mode=False, **args):
    lines = "".join("        %s: %s\n" % (k, json.dumps(v)) for k, v in args.items())
    result = run_play(tmp_path, "    - edgex.sysmgmt.%s:\n%s" % (module, lines), check=check_mode, diff=diff_mode)
    assert result.json is not None, result.stdout + result.stderr
    return result.task()


def consul_args(consul, **extra):
    args = {"host": consul.host, "port": consul.port}
    if consul.token:
        args["token"] = consul.token
    args.update(extra)
    return args


def registered(consul, name):
    return [s for s in discover(consul.settings()).services if s.name == name]


def test_a_redis_that_never_registers_is_made_visible_then_forgotten(consul, local_standin, tmp_path):
    redis = local_standin("redis", free_port(), kind="redis").wait()
    args = consul_args(consul, name="redis", service_address="127.0.0.1", service_port=redis.port)

    check = play(tmp_path, "edgex_registration", check_mode=True, **args)
    assert check["changed"] is True and check["registration"]["check"]["kind"] == "tcp"
    assert registered(consul, "redis") == []  # check mode registered nothing

    first = play(tmp_path, "edgex_registration", diff_mode=True, **args)
    assert first.get("failed") is not True, first
    assert first["changed"] is True and first["changed_fields"][0] == "name"
    assert "check: tcp every 10s" in first["diff"]["after"] and first["diff"]["before"] == ""
    assert play(tmp_path, "edgex_registration", **args)["changed"] is False

    # Consul runs the TCP check; health probes it as redis (never with an EdgeX ping).
    wait_until(lambda: registered(consul, "redis") and registered(consul, "redis")[0].status == "passing",
               what="redis registered and its check passing")
    health = play(tmp_path, "edgex_health", name=["redis"], **consul_args(consul))
    assert health.get("failed") is not True, health
    assert health["services"][0]["verdict"] == "healthy" and "ping" not in (health["services"][0]["target"] or "")
    # and so does the inventory: the gateway is in the redis group, its port in the host's services
    inventory_config = write_config(tmp_path, consul)
    node = registered(consul, "redis")[0].node
    assert node in group(inventory_list(inventory_config)[0], "edgex_redis_passing")
    assert inventory_list(inventory_config)[0]["_meta"]["hostvars"][node]["edgex_services"]["redis"]["port"] \
        == redis.port

    moved = play(tmp_path, "edgex_registration", diff_mode=True, **dict(args, service_port=redis.port + 1))
    assert moved["changed"] is True and moved["changed_fields"] == ["port"]
    assert "port: %d" % redis.port in moved["diff"]["before"] and "port: %d" % (redis.port + 1) in moved["diff"]["after"]

    gone = play(tmp_path, "edgex_registration", **consul_args(consul, name="redis", state="absent"))
    assert gone["changed"] is True and gone["registration"] is None
    assert registered(consul, "redis") == []
    assert "redis" not in inventory_list(inventory_config)[0]["_meta"]["hostvars"][node]["edgex_services"]
    assert play(tmp_path, "edgex_registration", **consul_args(consul, name="redis", state="absent"))["changed"] is False


def test_only_named_fields_are_compared_and_a_check_is_read_back(consul, tmp_path):
    args = consul_args(consul, name="device-acme", service_address="127.0.0.1", service_port=59990, tags=["acme"],
                       check={"path": "/api/v3/ping", "interval": "15s", "deregister_critical_after": "10m"})
    assert play(tmp_path, "edgex_registration", **args)["changed"] is True
    # Naming only the port (unchanged) leaves tags and check alone.
    same = play(tmp_path, "edgex_registration", **consul_args(consul, name="device-acme", service_port=59990))
    assert same["changed"] is False and same["registration"]["tags"] == ["acme"], same
    assert same["registration"]["check"]["deregister_critical_after"] == "10m"
    interval = play(tmp_path, "edgex_registration", **dict(args, check={"path": "/api/v3/ping", "interval": "30s"}))
    assert interval["changed"] is True and interval["changed_fields"] == ["check"]


def test_keeper_registration_and_what_it_cannot_keep(keeper, tmp_path):
    args = {"registry_type": "keeper", "host": keeper.host, "port": keeper.port, "name": "device-acme",
            "service_address": "edgex-device-acme", "service_port": 59990}
    made = play(tmp_path, "edgex_registration", **args)
    assert made.get("failed") is not True, made
    assert made["changed"] is True and made["registration"]["check"]["path"] == "/api/v3/ping"
    status, answer = keeper.request("GET", "/api/v3/registry/serviceId/device-acme")
    assert status == 200 and answer["registration"]["HealthCheck"]["path"] == "/api/v3/ping"
    assert play(tmp_path, "edgex_registration", **args)["changed"] is False
    tagged = play(tmp_path, "edgex_registration", **dict(args, tags=["x"]))
    assert tagged["failed"] is True and "keeper keeps neither tags nor meta" in tagged["msg"]
    assert play(tmp_path, "edgex_registration", **dict(args, state="absent"))["changed"] is True
    assert play(tmp_path, "edgex_registration", **dict(args, state="absent"))["changed"] is False


def test_the_manifest_as_registry(tmp_path):
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump({"version": 1, "hosts": {"gw1": {"address": "127.0.0.1", "services": {}}}}))
    args = {"registry_type": "manifest", "manifest_path": str(path), "name": "redis", "node": "gw1",
            "service_port": 6379}
    assert play(tmp_path, "edgex_registration", check_mode=True, **args)["changed"] is True
    assert yaml.safe_load(path.read_text())["hosts"]["gw1"]["services"] == {}
    assert play(tmp_path, "edgex_registration", **args)["changed"] is True
    assert yaml.safe_load(path.read_text())["hosts"]["gw1"]["services"]["redis"]["port"] == 6379
    assert play(tmp_path, "edgex_registration", **args)["changed"] is False
    assert play(tmp_path, "edgex_registration", **dict(args, state="absent"))["changed"] is True
    assert yaml.safe_load(path.read_text())["hosts"]["gw1"]["services"] == {}


def test_a_wrong_token_is_named_and_never_shown(consul_acl, tmp_path):
    result = play(tmp_path, "edgex_registration", host=consul_acl.host, port=consul_acl.port, token="s3cr3t-wrong",
                  name="redis", service_port=6379)
    assert result["failed"] is True and "403" in result["msg"] and "check the token" in result["msg"]
    assert "s3cr3t-wrong" not in json.dumps(result)


def test_registry_none_is_refused(tmp_path):
    result = play(tmp_path, "edgex_registration", registry_type="none", name="redis")
    assert result["failed"] is True
    assert result["msg"] == "registry_type none has no registry to register in; use consul, keeper or manifest"


def test_migrate_registrations_moves_what_consul_knows_to_keeper(consul, keeper, tmp_path):
    """playbooks/migrate_registrations.yml with the inventory plugin on Consul: EdgeX services move to
    core-keeper with their ping checks, infrastructure stays behind; a second run changes nothing."""
    import os
    import subprocess
    import sys

    from tests.integration.playbook import REPO, PlayResult, ansible_env

    consul.client().catalog.register("gw1", "127.0.0.1", service={"Service": "core-data", "Port": 59880,
                                                                  "Address": "edgex-core-data"})
    consul.client().catalog.register("gw1", "127.0.0.1", service={"Service": "redis", "Port": 6379})
    inventory = tmp_path / "fleet.edgex.yml"
    inventory.write_text("plugin: edgex.sysmgmt.edgex\nhost: %s\nport: %d\n%s" % (
        consul.host, consul.port, "token: %s\n" % consul.token if consul.token else ""))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
            os.path.join(REPO, "playbooks", "migrate_registrations.yml"),
            "-e", json.dumps({"edgex_registry_host": keeper.host, "edgex_registry_port": keeper.port,
                              "ansible_connection": "local"})]

    def migrate():
        result = PlayResult(subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=300,
                                           check=False))
        assert result.returncode == 0, result.failures()
        return [item for play in result.json["plays"] for task in play["tasks"]
                for host in task["hosts"].values() for item in host.get("results", [])]

    moved = migrate()
    assert [(r["item"]["key"], r["changed"]) for r in moved] == [("core-data", True)]
    status, answer = keeper.request("GET", "/api/v3/registry/serviceId/core-data")
    assert status == 200 and (answer["registration"]["host"], answer["registration"]["port"]) == \
        ("edgex-core-data", 59880)
    assert keeper.request("GET", "/api/v3/registry/serviceId/redis")[0] == 404
    assert [r["changed"] for r in migrate()] == [False]
