# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The systemd executor: EdgeX services installed as units (``edgex-core-data.service``).

State comes from ``systemctl show``, which exits 0 even for a unit that does not exist
(``LoadState=not-found``), so the properties decide, not the exit code.
"""

from __future__ import annotations

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
