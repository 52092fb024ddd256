"""The stand-in honours the EdgeX v3 service contract and registers like go-mod-registry."""

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import container_state, wait_until

GO_UNIX_DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} UTC \d{4}$")


def get(port, path, timeout=3):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as response:
        return response.status, json.loads(response.read())


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
    assert config["serviceName"] == "core-metadata" and config["config"]["Service"]["Port"] == port
    with pytest.raises(urllib.error.HTTPError) as err:
        get(port, "/api/v3/nothing")
    assert err.value.code == 404 and json.loads(err.value.read())["statusCode"] == 404


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


def test_tcp_kind_accepts_connections(local_standin):
    port = free_port()
    local_standin("database", port, kind="tcp").wait()
    socket.create_connection(("127.0.0.1", port), timeout=1).close()


def registered(client, service):
    return service in client.agent.services()


def test_registers_like_go_mod_registry_and_deregisters_on_sigterm(consul, local_standin):
    port = free_port()
    standin = local_standin("core-data", port, registry="consul", registry_port=consul.port).wait()
    client = consul.client()
    wait_until(lambda: registered(client, "core-data"), what="registration")
    service = client.agent.services()["core-data"]
    assert (service["Service"], service["Address"], service["Port"]) == ("core-data", "127.0.0.1", port)
    check = client.agent.checks()["core-data"]
    assert check["Name"] == "Health Check: core-data"
    assert check["Notes"] == "Check the health of the API"
    assert check["ServiceID"] == "core-data"
    wait_until(lambda: client.agent.checks()["core-data"]["Status"] == "passing", what="check passing")
    assert "/api/v3/ping" in client.agent.checks()["core-data"]["Output"]
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


def test_keeps_serving_and_registers_late_when_registry_appears(consul, local_standin):
    if not consul.is_emulator:
        pytest.skip("needs to stop and start the registry")
    consul.stop()
    port = free_port()
    local_standin("core-command", port, registry="consul", registry_port=consul.port).wait()
    assert get(port, "/api/v3/ping")[0] == 200
    consul.start()
    wait_until(lambda: registered(consul.client(), "core-command"), timeout=15, what="late registration")


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
