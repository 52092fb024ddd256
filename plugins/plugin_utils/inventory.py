# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The base of the edgex inventory plugin: an inventory file read the way modules read their options.

As amazon.aws keeps its inventory base in plugin_utils/inventory.py, this file holds what turns an
inventory file into the plain settings module_utils takes, and nothing of the registry itself:

- the thirteen registry options, with the modules' names, checks and resolution
  (registry_argument_spec, resolve_registry_settings), relative paths taken from the inventory
  file's directory;
- ``sources`` and ``datacenters``: several registries in one file, each a complete settings dict;
- the cache, read and written as aws_ec2 does;
- group names (``<prefix>_<service>``).
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display

from ansible_collections.edgex.sysmgmt.plugins.module_utils._names import group_safe
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import (
    registry_argument_spec,
    SettingsError,
    resolve_registry_settings,
)

display = Display()

REGISTRY_SPEC = registry_argument_spec()
REGISTRY_OPTIONS = tuple(REGISTRY_SPEC)
# What one source may say: where and how to connect. The manifest and the auth-error policy are
# one per inventory file.
SOURCE_OPTIONS = tuple(o for o in REGISTRY_OPTIONS if o not in ("manifest_path", "fallback_on_auth_error"))
# What only a source says: the gateway a core-keeper source stands for (keeper knows no nodes).
SOURCE_ONLY_SPEC = {"node": dict(type="str")}
PATH_OPTIONS = tuple(o for o, spec in REGISTRY_SPEC.items() if spec["type"] == "path")


def resolve_path(value, basedir):
    """``value`` with ``~`` and ``$VARS`` expanded; a relative path is taken from ``basedir``."""
    if not isinstance(value, str) or not value:
        return value
    expanded = os.path.expanduser(os.path.expandvars(value))
    return os.path.normpath(os.path.join(basedir, expanded))  # join keeps an absolute path as it is


def check_source(index, source, basedir):
    """One item of ``sources``, type-checked with the modules' spec; its paths from ``basedir``."""
    if not isinstance(source, dict):
        raise AnsibleParserError("sources[%d] must be a mapping of registry options, not %s"
                                 % (index, type(source).__name__))
    allowed = set(SOURCE_OPTIONS) | set(SOURCE_ONLY_SPEC)
    unknown = set(source) - allowed
    if unknown:
        raise AnsibleParserError("sources[%d] has unknown option(s) %s (allowed: %s)"
                                 % (index, ", ".join(sorted(unknown)), ", ".join(sorted(allowed))))
    # Without defaults: an option a source leaves out is inherited from the top level.
    spec = {name: dict(REGISTRY_SPEC[name], default=None) for name in SOURCE_OPTIONS}
    spec.update(SOURCE_ONLY_SPEC)
    result = ArgumentSpecValidator(spec).validate(dict(source))
    if result.error_messages:
        raise AnsibleParserError("sources[%d]: %s" % (index, "; ".join(result.error_messages)))
    checked = {name: result.validated_parameters[name] for name in source}
    if "node" in checked:
        checked["node_name"] = checked.pop("node")
    for name in PATH_OPTIONS:
        if name in checked:
            checked[name] = resolve_path(checked[name], basedir)
    return checked


def merge_sources(base, sources, datacenters, basedir):
    """The unresolved settings of each source: ``base`` (the top-level options) overridden by each
    item of ``sources``, else one source per datacenter, else ``base`` alone."""
    if sources:
        if datacenters:
            display.warning("EdgeX inventory: datacenters is ignored because sources is set "
                            "(give each source its datacenter)")
        return [dict(base, **check_source(index, source, basedir)) for index, source in enumerate(sources)]
    if datacenters:
        return [dict(base, datacenter=datacenter) for datacenter in datacenters]
    return [dict(base)]


def prefixed_group(prefix, name):
    """``<prefix>_<name>`` as a group name; a name that already starts with the prefix keeps it once
    (service ``edgex-redis`` -> ``edgex_redis``, not ``edgex_edgex_redis``)."""
    prefix, name = group_safe(prefix), group_safe(name)
    if name.startswith(prefix + "_") and len(name) > len(prefix) + 1:
        return name
    return "%s_%s" % (prefix, name)


class EdgeXInventoryBase(BaseInventoryPlugin, Constructable, Cacheable):
    """Option reading and cache handling; the plugin adds discovery and host building."""

    INVENTORY_FILE_SUFFIXES = (".edgex.yml", ".edgex.yaml")

    def __init__(self):
        super(EdgeXInventoryBase, self).__init__()
        self._config = {}
        self._config_path = None
        self._config_dir = os.getcwd()

    def verify_file(self, path):
        return super(EdgeXInventoryBase, self).verify_file(path) and path.endswith(self.INVENTORY_FILE_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super(EdgeXInventoryBase, self).parse(inventory, loader, path, cache=cache)
        self._config = self._read_config_data(path)
        self._config_path = path
        self._config_dir = os.path.dirname(os.path.abspath(path))

    # -- options ---------------------------------------------------------------------
    def _file_registry_options(self):
        """The top-level registry options as the file sets them (or their defaults).

        A value Ansible took from an environment variable is left unset here:
        resolve_registry_settings() reads the same variables, by the modules' rules (for
        example, CONSUL_HTTP_TOKEN is never sent to core-keeper)."""
        options = {}
        for name in REGISTRY_OPTIONS:
            value, origin = self.get_option_and_origin(name)
            if str(origin).startswith("env:"):
                value = None
            elif name in PATH_OPTIONS and isinstance(self._config.get(name), str):
                # Ansible resolved it from the working directory; the file's directory is meant.
                value = resolve_path(self._config[name], self._config_dir)
            options[name] = value
        return options

    def registry_settings(self):
        """One resolved settings dict per source, each as a module with those options would use it."""
        sources = merge_sources(self._file_registry_options(), self.get_option("sources") or [],
                                self.get_option("datacenters") or [], self._config_dir)
        try:
            return [resolve_registry_settings(source) for source in sources]
        except SettingsError as exc:
            raise AnsibleParserError("EdgeX inventory %s: %s" % (self._config_path, exc))

    # -- cache -----------------------------------------------------------------------
    def get_cached_result(self, path, cache):
        """(True, result) when caching is on, not flushed, and the cache holds this file's result."""
        if not cache or not self.get_option("cache"):
            return False, None
        try:
            return True, self._cache[self.get_cache_key(path)]
        except KeyError:  # expired or never written
            return False, None

    def update_cached_result(self, path, cache, result):
        """Write a fresh result; a result read from the cache is not written back (that would
        extend its life past cache_timeout)."""
        if not self.get_option("cache"):
            return
        key = self.get_cache_key(path)
        if cache and key in self._cache:
            return
        self._cache[key] = result
