# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The docker executor: EdgeX services as plain containers, target = container name.

Starts, stops and restarts through the Docker SDK for Python (``docker``), which honours
DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH like the docker CLI does. Container
state is read with ``_net.engine_socket`` when the engine is a local unix socket, so a run that
finds nothing to change never imports the SDK; over tcp:// or ssh:// the SDK reads it too.

Every engine call has one total deadline, ``api_timeout`` (a stop or restart: that plus the
stop timeout the engine waits before it kills): an engine that accepts and never answers costs
a call that long, not the SDK's per-read timeout once per read.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import threading
import time

from .._errors import ExecutorError
from .._net.engine_socket import EngineSocket, EngineSocketError, local_socket_path
from .base import container_state, Executor
from .._names import validate_container_name

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
DEFAULT_API_TIMEOUT = 60.0


def _sdk():
    """(docker, NotFound, APIError, the SDK's and requests' base exceptions), imported on first use."""
    try:
        import docker
        from docker.errors import APIError, DockerException, NotFound
        from requests.exceptions import RequestException
    except ImportError as exc:
        raise _sdk_missing(exc) from None
    return docker, NotFound, APIError, (DockerException, RequestException)


def _sdk_missing(cause):
    return ExecutorError("docker executor needs the Docker SDK for Python on this host (pip install docker): %s"
                         % cause)


class NoSuchContainer(ExecutorError):
    pass


class DockerExecutor(Executor):
    name = "docker"

    def __init__(self, runner=None, docker_host=None, stop_timeout=10, api_timeout=DEFAULT_API_TIMEOUT):
        super().__init__(runner)
        # Checked now, imported when first needed: a missing SDK fails every run, not only those that act.
        if importlib.util.find_spec("docker") is None:
            raise _sdk_missing("No module named 'docker'")
        self.docker_host = docker_host
        self.stop_timeout = stop_timeout
        self.api_timeout = api_timeout
        self._client = None
        self._client_lock = threading.Lock()  # services of a level are acted on concurrently
        socket_path = local_socket_path(self.daemon_address)
        self._socket = EngineSocket(socket_path, timeout=api_timeout) if socket_path else None

    @property
    def daemon_address(self):
        return self.docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET

    def _unreachable(self, exc):
        return ExecutorError("docker executor: Docker daemon at %s is not answering: %s" % (self.daemon_address, exc))

    @property
    def client(self):
        """Connected on first use: version negotiation is the first call that needs the daemon."""
        docker, _not_found, _api_error, unreachable = _sdk()
        with self._client_lock:
            if self._client is None:
                environment = dict(os.environ)
                if self.docker_host:
                    environment["DOCKER_HOST"] = self.docker_host
                try:
                    # from_env asks the engine for its API version: one call, one deadline
                    self._client = self._within(self.api_timeout, "its API version", docker.from_env,
                                                environment=environment, timeout=self.api_timeout)
                except unreachable as exc:
                    raise self._unreachable(exc) from None
        return self._client

    def _within(self, seconds, what, function, *args, **kwargs):
        """``function(*args, **kwargs)``, waited for ``seconds`` at most. The SDK's own timeout
        bounds each socket read, not the call, so the call runs in a daemon thread that is left
        behind at the deadline; that thread ends at the SDK's timeout (the same length) at most."""
        outcome = {}

        def call():
            try:
                outcome["value"] = function(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=call, name="edgex-docker-call", daemon=True)
        worker.start()
        worker.join(seconds)
        if worker.is_alive():
            raise ExecutorError("docker executor: Docker daemon at %s did not answer within %ss (%s)"
                                % (self.daemon_address, seconds, what))
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    def normalize_target(self, target):
        return validate_container_name(target)

    def _call(self, action, target, function, *args, **kwargs):
        """Run one SDK call on ``target`` within ``api_timeout`` (plus the engine's own stop
        ``timeout``, when given); no such container and every other failure become an ExecutorError."""
        _docker, not_found, api_error, unreachable = _sdk()
        seconds = self.api_timeout + kwargs.get("timeout", 0)
        try:
            return self._within(seconds, "%s %s" % (action, target), function, *args, **kwargs)
        except not_found:
            raise NoSuchContainer("%s executor cannot %s %s: no such container" % (self.name, action, target)) from None
        except api_error as exc:
            raise self.error(action, target, exc.explanation or exc) from None
        except unreachable as exc:
            raise self._unreachable(exc) from None

    def _inspect(self, target):
        """The engine's inspect of ``target``, None when there is no such container."""
        validate_container_name(target)
        if self._socket is None:
            try:
                return self._call("read the state of", target, self.client.api.inspect_container, target)
            except NoSuchContainer:
                return None
        return read_engine_inspect(self._socket, target, self._unreachable, self.error)

    def details(self, target):
        attrs = self._inspect(target)
        if attrs is None:
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

    def published_port(self, target, container_port, protocol="tcp"):
        """(host IP, host port) the engine published ``container_port`` of ``target`` on right now, None
        when it publishes none (not running, or not published). For a host port Docker chose itself
        (compose ``ports: ["59900"]``): it changes with every start, so it is read, never guessed."""
        attrs = self._inspect(target)
        ports = ((attrs or {}).get("NetworkSettings") or {}).get("Ports") or {}
        bindings = [binding for binding in ports.get("%d/%s" % (container_port, protocol)) or ()
                    if str(binding.get("HostPort", "")).isdigit()]
        # Docker lists an IPv4 and an IPv6 binding of one port: the IPv4 one first.
        bindings.sort(key=lambda binding: ":" in (binding.get("HostIp") or ""))
        return (bindings[0].get("HostIp") or "", int(bindings[0]["HostPort"])) if bindings else None

    def start(self, target):
        # `docker start` refuses a paused container; unpausing is what "start" means there.
        paused = self.details(target)["raw"] == "paused"
        api = self.client.api
        self._call("start", target, api.unpause if paused else api.start, target)

    def stop(self, target, timeout=None):
        validate_container_name(target)
        self._call("stop", target, self.client.api.stop, target, timeout=self._timeout(timeout))

    def restart(self, target, timeout=None):
        validate_container_name(target)
        self._call("restart", target, self.client.api.restart, target, timeout=self._timeout(timeout))

    def _timeout(self, timeout):
        return int(self.stop_timeout if timeout is None else timeout)

    # -- resource use (edgex_metrics) ------------------------------------------------------
    def stats(self, target):
        """One reading of ``target``'s resource use (see ``container_usage``); a container that
        does not run has its state and restart count only."""
        attrs = self._inspect(target)
        if attrs is None:
            return absent_usage(target)
        engine_stats = self._engine_stats(target) if attrs.get("State", {}).get("Running") else None
        return container_usage(target, attrs, engine_stats)

    def _engine_stats(self, target):
        """The engine's one-shot stats of a running container (no second sample taken by the engine)."""
        if self._socket is None:
            return self._call("read the resource use of", target, self.client.api.stats, target, stream=False,
                              one_shot=True)
        return read_engine_stats(self._socket, target, self._unreachable, self.error)


STATS_URL = "/containers/%s/stats?stream=false&one-shot=true"


def read_engine_stats(engine, name, unreachable, error):
    """GET /containers/<name>/stats one-shot over ``engine`` (an EngineSocket): the answer as a dict.
    ``unreachable(exc)`` and ``error(action, target, cause)`` make the ExecutorErrors."""
    status, answer = _engine_answer(engine, STATS_URL % name, unreachable)
    if status == 200 and answer is not None:
        return answer
    raise error("read the resource use of", name, (answer or {}).get("message") or "the engine answered %d" % status)


def read_engine_inspect(engine, name, unreachable, error):
    """GET /containers/<name>/json over ``engine``: the inspect as a dict, None when there is no such container."""
    status, answer = _engine_answer(engine, "/containers/%s/json" % name, unreachable)
    if status == 404:
        return None
    if status == 200 and answer is not None:
        return answer
    raise error("read the state of", name, (answer or {}).get("message") or "the engine answered %d with %s" % (
        status, "something that is not a container inspect" if status == 200 else "no message"))


def _engine_answer(engine, path, unreachable):
    """(status, the JSON object answered or None) of GET ``path`` over ``engine``."""
    try:
        status, body = engine.get(path)
    except EngineSocketError as exc:
        raise unreachable(exc) from None
    try:
        answer = json.loads(body.decode("utf-8"))
    except ValueError:
        return status, None
    return status, answer if isinstance(answer, dict) else None


def engine_time(text):
    """Seconds since the epoch of an engine timestamp (RFC 3339 with nanoseconds); None for Go's zero time."""
    found = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text or "")
    if not found or found.group(1).startswith("0001-"):
        return None
    zone = "+00:00" if found.group(3) == "Z" else found.group(3)
    moment = datetime.datetime.fromisoformat(found.group(1) + zone)
    return moment.timestamp() + float("0." + (found.group(2) or "0"))


def absent_usage(target):
    return {"state": "absent", "target": target, "cpu_ns": None, "cpu_clock_ns": None, "memory_used": None,
            "memory_limit": None, "restarts": None, "uptime": None, "started_at": None}


def container_usage(target, attrs, engine_stats, now=None):
    """One reading from a container's inspect and, when it runs, its one-shot stats:

    state (as ``details`` says it), restarts (RestartCount: restarts by its restart policy),
    started_at and uptime (seconds), cpu_ns (the container's CPU time) and cpu_clock_ns (the host's
    CPU time per CPU, so that 100 x delta cpu_ns / delta cpu_clock_ns is the percentage of one CPU,
    as ``docker stats`` shows it), memory_used (usage without the inactive page cache, as
    ``docker stats``) and memory_limit (the host's memory when the container has no limit)."""
    st = attrs.get("State") or {}
    status = st.get("Status") or ("running" if st.get("Running") else "exited")
    state = container_state(status, st.get("ExitCode"), st.get("OOMKilled"), st.get("Error"))
    started = engine_time(st.get("StartedAt"))
    usage = absent_usage(target)
    usage.update(state=state, restarts=attrs.get("RestartCount"), started_at=st.get("StartedAt") or None)
    if state != "running" or not engine_stats:
        return usage
    usage["uptime"] = round(max(0.0, (time.time() if now is None else now) - started), 1) if started else None
    cpu = engine_stats.get("cpu_stats") or {}
    total = (cpu.get("cpu_usage") or {}).get("total_usage")
    system = cpu.get("system_cpu_usage")
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ()) or 1
    if isinstance(total, int) and isinstance(system, int) and system > 0:
        usage.update(cpu_ns=total, cpu_clock_ns=system / cpus)
    memory = engine_stats.get("memory_stats") or {}
    used = memory.get("usage")
    if isinstance(used, int):
        inner = memory.get("stats") or {}
        # cgroup v1 names it total_inactive_file, v2 inactive_file (docker CLI's calculation)
        cache = inner.get("total_inactive_file", inner.get("inactive_file", 0))
        usage["memory_used"] = used - cache if isinstance(cache, int) and cache < used else used
    if isinstance(memory.get("limit"), int):
        usage["memory_limit"] = memory["limit"]
    return usage
