# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""One-shot jobs (the config bootstrapper, 2.x proxy-setup, OpenZiti's initialize/configure): which
services are jobs, and how far a job got, as its executor tells it.

A job is done when it ran and exited 0; "stopped" alone does not say that (a container that was
created but never started, or one stopped by a signal, is stopped too).
"""

from __future__ import annotations

from .._catalog import one_shot_by_default

# How far a job got: what its executor's details say, with "stopped" split into these two.
COMPLETED = "completed"  # ran and exited 0
PENDING = "pending"  # never ran, or was stopped before it finished: it still has to run


def is_one_shot(service):
    """The manifest's ``one_shot`` flag; when the manifest does not say, the catalog's default."""
    return service.one_shot if service.one_shot is not None else one_shot_by_default(service.name)


def _has_run(details):
    raw = details.get("raw")
    return "exited" in (raw if isinstance(raw, list) else [raw])


def _completed(details):
    if details.get("exit_code") is not None:  # docker, compose: it ran and exited 0
        return details["exit_code"] == 0 and _has_run(details)
    if details.get("result") is not None:  # systemd: a run that succeeded
        return details["result"] == "success" and bool(details.get("started_at"))
    return True  # the executor cannot tell (snap): stopped is all it says


def job_state(executor, target):
    """(running|completed|pending|failed|absent, exit code or None) of the job ``target``."""
    details = executor.details(target)
    state, exit_code = details["state"], details.get("exit_code")
    if state == "stopped":
        state = COMPLETED if _completed(details) else PENDING
    return state, exit_code


def describe_failure(service_name, exit_code):
    return "one-shot job %s exited with code %s" % (service_name, exit_code if exit_code is not None else "unknown")
