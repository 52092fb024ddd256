# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""What every edgex.sysmgmt module does the same way: registry options in, discovery out."""

from __future__ import annotations

from ._common import registry_argument_spec, resolve_registry_settings
from ._registry import discover

REGISTRY_OPTION_NAMES = tuple(registry_argument_spec())


def registry_settings(module):
    """Resolved registry settings from a module's params (explicit > CONSUL_* env > default)."""
    return resolve_registry_settings({name: module.params.get(name) for name in REGISTRY_OPTION_NAMES})


def discover_for_module(module, settings):
    """Discovery with its fallback warnings passed to Ansible; errors are the caller's to report."""
    discovery = discover(settings)
    for warning in discovery.warnings:
        module.warn(warning)
    return discovery


def discovery_facts(discovery):
    """Where the answer came from, for a module's result."""
    return {"source": discovery.source, "manifest_age": discovery.manifest_age}


__all__ = ["registry_argument_spec", "registry_settings", "discover_for_module", "discovery_facts"]
