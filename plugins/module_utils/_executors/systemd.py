# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The systemd executor: EdgeX services installed as units (``edgex-core-data.service``).

State comes from ``systemctl show``, which exits 0 even for a unit that does not exist
(``LoadState=not-found``), so the properties decide, not the exit code.

What a real systemd (252, PID 1 of the test-bed's systemd gateway) showed, and this executor
therefore does:
- a unit that crashed until its start limit (5 starts in 10 s) refuses every further start,
  a manual one too ("Start request repeated too quickly"), until ``systemctl reset-failed``:
  a start or restart of a failed unit that systemctl refuses is retried once after
  ``reset-failed`` (what an operator does; the collection's remediation keeps its own limits);
- ``systemctl start`` of a ``Type=simple`` unit returns before the service can fail, and
  systemctl's own message ("Job for ... failed because the control process exited with error
  code") says nothing about why: ``failure_text`` gives the unit's own words (Result, exit
  status, restarts, the last lines its processes logged);
- a job can be canceled by another one: restarting a unit restarts what ``Requires=`` it, and
  that replaces a stop of a dependent queued at the same moment ("Job for ... canceled."):
  such a command is run again (at most twice), after which systemd has settled;
- ``systemctl --user`` finds the user's manager through ``XDG_RUNTIME_DIR``, which a
  ``become``/``docker exec -u`` session does not set ("Failed to connect to bus: No medium
  found"): it is set to ``/run/user/<uid>`` when missing, as ansible.builtin.systemd does.
"""

from __future__ import annotations

import os
import time

from .._errors import ExecutorError
from .base import CommandRunner, Executor
from .._names import validate_systemd_unit

SHOW_PROPERTIES = ("ActiveState", "SubState", "LoadState", "MainPID", "ExecMainStartTimestamp", "Result",
                   "NRestarts", "ExecMainCode", "ExecMainStatus")
# ExecMainCode is a waitid() si_code: the main process exited (status = exit code) or was killed (status = signal).
_EXITED, _KILLED, _DUMPED = "1", "2", "3"
LOG_LINES = 3
CANCELED_RETRIES = 2

# ActiveState -> executor state. "activating" includes SubState=auto-restart (waiting to
# restart after a crash); like a restarting container it counts as running, and Result
# tells why. "deactivating" is on its way down; "maintenance" (systemd 252+) is a stopped
# unit whose runtime directories are being cleaned.
ACTIVE_STATES = {
    "active": "running",
    "reloading": "running",
    "activating": "running",
    "refreshing": "running",
    "deactivating": "stopped",
    "inactive": "stopped",
    "maintenance": "stopped",
    "failed": "failed",
}

# A unit file systemd could not parse exists but cannot run.
BROKEN_LOAD_STATES = frozenset(["error", "bad-setting"])

SCOPES = ("system", "user")


def parse_show(text):
    """``Key=Value`` lines of ``systemctl show`` -> dict (values may themselves contain '=')."""
    properties = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            properties[key.strip()] = value.strip()
    return properties


def user_environment(environ=None, euid=None):
    """The environment ``systemctl --user`` needs: XDG_RUNTIME_DIR of the effective user when unset."""
    environ = dict(os.environ if environ is None else environ)
    if not environ.get("XDG_RUNTIME_DIR"):
        environ["XDG_RUNTIME_DIR"] = "/run/user/%d" % (os.geteuid() if euid is None else euid)
    return environ


def _int_or_none(value):
    return int(value) if value is not None and value.isdigit() else None


def describe_unit(props):
    """The unit's own account of itself, from ``systemctl show`` properties, for people."""
    words = ["%s/%s" % (props.get("ActiveState", "?"), props.get("SubState", "?"))]
    result = props.get("Result")
    if result and result != "success":
        words.append("result %s" % result)
    code, status = props.get("ExecMainCode"), props.get("ExecMainStatus")
    if code == _EXITED and status not in (None, "", "0"):
        words.append("main process exited with status %s" % status)
    elif code in (_KILLED, _DUMPED) and status:
        words.append("main process killed by signal %s" % status)
    restarts = _int_or_none(props.get("NRestarts"))
    if restarts:
        words.append("restarted %d time(s) by systemd" % restarts)
    return ", ".join(words)


class SystemdExecutor(Executor):
    name = "systemd"

    def __init__(self, runner=None, scope="system"):
        if scope not in SCOPES:
            raise ExecutorError("systemd executor: scope must be one of %s, got %r" % (", ".join(SCOPES), scope))
        if runner is None and scope == "user":
            runner = CommandRunner(environ=user_environment())
        super().__init__(runner)
        self.scope = scope

    def normalize_target(self, target):
        return validate_systemd_unit(target)

    def _systemctl(self, *args):
        return ["systemctl"] + (["--user"] if self.scope == "user" else []) + list(args)

    def run_checked(self, argv, action, target, timeout=None):
        try:
            return super().run_checked(argv, action, target, timeout=timeout)
        except ExecutorError as exc:
            if self.scope == "user" and "Failed to connect to bus" in str(exc):
                raise ExecutorError("%s (scope user talks to the manager of the user the module runs as: "
                                    "become that user, and keep the manager running with "
                                    "'loginctl enable-linger USER')" % exc) from None
            raise

    def _show(self, unit):
        argv = self._systemctl("show", unit, "--property=" + ",".join(SHOW_PROPERTIES), "--no-pager")
        return parse_show(self.run_checked(argv, "read the state of", unit).stdout)

    def details(self, target):
        unit = validate_systemd_unit(target)
        props = self._show(unit)
        load_state = props.get("LoadState")
        active_state = props.get("ActiveState")
        if load_state is None or active_state is None:
            raise self.error("read the state of", unit, "systemctl show gave no LoadState/ActiveState")
        if load_state == "not-found":
            state = "absent"
        elif load_state in BROKEN_LOAD_STATES:
            state = "failed"
        elif active_state in ACTIVE_STATES:
            state = ACTIVE_STATES[active_state]
        else:
            raise self.error("read the state of", unit, "unknown ActiveState %r" % active_state)
        main_pid = props.get("MainPID", "")
        return {
            "state": state,
            "target": unit,
            "raw": "%s/%s" % (active_state, props.get("SubState", "")),
            "load_state": load_state,
            "result": props.get("Result"),
            # systemd prints local time with a zone ("Mon 2025-03-10 08:01:02 UTC"); kept as given.
            "started_at": props.get("ExecMainStartTimestamp") or None,
            "pid": int(main_pid) if main_pid.isdigit() and main_pid != "0" else None,
            "exit_code": _int_or_none(props.get("ExecMainStatus")) if props.get("ExecMainCode") == _EXITED else None,
            # Automatic restarts since the last start systemd was asked for (reset by a manual start).
            "restarts": _int_or_none(props.get("NRestarts")),
            "status_text": describe_unit(props),
        }

    def failure_text(self, target):
        """What the unit says about itself: its state, result, exit status and restarts, and the last
        lines its own processes logged. Best effort: None when even that cannot be read."""
        unit = validate_systemd_unit(target)
        try:
            text = describe_unit(self._show(unit))
        except ExecutorError:
            return None
        if self.scope == "system":
            # Only the service's own lines (_SYSTEMD_UNIT), not systemd's lines about it.
            try:
                logged = self.runner.run(["journalctl", "_SYSTEMD_UNIT=%s" % unit, "-n", str(LOG_LINES), "-o", "cat",
                                          "--no-pager"], timeout=10)
            except ExecutorError:
                logged = None
            lines = [line.strip() for line in (logged.stdout if logged and logged.rc == 0 else "").splitlines()]
            if any(lines):
                text += "; last logged: " + " | ".join(line for line in lines if line)
        return text

    def _run_settled(self, argv, verb, unit, timeout):
        """Run a systemctl job; one that another job canceled is run again, at most CANCELED_RETRIES times."""
        result = self.run(argv, verb, unit, timeout=timeout)
        for _retry in range(CANCELED_RETRIES):
            if result.rc == 0 or not result.stderr.rstrip().endswith(" canceled."):
                break
            result = self.run(argv, verb, unit, timeout=timeout)
        return result

    def _act(self, verb, unit, timeout=None):
        """systemctl start|stop|restart; a failed unit past its start limit is reset once and started again."""
        argv = self._systemctl(verb, unit)
        result = self._run_settled(argv, verb, unit, timeout)
        if result.rc != 0 and verb != "stop" and self.details(unit)["state"] == "failed":
            self.run(self._systemctl("reset-failed", unit), verb, unit)
            result = self._run_settled(argv, verb, unit, timeout)
        if result.rc != 0:
            cause = (result.stderr or result.stdout).strip() or "exit code %d" % result.rc
            unit_says = self.failure_text(unit)
            raise self.error(verb, unit, cause + ("\nunit: %s" % unit_says if unit_says else ""))

    def start(self, target):
        self._act("start", validate_systemd_unit(target))

    def stop(self, target, timeout=None):
        # systemctl has no per-call stop timeout: the unit's TimeoutStopSec decides when systemd
        # kills; ``timeout`` only extends how long we wait for systemctl to return.
        self._act("stop", validate_systemd_unit(target), timeout=self.command_timeout(timeout))

    def restart(self, target, timeout=None):
        self._act("restart", validate_systemd_unit(target), timeout=self.command_timeout(timeout))

    # -- resource use (edgex_metrics) ------------------------------------------------------
    def stats(self, target):
        """One reading of a unit's resource use from ``systemctl show`` (see ``unit_usage``)."""
        unit = validate_systemd_unit(target)
        state = self.details(unit)["state"]
        argv = self._systemctl("show", unit, "--property=" + ",".join(USAGE_PROPERTIES), "--no-pager")
        props = parse_show(self.run_checked(argv, "read the resource use of", unit).stdout)
        return dict(unit_usage(props, time.monotonic_ns()), state=state, target=unit)


# What a unit's resource use is read from. MemoryMax is cgroup v2's limit, MemoryLimit v1's.
USAGE_PROPERTIES = ("CPUUsageNSec", "MemoryCurrent", "MemoryMax", "MemoryLimit", "NRestarts",
                    "ActiveEnterTimestamp", "ActiveEnterTimestampMonotonic", "ActiveState")
# systemd prints an unset counter as "[not set]" (accounting off) or, older ones, as UINT64_MAX.
UNSET = 2 ** 64 - 1


def systemd_number(value):
    """A counter or limit of ``systemctl show`` as an int; None when unset, off or "infinity"."""
    if value is None or not value.isdigit():
        return None
    number = int(value)
    return None if number == UNSET else number


def unit_usage(props, clock_ns, monotonic_now=None):
    """One reading from ``systemctl show`` properties: cpu_ns (CPUUsageNSec, needs CPUAccounting)
    against cpu_clock_ns (the monotonic clock when it was read, so that 100 x delta cpu_ns / delta
    cpu_clock_ns is the percentage of one CPU), memory_used (MemoryCurrent) and memory_limit
    (MemoryMax, else MemoryLimit; None without a limit), restarts (NRestarts: automatic restarts)
    and uptime since the unit became active (its monotonic timestamp against this host's)."""
    cpu_ns = systemd_number(props.get("CPUUsageNSec"))
    active = props.get("ActiveState") in ("active", "reloading", "refreshing")
    entered = systemd_number(props.get("ActiveEnterTimestampMonotonic"))
    now = time.monotonic() if monotonic_now is None else monotonic_now
    return {
        "cpu_ns": cpu_ns if active else None,
        "cpu_clock_ns": clock_ns if active and cpu_ns is not None else None,
        "memory_used": systemd_number(props.get("MemoryCurrent")) if active else None,
        "memory_limit": systemd_number(props.get("MemoryMax")) or systemd_number(props.get("MemoryLimit")),
        "restarts": systemd_number(props.get("NRestarts")),
        "uptime": round(max(0.0, now - entered / 1e6), 1) if active and entered else None,
        "started_at": (props.get("ActiveEnterTimestamp") or None) if active else None,
    }
