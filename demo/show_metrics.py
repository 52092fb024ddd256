#!/usr/bin/env python3
"""Print edgex_metrics results as a table: reads the ansible json callback's output on stdin
(ANSIBLE_STDOUT_CALLBACK=ansible.posix.json, an ad-hoc run or a play of edgex_metrics tasks)."""

import json
import sys


def size(value):
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return "%.1f %s" % (value, unit) if unit != "B" else "%d B" % value
        value /= 1024.0
    return "-"


def duration(seconds):
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return "%dh%02dm%02ds" % (seconds // 3600, seconds // 60 % 60, seconds % 60) if seconds >= 3600 else \
        "%dm%02ds" % (seconds // 60, seconds % 60)


def main():
    answer = json.load(sys.stdin)
    print("%-6s %-22s %-9s %7s %11s %11s %8s %10s  %s" % ("NODE", "SERVICE", "STATE", "CPU %", "MEMORY", "LIMIT",
                                                         "RESTARTS", "UPTIME", "REASON"))
    for play in answer.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("failed"):
                    print("%s: %s" % (host, result.get("msg")))
                for s in result.get("services", []):
                    cpu = "-" if s["cpu_percent"] is None else "%.2f" % s["cpu_percent"]
                    restarts = "-" if s["restarts"] is None else str(s["restarts"])
                    print("%-6s %-22s %-9s %7s %11s %11s %8s %10s  %s" % (
                        s["node"], s["name"], s["state"], cpu, size(s["memory_used"]), size(s["memory_limit"]),
                        restarts, duration(s["uptime"]), s["reason"] or ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
