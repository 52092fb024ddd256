"""core-keeper for tests: a fresh emulator process per test (tests/testbed/keeper_emulator.py).

Tests reach it through the handle (`keeper.settings()`, `keeper.url`, `keeper.request()`);
stop()/start() restart it on the same port with its data file, so registrations and keys
survive a restart as they do in real keeper (PostgreSQL).
"""

import json
import os
import sys
import urllib.error
import urllib.request

import pytest

from tests.testbed.fixtures_consul import ServerProcess, free_port

EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keeper_emulator.py")


class KeeperEmulatorProcess(ServerProcess):
    """The keeper emulator as a subprocess (its data file survives a restart)."""

    def __init__(self, host="127.0.0.1", port=None, data_file=None, log_path=None,
                 python=sys.executable):
        self.host = host
        self.port = port or free_port(host)
        self.data_file = data_file
        self.log_path = log_path
        self.python = python

    def argv(self):
        argv = [self.python, EMULATOR, "--host", self.host, "--port", str(self.port)]
        if self.data_file:
            argv += ["--data-file", self.data_file]
        return argv


class KeeperHandle(object):
    """What a test needs to reach the emulated core-keeper."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.host = emulator.host
        self.port = emulator.port
        self.scheme = "http"

    @property
    def url(self):
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    def settings(self, **overrides):
        settings = {"registry_type": "keeper", "host": self.host, "port": self.port, "scheme": self.scheme,
                    "timeout": 5.0, "validate_certs": True}
        settings.update(overrides)
        return settings

    def request(self, method, path, body=None, timeout=10):
        """Raw HTTP: returns (status, parsed JSON or None); error statuses are returned, not raised."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, (json.loads(raw) if raw.strip() else None)

    def _control(self, path, body=None):
        method = "GET" if body is None else "POST"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + "/_emulator/" + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self):
        self.emulator.stop()

    def start(self):
        self.emulator.start()

    def fault(self, mode, delay=None):
        return self._control("fault", {"mode": mode, "delay": delay})

    def stats(self):
        return self._control("stats")

    def reset_stats(self):
        return self._control("stats/reset", {})


@pytest.fixture
def keeper(tmp_path):
    """The keeper emulator on 127.0.0.1 and a free port, its data kept in tmp_path."""
    emulator = KeeperEmulatorProcess(data_file=str(tmp_path / "keeper-data.json"),
                                     log_path=str(tmp_path / "keeper-emulator.log")).start()
    try:
        yield KeeperHandle(emulator)
    finally:
        emulator.stop()
