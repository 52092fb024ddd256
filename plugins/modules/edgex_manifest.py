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
    does not know (executor, target, depends_on, health path). A failed or partial registry read
    never writes the file.
  - O(state=present) adds or updates one service entry, or with O(src) imports a whole host from an
    edgex-compose file; O(state=absent) removes a service entry or a whole host. With
    O(registry_type=manifest) this is how services are registered and deregistered.
  - Writes are atomic (temporary file, fsync, rename) under a lock and keep the previous file as
    C(<manifest>.bak). Nothing is written when nothing changes, so the file's mtime stays.
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
manifest:
  description: The manifest after the change (what would be written in check mode).
  returned: success
  type: dict
path:
  description: Absolute path of the manifest.
  returned: success
  type: str
backup_path:
  description: Where the previous version was kept.
  returned: changed, when a previous version existed, and not in check mode
  type: str
source:
  description: Where the content came from (V(consul), V(keeper), V(compose) or V(manual)).
  returned: success
  type: str
hosts:
  description: Number of hosts in the manifest.
  returned: success
  type: int
services:
  description: Number of service entries in the manifest.
  returned: success
  type: int
"""

from ansible_collections.edgex.sysmgmt.plugins.module_utils._catalog import EXECUTORS
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest import edits
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.compose import import_change
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
        src=dict(type="path"), project=dict(type="str"),
    )
    module_kwargs = dict(required_if=[("state", "absent", ("name", "node"), True)], required_by={"src": ("node",)},
                         mutually_exclusive=[("src", "name")])

    def run(self):
        store = ManifestStore(self.params["manifest_path"])
        existed = store.exists()
        if self.params["state"] == "absent" and not existed:
            return dict(changed=False, manifest=None, path=store.path, source="manual", hosts=0, services=0)
        source, change = getattr(self, "change_" + self.params["state"])()
        changed, before, after = store.update(change, check_mode=self.check_mode)
        result = dict(changed=changed, manifest=after, path=store.path, source=source, **edits.counts(after))
        if changed and existed and not self.check_mode:
            result["backup_path"] = store.backup_path
        if self.diff_mode:
            result["diff"] = self.text_diff(dump(before) if existed else "", dump(after), store.path)
        return result

    def change_synced(self):
        """Reads the whole registry first: only a complete answer reaches the file."""
        if self.settings["registry_type"] not in ("consul", "keeper"):
            raise TaskFailed("state=synced reads a live registry: registry_type must be consul or keeper, not %s"
                             % self.settings["registry_type"])
        discovery = self.discover(fallback=False)
        origin = registry_label(self.settings, discovery.datacenter)
        return discovery.source, lambda data: edits.merge_discovery(data, discovery, origin)

    def change_present(self):
        p = self.params
        if p["src"]:
            return "compose", import_change(p["src"], p["node"], p["address"], p["executor"], p["project"],
                                            p["datacenter"])
        if not (p["name"] and p["node"]):
            raise TaskFailed("state=present needs node and name, or node and src")
        fields = edits.entry_fields(id=p["service_id"], executor=p["executor"], target=p["target"], meta=p["meta"],
                                    address=p["service_address"], port=p["service_port"], health=p["health"],
                                    depends_on=p["depends_on"], tags=p["tags"])
        return "manual", lambda data: edits.set_service(data, p["node"], p["name"], fields, address=p["address"],
                                                        datacenter=p["datacenter"])

    def change_absent(self):
        p = self.params
        return "manual", lambda data: edits.remove_entry(data, p["node"], p["service_id"] or p["name"])


def main():
    ManifestModule.main()


if __name__ == "__main__":
    main()
