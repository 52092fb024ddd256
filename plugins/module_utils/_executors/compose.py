# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The compose executor: services of a Docker Compose project, target ``<project>/<service>``.

Uses the ``docker compose`` v2 CLI plugin when it answers, else a standalone ``docker-compose``
(v2 or the old Python v1). State comes from ``ps --all --format json``. v1 has no JSON output,
and each of its runs is a Python start-up (0.4 s here, against 20 ms for the docker CLI, and a
control run reads state many times), so for v1 the containers are found the way v1 itself finds
them, by the labels it puts on them (``com.docker.compose.project``/``service``, not one-off
``run`` containers), with ``docker ps``, and ``docker inspect`` tells their state. Reading state
then needs neither the compose file nor the project directory; acting does.
"""

from __future__ import annotations

import json
import os
import re

from .._errors import ExecutorError
from .._net.engine_socket import EngineSocket, local_socket_path
from .base import container_state, Executor, ToolNotFoundError
from .docker import DEFAULT_SOCKET, absent_usage, container_usage, read_engine_inspect, read_engine_stats
from .._names import validate_compose_target

# Worst first: a service with one failed replica is failed even if another runs;
# no container at all is "absent".
_STATE_PRECEDENCE = ("failed", "running", "stopped")


def parse_ps_json(text):
    """Containers from ``compose ps --format json``: a JSON array (compose < 2.21) or one
    object per line (compose >= 2.21, like ``docker ps``)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def v1_project_label(project):
    """The project name compose v1 writes in its labels: lower-cased, only [-_a-z0-9] kept."""
    return re.sub(r"[^-_a-z0-9]", "", project.lower())


def _major_version(text):
    digits = text.strip().lstrip("v").split(".", 1)[0]
    return int(digits) if digits.isdigit() else 0


class ComposeExecutor(Executor):
    name = "compose"

    def __init__(self, runner=None, project_directory=None, files=None):
        super().__init__(runner)
        self.project_directory = project_directory
        self.files = list(files or [])
        self._command = None
        self._json_ps = None

    def normalize_target(self, target):
        validate_compose_target(target)
        return target

    def compose_command(self, target):
        """``docker compose`` or ``docker-compose``, found once; raises when neither is installed."""
        if self._command is None:
            for command in (["docker", "compose"], ["docker-compose"]):
                try:
                    result = self.runner.run(command + ["version", "--short"])
                except ToolNotFoundError:
                    continue
                except ExecutorError as exc:
                    raise self.error("manage", target, exc) from None
                if result.rc == 0:
                    self._command = command
                    self._json_ps = _major_version(result.stdout) >= 2
                    break
            else:
                raise self.error("manage", target,
                                 "neither the docker compose plugin nor docker-compose is installed on this host")
        return list(self._command)

    def _argv(self, project, target, *args):
        argv = self.compose_command(target) + ["-p", project]
        if self.project_directory:
            argv += ["--project-directory", self.project_directory]
        for path in self.files:
            argv += ["-f", path]
        return argv + list(args)

    def details(self, target):
        project, service = validate_compose_target(target)
        self.compose_command(target)
        if self._json_ps:
            containers = self._containers_v2(project, service, target)
        else:
            containers = self._containers_v1(project, service, target)
        states = [c["state"] for c in containers]
        single = containers[0] if len(containers) == 1 else {}
        return {
            "state": next((s for s in _STATE_PRECEDENCE if s in states), "absent"),
            "target": target,
            "raw": [c["status"] for c in containers],
            "containers": containers,
            "started_at": single.get("started_at"),
            "pid": single.get("pid"),
            "exit_code": single.get("exit_code"),
        }

    def _containers_v2(self, project, service, target):
        result = self.run_checked(self._argv(project, target, "ps", "--all", "--format", "json"),
                                  "read the state of", target)
        try:
            listed = [c for c in parse_ps_json(result.stdout) if c.get("Service") == service]
        except (ValueError, AttributeError) as exc:
            raise self.error("read the state of", target, "unexpected compose ps output: %s" % exc) from None
        # compose ps reports neither start time nor PID; `Status` ("Up 2 minutes") is for people.
        return [{"name": c.get("Name"), "status": c.get("State"), "exit_code": c.get("ExitCode"),
                 "health": c.get("Health") or "", "started_at": None, "pid": None,
                 "state": container_state(c.get("State"), c.get("ExitCode"))} for c in listed]

    def _containers_v1(self, project, service, target):
        # A service the file does not define has no containers: "absent", as `ps` of v2 says too.
        result = self.run_checked(["docker", "ps", "--all", "--quiet", "--no-trunc",
                                   "--filter", "label=com.docker.compose.project=%s" % v1_project_label(project),
                                   "--filter", "label=com.docker.compose.service=%s" % service,
                                   "--filter", "label=com.docker.compose.oneoff=False"],
                                  "read the state of", target)
        ids = result.stdout.split()
        if not ids:
            return []
        result = self.run_checked(["docker", "inspect"] + ids, "read the state of", target)
        try:
            inspected = json.loads(result.stdout)
        except ValueError as exc:
            raise self.error("read the state of", target, "unexpected docker inspect output: %s" % exc) from None
        containers = []
        for container in inspected:
            st = container.get("State", {})
            containers.append({
                "name": container.get("Name", "").lstrip("/"), "status": st.get("Status"),
                "exit_code": st.get("ExitCode"), "health": st.get("Health", {}).get("Status", ""),
                "started_at": st.get("StartedAt"), "pid": st.get("Pid") or None,
                "state": container_state(st.get("Status"), st.get("ExitCode"), st.get("OOMKilled"), st.get("Error")),
            })
        return containers

    def start(self, target):
        project, service = validate_compose_target(target)
        self.run_checked(self._argv(project, target, "start", service), "start", target)

    def stop(self, target, timeout=None):
        self._stop_like("stop", target, timeout)

    def restart(self, target, timeout=None):
        self._stop_like("restart", target, timeout)

    def _stop_like(self, action, target, timeout):
        project, service = validate_compose_target(target)
        args = [action] + (["-t", str(int(timeout))] if timeout is not None else []) + [service]
        self.run_checked(self._argv(project, target, *args), action, target, timeout=self.command_timeout(timeout))

    # -- resource use (edgex_metrics) ------------------------------------------------------
    def stats(self, target, api_timeout=60.0):
        """One reading of a compose service's resource use: its containers (from ``details``) read
        from the engine's local socket and added up (CPU, memory, restarts; the shortest uptime)."""
        details = self.details(target)
        if details["state"] == "absent":
            return absent_usage(target)
        address = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        path = local_socket_path(address)
        if path is None:
            raise self.error("read the resource use of", target,
                             "the engine at %s is not a local unix socket (the engine's stats are read there)"
                             % address)
        engine = EngineSocket(path, api_timeout)

        def unreachable(exc):
            return self.error("read the resource use of", target, "Docker daemon at %s: %s" % (address, exc))

        usages = []
        for container in details["containers"]:
            name = container.get("name")
            attrs = read_engine_inspect(engine, name, unreachable, self.error) if name else None
            if attrs is None:
                continue
            running = bool(attrs.get("State", {}).get("Running"))
            engine_stats = read_engine_stats(engine, name, unreachable, self.error) if running else None
            usages.append(container_usage(target, attrs, engine_stats))
        return combine_usage(target, details["state"], usages)


def combine_usage(target, state, usages):
    """The readings of a service's containers as one: sums, the host clock of the first, the shortest uptime."""
    combined = absent_usage(target)
    combined["state"] = state
    if not usages:
        return combined
    for key in ("memory_used", "memory_limit", "restarts"):
        values = [u[key] for u in usages if u[key] is not None]
        combined[key] = sum(values) if values else None
    measured = [u for u in usages if u["cpu_ns"] is not None and u["cpu_clock_ns"] is not None]
    if measured:
        combined.update(cpu_ns=sum(u["cpu_ns"] for u in measured), cpu_clock_ns=measured[0]["cpu_clock_ns"])
    uptimes = [u["uptime"] for u in usages if u["uptime"] is not None]
    combined["uptime"] = min(uptimes) if uptimes else None
    combined["started_at"] = usages[0]["started_at"] if len(usages) == 1 else None
    return combined
