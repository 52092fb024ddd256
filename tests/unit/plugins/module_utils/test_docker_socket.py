"""The docker executor's state reads over a unix socket, against a fake engine (no Docker needed)."""

import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ExecutorError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._net.engine_socket import local_socket_path
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor
from tests.testbed.fixtures_consul import free_port

RUNNING = {"Id": "4f2a9c1e7b3d" * 5, "RestartCount": 0,
           "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0,
                     "StartedAt": "2026-11-25T10:00:00.123456789Z", "FinishedAt": "0001-01-01T00:00:00Z"}}


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers GET /containers/<name>/json from ``answers``: name -> (status, body bytes)."""

    daemon_threads = True

    def __init__(self, path, answers):
        self.answers = answers
        self.paths = []
        socketserver.UnixStreamServer.__init__(self, path, EngineHandler)


class EngineHandler(BaseHTTPRequestHandler):
    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.paths.append(self.path)
        name = self.path.split("/")[2]
        status, body = self.server.answers.get(name, (404, b'{"message": "No such container: %s"}' % name.encode()))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def engine(tmp_path):
    path = str(tmp_path / "docker.sock")
    server = FakeEngine(path, {})
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def executor_for(engine):
    return get_executor("docker", docker_host="unix://" + engine.server_address)


def test_local_socket_path_only_for_unix_addresses():
    assert local_socket_path("unix:///var/run/docker.sock") == "/var/run/docker.sock"
    assert local_socket_path("tcp://127.0.0.1:2375") is None
    assert local_socket_path("ssh://gw1") is None
    assert local_socket_path("unix://") is None


def test_state_is_read_from_the_engine_inspect(engine):
    engine.answers["edgex-core-data"] = (200, json.dumps(RUNNING).encode())
    details = executor_for(engine).details("edgex-core-data")
    assert (details["state"], details["raw"], details["pid"], details["id"]) == ("running", "running", 4242,
                                                                                 "4f2a9c1e7b3d")
    assert details["started_at"] == "2026-11-25T10:00:00.123456789Z"
    assert engine.paths == ["/containers/edgex-core-data/json"]  # unversioned: the engine's own API version


def test_no_such_container_is_absent(engine):
    assert executor_for(engine).state("edgex-core-data") == "absent"


def test_an_engine_error_is_reported_with_its_message(engine):
    engine.answers["edgex-core-data"] = (500, b'{"message": "container store is locked"}')
    with pytest.raises(ExecutorError, match="docker executor cannot read the state of edgex-core-data: "
                                            "container store is locked"):
        executor_for(engine).state("edgex-core-data")


@pytest.mark.parametrize("status, body, expected", [
    (200, b"<html>proxy</html>", "the engine answered 200 with something that is not a container inspect"),
    (200, b"[]", "the engine answered 200 with something that is not a container inspect"),
    (502, b"", "the engine answered 502 with no message"),
])
def test_an_engine_that_answers_garbage_is_named(engine, status, body, expected):
    engine.answers["edgex-core-data"] = (status, body)
    with pytest.raises(ExecutorError, match="cannot read the state of edgex-core-data: %s" % expected):
        executor_for(engine).state("edgex-core-data")


def test_no_engine_on_the_socket_is_named(tmp_path):
    missing = "unix://%s" % (tmp_path / "no-docker.sock")
    with pytest.raises(ExecutorError, match="Docker daemon at %s is not answering: No such file or directory"
                       % missing):
        get_executor("docker", docker_host=missing).state("edgex-core-data")


def test_a_tcp_engine_is_read_through_the_sdk():
    address = "tcp://127.0.0.1:%d" % free_port()  # nothing listens there
    with pytest.raises(ExecutorError, match="Docker daemon at %s is not answering" % address):
        get_executor("docker", docker_host=address).state("edgex-core-data")


def test_reading_state_does_not_import_the_sdk(engine):
    # The idempotent run (everything already running) must not pay for the SDK's import.
    engine.answers["edgex-core-data"] = (200, json.dumps(RUNNING).encode())
    code = ("import sys; from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor; "
            "executor = get_executor('docker', docker_host=sys.argv[1]); "
            "assert executor.state('edgex-core-data') == 'running'; "
            "assert 'docker' not in sys.modules and 'requests' not in sys.modules, 'SDK imported'")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", code, "unix://" + engine.server_address], check=True, env=env)


def test_without_the_sdk_the_executor_says_so_before_any_read(tmp_path):
    # -S: no site-packages, so neither the SDK nor requests can be found; only the collection is on the path.
    collections = [p for p in sys.path if os.path.isdir(os.path.join(p, "ansible_collections", "edgex"))]
    code = ("from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor; "
            "get_executor('docker')")
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(collections)))
    assert result.returncode == 1
    assert "docker executor needs the Docker SDK for Python on this host (pip install docker)" in result.stderr


# -- an SDK call's total deadline ----------------------------------------------------------------
def test_an_sdk_call_that_does_not_return_is_cut_at_its_total_deadline(tmp_path):
    # The SDK's timeout bounds each read (an answer that trickles renews it); the call as a whole
    # is bounded by api_timeout plus the stop timeout the engine itself waits.
    executor = get_executor("docker", docker_host="unix://%s" % (tmp_path / "docker.sock"), api_timeout=0.5)
    release = threading.Event()
    started = time.monotonic()

    def trickle():  # an SDK call that keeps reading; gives up by itself after 10 s
        while not release.wait(0.1) and time.monotonic() - started < 10:
            pass

    try:
        with pytest.raises(ExecutorError, match="did not answer within 1.5s \\(stop edgex-core-data\\)"):
            executor._call("stop", "edgex-core-data", lambda **kwargs: trickle(), timeout=1)
    finally:
        release.set()
    assert time.monotonic() - started < 5
