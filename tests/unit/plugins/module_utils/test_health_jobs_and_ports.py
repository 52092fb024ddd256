"""edgex_health, edgex_remediate and edgex_reap on one-shot jobs and on services that publish no port
or a port Docker chose (issue 12): the manifest's flags decide, not a hard-coded list."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import HealthResult, check_health
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.ledger import empty_ledger
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.reaping import ReapingRun
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.remediation import (
    JOB_NOT_REMEDIATED,
    Policy,
    RemediationRun,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord


class FakeDocker(object):
    """Docker as details() reports it: target -> (status, exit code); published ports by target."""

    name = "docker"

    def __init__(self, containers, published=None):
        self.containers = containers
        self.published = published or {}

    def details(self, target):
        if target not in self.containers:
            return {"state": "absent", "raw": None, "exit_code": None}
        status, exit_code = self.containers[target]
        state = "running" if status == "running" else "stopped" if exit_code in (0, 137, 143) else "failed"
        return {"state": state, "raw": status, "exit_code": exit_code}

    def state(self, target):
        return self.details(target)["state"]

    def published_port(self, target, container_port, protocol="tcp"):
        if self.containers.get(target, ("exited",))[0] != "running":
            return None
        return self.published.get((target, container_port))


class FakeExecutors(object):
    default = "docker"

    def __init__(self, docker):
        self.docker = docker

    def named(self, name):
        return self.docker

    def for_service(self, service):
        return self.docker, service.target


def job(name="core-common-config-bootstrapper", one_shot=True):
    return ServiceRecord(name, "gw1", executor="docker", target="edgex-" + name, one_shot=one_shot)


def health(services, docker, source="manifest"):
    return {r.name: r for r in check_health(services, source, FakeExecutors(docker), probe_timeout=1.0)}


# -- jobs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, exit_code, verdict, reasons", [
    ("exited", 0, "healthy", []),
    ("running", 0, "healthy", []),
    ("exited", 1, "unhealthy", ["one-shot container failed"]),
    ("created", 0, "unhealthy", ["one-shot container never completed (never ran, or was stopped)"]),
    ("exited", 137, "unhealthy", ["one-shot container never completed (never ran, or was stopped)"]),
])
def test_a_job_is_judged_by_how_it_exited(status, exit_code, verdict, reasons):
    result = health([job("openziti-configure")], FakeDocker({"edgex-openziti-configure": (status, exit_code)}))
    assert (result["openziti-configure"].verdict, result["openziti-configure"].reasons) == (verdict, reasons)
    assert result["openziti-configure"].one_shot is True


def test_the_manifest_flag_decides_not_the_catalog():
    docker = FakeDocker({"edgex-core-common-config-bootstrapper": ("exited", 0)})
    # a manifest that says the bootstrapper runs on (its file restarts it): exited is not healthy
    result = health([job(one_shot=False)], docker)["core-common-config-bootstrapper"]
    assert result.verdict == "unhealthy" and result.reasons == ["container stopped"]
    # a manifest that says nothing: the catalog's default (a job)
    assert health([job(one_shot=None)], docker)["core-common-config-bootstrapper"].verdict == "healthy"


def test_executor_state_of_a_job_says_how_far_it_got():
    docker = FakeDocker({"edgex-a": ("exited", 0), "edgex-b": ("created", 0)})
    results = health([job("a"), job("b")], docker)
    assert (results["a"].executor_state, results["b"].executor_state) == ("completed", "pending")


def test_remediation_never_runs_a_job_again():
    results = [HealthResult(name="proxy-setup", verdict="unhealthy", node="gw1", executor_state="failed",
                            one_shot=True),
               HealthResult(name="core-data", verdict="unhealthy", node="gw1", executor_state="stopped")]
    run = RemediationRun("gw1", results, Policy(grace=0, backoff=0), now=1000.0)
    restarted = []
    ledger = run.decide_and_restart(empty_ledger(), lambda names: restarted.extend(names) or [
        {"name": n} for n in names])
    assert restarted == ["core-data"]
    assert run.decisions["proxy-setup"].action == "none" and run.decisions["proxy-setup"].reason == JOB_NOT_REMEDIATED
    assert "gw1/proxy-setup" not in ledger["services"]  # no attempts counted against it


def test_reaping_does_not_take_a_finished_job_for_a_crashed_service():
    registration = ServiceRecord("seed", "gw1", checks=[{"id": "seed", "service_id": "seed", "status": "critical"}])
    finished = HealthResult(name="seed", verdict="healthy", node="gw1", executor_state="completed", one_shot=True)

    class Executors(object):
        def for_service(self, service):
            return FakeDocker({}), "edgex-seed"

    for require_target in ("absent", "not_running"):
        run = ReapingRun("gw1", [registration], [finished], Executors(), 0, require_target, 50.0)
        run.decide_and_deregister(empty_ledger(), lambda s: pytest.fail("a finished job was reaped"))
        (kept,) = run.split()[1]
        assert kept["reason"] == "its target is completed, and require_target is %s" % require_target


# -- ports -----------------------------------------------------------------------------------------


def test_a_service_that_publishes_no_port_is_judged_by_its_executor_and_says_so():
    hidden = ServiceRecord("core-data", "gw1", address="192.0.2.10", executor="docker", target="edgex-core-data",
                           published=False, container_port=59880)
    running = health([hidden], FakeDocker({"edgex-core-data": ("running", 0)}))["core-data"]
    assert (running.verdict, running.probe, running.reasons, running.port) == ("healthy", "unpublished", [], None)
    stopped = health([hidden], FakeDocker({"edgex-core-data": ("exited", 143)}))["core-data"]
    assert (stopped.verdict, stopped.reasons) == ("unhealthy", ["container stopped"])
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import check_services

    (unknown,) = check_services([hidden], timeout=1.0)  # no executor, no registry checks
    assert unknown.verdict == "unknown"
    assert unknown.reasons == ["not published (container port 59880): judged by its executor and the registry"]
    passing = ServiceRecord("core-data", "gw1", published=False, status="passing", checks=[])
    assert check_services([passing], timeout=1.0)[0].verdict == "healthy"  # the registry's checks decide


class Ping(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        body = json.dumps({"apiVersion": "v3", "timestamp": "x", "serviceName": "device-virtual"}).encode()
        self.send_response(200 if self.path == "/api/v3/ping" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def ping_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_port_docker_chose_is_read_from_the_engine_and_probed(ping_server):
    chosen = ServiceRecord("device-virtual", "gw1", executor="docker", target="edgex-device-virtual",
                           health_path="/api/v3/ping", published=True, container_port=59900)
    docker = FakeDocker({"edgex-device-virtual": ("running", 0)},
                        published={("edgex-device-virtual", 59900): ("0.0.0.0", ping_server)})
    result = health([chosen], docker)["device-virtual"]
    assert (result.verdict, result.probe, result.port) == ("healthy", "edgex-ping", ping_server)  # what was probed
    assert result.target == "http://127.0.0.1:%d/api/v3/ping" % ping_server

    docker.containers["edgex-device-virtual"] = ("exited", 143)
    result = health([chosen], docker)["device-virtual"]
    assert result.verdict == "unhealthy"
    assert result.reasons == ["container stopped",
                              "container port 59900 has no host port now (the container is not running)"]
