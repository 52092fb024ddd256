# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: edgex
short_description: EdgeX gateways and their services from Consul, core-keeper or the manifest
version_added: 0.1.0
description:
  - Asks the EdgeX registry which services run on which node and builds hosts (the gateways)
    and groups from the answer. Hosts are the registry's nodes with C(ansible_host) set to the
    node address.
  - With O(registry_type=consul) each datacenter is read in bulk (a few fixed requests plus one
    per distinct service name, never one per node).
  - When a source (a datacenter or an endpoint) is unreachable, its hosts come from the manifest
    at O(manifest_path) and the others from the registry; the run warns and goes on.
    A 401/403 is an error unless O(fallback_on_auth_error=true).
  - Every value read from the registry is marked unsafe, so a service's meta cannot inject templates.
  - The inventory file name must end in C(.edgex.yml) or C(.edgex.yaml).
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
requirements:
  - python-consul2 (or py-consul) for O(registry_type=consul)
  - PyYAML for the manifest
extends_documentation_fragment:
  - edgex.sysmgmt.registry.plugins
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks this file as an inventory for this plugin.
    required: true
    type: str
    choices: [edgex.sysmgmt.edgex]
  datacenters:
    description:
      - Consul datacenters to read, each as its own source with its own fallback.
      - Defaults to O(datacenter) (or the agent's own datacenter).
      - Ignored, with a warning, when O(sources) is set.
    type: list
    elements: str
    default: []
  sources:
    description:
      - Several registries at once. Each item overrides any of O(registry_type), O(host), O(port),
        O(scheme), O(datacenter), O(token), O(validate_certs), O(ca_path), O(client_cert),
        O(client_key) and O(timeout) for one source; the top-level options are the defaults.
      - Each item is checked with the same types and choices as the top-level options; an unknown
        option or a wrong type is an error naming the item. Relative paths are relative to the
        directory of the inventory file.
      - When set, O(datacenters) is ignored.
    type: list
    elements: dict
    default: []
  service_detail:
    description:
      - What the host variable C(edgex_services) holds of each service.
      - V(full), every field the registry gives (name, id, address, port, tags, meta, status, checks,
        executor, target, depends_on, health).
      - V(brief), only C(name), C(port) and C(status), for inventories of thousands of gateways; groups are
        the same. Most of a large inventory's time and memory is its host variables (ansible-core marks
        every value unsafe, keeps it, and C(ansible-inventory --list) prints it); the registry's checks are
        most of C(full). See the fleet section of bench/README.md for the figures.
    type: str
    choices: [full, brief]
    default: full
  group_prefix:
    description:
      - Prefix of every group this plugin makes.
      - A service key that already starts with the prefix is not prefixed again (the service
        C(edgex-redis) is in group C(edgex_redis), not C(edgex_edgex_redis)).
    type: str
    default: edgex
"""

EXAMPLES = r"""
# edgex.edgex.yml: one Consul, the manifest as fallback
plugin: edgex.sysmgmt.edgex
host: 127.0.0.1
port: 8500
manifest_path: /var/lib/edgex/manifest.yml

# fleet.edgex.yml: two datacenters; the token comes from CONSUL_HTTP_TOKEN (AWX credential)
plugin: edgex.sysmgmt.edgex
datacenters: [factory-a, factory-b]
manifest_path: /var/lib/edgex/manifest.yml
keyed_groups:
  - key: edgex_node_meta.site | default('unknown')
    prefix: site
compose:
  core_data_port: edgex_services['core-data'].port | default(omit)
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/edgex-inventory
cache_timeout: 300

# large.edgex.yml: thousands of gateways; edgex_services keeps each service's name, port and status
plugin: edgex.sysmgmt.edgex
manifest_path: /var/lib/edgex/manifest.yml
service_detail: brief
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/edgex-inventory

# static.edgex.yml: no registry at all; a relative path is relative to this file's directory
plugin: edgex.sysmgmt.edgex
registry_type: none
manifest_path: manifest.yml
"""

import gc
import re

from ansible.errors import AnsibleParserError
from ansible.utils.display import Display
from ansible.utils.unsafe_proxy import wrap_var as make_unsafe

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import EdgeXError, RegistryAuthError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._names import group_safe
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import discover
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import registry_label
from ansible_collections.edgex.sysmgmt.plugins.plugin_utils.inventory import EdgeXInventoryBase, prefixed_group

display = Display()

# Inventory host names from a registry: refuse anything that could be mistaken for a pattern.
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")


class InventoryModule(EdgeXInventoryBase):
    NAME = "edgex.sysmgmt.edgex"

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        # The hosts, groups and variables made here live as long as the run. Python's cyclic
        # collector rescans every live object on its full passes, which made a 10,000-gateway
        # inventory cost 12x a 1,000-gateway one: it is paused while they are made, then told to
        # leave them alone (gc.freeze), so the cost stays linear (bench/README.md, fleet).
        collecting = gc.isenabled()
        gc.disable()
        try:
            hit, results = self.get_cached_result(path, cache)
            if not hit:
                # Discovery dicts hold no token: settings never reach the cache.
                results = self._read_sources()
                self.update_cached_result(path, cache, results)
            self._populate(results)
        finally:
            gc.freeze()
            if collecting:
                gc.enable()

    # -- reading -------------------------------------------------------------------
    def _read_sources(self):
        results, failures = [], []
        for settings in self.registry_settings():
            label = registry_label(settings)
            try:
                discovery = discover(settings)
            except RegistryAuthError as exc:
                raise AnsibleParserError("EdgeX inventory source %s: %s (set fallback_on_auth_error to use the "
                                         "manifest instead)" % (label, exc))
            except EdgeXError as exc:
                failures.append("%s: %s" % (label, exc))
                continue
            if discovery.source == "manifest" and settings.get("datacenter"):
                _keep_datacenter(discovery, settings["datacenter"])
            for warning in discovery.warnings:
                display.warning("EdgeX inventory source %s: %s" % (label, warning))
            result = discovery.to_dict()
            result["registry"] = label
            results.append(result)
        if failures and not results:
            raise AnsibleParserError("no EdgeX inventory source answered:\n  " + "\n  ".join(failures))
        for failure in failures:
            display.warning("EdgeX inventory source skipped: %s" % failure)
        return results

    # -- building ------------------------------------------------------------------
    def _populate(self, results):
        prefix = self.get_option("group_prefix")
        strict = self.get_option("strict")
        top = self.inventory.add_group(group_safe(prefix))
        # Live registries first: a host a registry knows wins over its manifest copy.
        made_by = {}
        for result in sorted(results, key=lambda r: r["source"] == "manifest"):
            services_by_node = {}
            for service in result["services"]:
                services_by_node.setdefault(service["node"], []).append(service)
            for node in result["nodes"]:
                name = node["name"]
                if not HOST_NAME.match(name):
                    display.warning("EdgeX inventory: skipped node %r from %s: not a usable host name"
                                    % (name, result["registry"]))
                    continue
                if name in made_by:
                    if result["source"] != "manifest":  # two live sources, one host: never a silent drop
                        display.warning("EdgeX inventory: node %s from %s is also in %s; kept the first (give "
                                        "each core-keeper source its node)" % (name, result["registry"], made_by[name]))
                    continue
                made_by[name] = result["registry"]
                self._add_host(top, prefix, name, node, services_by_node.get(name, []), result)
                hostvars = self.inventory.get_host(name).get_vars()
                self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)

    def _add_host(self, top, prefix, name, node, services, result):
        self.inventory.add_host(name, group=top)
        services_by_id = {}
        brief = self.get_option("service_detail") == "brief"
        for service in services:
            if brief:
                services_by_id[service["id"]] = {"name": service["name"], "port": service["port"],
                                                 "status": service["status"]}
                continue
            services_by_id[service["id"]] = {
                "name": service["name"], "id": service["id"], "address": service["address"],
                "port": service["port"], "tags": service["tags"], "meta": service["meta"],
                "status": service["status"], "checks": service["checks"], "executor": service["executor"],
                "target": service["target"], "depends_on": service["depends_on"], "health": service["health_path"],
            }
        hostvars = {
            "ansible_host": node["address"],
            "edgex_services": services_by_id,
            "edgex_source": result["source"],
            "edgex_registry": result["registry"],
            "edgex_datacenter": node["datacenter"],
            "edgex_node_meta": node["meta"],
            "edgex_node_status": node["status"],
        }
        if result["source"] == "manifest":
            hostvars["edgex_manifest_age"] = result["manifest_age"]
        for key, value in hostvars.items():
            self.inventory.set_variable(name, key, make_unsafe(value))

        groups = ["%s_source_%s" % (prefix, result["source"])]
        if node["datacenter"]:
            groups.append("%s_dc_%s" % (prefix, node["datacenter"]))
        for service in services:
            service_group = prefixed_group(prefix, service["name"])
            groups.append(service_group)
            groups.append("%s_%s" % (service_group, service["status"]))
            groups.extend("%s_tag_%s" % (prefix, tag) for tag in service["tags"])
        for group in groups:
            group = self.inventory.add_group(group_safe(group))
            self.inventory.add_child(group, name)


def _keep_datacenter(discovery, datacenter):
    """A fallback for one datacenter takes only that datacenter's hosts from the manifest."""
    discovery.nodes = [n for n in discovery.nodes if n.datacenter == datacenter]
    kept = {n.name for n in discovery.nodes}
    discovery.services = [s for s in discovery.services if s.node in kept]
