# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Filters that build the fleet health report in Python, once, so that the role's report tasks
only write it: Jinja over the hostvars of a thousand gateways, and Ansible's templating of a
12,000-row structure (to_json alone walks it for seconds), are what made the report slow.
Documentation: the sidecar YAML files next to this one (one per filter)."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.edgex.sysmgmt.plugins.module_utils._report import (
    build_report,
    entries_from_fleet_result,
    failures,
    host_entry,
    load_parts,
    load_report,
    merge_reports,
    page,
    ReportError,
    to_json,
)


def _host_result(hostvars, host, result_var):
    """One host's registered result without templating it again: HostVars.raw_get when the
    hostvars are Ansible's (a module's result holds no templates to render), else a mapping."""
    raw_get = getattr(hostvars, "raw_get", None)
    variables = raw_get(host) if raw_get is not None else hostvars.get(host)
    if not isinstance(variables, Mapping):
        return None
    return variables.get(result_var)


def _output(report, output):
    """The report as data, or as compact JSON text: what the role keeps, because a 12,000-row
    structure handed on to another filter or task is templated again element by element (about
    2.5 seconds for to_json alone)."""
    if output == "json":
        return to_json(report)
    if output != "data":
        raise ReportError("output must be data or json, got %r" % (output,))
    return report


def _previous(previous):
    if previous is None or isinstance(previous, Mapping):
        return previous
    return load_report(str(previous))


def health_report(hosts, hostvars=None, result_var="edgex_health_result", fleet_result_var="edgex_health_fleet_result",
                  fleet_result=None, node_of=None, previous=None, history=10, part=None, generated_at=None,
                  output="data"):
    """The fleet report of ``hosts`` (see health_report.yml)."""
    try:
        hosts = list(hosts)
        if fleet_result is None and hostvars is not None and hosts:
            # registered by a run_once task (fleet_probe): every host of the play has it
            fleet_result = _host_result(hostvars, hosts[0], fleet_result_var)
        if fleet_result is not None:
            entries = entries_from_fleet_result(fleet_result, hosts, node_of)
            mode = "controller"
        else:
            if hostvars is None:
                raise ReportError("health_report needs hostvars (or fleet_result)")
            entries = {host: host_entry(host, _host_result(hostvars, host, result_var)) for host in hosts}
            mode = "gateway"
        # a part of a sliced run has no history of its own: the merged report keeps it
        previous = None if part else _previous(previous)
        return _output(build_report(entries, mode=mode, previous=previous, keep=int(history),
                                    generated_at=generated_at, part=part or None), output)
    except ReportError as exc:
        raise AnsibleFilterError(str(exc))


def health_report_merge(parts, previous=None, history=10, generated_at=None, output="data"):
    """One fleet report from slice reports (see health_report_merge.yml)."""
    try:
        if isinstance(parts, str):
            loaded = load_parts(parts)
        else:
            loaded = []
            for index, part in enumerate(parts):
                if isinstance(part, Mapping):
                    loaded.append((str(part.get("run", {}).get("part") or index), part))
                else:
                    loaded.append((str(part).rsplit("/", 1)[-1].rsplit(".json", 1)[0], load_report(str(part))))
        missing = [name for name, report in loaded if report is None]
        if missing:
            raise ReportError("report part(s) %s do not exist" % ", ".join(missing))
        return _output(merge_reports(loaded, previous=_previous(previous), keep=int(history),
                                     generated_at=generated_at), output)
    except ReportError as exc:
        raise AnsibleFilterError(str(exc))


def health_report_failures(report, fail_on="unhealthy"):
    """The messages that fail a run under ``fail_on`` (see health_report_failures.yml)."""
    try:
        return failures(report, fail_on)
    except ReportError as exc:
        raise AnsibleFilterError(str(exc))


def health_report_page(report):
    """What the HTML page lays out (see health_report_page.yml)."""
    try:
        return page(report)
    except (ValueError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("health_report_page: not a health report (%s: %s)" % (type(exc).__name__, exc))


class FilterModule(object):
    def filters(self):
        return {
            "health_report": health_report,
            "health_report_merge": health_report_merge,
            "health_report_failures": health_report_failures,
            "health_report_page": health_report_page,
        }
