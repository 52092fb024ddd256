# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The fleet health report as data: built once, in Python, from edgex_health results.

Runs on the control node only (the ``edgex.sysmgmt.health_report*`` filters call it). The JSON
report (docs/report.schema.json, ``schema_version`` SCHEMA_VERSION) holds one entry per gateway
with its services, the fleet's counts per verdict and per service, what changed since the
previous report, and the summaries of the last runs. The HTML page is templated from ``page()``,
which orders and formats the rows so that the template only lays them out.

Plain data in, plain data out: no Ansible objects here, so everything is unit tested without
Ansible. Registry data is untrusted; it is never interpreted here, and the template escapes it.
"""

from __future__ import annotations

import html
import json
import os
import time

SCHEMA_VERSION = 1
# The verdicts of edgex_health (plugins/module_utils/_gateway/health.py), worst first for reading.
VERDICTS = ("healthy", "degraded", "unhealthy", "unknown")
PROBLEM_ORDER = {"unhealthy": 0, "degraded": 1, "unknown": 2, "healthy": 3}
NO_RESULT = "no health result (the check did not run)"
MODES = ("gateway", "controller", "merged")
GATES = ("never", "unhealthy", "degraded")  # edgex_health's fail_on


class ReportError(Exception):
    """A report that cannot be read or merged; the message names the file and the cause."""


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def counts(services):
    """{verdict: n for every verdict, "total": n}."""
    result = dict.fromkeys(VERDICTS, 0)
    for service in services:
        verdict = service.get("verdict")
        result[verdict if verdict in result else "unknown"] += 1
    result["total"] = len(services)
    return result


# --------------------------------------------------------------------------- one gateway


def host_entry(host, result):
    """The report's entry for one gateway from its edgex_health result (None or {}: it has none).

    A result with ``services`` counts even when the task failed (fail_on); one without is listed
    with its error: unreachable, or the check failed before checking anything."""
    result = result or {}
    services = result.get("services")
    if services is None:
        return {"source": result.get("source"), "manifest_age": result.get("manifest_age"), "summary": {},
                "services": [], "failing": [], "error": str(result.get("msg") or NO_RESULT)}
    rows = [dict(service, host=host) for service in services]
    entry = {"source": result.get("source"), "manifest_age": result.get("manifest_age"),
             "summary": dict(result.get("summary") or counts(rows)), "services": rows,
             "failing": _failing_rows(result.get("failing"), host), "error": None}
    if "metrics" in result:  # edgex_health_metrics: edgex_metrics' readings by service key, beside the verdicts
        by_name = result.get("metrics") or {}
        for row in rows:
            row["metrics"] = by_name.get(row.get("name"))
        entry["metrics_error"] = result.get("metrics_error")
    return entry


def _failing_rows(failing, host):
    """What edgex_health's fail_on matched (its ``failing``), named by inventory host."""
    return [{"host": host, "name": f.get("name"), "verdict": f.get("verdict")} for f in failing or ()]


def entries_from_fleet_result(result, hosts, node_of=None):
    """{host: entry} from one controller-side edgex_health result covering many nodes.

    ``node_of``: {host: registry node} where they differ (default: the host name is the node)."""
    node_of = node_of or {}
    result = result or {}
    services = result.get("services")
    if services is None:
        error = str(result.get("msg") or NO_RESULT)
        return {host: {"source": result.get("source"), "manifest_age": result.get("manifest_age"),
                       "summary": {}, "services": [], "error": error} for host in hosts}
    by_node, failing_by_node = {}, {}
    for service in services:
        by_node.setdefault(service.get("node"), []).append(service)
    for failing in result.get("failing") or ():
        failing_by_node.setdefault(failing.get("node"), []).append(failing)
    entries = {}
    for host in hosts:
        node = node_of.get(host, host)
        rows = [dict(service, host=host) for service in by_node.get(node, [])]
        entries[host] = {"source": result.get("source"), "manifest_age": result.get("manifest_age"),
                         "summary": counts(rows), "services": rows,
                         "failing": _failing_rows(failing_by_node.get(node), host), "error": None}
    return entries


# --------------------------------------------------------------------------- the fleet


def summary_of(entries):
    """The fleet's counts, the same keys as before the report had a schema."""
    rows = [service for entry in entries.values() for service in entry["services"]]
    summary = {"hosts": len(entries), "hosts_without_result": sum(1 for e in entries.values() if e["error"])}
    summary.update(counts(rows))
    return summary


def by_service(entries):
    """{service name: counts} over the fleet: how many gateways have it healthy, degraded, ..."""
    grouped = {}
    for entry in entries.values():
        for service in entry["services"]:
            grouped.setdefault(service.get("name") or "?", []).append(service)
    return {name: counts(rows) for name, rows in sorted(grouped.items())}


def verdicts_of(report):
    """{(host, service name): verdict} of a report."""
    return {(host, service.get("name")): service.get("verdict")
            for host, entry in (report or {}).get("hosts", {}).items() for service in entry.get("services", ())}


def changes(entries, previous):
    """What changed since ``previous`` (a report, or None): services newly unhealthy (they were not,
    or were not there), and services recovered (healthy now, unhealthy or degraded then). Only
    gateways in this run are compared: a run limited to part of the fleet says nothing of the rest."""
    if not previous:
        return {"since": None, "newly_unhealthy": [], "recovered": []}
    before = verdicts_of(previous)
    newly_unhealthy, recovered = [], []
    for host in sorted(entries):
        for service in entries[host]["services"]:
            was = before.get((host, service.get("name")))
            verdict = service.get("verdict")
            if verdict == "unhealthy" and was != "unhealthy":
                newly_unhealthy.append({"host": host, "name": service.get("name"), "was": was})
            elif verdict == "healthy" and was in ("unhealthy", "degraded"):
                recovered.append({"host": host, "name": service.get("name"), "was": was})
    return {"since": previous.get("generated_at"), "newly_unhealthy": newly_unhealthy, "recovered": recovered}


def history(previous, generated_at, summary, keep):
    """The last ``keep`` runs' summaries, oldest first, this run last."""
    if keep < 1:
        raise ReportError("history must keep at least 1 run, got %r" % keep)
    runs = list((previous or {}).get("history") or [])
    runs.append(dict(summary, generated_at=generated_at))
    return runs[-keep:]


def build_report(entries, mode="gateway", previous=None, keep=10, generated_at=None, part=None, run=None):
    """The report (schema SCHEMA_VERSION) of ``entries`` ({host: host_entry}).

    ``previous``: the last report written at the same place (for changes and history), or None.
    ``part``: the name of this part when the run is one slice of a fleet (AWX job slicing)."""
    if mode not in MODES:
        raise ReportError("unknown report mode %r (one of %s)" % (mode, ", ".join(MODES)))
    generated_at = generated_at or utc_now()
    summary = summary_of(entries)
    run_info = {"mode": mode, "part": part}
    run_info.update(run or {})
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": generated_at,
        "run": run_info,
        "summary": summary,
        "by_service": by_service(entries),
        "changes": changes(entries, previous),
        "history": history(previous, generated_at, summary, keep),
        "hosts": {host: entries[host] for host in sorted(entries)},
    }


def merge_reports(parts, previous=None, keep=10, generated_at=None):
    """One fleet report from the reports of its parts (``parts``: [(name, report)]).

    Every gateway of every part is kept once. A gateway in more than one part (slices that
    overlap) keeps the entry of the newest part and is listed under ``run.duplicates``; nothing
    is dropped silently."""
    if not parts:
        raise ReportError("no report parts to merge")
    chosen, seen_in = {}, {}
    for name, report in sorted(parts, key=lambda item: (item[1].get("generated_at") or "", item[0])):
        if report.get("schema_version") != SCHEMA_VERSION:
            raise ReportError("report part %s has schema_version %r; this collection reads %d"
                              % (name, report.get("schema_version"), SCHEMA_VERSION))
        for host, entry in report.get("hosts", {}).items():
            chosen[host] = entry  # newest last: it wins
            seen_in.setdefault(host, []).append(name)
    duplicates = [{"host": host, "parts": names} for host, names in sorted(seen_in.items()) if len(names) > 1]
    run = {"parts": [{"name": name, "generated_at": report.get("generated_at"), "hosts": len(report.get("hosts", {}))}
                     for name, report in sorted(parts)],
           "duplicates": duplicates}
    return build_report(chosen, mode="merged", previous=previous, keep=keep, generated_at=generated_at, run=run)


def failures(report, fail_on):
    """What fails the run: "host/service: verdict" for each service edgex_health's own gate matched
    (its ``failing``: the module decides, nothing is derived here from the verdicts again), then
    "host: error" for each gateway without a result, unless ``fail_on`` is never.
    ``report``: the report, or its JSON text."""
    report = as_report(report)
    if fail_on not in GATES:
        raise ReportError("unknown gate %r (one of %s)" % (fail_on, ", ".join(GATES)))
    messages = ["%s/%s: %s" % (row["host"], row["name"], row["verdict"])
                for entry in report["hosts"].values() for row in entry.get("failing", ())]
    if fail_on != "never":
        messages += ["%s: %s" % (host, entry["error"]) for host, entry in report["hosts"].items() if entry["error"]]
    return messages


# --------------------------------------------------------------------------- files


def load_report(path):
    """The report at ``path``, or None when there is none; a file that is not a report raises."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReportError("cannot read the report %s: %s" % (path, exc.strerror or exc))
    try:
        report = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ReportError("%s is not a JSON health report (%s); move it away to start a new history" % (path, exc))
    if not isinstance(report, dict) or not isinstance(report.get("hosts"), dict):
        raise ReportError("%s is not a health report (no hosts mapping); move it away to start a new history" % path)
    return report


def load_parts(directory):
    """[(part name, report)] of every ``*.json`` in ``directory``, by name."""
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(".json"))
    except FileNotFoundError:
        return []
    return [(name[:-len(".json")], load_report(os.path.join(directory, name))) for name in names]


# --------------------------------------------------------------------------- the page

# One service as a row of the page's tables. Rendered here, not in the template: Ansible's
# templating costs about a quarter of a millisecond per row, so 12,000 rows took seconds.
ROW = ('<tr class="row-{verdict}" data-host="{host}" data-service="{name}" data-verdict="{verdict}">'
       '<td class="name">{host}</td><td class="name">{name}</td>'
       '<td><span class="verdict verdict-{verdict}">{verdict}</span></td><td>{reasons}</td>'
       '<td class="num">{latency}</td><td>{registry}</td><td>{source}</td><td class="num">{age}</td>{metrics}</tr>\n')
# The resource columns, when the report has metrics (edgex_health_metrics).
METRIC_CELLS = '<td class="num">{cpu}</td><td class="num">{memory}</td><td class="num">{restarts}</td><td class="num">{uptime}</td>'


def _latency(value):
    return "%.1f" % value if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _age(value):
    return "%.0f s" % value if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bytes(value):
    if not _number(value):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return "%d B" % value if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024.0
    return "-"


def _duration(seconds):
    if not _number(seconds):
        return "-"
    seconds = int(seconds)
    if seconds >= 86400:
        return "%dd%02dh" % (seconds // 86400, seconds // 3600 % 24)
    if seconds >= 3600:
        return "%dh%02dm" % (seconds // 3600, seconds // 60 % 60)
    return "%dm%02ds" % (seconds // 60, seconds % 60)


def _metric_cells(metrics):
    """CPU %, memory (used / limit), restarts and uptime of one service's edgex_metrics reading."""
    metrics = metrics if isinstance(metrics, dict) else {}
    memory = "-"
    if _number(metrics.get("memory_used")):
        memory = _bytes(metrics["memory_used"]) + (" / " + _bytes(metrics["memory_limit"])
                                                   if _number(metrics.get("memory_limit")) else "")
    return {"cpu": "%.2f" % metrics["cpu_percent"] if _number(metrics.get("cpu_percent")) else "-",
            "memory": memory, "restarts": str(metrics["restarts"]) if _number(metrics.get("restarts")) else "-",
            "uptime": _duration(metrics.get("uptime"))}


def _row(host, entry, service, with_metrics=False):
    """The cells of one row, as text (not yet escaped)."""
    row = {"host": host, "name": service.get("name") or "", "verdict": service.get("verdict") or "unknown",
           "reasons": [str(reason) for reason in service.get("reasons") or ()],
           "latency": _latency(service.get("latency_ms")), "registry": service.get("registry_status") or "-",
           "source": entry.get("source") or "-", "age": _age(entry.get("manifest_age"))}
    if with_metrics:
        row["metrics"] = _metric_cells(service.get("metrics"))
    return row


def row_html(row):
    """One row as HTML; every value escaped (registry data is untrusted)."""
    escaped = {key: html.escape(str(value), quote=True) for key, value in row.items()
               if key not in ("reasons", "metrics")}
    reasons = "".join("<li>%s</li>" % html.escape(reason, quote=True) for reason in row["reasons"])
    metrics = METRIC_CELLS.format(**{key: html.escape(value, quote=True) for key, value in row["metrics"].items()}) \
        if "metrics" in row else ""
    return ROW.format(reasons='<ul class="reasons">%s</ul>' % reasons if reasons else "", metrics=metrics, **escaped)


def as_report(report):
    """A report given as data or as its JSON text (what health.json holds)."""
    if isinstance(report, (str, bytes)):
        return json.loads(report)
    return report


def to_json(report):
    """The report as compact JSON text."""
    return json.dumps(report, separators=(",", ":"), ensure_ascii=False)


def page(report):
    """What the HTML template lays out: the rows that need attention (unhealthy, degraded, unknown,
    in that order) and the healthy rows (collapsed on the page: at 12,000 rows, laying out the
    healthy ones is most of the page's load time), both as HTML; how many gateways have every
    service healthy; the per-service table, worst first; the gateways without a result."""
    report = as_report(report)
    problem_rows, healthy_rows, healthy_hosts = [], [], 0
    # The resource columns only where some gateway collected metrics (edgex_health_metrics).
    with_metrics = any("metrics_error" in entry for entry in report["hosts"].values())
    for host, entry in sorted(report["hosts"].items()):
        rows = [_row(host, entry, service, with_metrics) for service in entry["services"]]
        healthy = [row for row in rows if row["verdict"] == "healthy"]
        healthy_rows.extend(healthy)
        problem_rows.extend(row for row in rows if row["verdict"] != "healthy")
        if rows and len(healthy) == len(rows) and not entry["error"]:
            healthy_hosts += 1
    problem_rows.sort(key=lambda row: (PROBLEM_ORDER.get(row["verdict"], 2), row["host"], row["name"]))
    per_service = sorted(report["by_service"].items(),
                         key=lambda item: (-item[1]["unhealthy"], -item[1]["degraded"], -item[1]["unknown"], item[0]))
    return {
        "report": {key: value for key, value in report.items() if key != "hosts"},
        "with_metrics": with_metrics,
        "problem_count": len(problem_rows),
        "problem_rows_html": "".join(row_html(row) for row in problem_rows),
        "healthy_count": len(healthy_rows),
        "healthy_hosts": healthy_hosts,
        "healthy_rows_html": "".join(row_html(row) for row in healthy_rows),
        "per_service": [dict(service_counts, name=name) for name, service_counts in per_service],
        "errors": [{"host": host, "error": entry["error"]} for host, entry in sorted(report["hosts"].items())
                   if entry["error"]],
        "metrics_errors": [{"host": host, "error": entry["metrics_error"]}
                           for host, entry in sorted(report["hosts"].items()) if entry.get("metrics_error")],
    }
