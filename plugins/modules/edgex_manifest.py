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
  - edgex.sysmgmt.registry
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
      - V(present) adds or updates the O(service) entry on O(node), or imports O(src).
      - V(absent) removes the O(service) entry from O(node) (every host when O(node) is omitted), or
        the whole O(node) when O(service) is omitted.
    type: str
    choices: [synced, present, absent]
    default: synced
  node:
    description: Manifest host (the Consul node name, the inventory hostname).
    type: str
  address:
    description: Address of O(node); required when O(node) is new.
    type: str
  service:
    description: EdgeX service key, for example V(core-data).
    type: str
  service_id:
    description: Registration ID when it differs from O(service).
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
    service: device-modbus
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
    service: device-modbus
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import EdgeXError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._catalog import EXECUTORS
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.edits import (
    merge_discovery,
    remove_host,
    remove_service,
    set_host,
    set_service,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import dump, ManifestStore
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import registry_settings
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import registry_argument_spec
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import open_registry


def argument_spec():
    spec = registry_argument_spec()
    spec["manifest_path"] = dict(type="path", required=True, aliases=["path"])
    spec.update(
        state=dict(type="str", default="synced", choices=["synced", "present", "absent"]),
        node=dict(type="str"),
        address=dict(type="str"),
        service=dict(type="str"),
        service_id=dict(type="str"),
        executor=dict(type="str", choices=list(EXECUTORS)),
        target=dict(type="str"),
        service_address=dict(type="str"),
        service_port=dict(type="int"),
        health=dict(type="str"),
        depends_on=dict(type="list", elements="str"),
        tags=dict(type="list", elements="str"),
        meta=dict(type="dict"),
        src=dict(type="path"),
        project=dict(type="str"),
    )
    return spec


def sync_change(module, settings):
    """Read the whole registry first; only a complete answer reaches the file."""
    if settings["registry_type"] not in ("consul", "keeper"):
        module.fail_json(msg="state=synced reads a live registry: registry_type must be consul or keeper, not %s"
                         % settings["registry_type"])
    discovery = open_registry(settings).discover()
    origin = "%s://%s:%s" % (settings["registry_type"], settings["host"], settings["port"])
    if discovery.datacenter:
        origin += "/" + discovery.datacenter
    return discovery.source, lambda data: merge_discovery(data, discovery, origin)


def import_change(module):
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.compose import manifest_from_compose

    params = module.params
    imported = manifest_from_compose(params["src"], host=params["node"], address=params["address"] or "127.0.0.1",
                                     executor=params["executor"] or "docker", project=params["project"],
                                     datacenter=params["datacenter"])
    entry = imported["hosts"][params["node"]]

    def change(data):
        set_host(data, params["node"], entry)
        data["generated_from"] = imported["generated_from"]
        return data

    return "compose", change


def entry_change(module):
    params = module.params
    fields = dict(id=params["service_id"], executor=params["executor"], target=params["target"],
                  address=params["service_address"], port=params["service_port"], health=params["health"],
                  depends_on=params["depends_on"], tags=params["tags"],
                  meta=None if params["meta"] is None else {k: str(v) for k, v in params["meta"].items()})

    def change(data):
        return set_service(data, params["node"], params["service"], fields, address=params["address"],
                           datacenter=params["datacenter"])

    return "manual", change


def absent_change(module):
    params = module.params

    def change(data):
        if params["service"]:
            remove_service(data, params["node"], params["service_id"] or params["service"])
        else:
            remove_host(data, params["node"])
        return data

    return "manual", change


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[("state", "absent", ("service", "node"), True)],
        required_by={"src": ("node",)},
        mutually_exclusive=[("src", "service")],
    )
    params = module.params
    store = ManifestStore(params["manifest_path"])
    existed = store.exists()
    if params["state"] == "absent" and not existed:
        module.exit_json(changed=False, manifest=None, path=store.path, source="manual", hosts=0, services=0)
    try:
        if params["state"] == "synced":
            source, change = sync_change(module, registry_settings(module))
        elif params["state"] == "present":
            if params["src"]:
                source, change = import_change(module)
            elif params["service"] and params["node"]:
                source, change = entry_change(module)
            else:
                module.fail_json(msg="state=present needs node and service, or node and src")
        else:
            source, change = absent_change(module)
        changed, before, after = store.update(change, check_mode=module.check_mode)
    except EdgeXError as exc:
        module.fail_json(msg=str(exc), path=store.path)

    result = dict(changed=changed, manifest=after, path=store.path, source=source, hosts=len(after["hosts"]),
                  services=sum(len(h.get("services") or {}) for h in after["hosts"].values()))
    if changed and existed and not module.check_mode:
        result["backup_path"] = store.backup_path
    if module._diff:
        result["diff"] = dict(before=dump(before) if existed else "", after=dump(after),
                              before_header=store.path, after_header=store.path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
