# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The Ansible face of every edgex.sysmgmt module: ``GatewayModule``.

A module is its DOCUMENTATION and a short subclass: the options it adds, the ranges they must
keep, and ``run()``, which returns the result. Everything else is done here the same way for
every module: the argument spec (registry options, the options of a module acting on a
gateway's services, the executor options), the registry settings, the one discovery path
(fallback warnings passed on once), the manifest that completes a live answer, the executors,
and expected failures (EdgeXError) turned into ``fail_json`` with a message and no traceback.

This is the only file under module_utils that knows Ansible; below it everything takes plain
arguments and returns plain data.
"""

from __future__ import annotations

import copy

from ansible.module_utils.basic import AnsibleModule

from ._catalog import EXECUTORS
from ._errors import EdgeXError, RegistryAuthError
from ._executors.docker import DEFAULT_API_TIMEOUT
from ._executors.factory import Executors
from ._gateway.select import Selection
from ._registry.discover import discover, manifest_for, open_registry, read_registry
from ._registry.settings import SettingsError, registry_argument_spec, resolve_registry_settings

REGISTRY_OPTION_NAMES = tuple(registry_argument_spec())
# A Docker engine call never gets less than this, whatever the option it is derived from says.
MIN_ENGINE_TIMEOUT = 1.0


def executor_argument_spec():
    """How a module reaches the services' executors (doc fragment edgex.sysmgmt.executor)."""
    return dict(
        executor=dict(type="str", default="docker", choices=list(EXECUTORS)),
        docker_host=dict(type="str"),
        project=dict(type="str"),
        project_directory=dict(type="path"),
        compose_files=dict(type="list", elements="path"),
        systemd_scope=dict(type="str", default="system", choices=["system", "user"]),
    )


def gateway_argument_spec():
    """The options of a module acting on the services of one gateway: which services, where, how
    long a probe may take, and the executors."""
    spec = dict(
        name=dict(type="list", elements="str", default=["all"]),
        node=dict(type="str", required=True),
        probe_timeout=dict(type="float", default=3.0),
    )
    spec.update(executor_argument_spec())
    return spec


class TaskFailed(EdgeXError):
    """A failure that returns data beside its message (what was checked or done before it)."""

    def __init__(self, message, **result):
        super(TaskFailed, self).__init__(message)
        self.result = result


class GatewayModule(object):
    """Subclasses set ``options`` (their own argument spec), optionally ``gateway`` (True: the
    options of a module acting on a gateway's services), ``positive``/``non_negative`` (option
    names whose values must be > 0 / >= 0) and ``module_kwargs`` (AnsibleModule's
    mutually_exclusive, required_if, ...), and implement ``run()`` -> result dict."""

    options = {}
    gateway = False
    positive = ()
    non_negative = ()
    module_kwargs = {}
    # The option that bounds each Docker engine call: a module that waits wait_timeout for a
    # service waits no longer for the engine; one that only probes, probe_timeout.
    engine_timeout_option = "probe_timeout"

    @classmethod
    def argument_spec(cls):
        spec = registry_argument_spec()
        if cls.gateway:
            spec.update(gateway_argument_spec())
        spec.update(copy.deepcopy(cls.options))
        return spec

    def __init__(self, module=None):
        self.module = module or AnsibleModule(argument_spec=self.argument_spec(), supports_check_mode=True,
                                              **self.module_kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.diff_mode = self.module._diff
        self.discovery = None
        self._settings = None
        self._executors = None
        self._warned = set()

    @classmethod
    def main(cls):
        instance = cls()
        instance.module.exit_json(**instance.execute())

    def execute(self):
        """run() with the arguments checked first (ranges, registry host, port and timeout) and
        expected failures turned into fail_json."""
        problems = self.range_problems()
        try:
            self._settings = self._resolve_settings()
        except SettingsError as exc:
            problems.append(str(exc))
        if problems:
            self.module.fail_json(msg="; ".join(problems))
        try:
            return self.run()
        except TaskFailed as exc:
            self.module.fail_json(msg=str(exc), **exc.result)
        except RegistryAuthError as exc:
            self.module.fail_json(msg="%s (check the token, or set fallback_on_auth_error to use the manifest "
                                      "instead)" % exc, **self.facts())
        except EdgeXError as exc:
            self.module.fail_json(msg=str(exc), **self.facts())

    def run(self):
        raise NotImplementedError

    def range_problems(self):
        problems = ["%s must be > 0, not %s" % (name, self.params[name]) for name in self.positive
                    if self.params.get(name) is not None and self.params[name] <= 0]
        problems += ["%s must be >= 0, not %s" % (name, self.params[name]) for name in self.non_negative
                     if self.params.get(name) is not None and self.params[name] < 0]
        return problems

    # -- the registry ---------------------------------------------------------------------------
    @property
    def settings(self):
        """Registry settings from the params (explicit > CONSUL_* environment > default)."""
        if self._settings is None:
            self._settings = self._resolve_settings()
        return self._settings

    def _resolve_settings(self):
        params = {name: self.params.get(name) for name in REGISTRY_OPTION_NAMES}
        nodes = self.params.get("node")
        nodes = [nodes] if isinstance(nodes, str) else (nodes or [])
        if len(nodes) == 1:
            # core-keeper knows no nodes: the one gateway a task acts on is the one keeper serves.
            params["node_name"] = nodes[0]
        return resolve_registry_settings(params)

    def registry(self):
        """The configured provider itself, without the manifest fallback (None for registry_type none)."""
        return open_registry(self.settings, check_mode=self.check_mode)

    def discover(self, fallback=True, nodes=None):
        """What the registry knows (falling back to the manifest when it is down, unless ``fallback`` is
        False), about ``nodes`` when the caller needs only those (a hint: Consul then reads just them);
        each fallback warning is passed on once, however often a waiting module asks again."""
        if fallback:
            self.discovery = discover(self.settings, nodes=nodes)
        else:
            self.discovery = read_registry(self.registry(), nodes)
        for warning in self.discovery.warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                self.module.warn(warning)
        return self.discovery

    def select(self, nodes=None, names=None, fallback=True):
        """A fresh discovery joined with the manifest: the services named (None: all) on ``nodes``
        (None: every node). Unknown nodes raise; unknown names are the Selection's ``missing``."""
        self.discover(fallback=fallback, nodes=nodes)
        return Selection(self.discovery, self.manifest(), nodes, names)

    def manifest(self):
        """The manifest's Discovery that completes the last discovery: the discovery itself when it
        came from the manifest, the file at manifest_path when there is one, else None."""
        return manifest_for(self.settings, self.discovery)

    @staticmethod
    def text_diff(before, after, header=None):
        """A result's ``diff`` of two texts, both headed by ``header`` (a file path) when given."""
        diff = dict(before=before, after=after)
        if header:
            diff.update(before_header=header, after_header=header)
        return diff

    def facts(self):
        """Where the answer came from, for the result."""
        if self.discovery is None:
            return {}
        return {"source": self.discovery.source, "manifest_age": self.discovery.manifest_age}

    # -- the gateway ----------------------------------------------------------------------------
    @property
    def executors(self):
        """The executors of this run, each made on first use with the options the params give it."""
        if self._executors is None:
            params = self.params
            self._executors = Executors(params["executor"], {
                "docker": {"docker_host": params.get("docker_host"), "stop_timeout": params.get("stop_timeout", 10),
                           "api_timeout": self.engine_timeout()},
                "compose": {"project_directory": params.get("project_directory"), "files": params.get("compose_files")},
                "systemd": {"scope": params.get("systemd_scope") or "system"},
            }, project=params.get("project"))
        return self._executors

    def engine_timeout(self):
        """Each Docker engine call's total deadline, from ``engine_timeout_option``."""
        seconds = self.params.get(self.engine_timeout_option)
        if seconds is None:
            return DEFAULT_API_TIMEOUT
        return min(DEFAULT_API_TIMEOUT, max(MIN_ENGINE_TIMEOUT, seconds))

    def requested_names(self):
        """The ``name`` option as service keys, or None for all."""
        names = self.params["name"]
        return None if "all" in names else list(names)
