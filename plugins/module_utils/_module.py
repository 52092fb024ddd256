# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""What every edgex.sysmgmt module does the same way: registry options in, discovery out."""

from __future__ import annotations

from ._catalog import EXECUTORS
from ._registry.discover import discover
from ._registry.settings import registry_argument_spec, resolve_registry_settings

REGISTRY_OPTION_NAMES = tuple(registry_argument_spec())


def gateway_argument_spec(**options):
    """The argument_spec of a module acting on the services of one gateway: the registry options,
    the selection, the health probe and the executors, plus the module's own ``options``."""
    spec = registry_argument_spec()
    spec.update(
        name=dict(type="list", elements="str", default=["all"]),
        node=dict(type="str", required=True),
        probe_timeout=dict(type="float", default=3.0),
        executor=dict(type="str", default="docker", choices=list(EXECUTORS)),
        docker_host=dict(type="str"),
    )
    spec.update(options)
    return spec


def registry_settings(module):
    """Resolved registry settings from a module's params (explicit > CONSUL_* env > default)."""
    return resolve_registry_settings({name: module.params.get(name) for name in REGISTRY_OPTION_NAMES})


def discover_for_module(module, settings, nodes=None):
    """Discovery with its fallback warnings passed to Ansible; errors are the caller's to report.
    ``nodes``: the only nodes the module acts on (Consul then reads those alone, see discover)."""
    discovery = discover(settings, nodes=nodes)
    for warning in discovery.warnings:
        module.warn(warning)
    return discovery


def discovery_facts(discovery):
    """Where the answer came from, for a module's result."""
    return {"source": discovery.source, "manifest_age": discovery.manifest_age}
