# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""How a service is started and stopped on a gateway: the executor interface and the command
runner the CLI-based executors share.

An executor acts on one *target* (docker: container name; compose: ``<project>/<service>``;
systemd: unit; snap: ``<snap>.<app>``). Every target is validated (``_names``) before any
command runs or any API is called, so a hostile name never reaches an argv list.
"""

from __future__ import annotations

import os
import subprocess
from collections import namedtuple

from .._errors import ExecutorError


# What every executor reports. "absent": the target does not exist on this host;
# "failed": it exists but ended badly (systemd failed, container exited non-zero).
STATES = ("running", "stopped", "absent", "failed")


# Exit codes of a container stopped on purpose: 143 = died of the SIGTERM `docker stop` sends,
# 137 = SIGKILLed after the stop timeout. Anything else non-zero is a failure.
STOP_EXIT_CODES = frozenset([0, 137, 143])
CommandResult = namedtuple("CommandResult", "argv rc stdout stderr")


class ToolNotFoundError(ExecutorError):
    """The command-line tool an executor needs is not installed (not on PATH)."""

    def __init__(self, tool):
        super().__init__("%s not found on this host" % tool)
        self.tool = tool


class CommandRunner(object):
    """Runs argv lists (never a shell string) with a timeout; tests replace it with a fake.

    ``run()`` returns a CommandResult whatever the exit code: the executor decides what a
    non-zero rc means (``snap services`` exits 1 for an unknown snap, which is "absent").
    """

    def __init__(self, timeout=120.0, environ=None):
        self.timeout = timeout
        self.environ = environ

    def _environment(self):
        # snap translates its table ("Service", "active") and systemctl its errors: parse the C locale.
        return dict(os.environ if self.environ is None else self.environ, LC_ALL="C", LANG="C")

    def run(self, argv, timeout=None):
        if not isinstance(argv, (list, tuple)) or not all(isinstance(arg, str) for arg in argv):
            raise TypeError("argv must be a list of strings, got %r" % (argv,))
        timeout = self.timeout if timeout is None else timeout
        try:
            completed = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                       timeout=timeout, env=self._environment(), check=False)
        except FileNotFoundError:
            raise ToolNotFoundError(argv[0]) from None
        except subprocess.TimeoutExpired:
            raise ExecutorError("%s did not finish within %.0fs" % (" ".join(argv), timeout)) from None
        except OSError as exc:
            raise ExecutorError("cannot run %s: %s" % (argv[0], exc)) from None
        return CommandResult(list(argv), completed.returncode, completed.stdout, completed.stderr)


class Executor(object):
    """One way of running services. Subclasses set ``name`` and implement ``normalize_target``,
    ``details``, ``start``, ``stop`` and ``restart``.

    ``details(target)`` returns at least ``state`` (one of STATES), ``target`` (normalized),
    ``raw`` (the tool's own status words), ``started_at``, ``pid`` and ``exit_code`` (None when
    the tool does not say). start/stop/restart raise ExecutorError naming executor, target and
    cause; ``timeout`` is how long a stop may take before the service is killed.
    """

    name = None

    def __init__(self, runner=None):
        self.runner = runner if runner is not None else CommandRunner()

    def normalize_target(self, target):
        raise NotImplementedError

    def details(self, target):
        raise NotImplementedError

    def state(self, target):
        return self.details(target)["state"]

    def failure_text(self, target):
        """Why the target is not running, in the words of the tool that runs it (systemd: result,
        exit status, restarts, last log lines); None when the executor has nothing to add."""
        return None

    def start(self, target):
        raise NotImplementedError

    def stop(self, target, timeout=None):
        raise NotImplementedError

    def restart(self, target, timeout=None):
        raise NotImplementedError

    def error(self, action, target, cause):
        return ExecutorError("%s executor cannot %s %s: %s" % (self.name, action, target, cause))

    def run(self, argv, action, target, timeout=None):
        """Run argv through the runner; a missing tool or a time-out becomes an error naming the target."""
        try:
            return self.runner.run(argv, timeout=timeout)
        except ExecutorError as exc:
            raise self.error(action, target, exc) from None

    def run_checked(self, argv, action, target, timeout=None):
        result = self.run(argv, action, target, timeout=timeout)
        if result.rc != 0:
            cause = (result.stderr or result.stdout).strip() or "exit code %d" % result.rc
            raise self.error(action, target, cause)
        return result

    def command_timeout(self, stop_timeout):
        """How long to wait for a stop/restart command: the runner's limit plus the stop grace time."""
        if stop_timeout is None:
            return None
        return getattr(self.runner, "timeout", 120.0) + stop_timeout


def container_state(status, exit_code=None, oom_killed=False, error=None):
    """Map a container's State.Status (docker inspect, compose ps) to one of STATES.

    A restarting container counts as running: Docker is bringing it back by itself.
    A paused container is not serving, so it is "stopped".
    """
    if status in ("running", "restarting"):
        return "running"
    if status == "dead" or oom_killed or error:
        return "failed"
    if status == "exited" and exit_code not in STOP_EXIT_CODES and exit_code is not None:
        return "failed"
    return "stopped"
