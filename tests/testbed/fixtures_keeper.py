"""core-keeper for tests: a fresh emulator process per test (tests/testbed/keeper_emulator.py).

Tests reach it through the handle (`keeper.settings()`, `keeper.url`, `keeper.request()`);
stop()/start() restart it on the same port with its data file, so registrations and keys
survive a restart as they do in real keeper (PostgreSQL).
"""

import json
import os
import ssl
import sys
import urllib.error
import urllib.request

import pytest

from tests.testbed.fixtures_consul import ServerProcess, free_port

EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keeper_emulator.py")


class KeeperEmulatorProcess(ServerProcess):
    """The keeper emulator as a subprocess (its data file survives a restart). ``tokens``: the
    JWTs secure mode accepts (none: security off); tls = (cert, key) serves HTTPS."""

    def __init__(self, host="127.0.0.1", port=None, data_file=None, log_path=None,
                 python=sys.executable, tokens=(), tls=None):
        self.host = host
        self.port = port or free_port(host)
        self.data_file = data_file
        self.log_path = log_path
        self.python = python
        self.tokens = list(tokens)
        self.tls = tls

    def argv(self):
        argv = [self.python, EMULATOR, "--host", self.host, "--port", str(self.port)]
        if self.data_file:
            argv += ["--data-file", self.data_file]
        for token in self.tokens:
            argv += ["--token", token]
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        return argv


class KeeperHandle(object):
    """What a test needs to reach the emulated core-keeper. ``token`` is sent as
    ``Authorization: Bearer`` (secure mode); ``ca`` is the CA an HTTPS client trusts."""

    def __init__(self, emulator, token=None, ca=None):
        self.emulator = emulator
        self.host = emulator.host
        self.port = emulator.port
        self.scheme = "https" if emulator.tls else "http"
        self.token = token
        self.ca = ca

    @property
    def url(self):
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    def settings(self, **overrides):
        settings = {"registry_type": "keeper", "host": self.host, "port": self.port, "scheme": self.scheme,
                    "timeout": 5.0, "validate_certs": True}
        if self.token:
            settings["token"] = self.token
        if self.ca:
            settings["ca_path"] = self.ca
        settings.update(overrides)
        return settings

    def ssl_context(self):
        if self.scheme != "https":
            return None
        return ssl.create_default_context(cafile=self.ca)

    def answer(self, method, path, body=None, timeout=10, token=None, headers=None):
        """Raw HTTP: (status, headers, body bytes), error statuses included. token="" sends none."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        token = self.token if token is None else token
        if token:
            request.add_header("Authorization", "Bearer %s" % token)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context()) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def request(self, method, path, body=None, timeout=10, token=None, headers=None):
        """Raw HTTP: returns (status, parsed JSON or None); error statuses are returned, not raised."""
        status, _headers, raw = self.answer(method, path, body, timeout, token, headers)
        return status, (json.loads(raw) if raw.strip() else None)

    def _control(self, path, body=None):
        method = "GET" if body is None else "POST"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + "/_emulator/" + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()) as response:
            return json.loads(response.read())

    def stop(self):
        self.emulator.stop()

    def start(self):
        self.emulator.start()

    def fault(self, mode, delay=None, path=None, method=None, rate=None, status=None, times=None):
        """Without ``path`` the global fault of every /api/v3/ route (its "500" is the database
        being down: /ping still answers; mode None clears it and every rule); with ``path`` (a
        regex searched in the decoded path) a fault of those routes only."""
        body = {"mode": mode, "delay": delay}
        for key, value in (("path", path), ("method", method), ("rate", rate), ("status", status),
                           ("times", times)):
            if value is not None:
                body[key] = value
        return self._control("fault", body)

    def add_token(self, token):
        """Another JWT secure mode accepts (turns secure mode on)."""
        return self._control("token", {"token": token})["token"]

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


@pytest.fixture
def keeper_emulator(tmp_path):
    """A factory for keepers a test configures itself:

        secure = keeper_emulator(tokens=["jwt-1"])                  # .token = "jwt-1", sent as Bearer
        https = keeper_emulator(tls=tls_certs.good, ca=tls_certs.ca)

    Every emulator is stopped at the end of the test."""
    started = []

    def start(tokens=(), tls=None, ca=None):
        emulator = KeeperEmulatorProcess(data_file=str(tmp_path / ("keeper-data-%d.json" % len(started))),
                                         log_path=str(tmp_path / ("keeper-emulator-%d.log" % len(started))),
                                         tokens=tokens, tls=tls)
        emulator.start()
        started.append(emulator)
        return KeeperHandle(emulator, token=tokens[0] if tokens else None, ca=ca)

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()
