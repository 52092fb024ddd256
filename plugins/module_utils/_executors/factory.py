# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The executor for a name, a service's default target under each, and the executors one module
run uses.
"""

from __future__ import annotations

from .._catalog import EXECUTORS, default_container
from .._errors import ExecutorError
from .._names import validate_name


def default_target(service_key, executor_name, project=None):
    """Where a service key lives under each executor when the manifest names no target."""
    validate_name(service_key, "service key")
    if executor_name == "docker":
        return default_container(service_key)
    if executor_name == "compose":
        project = project or "edgex"
        validate_name(project, "compose project name")
        return "%s/%s" % (project, service_key)
    if executor_name == "systemd":
        return "edgex-%s.service" % service_key
    if executor_name == "snap":
        return "edgexfoundry.%s" % service_key
    raise _unknown_executor(executor_name)


def _unknown_executor(name):
    return ExecutorError("unknown executor %r: must be one of %s" % (name, ", ".join(EXECUTORS)))


def executor_class(name):
    """The executor class called ``name``, imported when first asked for: a run acts through one
    executor, and compiling the others is most of what importing them costs a module run. (Plain
    imports, so that AnsiballZ, which follows imports in function bodies too, ships every one.)"""
    if name == "docker":
        from .docker import DockerExecutor
        return DockerExecutor
    if name == "compose":
        from .compose import ComposeExecutor
        return ComposeExecutor
    if name == "systemd":
        from .systemd import SystemdExecutor
        return SystemdExecutor
    if name == "snap":
        from .snap import SnapExecutor
        return SnapExecutor
    raise _unknown_executor(name)


def get_executor(name, runner=None, **options):
    """The executor called ``name``, with its options (docker_host, project_directory, scope, ...).
    The Docker SDK itself is imported only when the docker executor changes a container."""
    return executor_class(name)(runner=runner, **options)


class Executors(dict):
    """Executor by name, made on first use; a dict so that BatchControl can take it as it is."""

    def __init__(self, default, options=None, project=None):
        super(Executors, self).__init__()
        self.default = default
        self.options = options or {}
        self.project = project

    def __missing__(self, name):
        self[name] = get_executor(name, **self.options.get(name, {}))
        return self[name]

    def named(self, name):
        return self[name]

    def for_service(self, service):
        """(executor, target) of a ServiceRecord: its manifest executor and target, or the defaults."""
        name = service.executor or self.default
        return self[name], service.target or default_target(service.name, name, self.project)

    def state(self, service):
        """running|stopped|absent|failed."""
        executor, target = self.for_service(service)
        return executor.state(target)
