"""The stand-in honours the EdgeX service contract of its release: the common API, registration as
go-mod-registry does it, and configuration as go-mod-bootstrap loads, seeds and watches it."""

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import bootstrap_common_config, container_state, wait_until

GO_UNIX_DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} UTC \d{4}$")


def get(port, path, timeout=3):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as response:
        return response.status, json.loads(response.read())


def http_error(port, path, method="GET"):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=3)
    return err.value.code, err.value.headers.get("Content-Type"), err.value.read()


def config_of(port, api="v3"):
    return get(port, "/api/%s/config" % api)[1]["config"]


# -- the common API ----------------------------------------------------------------------------


def test_common_api_shapes(local_standin):
    port = free_port()
    local_standin("core-metadata", port).wait()
    status, ping = get(port, "/api/v3/ping")
    assert status == 200
    assert set(ping) == {"apiVersion", "timestamp", "serviceName"}
    assert ping["apiVersion"] == "v3" and ping["serviceName"] == "core-metadata"
    assert GO_UNIX_DATE.match(ping["timestamp"]), ping["timestamp"]
    assert get(port, "/api/v3/version")[1] == {"apiVersion": "v3", "version": "3.1.1", "serviceName": "core-metadata"}
    _status, config = get(port, "/api/v3/config")
    assert list(config) == ["apiVersion", "config", "serviceName"]  # go-mod-core-contracts' ConfigResponse
    assert config["serviceName"] == "core-metadata" and config["config"]["Service"]["Port"] == port
    # Without a provider: the private defaults merged over the common configuration.
    assert config["config"]["Service"]["RequestTimeout"] == "5s"
    assert config["config"]["Writable"]["LogLevel"] == "INFO"
    # echo (3.x) answers routes it does not have, /metrics included (removed in 3.0), with its own JSON.
    for path in ("/api/v3/nothing", "/api/v3/metrics", "/api/v2/ping"):
        assert http_error(port, path) == (404, "application/json", b'{"message":"Not Found"}\n')
    assert http_error(port, "/api/v3/ping", "POST")[0] == 405


def test_ping_500_and_hang(local_standin):
    failing, hanging = free_port(), free_port()
    local_standin("core-data", failing, env={"STANDIN_PING_STATUS": "500"}).wait()
    local_standin("core-command", hanging, env={"STANDIN_PING_HANG": "1"}).wait()
    with pytest.raises(urllib.error.HTTPError) as err:
        get(failing, "/api/v3/ping")
    assert err.value.code == 500
    assert get(failing, "/api/v3/version")[0] == 200  # only the ping is broken
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        get(hanging, "/api/v3/ping", timeout=0.5)


def test_slow_start_listens_only_after_delay(local_standin):
    port = free_port()
    started = time.time()
    standin = local_standin("support-scheduler", port, env={"STANDIN_START_DELAY": "1.5"})
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    standin.wait()
    assert time.time() - started >= 1.4


def test_crash_on_start_and_crash_after(local_standin):
    assert local_standin("core-data", free_port(), env={"STANDIN_CRASH_ON_START": "1"}).process.wait(10) == 1
    crasher = local_standin("core-data", free_port(), env={"STANDIN_CRASH_AFTER": "0.5"}).wait()
    assert crasher.process.wait(10) == 1


# -- Redis and the MQTT broker: listeners that never register ---------------------------------


def exchange(port, payload, expect_bytes):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(payload)
        data = b""
        while len(data) < expect_bytes:
            chunk = sock.recv(64)
            if not chunk:
                break
            data += chunk
        return data


def test_redis_and_mqtt_broker_answer_and_never_register(consul, local_standin):
    redis, broker, plain = free_port(), free_port(), free_port()
    if consul.is_emulator:
        consul.reset_stats()
    for service, port, kind in (("database", redis, "redis"), ("mqtt-broker", broker, "mqtt"),
                                ("postgres", plain, "tcp")):
        # Told to register, as a careless compose file might: they still do not (real ones cannot).
        local_standin(service, port, kind=kind, registry="consul", registry_port=consul.port,
                      config_provider="consul").wait()
    assert exchange(redis, b"PING\r\n", 7) == b"+PONG\r\n"
    assert exchange(redis, b"*1\r\n$4\r\nPING\r\n", 7) == b"+PONG\r\n"  # as redis-cli sends it
    connect = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04edgx"
    assert exchange(broker, connect, 4) == b"\x20\x02\x00\x00"  # CONNACK, accepted
    assert exchange(broker, connect + b"\xc0\x00", 6) == b"\x20\x02\x00\x00\xd0\x00"  # ... then PINGRESP
    socket.create_connection(("127.0.0.1", plain), timeout=1).close()
    # A service registers before it listens, so a listener that has not asked by now never will.
    if consul.is_emulator:
        assert consul.stats()["requests"] == 0
    assert not {"database", "mqtt-broker", "postgres"} & set(consul.client().agent.services())


# -- registration ------------------------------------------------------------------------------


def registered(client, service):
    return service in client.agent.services()


def test_registers_like_go_mod_registry_and_deregisters_on_sigterm(consul, local_standin):
    port = free_port()
    standin = local_standin("core-data", port, registry="consul", registry_port=consul.port).wait()
    client = consul.client()
    assert registered(client, "core-data")  # registered before it listens, as go-mod-bootstrap orders it
    service = client.agent.services()["core-data"]
    assert (service["ID"], service["Service"], service["Address"], service["Port"]) == (
        "core-data", "core-data", "127.0.0.1", port)
    check = client.agent.checks()["core-data"]
    assert check["Name"] == "Health Check: core-data"
    assert check["Notes"] == "Check the health of the API"
    assert check["ServiceID"] == "core-data"
    wait_until(lambda: client.agent.checks()["core-data"]["Status"] == "passing", what="check passing")
    assert "http://127.0.0.1:%d/api/v3/ping" % port in client.agent.checks()["core-data"]["Output"]
    assert standin.stop() == 0
    assert not registered(client, "core-data")
    assert "core-data" not in client.agent.checks()


def test_crash_without_deregistering_leaves_a_critical_registration(consul, local_standin):
    port = free_port()
    standin = local_standin("device-virtual", port, registry="consul", registry_port=consul.port,
                            env={"STANDIN_CRASH_AFTER": "1.5", "STANDIN_CRASH_NO_DEREGISTER": "1"}).wait()
    client = consul.client()
    wait_until(lambda: registered(client, "device-virtual"), what="registration")
    assert standin.process.wait(10) == 1
    wait_until(lambda: client.agent.checks()["device-virtual"]["Status"] == "critical", what="critical check")
    assert registered(client, "device-virtual")


def test_without_its_registry_it_waits_then_registers_late(consul, local_standin):
    """As go-mod-bootstrap: the registry is retried on the start-up timer; nothing listens meanwhile."""
    if not consul.is_emulator:
        pytest.skip("needs to stop and start the registry")
    consul.stop()
    port = free_port()
    standin = local_standin("core-command", port, registry="consul", registry_port=consul.port)
    wait_until(lambda: "could not register service with Registry" in standin.log_text(), what="a failed attempt")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    consul.start()
    standin.wait(timeout=20)
    assert registered(consul.client(), "core-command")


def test_registry_never_reachable_exits_1_as_edgex_does(local_standin):
    closed = free_port()
    standin = local_standin("core-data", free_port(), registry="consul", registry_port=closed,
                            env={"EDGEX_STARTUP_DURATION": "2"})
    assert standin.process.wait(30) == 1
    assert "unable to register with Registry in allotted time" in standin.log_text()


def test_keeper_registration_as_go_mod_registry(keeper, local_standin):
    port = free_port()
    standin = local_standin("core-data", port, registry="keeper", registry_port=keeper.port, version="4.0.1").wait()
    status, body = keeper.request("GET", "/api/v3/registry/serviceId/core-data")
    assert status == 200
    registration = body["registration"]
    assert registration["HealthCheck"] == {"interval": "1s", "path": "/api/v3/ping", "type": "http"}
    wait_until(lambda: keeper.request("GET", "/api/v3/registry/serviceId/core-data")[1]["registration"]["status"]
               == "UP", what="keeper's own check")
    assert standin.stop() == 0
    assert keeper.request("GET", "/api/v3/registry/serviceId/core-data")[1]["registration"]["status"] == "HALT"
    # A restart finds its (halted) registration and updates it rather than failing on 409.
    local_standin("core-data", port, registry="keeper", registry_port=keeper.port, version="4.0.1").wait()
    wait_until(lambda: keeper.request("GET", "/api/v3/registry/serviceId/core-data")[1]["registration"]["status"]
               == "UP", what="UP again after the restart")


# -- configuration from Consul (3.x) -----------------------------------------------------------


def consul_kv(consul, prefix):
    """{key: value} under prefix, as Consul stores them (strings)."""
    try:
        response = consul.request("GET", "/v1/kv/%s?recurse" % prefix)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise
    return {e["Key"]: base64.b64decode(e["Value"] or "").decode() for e in json.loads(response.read())}


def consul_put(consul, key, value):
    assert json.loads(consul.request("PUT", "/v1/kv/%s" % key, value.encode()).read()) is True


def cp(consul):
    return "consul.http://%s:%d" % (consul.host, consul.port)


def start_configured(local_standin, consul, service="core-data", port=None, **kwargs):
    port = port or free_port()
    return local_standin(service, port, config_provider=cp(consul), **kwargs).wait()


def test_seeds_its_private_configuration_when_absent(consul, local_standin):
    bootstrap_common_config(cp(consul))
    common = consul_kv(consul, "edgex/v3/core-common-config-bootstrapper/")
    assert common["edgex/v3/core-common-config-bootstrapper/IsCommonConfigReady"] == "true"
    assert common["edgex/v3/core-common-config-bootstrapper/all-services/Service/RequestTimeout"] == "5s"
    assert common["edgex/v3/core-common-config-bootstrapper/all-services/Service/MaxResultCount"] == "1024"
    assert common["edgex/v3/core-common-config-bootstrapper/device-services/Device/DataTransform"] == "true"

    standin = start_configured(local_standin, consul)
    private = consul_kv(consul, "edgex/v3/core-data/")
    # One key per leaf, every value a string, only the service's own (private) settings.
    assert private["edgex/v3/core-data/Writable/LogLevel"] == "INFO"
    assert private["edgex/v3/core-data/Service/Port"] == str(standin.port)
    assert private["edgex/v3/core-data/Service/Host"] == "127.0.0.1"
    assert private["edgex/v3/core-data/Writable/PersistData"] == "true"
    assert private["edgex/v3/core-data/MaxEventSize"] == "25000"
    assert "edgex/v3/core-data/Service/RequestTimeout" not in private  # that one is common
    assert all(isinstance(v, str) for v in private.values())
    # /config: common first, then private over it, typed as the service's struct decodes them.
    config = config_of(standin.port)
    assert config["Service"]["Port"] == standin.port and config["Service"]["RequestTimeout"] == "5s"
    assert config["Writable"]["PersistData"] is True and config["MaxEventSize"] == 25000
    assert config["Writable"]["InsecureSecrets"]["DB"]["SecretName"] == "redisdb"  # from all-services
    assert "Device" not in config and "Trigger" not in config  # other services' sections
    assert "Private configuration has been pushed to into Configuration Provider" in standin.log_text()


def test_reads_an_existing_configuration_and_does_not_overwrite_it(consul, local_standin):
    bootstrap_common_config(cp(consul))
    port = free_port()
    for key, value in (("Writable/LogLevel", "DEBUG"), ("Service/Port", str(port)),
                       ("Service/StartupMsg", "told by the operator"), ("Service/MaxResultCount", "50")):
        consul_put(consul, "edgex/v3/core-data/" + key, value)
    standin = start_configured(local_standin, consul, port=port)
    config = config_of(port)
    assert config["Writable"]["LogLevel"] == "DEBUG"
    assert config["Service"]["StartupMsg"] == "told by the operator"
    assert config["Service"]["MaxResultCount"] == 50  # private overrides common's 1024
    assert config["Service"]["RequestTimeout"] == "5s"  # common, not in the private configuration
    assert "MaxEventSize" not in config  # defaults are not pushed when a configuration exists
    assert set(consul_kv(consul, "edgex/v3/core-data/")) == {
        "edgex/v3/core-data/Writable/LogLevel", "edgex/v3/core-data/Service/Port",
        "edgex/v3/core-data/Service/StartupMsg", "edgex/v3/core-data/Service/MaxResultCount"}
    assert "Private configuration loaded from the Configuration Provider" in standin.log_text()


def test_common_configuration_merged_per_service_type(consul, local_standin):
    bootstrap_common_config(cp(consul))
    consul_put(consul, "edgex/v3/core-common-config-bootstrapper/all-services/Service/MaxResultCount", "77")
    device = start_configured(local_standin, consul, "device-virtual")
    app = start_configured(local_standin, consul, "app-rules-engine")
    device_config, app_config = config_of(device.port), config_of(app.port)
    assert device_config["Device"]["MaxCmdOps"] == 128 and "Trigger" not in device_config
    assert device_config["Writable"]["Reading"]["ReadingUnits"] is True
    assert app_config["Trigger"]["Type"] == "edgex-messagebus" and "Device" not in app_config
    assert app_config["Writable"]["StoreAndForward"]["MaxRetryCount"] == 10
    assert device_config["Service"]["MaxResultCount"] == app_config["Service"]["MaxResultCount"] == 77
    assert device_config["Clients"]["core-metadata"]["Port"] == 59881  # type sections bring Clients


def test_waits_for_the_common_configuration_then_exits_1(consul, local_standin):
    standin = local_standin("core-data", free_port(), config_provider=cp(consul), env={"EDGEX_STARTUP_DURATION": "2"})
    assert standin.process.wait(30) == 1
    assert "common config is not loaded - check to make sure core-common-config-bootstrapper ran" \
        in standin.log_text()
    assert consul_kv(consul, "edgex/v3/core-data/") == {}  # it read nothing and seeded nothing


def test_provider_never_reachable_exits_1(local_standin):
    standin = local_standin("core-data", free_port(), config_provider="consul.http://127.0.0.1:%d" % free_port(),
                            env={"EDGEX_STARTUP_DURATION": "2"})
    assert standin.process.wait(30) == 1
    assert "configuration provider is not available" in standin.log_text()


def test_writable_loglevel_applied_live(consul, local_standin):
    bootstrap_common_config(cp(consul))
    standin = start_configured(local_standin, consul)
    consul_put(consul, "edgex/v3/core-data/Writable/LogLevel", "DEBUG")
    wait_until(lambda: config_of(standin.port)["Writable"]["LogLevel"] == "DEBUG", what="LogLevel applied live")
    assert standin.process.poll() is None  # no restart
    assert "Logging level changed to DEBUG" in standin.log_text()
    get(standin.port, "/api/v3/version")
    wait_until(lambda: 'level=DEBUG' in standin.log_text(), what="the service logging at DEBUG")


def test_non_writable_change_waits_for_a_restart(consul, local_standin):
    bootstrap_common_config(cp(consul))
    standin = start_configured(local_standin, consul)
    consul_put(consul, "edgex/v3/core-data/Service/RequestTimeout", "9s")
    # A Writable change after it: once that one shows, the stand-in has seen the first too.
    consul_put(consul, "edgex/v3/core-data/Writable/LogLevel", "WARN")
    wait_until(lambda: config_of(standin.port)["Writable"]["LogLevel"] == "WARN", what="the later Writable change")
    assert config_of(standin.port)["Service"]["RequestTimeout"] == "5s"
    assert standin.stop() == 0
    restarted = start_configured(local_standin, consul, port=standin.port)
    config = config_of(restarted.port)
    assert config["Service"]["RequestTimeout"] == "9s" and config["Writable"]["LogLevel"] == "WARN"


def test_common_writable_applied_live_unless_overridden(consul, local_standin):
    bootstrap_common_config(cp(consul))
    standin = start_configured(local_standin, consul, "device-virtual")
    common = "edgex/v3/core-common-config-bootstrapper/"
    consul_put(consul, common + "all-services/Writable/LogLevel", "ERROR")  # private has LogLevel: ignored
    consul_put(consul, common + "device-services/Writable/Reading/ReadingUnits", "false")
    consul_put(consul, common + "all-services/Writable/Telemetry/Interval", "15s")
    wait_until(lambda: config_of(standin.port)["Writable"]["Telemetry"]["Interval"] == "15s",
               what="the all-services Writable change")
    wait_until(lambda: config_of(standin.port)["Writable"]["Reading"]["ReadingUnits"] is False,
               what="the device-services Writable change")
    assert config_of(standin.port)["Writable"]["LogLevel"] == "INFO"
    consul_put(consul, common + "all-services/Service/RequestTimeout", "30s")  # not Writable: after a restart
    consul_put(consul, common + "all-services/Writable/Telemetry/Interval", "20s")
    wait_until(lambda: config_of(standin.port)["Writable"]["Telemetry"]["Interval"] == "20s", what="barrier")
    assert config_of(standin.port)["Service"]["RequestTimeout"] == "5s"


def test_a_value_of_the_wrong_type_is_refused_live(consul, local_standin):
    bootstrap_common_config(cp(consul))
    standin = start_configured(local_standin, consul)
    consul_put(consul, "edgex/v3/core-data/Writable/PersistData", "perhaps")
    wait_until(lambda: "ListenForChanges() type check failed" in standin.log_text(), what="the refusal")
    assert config_of(standin.port)["Writable"]["PersistData"] is True


def test_without_a_provider_it_uses_its_defaults_and_watches_nothing(consul, local_standin):
    bootstrap_common_config(cp(consul))
    # Registered in Consul but given no configuration provider (no -cp), as a service run without it.
    plain = local_standin("core-data", free_port(), registry="consul", registry_port=consul.port).wait()
    watcher = start_configured(local_standin, consul)
    consul_put(consul, "edgex/v3/core-data/Writable/LogLevel", "DEBUG")
    wait_until(lambda: config_of(watcher.port)["Writable"]["LogLevel"] == "DEBUG", what="the watching stand-in")
    assert config_of(plain.port)["Writable"]["LogLevel"] == "INFO"
    assert config_of(plain.port)["Service"]["Port"] == plain.port  # its own defaults, not the KV's port
    assert "Configuration provider" not in plain.log_text()


# -- EdgeX 2.x ---------------------------------------------------------------------------------


def test_2x_routes(local_standin):
    port = free_port()
    local_standin("sys-mgmt-agent", port, version="2.3.0").wait()
    status, ping = get(port, "/api/v2/ping")
    assert status == 200 and ping["apiVersion"] == "v2" and ping["serviceName"] == "sys-mgmt-agent"
    assert GO_UNIX_DATE.match(ping["timestamp"])
    assert get(port, "/api/v2/version")[1] == {"apiVersion": "v2", "version": "2.3.0", "serviceName": "sys-mgmt-agent"}
    config = get(port, "/api/v2/config")[1]
    assert config["apiVersion"] == "v2" and config["serviceName"] == "sys-mgmt-agent"
    assert config["config"]["Service"]["Port"] == port and config["config"]["ExecutorPath"] == "/sys-mgmt-executor"
    assert "MessageQueue" in config["config"] and "MessageBus" not in config["config"]  # the 2.x shape
    metrics = get(port, "/api/v2/metrics")[1]
    assert set(metrics) == {"apiVersion", "metrics", "serviceName"} and metrics["apiVersion"] == "v2"
    assert set(metrics["metrics"]) == {"memAlloc", "memFrees", "memLiveObjects", "memMallocs", "memSys",
                                       "memTotalAlloc", "cpuBusyAvg"}
    assert metrics["metrics"]["memAlloc"] > 0 and 0 <= metrics["metrics"]["cpuBusyAvg"] <= 100
    # gorilla/mux (2.x) answers what it does not route with plain text; /api/v3 does not exist there.
    for path in ("/api/v3/ping", "/api/v3/config", "/api/v2/nothing"):
        assert http_error(port, path) == (404, "text/plain; charset=utf-8", b"404 page not found\n")


def test_2x_registration_and_configuration_layout(consul, local_standin):
    standins = {}
    for service in ("core-data", "device-virtual", "app-rules-engine"):
        standins[service] = local_standin(service, free_port(), version="2.3.0", registry="consul",
                                          registry_port=consul.port, config_provider=cp(consul)).wait()
    client = consul.client()
    check = client.agent.checks()["core-data"]
    assert check["Name"] == "Health Check: core-data" and check["Notes"] == "Check the health of the API"
    wait_until(lambda: client.agent.checks()["core-data"]["Status"] == "passing", what="2.x check passing")
    assert "http://127.0.0.1:%d/api/v2/ping" % standins["core-data"].port in client.agent.checks()["core-data"][
        "Output"]
    # go-mod-bootstrap v2: ConfigStem{Core,Devices,AppServices} + "2.0/" + service key; no common config.
    core = consul_kv(consul, "edgex/core/2.0/core-data/")
    assert core["edgex/core/2.0/core-data/Writable/LogLevel"] == "INFO"
    assert core["edgex/core/2.0/core-data/Service/RequestTimeout"] == "5s"  # 2.x pushes its whole config
    assert core["edgex/core/2.0/core-data/Databases/Primary/Name"] == "coredata"
    assert "edgex/devices/2.0/device-virtual/Service/Port" in consul_kv(consul, "edgex/devices/2.0/device-virtual/")
    assert "edgex/appservices/2.0/app-rules-engine/Service/Port" in consul_kv(
        consul, "edgex/appservices/2.0/app-rules-engine/")
    assert consul_kv(consul, "edgex/v3/") == {}
    port = standins["core-data"].port
    consul_put(consul, "edgex/core/2.0/core-data/Service/RequestTimeout", "9s")
    consul_put(consul, "edgex/core/2.0/core-data/Writable/LogLevel", "DEBUG")
    wait_until(lambda: config_of(port, "v2")["Writable"]["LogLevel"] == "DEBUG", what="2.x LogLevel applied live")
    assert config_of(port, "v2")["Service"]["RequestTimeout"] == "5s"


# -- core-keeper (4.x) -------------------------------------------------------------------------


def keeper_kv(keeper, prefix):
    status, body = keeper.request("GET", "/api/v3/kvs/key/%s?plaintext=true" % prefix)
    return {} if status == 404 else {e["key"]: e["value"] for e in body["response"]}


def keeper_put(keeper, key, value):
    assert keeper.request("PUT", "/api/v3/kvs/key/%s" % key, {"value": value})[0] == 200


def test_keeper_layout_seeding_and_live_writable(keeper, local_standin):
    provider = "keeper.http://%s:%d" % (keeper.host, keeper.port)
    bootstrap_common_config(provider, version="4.0.1")
    common = keeper_kv(keeper, "edgex/v4/core-common-config-bootstrapper")
    assert common["edgex/v4/core-common-config-bootstrapper/IsCommonConfigReady"] == "true"
    assert common["edgex/v4/core-common-config-bootstrapper/all-services/Registry/Type"] == "keeper"
    assert common["edgex/v4/core-common-config-bootstrapper/all-services/Database/Type"] == "postgres"
    port = free_port()
    standin = local_standin("core-data", port, version="4.0.1", registry="keeper", registry_port=keeper.port,
                            config_provider=provider, extra_args=["--config-poll-interval", "0.2"]).wait()
    private = keeper_kv(keeper, "edgex/v4/core-data")
    assert private["edgex/v4/core-data/Writable/LogLevel"] == "INFO"
    assert private["edgex/v4/core-data/Service/Port"] == str(port)
    config = config_of(port)
    assert config["Registry"]["Type"] == "keeper" and config["Service"]["Port"] == port
    keeper_put(keeper, "edgex/v4/core-data/Service/RequestTimeout", "9s")
    keeper_put(keeper, "edgex/v4/core-data/Writable/LogLevel", "DEBUG")
    wait_until(lambda: config_of(port)["Writable"]["LogLevel"] == "DEBUG", what="LogLevel from keeper, live")
    assert config_of(port)["Service"]["RequestTimeout"] == "5s"
    assert standin.stop() == 0
    local_standin("core-data", port, version="4.0.1", registry="keeper", registry_port=keeper.port,
                  config_provider=provider).wait()
    assert config_of(port)["Service"]["RequestTimeout"] == "9s"


def test_keeper_is_no_provider_before_4x():
    from tests.testbed.fixtures_docker import STANDIN

    done = subprocess.run([sys.executable, STANDIN, "--service", "core-data", "--port", "1", "--config-provider",
                           "keeper"], capture_output=True, text=True, timeout=30, env=dict(os.environ), check=False)
    assert done.returncode == 2 and "core-keeper is the configuration provider of EdgeX 4.x only" in done.stderr


# -- in a container ----------------------------------------------------------------------------


@pytest.mark.docker
def test_docker_stop_deregisters(consul, standin_container):
    port = free_port()
    name = standin_container("core-data", port, registry="consul", registry_port=consul.port,
                             name="edgex-test-standin-core-data")
    client = consul.client()
    wait_until(lambda: registered(client, "core-data"), what="registration from the container")
    assert get(port, "/api/v3/ping")[1]["serviceName"] == "core-data"
    subprocess.run(["docker", "stop", name], check=True, stdout=subprocess.DEVNULL)
    # Its SIGTERM handler ended it (exit 0), not docker's SIGKILL after the stop timeout (137).
    exit_code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name], capture_output=True,
                               text=True, check=True).stdout.strip()
    assert exit_code == "0", "SIGTERM must stop the stand-in (exit code %s)" % exit_code
    assert container_state(name) == "exited"
    assert not registered(client, "core-data")
    exit_code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert exit_code == "0"


@pytest.mark.docker
def test_testbed_up_release_2_is_an_edgex_2x_gateway(testbed_2x):
    """`testbed.py up --release 2`: Levski's service set (the SMA included) answering /api/v2, registered
    with /api/v2/ping checks, its configuration under edgex/<class>/2.0/ in the registry's KV."""
    import consul as consul_client
    import yaml

    from tests.testbed import releases, testbed as testbed_cli

    client = consul_client.Consul(port=testbed_cli.CONSUL_PORT)
    checks = client.agent.checks()
    api_services = {s for s, (_p, kind, _d) in releases.LEVSKI_SERVICES.items() if kind == "api"}
    assert api_services <= set(client.agent.services()) and "sys-mgmt-agent" in api_services
    for service in api_services:
        port = releases.LEVSKI_SERVICES[service][0]
        assert checks[service]["Status"] == "passing", checks[service]
        assert "http://127.0.0.1:%d/api/v2/ping" % port in checks[service]["Output"]
        assert get(port, "/api/v2/ping")[1]["serviceName"] == service
        assert http_error(port, "/api/v3/ping")[0] == 404
    assert get(58890, "/api/v2/version")[1] == {"apiVersion": "v2", "version": "2.3.0",
                                                "serviceName": "sys-mgmt-agent"}
    assert client.kv.get("edgex/core/2.0/core-data/Service/Port")[1]["Value"] == b"59880"
    assert client.kv.get("edgex/devices/2.0/device-virtual/Writable/LogLevel")[1]["Value"] == b"INFO"
    assert client.kv.get("edgex/v3/", recurse=True)[1] is None  # no 3.x layout, no common config
    assert exchange(6379, b"PING\r\n", 7) == b"+PONG\r\n"  # the database
    with open(testbed_2x["manifest"]) as handle:
        services = yaml.safe_load(handle)["hosts"]["gw1"]["services"]
    assert services["sys-mgmt-agent"]["target"] == "edgex-sys-mgmt-agent"
    assert services["core-data"]["health"] == "/api/v2/ping"
    assert testbed_2x["consul"] == "http://127.0.0.1:8500"
