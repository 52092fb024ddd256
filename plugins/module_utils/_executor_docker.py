# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The docker executor: EdgeX services as plain containers, target = container name.

Talks to the engine through the Docker SDK for Python (``docker``), which honours
DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH like the docker CLI does.
"""

from __future__ import annotations

import os
import threading

from ._common import ExecutorError
from ._executor import Executor, container_state, validate_container_name

try:
    import docker
    from docker.errors import APIError, DockerException, NotFound
    from requests.exceptions import RequestException

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = str(exc)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class DockerExecutor(Executor):
    name = "docker"

    def __init__(self, runner=None, docker_host=None, stop_timeout=10, api_timeout=60):
        super().__init__(runner)
        if not HAS_DOCKER:
            raise ExecutorError("docker executor needs the Docker SDK for Python on this host "
                                "(pip install docker): %s" % DOCKER_IMPORT_ERROR)
        self.docker_host = docker_host
        self.stop_timeout = stop_timeout
        self.api_timeout = api_timeout
        self._client = None
        self._client_lock = threading.Lock()  # services of a level are acted on concurrently

    @property
    def daemon_address(self):
        return self.docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET

    def _unreachable(self, exc):
        return ExecutorError("docker executor: Docker daemon at %s is not answering: %s" % (self.daemon_address, exc))

    @property
    def client(self):
        """Connected on first use: version negotiation is the first call that needs the daemon."""
        with self._client_lock:
            if self._client is None:
                environment = dict(os.environ)
                if self.docker_host:
                    environment["DOCKER_HOST"] = self.docker_host
                try:
                    self._client = docker.from_env(environment=environment, timeout=self.api_timeout)
                except (DockerException, RequestException) as exc:
                    raise self._unreachable(exc) from None
        return self._client

    def normalize_target(self, target):
        return validate_container_name(target)

    def _call(self, action, target, function, *args, **kwargs):
        """Run one SDK call; NotFound propagates, everything else becomes an ExecutorError."""
        try:
            return function(*args, **kwargs)
        except NotFound:
            raise
        except APIError as exc:
            raise self.error(action, target, exc.explanation or exc) from None
        except (DockerException, RequestException) as exc:
            raise self._unreachable(exc) from None

    def _container(self, action, target):
        validate_container_name(target)
        try:
            return self._call(action, target, self.client.containers.get, target)
        except NotFound:
            raise self.error(action, target, "no such container") from None

    def details(self, target):
        validate_container_name(target)
        try:
            attrs = self._call("read the state of", target, self.client.api.inspect_container, target)
        except NotFound:
            return {"state": "absent", "target": target, "raw": None, "started_at": None, "pid": None,
                    "exit_code": None}
        st = attrs.get("State", {})
        status = st.get("Status")
        # Older engines may omit Status; Running is the one field every engine version sets.
        if status is None:
            status = "running" if st.get("Running") else "exited"
        return {
            "state": container_state(status, st.get("ExitCode"), st.get("OOMKilled"), st.get("Error")),
            "target": target,
            "raw": status,
            "id": attrs.get("Id", "")[:12],
            "started_at": st.get("StartedAt"),
            "finished_at": st.get("FinishedAt"),
            "pid": st.get("Pid") or None,
            "exit_code": st.get("ExitCode"),
            "restart_count": attrs.get("RestartCount"),
            "health": st.get("Health", {}).get("Status"),
        }

    def start(self, target):
        container = self._container("start", target)
        # `docker start` refuses a paused container; unpausing is what "start" means there.
        if container.status == "paused":
            self._call("start", target, container.unpause)
        else:
            self._call("start", target, container.start)

    def stop(self, target, timeout=None):
        container = self._container("stop", target)
        self._call("stop", target, container.stop, timeout=self._timeout(timeout))

    def restart(self, target, timeout=None):
        container = self._container("restart", target)
        self._call("restart", target, container.restart, timeout=self._timeout(timeout))

    def _timeout(self, timeout):
        return int(self.stop_timeout if timeout is None else timeout)
