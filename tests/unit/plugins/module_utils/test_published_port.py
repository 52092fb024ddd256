"""A host port Docker chose (compose ``ports: ["59900"]``): read from the engine when a service is
probed, never guessed (issue 12); a service that publishes nothing is not probed at all."""

import json

from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.published import unpublished_reason, \
    with_published_port
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord
from tests.unit.plugins.module_utils import test_docker_socket

engine = test_docker_socket.engine  # the fake engine's fixture

INSPECT = {"Id": "ab" * 32, "State": {"Status": "running", "Running": True, "ExitCode": 0},
           "NetworkSettings": {"Ports": {
               "59900/tcp": [{"HostIp": "::", "HostPort": "32769"}, {"HostIp": "0.0.0.0", "HostPort": "32769"}],
               "59986/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32770"}],
               "5563/tcp": None}}}


def docker(engine):
    return get_executor("docker", docker_host="unix://" + engine.server_address)


def test_the_engine_tells_the_host_port_it_chose(engine):
    engine.answers["edgex-device-virtual"] = (200, json.dumps(INSPECT).encode())
    executor = docker(engine)
    assert executor.published_port("edgex-device-virtual", 59900) == ("0.0.0.0", 32769)  # IPv4 binding first
    assert executor.published_port("edgex-device-virtual", 59986) == ("127.0.0.1", 32770)
    assert executor.published_port("edgex-device-virtual", 5563) is None  # exposed, not published
    assert executor.published_port("edgex-device-virtual", 59900, "udp") is None
    assert executor.published_port("edgex-missing", 59900) is None


def test_a_service_with_a_chosen_port_is_reached_through_what_the_engine_says(engine):
    engine.answers["edgex-device-virtual"] = (200, json.dumps(INSPECT).encode())
    service = ServiceRecord("device-virtual", "gw1", published=True, container_port=59900)
    reached, reason = with_published_port(service, docker(engine), "edgex-device-virtual")
    assert (reached.address, reached.port, reason) == ("127.0.0.1", 32769, None)
    bound = ServiceRecord("device-rest", "gw1", address="127.0.0.1", published=True, container_port=59986)
    assert with_published_port(bound, docker(engine), "edgex-device-virtual")[0].port == 32770


def test_when_the_engine_cannot_tell_nothing_is_guessed(engine):
    stopped = dict(INSPECT, State={"Status": "exited", "ExitCode": 0}, NetworkSettings={"Ports": {}})
    engine.answers["edgex-device-virtual"] = (200, json.dumps(stopped).encode())
    service = ServiceRecord("device-virtual", "gw1", published=True, container_port=59900)
    reached, reason = with_published_port(service, docker(engine), "edgex-device-virtual")
    assert reached.port is None and reason == "container port 59900 has no host port now (the container is not running)"

    class Systemd(object):
        name = "systemd"

    assert with_published_port(service, Systemd(), "x")[1] == (
        "the systemd executor cannot read the host port Docker chose for container port 59900")


def test_fixed_and_unpublished_ports_are_left_alone():
    class Boom(object):
        def published_port(self, *args):
            raise AssertionError("asked the engine for a port the manifest knows")

    fixed = ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59880, published=True, container_port=59880)
    assert with_published_port(fixed, Boom(), "edgex-core-data") == (fixed, None)
    hidden = ServiceRecord("core-data", "gw1", published=False, container_port=59880)
    assert with_published_port(hidden, Boom(), "edgex-core-data") == (hidden, None)
    assert unpublished_reason(hidden) == "not published (container port 59880): judged by its executor and the registry"
    assert unpublished_reason(fixed) is None
