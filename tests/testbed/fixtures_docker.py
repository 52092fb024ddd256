"""Docker fixtures: the engine, the shared test-bed lock, stand-in containers, the whole test-bed.

Every fixture that starts containers holds /tmp/edgex-testbed.lock, so two test runs on one
engine never collide on container names or loopback ports.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from tests.testbed import testbed as testbed_cli
from tests.testbed.fixtures_consul import wait_listening
from tests.testbed.images import LABEL

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "standin", "edgex_standin.py")


def docker_available():
    try:
        return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine():
    if not docker_available():
        message = "no Docker engine answers (run tests/testbed/docker-engine.sh, as root on Debian)"
        if os.environ.get("EDGEX_REQUIRE_DOCKER"):  # make test: a missing engine is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    return True


@pytest.fixture(scope="session")
def standin_image_tag(docker_engine):
    from tests.testbed.images import standin_image

    return standin_image()


@pytest.fixture
def testbed_lock():
    with testbed_cli.Lock():
        yield


def container_state(name):
    result = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "missing"


@pytest.fixture
def standin_container(standin_image_tag, testbed_lock):
    """Factory: run one stand-in container (host network), removed at teardown.

    standin_container("core-data", port=59880, env={"STANDIN_PING_HANG": "1"}, registry="consul",
                      registry_port=..., name=..., wait=True, version="3.1.1", config_provider=None)
    -> container name
    """
    started = []

    def run(service, port, host="127.0.0.1", env=None, registry="none", registry_port=8500, name=None,
            check_interval="1s", kind="api", wait=True, gateway="gw1", version=None, config_provider=None):
        name = name or testbed_cli.container_name(gateway, service)
        subprocess.run(["docker", "rm", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        argv = ["docker", "run", "-d", "--pull", "never", "--name", name, "--network", "host", "--label", LABEL,
                "--label", "edgex.gateway=%s" % gateway, "--label", "edgex.service=%s" % service,
                "--stop-timeout", "5"]
        for key, value in (env or {}).items():
            argv += ["-e", "%s=%s" % (key, value)]
        argv += [standin_image_tag] + standin_argv(service, port, host, registry, registry_port, check_interval, kind,
                                                   version, config_provider)
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        started.append(name)
        if wait:
            wait_listening(host, port)
        return name

    yield run
    if started:
        subprocess.run(["docker", "rm", "-f"] + started, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def standin_argv(service, port, host="127.0.0.1", registry="none", registry_port=8500, check_interval="1s",
                 kind="api", version=None, config_provider=None):
    """The stand-in's command line (after the program): see standin/edgex_standin.py."""
    argv = ["--service", service, "--host", host, "--kind", kind, "--registry", registry, "--registry-host", host,
            "--registry-port", str(registry_port), "--check-interval", check_interval]
    if port is not None:
        argv += ["--port", str(port)]
    if version:
        argv += ["--version", version]
    if config_provider:
        argv += ["--config-provider", config_provider]
    return argv


class LocalStandin(object):
    """A stand-in as a plain local process (no Docker): fast, for health tests and benchmarks.

    Its log (EdgeX's level=... msg=... lines) goes to a file: ``log_text()`` reads it."""

    def __init__(self, service, port, host="127.0.0.1", env=None, registry="none", registry_port=8500,
                 check_interval="1s", kind="api", version=None, config_provider=None, extra_args=()):
        self.service, self.port, self.host = service, port, host
        argv = [sys.executable, STANDIN] + standin_argv(service, port, host, registry, registry_port, check_interval,
                                                        kind, version, config_provider) + list(extra_args)
        # A file, not a pipe nobody reads: a chatty stand-in would block on a full pipe.
        self.log_path = tempfile.mkstemp(prefix="standin-%s-" % service, suffix=".log", dir=_log_dir())[1]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(argv, env=dict(os.environ, **(env or {})),
                                            stdout=subprocess.DEVNULL, stderr=log)

    def log_text(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def wait(self, timeout=10.0):
        try:
            wait_listening(self.host, self.port, timeout, process=self.process)
        except RuntimeError as exc:
            raise RuntimeError("%s; its log:\n%s" % (exc, self.log_text()))
        return self

    def stop(self, signal_name="TERM"):
        if self.process.poll() is None:
            if signal_name == "KILL":
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


_LOG_DIR = []


def _log_dir():
    """One directory for this process's stand-in logs, removed when the process exits."""
    if not _LOG_DIR:
        _LOG_DIR.append(tempfile.mkdtemp(prefix="edgex-standin-logs-"))
        atexit.register(shutil.rmtree, _LOG_DIR[0], True)
    return _LOG_DIR[0]


def bootstrap_common_config(config_provider, version="3.1.1", timeout=30.0):
    """Run the stand-in as core-common-config-bootstrapper (the one-shot job of EdgeX 3.x/4.x) and
    return once it has pushed the common configuration; its log on failure."""
    argv = [sys.executable, STANDIN, "--service", "core-common-config-bootstrapper", "--version", version,
            "--config-provider", config_provider]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError("core-common-config-bootstrapper exited %d: %s" % (done.returncode, done.stderr))
    return done.stderr


@pytest.fixture
def local_standin():
    """Factory: LocalStandin(service, port, ...) started (not waited for); all stopped at teardown."""
    running = []

    def start(service, port, **kwargs):
        standin = LocalStandin(service, port, **kwargs)
        running.append(standin)
        return standin

    yield start
    for standin in running:
        standin.stop()


def _testbed(release):
    with testbed_cli.Lock():
        url = testbed_cli.up(gateways=1, check_interval="1s", release=release)
        try:
            yield {"consul": url, "manifest": os.path.join(testbed_cli.STATE_DIR, "manifest.yml"),
                   "gateways": 1, "release": release}
        finally:
            testbed_cli.down()


@pytest.fixture(scope="module")
def testbed(standin_image_tag):
    """The whole test-bed (1 gateway of EdgeX 3.1, 1 s checks), up for a test module, down afterwards."""
    yield from _testbed("3")


@pytest.fixture(scope="module")
def testbed_2x(standin_image_tag):
    """The test-bed as one EdgeX 2.3 (Levski) gateway: /api/v2 services, the SMA, 2.x KV layout."""
    yield from _testbed("2")


def wait_until(predicate, timeout=60.0, interval=0.1, what="condition"):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``. ``timeout`` only
    bounds a failure (a passing wait returns as soon as it can), so it is generous: a busy machine
    must not turn a slow start into a failed test."""
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last value %r)" % (timeout, what, value))
