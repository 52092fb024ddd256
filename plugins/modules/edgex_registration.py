#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_registration
short_description: Register or deregister a service in Consul, core-keeper or the manifest
version_added: 0.1.0
description:
  - Makes the registry know one service on one node the way EdgeX's go-mod-registry registers
    it, or forget it. Consul (EdgeX 2.x/3.x) through the node's agent (the service, then its check
    named after it), core-keeper (EdgeX 4.x) with its nested health check, or the
    manifest with O(registry_type=manifest) (the collection as the registry, as the SMA was).
  - For services that never register themselves (Redis, an MQTT broker, a third-party service),
    so that the inventory plugin and M(edgex.sysmgmt.edgex_health) see them; to remove a
    decommissioned service; and to move registrations from Consul to core-keeper during a
    3.x to 4.x upgrade (see the collection's C(playbooks/migrate_registrations.yml)).
  - Idempotent as community.general's consul modules are, by comparing only what the task names
    with what the registry holds; a registration EdgeX made itself is left as it is unless a task
    names a field that differs.
  - Consul does not return a check's definition, so the check this module registers is also
    written at the end of the check's notes (after the words C(edgex.sysmgmt check), for example
    C(http /api/v3/ping every 10s)) and read back from there; a check made by someone else counts
    as different when O(check) is given.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
attributes:
  check_mode:
    description: Reports what would be registered or deregistered; the registry is only read.
    support: full
  diff_mode:
    description: Shows the registration before and after, one field a line.
    support: full
  idempotent:
    description: Registers only when a named field differs, deregisters only what is registered.
    support: full
requirements:
  - python-consul2 (or py-consul) for O(registry_type=consul)
options:
  name:
    description: The service key, for example V(redis) or V(device-modbus).
    type: str
    required: true
  service_id:
    description: The registration's ID when it differs from O(name). core-keeper knows a registration by its ID only.
    type: str
  node:
    description:
      - The registry node the service runs on. For Consul it must be the node of the agent at
        O(host) (checks run on the service's own agent); it defaults to that node. For the manifest
        it is the host entry, and is required.
    type: str
  state:
    description: V(present) registers (or updates what differs), V(absent) deregisters; an unknown service is no change.
    type: str
    choices: [present, absent]
    default: present
  service_address:
    description:
      - The address the service answers on, and its check is run against (default V(127.0.0.1), as
        seen by the registry's agent). O(host) and O(port) remain the registry's own.
    type: str
  service_port:
    description: The port the service answers on. A check needs one.
    type: int
  tags:
    description: Tags (Consul and the manifest; core-keeper keeps none).
    type: list
    elements: str
  meta:
    description: Metadata with string values (Consul and the manifest; core-keeper keeps none).
    type: dict
  check:
    description:
      - The registry's health check. Without it a new registration gets the check of its kind,
        as go-mod-registry makes it for EdgeX services (HTTP C(GET /api/v3/ping) every 10 s), a TCP
        connect for a known service without an HTTP API (redis, an MQTT broker), and none without
        a port.
    type: dict
    suboptions:
      type:
        description: V(http), V(tcp) or V(none). core-keeper runs HTTP checks only.
        type: str
        choices: [http, tcp, none]
      path:
        description: The path an HTTP check gets, for example V(/api/v3/ping) (EdgeX 2.x services answer V(/api/v2/ping)).
        type: str
      interval:
        description: How often the check runs, a duration such as V(10s).
        type: str
      timeout:
        description: How long one check may take (Consul only).
        type: str
      deregister_critical_after:
        description:
          - Consul removes the registration once its check has been critical this long (C(DeregisterCriticalServiceAfter),
            at least 1m), which EdgeX itself never sets.
        type: str
notes:
  - O(registry_type=none) has no registry to register in, and is refused.
seealso:
  - module: edgex.sysmgmt.edgex_reap
  - plugin: edgex.sysmgmt.edgex
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Make Consul know the gateway's Redis, which never registers itself
  edgex.sysmgmt.edgex_registration:
    name: redis
    service_address: 127.0.0.1
    service_port: 6379          # a TCP check, as for every known service without an HTTP API

- name: Register a third-party service with its own check, removed by Consul once dead for 10 minutes
  edgex.sysmgmt.edgex_registration:
    name: device-acme
    service_port: 59990
    check: {path: /api/v3/ping, interval: 15s, deregister_critical_after: 10m}

- name: Forget a decommissioned service
  edgex.sysmgmt.edgex_registration:
    name: device-modbus
    state: absent

- name: Register it in core-keeper (EdgeX 4.x) instead
  edgex.sysmgmt.edgex_registration:
    registry_type: keeper
    name: device-modbus
    service_address: edgex-device-modbus
    service_port: 59901
"""

RETURN = r"""
registration:
  description: The registration after the task (what would be written in check mode); null once deregistered.
  returned: always
  type: dict
  sample: {"name": "redis", "id": "redis", "node": "gw1", "address": "127.0.0.1", "port": 6379, "tags": [],
           "meta": {}, "check": {"kind": "tcp", "path": null, "interval": "10s", "timeout": null,
                                 "deregister_critical_after": null}}
changed_fields:
  description: The fields that were (or would be) written; V(name) and every field for a new registration.
  returned: always
  type: list
  elements: str
  sample: [port, check]
registry:
  description: Where the registration is kept, for example V(consul://127.0.0.1:8500). Never holds the token.
  returned: always
  type: str
"""

from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule, TaskFailed
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.registration import check_of, plan
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import registry_label

CHECK_OPTIONS = dict(type=dict(type="str", choices=["http", "tcp", "none"]), path=dict(type="str"),
                     interval=dict(type="str"), timeout=dict(type="str"), deregister_critical_after=dict(type="str"))


class RegistrationModule(GatewayModule):
    options = dict(name=dict(type="str", required=True), service_id=dict(type="str"), node=dict(type="str"),
                   state=dict(type="str", default="present", choices=["present", "absent"]),
                   service_address=dict(type="str"), service_port=dict(type="int"),
                   tags=dict(type="list", elements="str"), meta=dict(type="dict"),
                   check=dict(type="dict", options=CHECK_OPTIONS))

    def run(self):
        p = self.params
        registry = self.registry()
        if registry is None:
            raise TaskFailed("registry_type none has no registry to register in; use consul, keeper or manifest")
        service_id = p["service_id"] or p["name"]
        current = registry.registration(service_id, p["node"])
        result = dict(registry=registry_label(self.settings))
        if p["state"] == "absent":
            if current is not None and not self.check_mode:
                registry.deregister(service_id, current.node)
            changed, after = current is not None, None
            result.update(changed=changed, registration=None, changed_fields=["name"] if changed else [])
        else:
            port = p["service_port"] if p["service_port"] is not None else (current.port if current else None)
            requested = dict(address=p["service_address"], port=p["service_port"], tags=p["tags"],
                             meta=None if p["meta"] is None else {k: str(v) for k, v in p["meta"].items()},
                             check=check_of(p["check"], p["name"], port) if p["check"] is not None else None)
            after, fields = plan(current, p["name"], service_id, p["node"] or (current.node if current else None),
                                 requested)
            if fields and not self.check_mode:
                registry.apply_registration(after)
            result.update(changed=bool(fields), registration=after.to_dict(), changed_fields=fields)
        if self.diff_mode:
            result["diff"] = self.text_diff(current.describe() if current else "", after.describe() if after else "")
        return result


def main():
    RegistrationModule.main()


if __name__ == "__main__":
    main()
