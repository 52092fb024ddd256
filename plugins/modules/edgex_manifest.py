#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_manifest
short_description: Keep the EdgeX manifest (the last known state of the registry) in sync
version_added: 0.1.0
description:
  - Manages the manifest file that records which EdgeX services run on which host
    (format in the collection's C(docs/manifest.md), schema C(docs/manifest.schema.json)).
  - O(state=synced) refreshes the manifest from Consul or core-keeper, keeping what the registry
    does not know (executor, target, depends_on, health path). A failed read never writes the file.
    An incomplete read (filtered by ACLs, registrations skipped) adds and updates what it lists
    and never removes anything; only a complete answer removes hosts and services, and the result
    says what. Deployed services that are not registered (stopped, or HALT in core-keeper) are kept.
  - The same content is no change - the file, its mtime and C(<manifest>.bak) stay as they are - but
    the registry's confirmation is recorded beside it in C(<manifest>.confirmed), so the manifest's
    age on fallback is the time since a registry last confirmed it.
  - O(state=present) adds or updates one service entry, or with O(src) imports a whole host from an
    edgex-compose file; O(state=absent) removes a service entry or a whole host. With
    O(registry_type=manifest) this is how services are registered and deregistered.
  - Writes are atomic (temporary file, fsync, rename) under a lock and keep the previous file as
    C(<manifest>.bak). Nothing is written when nothing changes, so the file's mtime stays. A
    symlinked manifest is written through (the link stays); the file, its backup and temporary
    files keep the manifest's mode and owner. Check mode and runs with nothing to change work in a
    read-only directory. The result is a summary, not the manifest.
  - An import reads edgex-compose files of EdgeX 2.x (Jakarta 2.1, Levski 2.3; short compose keys such
    as C(system) become service keys such as C(sys-mgmt-agent), C(/api/v2) health paths), 3.x and 4.x,
    secure or not. It records the service key, the API version (from the image tag), jobs that run
    once (C(one_shot)), C(depends_on) with its conditions and C(required) false, C(extends) resolved
    and, per service, only the address and port that are published (C(host_ip) kept; none when nothing
    is published; a host port Docker chooses is read from the engine at run time). See the collection's
    C(docs/manifest.md).
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
attributes:
  check_mode:
    description: Reports what would be written, writes nothing.
    support: full
  diff_mode:
    description: Shows the manifest before and after as YAML.
    support: full
options:
  manifest_path:
    description: The manifest file. Created by O(state=synced) or O(state=present) when missing.
    required: true
    aliases: [path]
  state:
    description:
      - V(synced) reads the registry of O(registry_type) (V(consul) or V(keeper)) and rewrites the
        hosts of the datacenter it answered for.
      - V(present) adds or updates the O(name) entry on O(node), or imports O(src).
      - V(absent) removes the O(name) entry from O(node) (every host when O(node) is omitted), or
        the whole O(node) when O(name) is omitted.
    type: str
    choices: [synced, present, absent]
    default: synced
  node:
    description: Manifest host (the Consul node name, the inventory hostname).
    type: str
  address:
    description: Address of O(node); required when O(node) is new.
    type: str
  name:
    description: EdgeX service key, for example V(core-data).
    type: str
    aliases: [service]
  service_id:
    description: Registration ID when it differs from O(name).
    type: str
  executor:
    description:
      - How the service is run. With O(src), V(docker) targets containers and V(compose) targets
        compose services.
    type: str
    choices: [docker, compose, systemd, snap]
  target:
    description: >-
      What the executor acts on: a container name (docker), C(<project>/<service>) (compose), a unit
      (systemd) or C(<snap>.<app>) (snap).
    type: str
  service_address:
    description: Address the service answers on, when it differs from O(address).
    type: str
  service_port:
    description: Port the service answers on.
    type: int
  health:
    description: Health path, for example V(/api/v3/ping).
    type: str
  depends_on:
    description: Service keys on the same host that must run first.
    type: list
    elements: str
  tags:
    description: Tags, as Consul keeps them.
    type: list
    elements: str
  meta:
    description: Metadata (string values), as Consul keeps it.
    type: dict
  src:
    description:
      - An edgex-compose C(docker-compose*.yml) to import as the services of O(node) (O(state=present)).
        The file is read on the controller or the host this module runs on.
    type: path
  project:
    description: Compose project name for O(src) (defaults to the file's C(name:) or its directory).
    type: str
  profiles:
    description:
      - The compose profiles active for O(src), as C(docker compose --profile) activates them. A service
        with C(profiles:) is imported only when one of its profiles is active (V(*) activates all); a
        service without any always is. None is active by default, as in compose.
      - The services left out are listed in RV(compose.left_out). A service that depends on one left out
        is refused, unless the dependency is not C(required).
    type: list
    elements: str
    default: []
notes:
  - Run it where the manifest lives, usually the control node (C(delegate_to=localhost), C(run_once=true)).
seealso:
  - plugin: edgex.sysmgmt.edgex
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Record the last known state of the fleet (the fallback when Consul is down)
  edgex.sysmgmt.edgex_manifest:
    manifest_path: /var/lib/edgex/manifest.yml
    state: synced
    host: consul.factory-a.example
    datacenter: factory-a
  delegate_to: localhost
  run_once: true

- name: Import a gateway from its edgex-compose file
  edgex.sysmgmt.edgex_manifest:
    manifest_path: /var/lib/edgex/manifest.yml
    state: present
    node: gw1
    address: 192.0.2.10
    src: files/gw1/docker-compose.yml

- name: Import a gateway with the optional device services of the "devices" compose profile
  edgex.sysmgmt.edgex_manifest:
    manifest_path: /var/lib/edgex/manifest.yml
    state: present
    node: gw2
    address: 192.0.2.11
    src: files/gw2/docker-compose.yml
    profiles: [devices]

- name: Register a device service in the manifest (registry_type manifest)
  edgex.sysmgmt.edgex_manifest:
    manifest_path: /var/lib/edgex/manifest.yml
    registry_type: manifest
    state: present
    node: gw1
    name: device-modbus
    executor: docker
    target: edgex-device-modbus
    service_port: 59901
    health: /api/v3/ping
    depends_on: [core-metadata]

- name: Deregister it
  edgex.sysmgmt.edgex_manifest:
    manifest_path: /var/lib/edgex/manifest.yml
    registry_type: manifest
    state: absent
    node: gw1
    name: device-modbus
"""

RETURN = r"""
path:
  description: Absolute path of the manifest, as given (a symlink is followed; its target is what is written).
  returned: success
  type: str
backup_path:
  description: Where the previous version was kept (beside the file the path resolves to).
  returned: when the file was rewritten and a previous version existed (never in check mode)
  type: str
source:
  description: Where the content came from (V(consul), V(keeper), V(compose) or V(manual)).
  returned: success
  type: str
hosts:
  description: Number of hosts in the manifest after the run.
  returned: success
  type: int
services:
  description: Number of service entries in the manifest after the run.
  returned: success
  type: int
compose:
  description: What an import of O(src) read and left out.
  returned: when O(src) is given
  type: dict
  contains:
    file:
      description: The compose file imported (absolute path).
      type: str
    profiles:
      description: The profiles that were active.
      type: list
      elements: str
    left_out:
      description: The services of inactive profiles, not imported (C(service), C(key), C(profiles)).
      type: list
      elements: dict
    notes:
      description: What the file leaves unknown, such as an optional dependency that is not imported or
        a C(network_mode) container the file does not define.
      type: list
      elements: str
summary:
  description:
    - How many hosts and services (C(host/service)) were added, removed and updated, and for
      O(state=synced) how many the registry did not list but were kept.
    - C(hosts_not_removed), C(services_not_removed) - not listed by an incomplete answer (see RV(complete)), so kept.
    - C(services_kept_stopped) - not registered, or halted in core-keeper, but deployed there, so kept.
  returned: success
  type: dict
  sample: {hosts_added: 0, hosts_removed: 1, services_added: 2, services_removed: 9, services_updated: 1,
           hosts_not_removed: 0, services_not_removed: 0, services_kept_stopped: 1}
changes:
  description: The names behind RV(summary), each list sorted and cut to its first 100 names.
  returned: success
  type: dict
  sample: {hosts_added: [], hosts_removed: [gw3], services_added: [gw1/device-rest, gw2/device-rest],
           services_kept_stopped: [gw1/app-rules-engine]}
complete:
  description:
    - Whether the registry's answer was complete. An incomplete answer (filtered by ACLs, registrations
      skipped as unsafe, ...) adds and updates what it lists and removes nothing; a warning says what was kept.
  returned: O(state=synced)
  type: bool
gaps:
  description: Why the answer was incomplete (empty when it was complete).
  returned: O(state=synced)
  type: list
  elements: str
confirmed_at:
  description:
    - What the manifest's age on fallback counts from (UTC, ISO 8601) - when a complete registry read
      last confirmed its content or, for a manifest no registry ever confirmed (hand-made, imported),
      its last write. V(null) when there is no manifest, or an incomplete read created it.
  returned: success
  type: str
"""

from ansible_collections.edgex.sysmgmt.plugins.module_utils._catalog import EXECUTORS
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest import edits
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.compose import import_change
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.report import update_result
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore, dump
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule, TaskFailed
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import registry_label


class ManifestModule(GatewayModule):
    options = dict(
        manifest_path=dict(type="path", required=True, aliases=["path"]),
        state=dict(type="str", default="synced", choices=["synced", "present", "absent"]),
        node=dict(type="str"), address=dict(type="str"), name=dict(type="str", aliases=["service"]),
        service_id=dict(type="str"), executor=dict(type="str", choices=list(EXECUTORS)), target=dict(type="str"),
        service_address=dict(type="str"), service_port=dict(type="int"), health=dict(type="str"),
        depends_on=dict(type="list", elements="str"), tags=dict(type="list", elements="str"), meta=dict(type="dict"),
        src=dict(type="path"), project=dict(type="str"), profiles=dict(type="list", elements="str", default=[]),
    )
    module_kwargs = dict(required_if=[("state", "absent", ("name", "node"), True)], required_by={"src": ("node",)},
                         mutually_exclusive=[("src", "name")])
    sync = None  # the RegistrySync of state=synced
    extra = {}  # what an import adds to the result (its compose report)

    def run(self):
        store = ManifestStore(self.params["manifest_path"])
        existed = store.exists()
        source, change, confirmed = getattr(self, "change_" + self.params["state"])()
        changed, before, after = store.update(change, check_mode=self.check_mode, confirmed=confirmed,
                                              create=self.params["state"] != "absent")
        result = update_result(store, changed, before, after, self.sync, warn=self.module.warn)
        if self.diff_mode:
            result["diff"] = self.text_diff(dump(before) if existed else "", dump(after), store.path)
        return dict(result, source=source, **self.extra)

    def change_synced(self):
        """Reads the whole registry first; an incomplete answer adds and updates, never removes."""
        if self.settings["registry_type"] not in ("consul", "keeper"):
            raise TaskFailed("state=synced reads a live registry: registry_type must be consul or keeper, not %s"
                             % self.settings["registry_type"])
        discovery = self.discover(fallback=False)
        self.sync = edits.RegistrySync(discovery, registry_label(self.settings, discovery.datacenter))
        return discovery.source, self.sync, discovery.complete

    def change_present(self):
        p = self.params
        if p["src"]:
            change, self.extra = import_change(p["src"], p["node"], p["address"], p["executor"], p["project"],
                                               p["datacenter"], p["profiles"])
            return "compose", change, None
        if not (p["name"] and p["node"]):
            raise TaskFailed("state=present needs node and name, or node and src")
        fields = edits.entry_fields(id=p["service_id"], executor=p["executor"], target=p["target"], meta=p["meta"],
                                    address=p["service_address"], port=p["service_port"], health=p["health"],
                                    depends_on=p["depends_on"], tags=p["tags"])
        return "manual", lambda data: edits.set_service(data, p["node"], p["name"], fields, address=p["address"],
                                                        datacenter=p["datacenter"]), None

    def change_absent(self):
        p = self.params
        return "manual", lambda data: edits.remove_entry(data, p["node"], p["service_id"] or p["name"]), None


def main():
    ManifestModule.main()


if __name__ == "__main__":
    main()
