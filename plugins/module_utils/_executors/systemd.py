# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The systemd executor: EdgeX services installed as units (``edgex-core-data.service``).

State comes from ``systemctl show``, which exits 0 even for a unit that does not exist
(``LoadState=not-found``), so the properties decide, not the exit code.
"""

from __future__ import annotations

import time

from .._errors import ExecutorError
from .base import Executor
from .._names import validate_systemd_unit

SHOW_PROPERTIES = ("ActiveState", "SubState", "LoadState", "MainPID", "ExecMainStartTimestamp", "Result")

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


class SystemdExecutor(Executor):
    name = "systemd"

    def __init__(self, runner=None, scope="system"):
        super().__init__(runner)
        if scope not in SCOPES:
            raise ExecutorError("systemd executor: scope must be one of %s, got %r" % (", ".join(SCOPES), scope))
        self.scope = scope

    def normalize_target(self, target):
        return validate_systemd_unit(target)

    def _systemctl(self, *args):
        return ["systemctl"] + (["--user"] if self.scope == "user" else []) + list(args)

    def details(self, target):
        unit = validate_systemd_unit(target)
        argv = self._systemctl("show", unit, "--property=" + ",".join(SHOW_PROPERTIES), "--no-pager")
        props = parse_show(self.run_checked(argv, "read the state of", unit).stdout)
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
            "exit_code": None,
        }

    def start(self, target):
        unit = validate_systemd_unit(target)
        self.run_checked(self._systemctl("start", unit), "start", unit)

    def stop(self, target, timeout=None):
        # systemctl has no per-call stop timeout: the unit's TimeoutStopSec decides when systemd
        # kills; ``timeout`` only extends how long we wait for systemctl to return.
        unit = validate_systemd_unit(target)
        self.run_checked(self._systemctl("stop", unit), "stop", unit, timeout=self.command_timeout(timeout))

    def restart(self, target, timeout=None):
        unit = validate_systemd_unit(target)
        self.run_checked(self._systemctl("restart", unit), "restart", unit, timeout=self.command_timeout(timeout))

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
