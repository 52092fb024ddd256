# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The snap executor: EdgeX services of the edgexfoundry (or another) snap, target ``<snap>.<app>``.

snapd knows only "active" and "inactive" for a service, so this executor never reports
"failed"; a crashed snap service reads as stopped.
"""

from __future__ import annotations

import re
import time

from .._errors import ExecutorError
from .base import Executor
from .systemd import USAGE_PROPERTIES, parse_show, unit_usage
from .._names import validate_snap_target

# What `snap services` prints on stderr when the snap or the app does not exist
# (snapd daemon/api_apps.go: SnapNotFound, AppNotFound; older snapd: "unknown service").
_ABSENT = re.compile(r'^error: (snap "[^"]*" not found|snap "[^"]*" has no service|unknown service)', re.M)

CURRENT_STATES = {"active": "running", "inactive": "stopped"}
LOG_LINES = 3

# One line of `snap logs` (snapd cmd/snap/cmd_logs.go): "<RFC 3339 UTC time> <snap>.<app>[<pid>]: <message>".
_LOG_LINE = re.compile(r"^(?P<time>\S+) (?P<app>[^\s\[]+)\[(?P<pid>\d+)\]: (?P<message>.*)$")


def parse_logs(text):
    """Lines of ``snap logs`` -> [{time, app, pid, message}]; lines of another shape are skipped."""
    entries = []
    for line in text.splitlines():
        found = _LOG_LINE.match(line)
        if found:
            entries.append({"time": found.group("time"), "app": found.group("app"), "pid": int(found.group("pid")),
                            "message": found.group("message")})
    return entries


def parse_services(text):
    """Rows of ``snap services`` (Service, Startup, Current, Notes) -> {service: row dict}."""
    rows = {}
    lines = text.splitlines()
    for line in lines[1:] if lines and lines[0].split()[:1] == ["Service"] else lines:
        fields = line.split()
        if len(fields) >= 3:
            rows[fields[0]] = {"startup": fields[1], "current": fields[2],
                               "notes": " ".join(fields[3:]) or "-"}
    return rows


class SnapExecutor(Executor):
    name = "snap"

    def normalize_target(self, target):
        validate_snap_target(target)
        return target

    def details(self, target):
        validate_snap_target(target)
        result = self.run(["snap", "services", target], "read the state of", target)
        row = None
        if result.rc == 0:
            row = parse_services(result.stdout).get(target)
        elif not _ABSENT.search(result.stderr):
            raise self.error("read the state of", target, result.stderr.strip() or "exit code %d" % result.rc)
        if row is None:
            return {"state": "absent", "target": target, "raw": None, "startup": None,
                    "notes": None, "started_at": None, "pid": None, "exit_code": None}
        if row["current"] not in CURRENT_STATES:
            # "-": a user daemon asked about as root; snapd has no per-user state to give.
            raise self.error("read the state of", target, "snap reports Current=%r" % row["current"])
        return {"state": CURRENT_STATES[row["current"]], "target": target, "raw": row["current"],
                "startup": row["startup"], "notes": row["notes"], "started_at": None, "pid": None,
                "exit_code": None}

    def failure_text(self, target):
        """The app's state and the last lines it logged (``snap logs``); None when snap cannot tell."""
        validate_snap_target(target)
        try:
            state = self.details(target)
            logged = self.runner.run(["snap", "logs", "-n=%d" % LOG_LINES, target], timeout=10)
        except ExecutorError:  # best effort: the caller already has an error to report
            return None
        text = "%s (%s)" % (state["raw"] or "absent", state["startup"] or "not installed")
        messages = [e["message"] for e in parse_logs(logged.stdout)] if logged.rc == 0 else []
        if messages:
            text += "; last logged: " + " | ".join(messages)
        return text

    def start(self, target):
        validate_snap_target(target)
        self.run_checked(["snap", "start", target], "start", target)

    def stop(self, target, timeout=None):
        # snap stop has no timeout flag: the app's stop-timeout in snap.yaml applies.
        validate_snap_target(target)
        self.run_checked(["snap", "stop", target], "stop", target, timeout=self.command_timeout(timeout))

    def restart(self, target, timeout=None):
        validate_snap_target(target)
        self.run_checked(["snap", "restart", target], "restart", target, timeout=self.command_timeout(timeout))

    # -- resource use (edgex_metrics) ------------------------------------------------------
    def stats(self, target):
        """One reading of a snap app's resource use: snapd runs it as the systemd unit
        snap.<snap>.<app>.service, whose ``systemctl show`` properties tell (see ``unit_usage``)."""
        validate_snap_target(target)
        state = self.details(target)["state"]
        if state == "absent":
            return dict(unit_usage({}, None), state=state, target=target)
        unit = "snap.%s.service" % target
        argv = ["systemctl", "show", unit, "--property=" + ",".join(USAGE_PROPERTIES), "--no-pager"]
        props = parse_show(self.run_checked(argv, "read the resource use of", target).stdout)
        return dict(unit_usage(props, time.monotonic_ns()), state=state, target=target)
