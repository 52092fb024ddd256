#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_config
short_description: Set or remove EdgeX configuration in the registry's key/value store, and say what must restart
version_added: 0.1.0
description:
  - Sets (O(state=present)) or removes (O(state=absent)) keys of an EdgeX service's configuration, or of a
    section of the common configuration, where EdgeX services read it at start (go-mod-bootstrap's
    configuration provider).
  - Per release, EdgeX 2.x keeps it in Consul under C(edgex/<core|appservices|devices|security>/2.0/<service>/);
    EdgeX 3.x in Consul under C(edgex/v3/<service>/), its common configuration under
    C(edgex/v3/core-common-config-bootstrapper/<all-services|app-services|device-services>/); EdgeX 4.x in
    core-keeper (or Consul) under C(edgex/v4/), laid out as 3.x.
  - O(settings) is a nested mapping flattened to one key per leaf (C(LogLevel) in C(Writable) is the key
    C(Writable/LogLevel)), every value stored as EdgeX stores it (booleans C(true)/C(false), numbers in decimal,
    lists as keys C(0), C(1), ...). Only keys whose stored value differs are written.
  - In Consul every write is a check-and-set on the key's C(ModifyIndex) as read by this task (C(cas=0) for a
    new key), so two writers never silently overwrite each other; a lost race fails the task naming the key,
    and a re-run converges. core-keeper has no check-and-set; there the last writer wins.
  - What the change affects is computed against what runs. EdgeX services apply their C(Writable) section
    live and read everything else only at start. For each instance the change applies to (the named service,
    or every service that reads the named common section, on O(node)), the configuration a restart would
    give it (its layers merged, C(all-services), its type's section, then its own configuration) is compared with
    the effective configuration it reports (C(GET /api/v3/config), C(/api/v2/config) for 2.x). Keys outside
    C(Writable) that differ put it in RV(restart_required); a service whose own configuration overrides the
    common key is not affected. Because it compares with what runs, a re-run (after a failed restart, or on
    a second gateway sharing one Consul) still names what needs a restart, and a run in check mode after
    the restart proves the change took (RV(in_sync)).
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
attributes:
  check_mode:
    description: Computes the changes, RV(restart_required) and RV(in_sync) without writing; services are
      still asked for their effective configuration (a read).
    support: full
  diff_mode:
    description: Shows each changed key with its value before and after.
    support: full
  idempotent:
    description: Writes only keys whose stored value differs from the one asked for.
    support: full
requirements:
  - python-consul2 for O(registry_type=consul)
options:
  name:
    description:
      - Service keys (for example V(core-data)) whose own configuration to change, common configuration
        sections (V(all-services), V(app-services), V(device-services); 3.x and 4.x), or V(all) for every
        service that has its own configuration in the store (on O(node) when given).
      - The same O(settings) go to each.
    type: list
    elements: str
    required: true
  settings:
    description:
      - The keys to set (O(state=present)) or remove (O(state=absent)), as a nested mapping of EdgeX's
        configuration sections. A mapping key may hold C(/) (V(Writable/LogLevel)).
      - With O(state=absent) the values are not looked at; each key is removed with every key below it.
      - A list replaces the stored list whole (stored items past its end are removed).
      - Keys are matched case-sensitively, as the store does; a key that differs from a stored one only in
        case is refused, since EdgeX would read both.
    type: dict
    required: true
  state:
    description: V(present) sets the keys, V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  release:
    description:
      - The EdgeX release whose layout to use. V(auto) looks for the name's configuration, newest layout
        first (4.x, 3.x, then 2.x in Consul; 4.x in core-keeper), and fails when there is none, since a
        service writes its whole configuration on its first start and would not do so once a key is there.
      - Give the major version to write a configuration that is not there yet.
    type: str
    choices: [auto, "2", "3", "4"]
    default: auto
  node:
    description:
      - The registry node (gateway) whose service instances to consider for RV(restart_required), usually
        C(inventory_hostname). By default every node's. The store itself is shared by every node it serves.
    type: str
  check_running:
    description:
      - Ask each instance the change applies to for its effective configuration. Without it nothing is
        compared; an instance counts as running, and needs a restart when this run changes a key outside
        C(Writable) of what it reads; RV(in_sync) is then null.
    type: bool
    default: true
  probe_timeout:
    description: Seconds one service may take to answer C(GET /config), connect included.
    type: float
    default: 3.0
notes:
  - The token must be able to read every key under C(edgex/) (the change is judged against every service's
    layers) and write the keys it changes; reading what runs also needs the node and service reads every
    module needs. A 401 or 403 fails the task and never falls back to the manifest.
  - The effective configuration is read from the service's registered address and port without a token, as
    on a gateway without EdgeX's API gateway in front of the services.
  - A key the running service does not report at all (its configuration does not define it) is listed in
    RV(services[].ignored) and warned about, not counted as needing a restart, unless this run adds it.
seealso:
  - module: edgex.sysmgmt.edgex_config_info
  - module: edgex.sysmgmt.edgex_service
"""

EXAMPLES = r"""
- name: Debug logging for core-data, live (Writable)
  edgex.sysmgmt.edgex_config:
    name: core-data
    settings:
      Writable:
        LogLevel: DEBUG
    node: "{{ inventory_hostname }}"
  register: config

- name: A longer request timeout for every service (common configuration, needs restarts)
  edgex.sysmgmt.edgex_config:
    name: all-services
    settings:
      Service:
        RequestTimeout: 10s
    node: "{{ inventory_hostname }}"
  register: config

- name: Restart exactly what the change needs, in dependency order
  edgex.sysmgmt.edgex_service:
    name: "{{ config.restart_required }}"
    state: restarted
    node: "{{ inventory_hostname }}"
  when: config.restart_required | length > 0

- name: Prove the running services took it
  edgex.sysmgmt.edgex_config:
    name: all-services
    settings:
      Service:
        RequestTimeout: 10s
    node: "{{ inventory_hostname }}"
  check_mode: true
  register: verify
  until: verify.in_sync
  retries: 15
  delay: 2

- name: Remove an insecure secret from app-rules-engine
  edgex.sysmgmt.edgex_config:
    name: app-rules-engine
    settings:
      Writable/InsecureSecrets/mqtt: null
    state: absent
"""

RETURN = r"""
changes:
  description: One entry per key written or removed (in check mode, that would be), in the order written.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: The full key.
      type: str
      sample: edgex/v3/core-data/Writable/LogLevel
    name:
      description: The O(name) it belongs to.
      type: str
    before:
      description: The stored value before; null when the key did not exist.
      type: str
    after:
      description: The value after; null when the key is removed.
      type: str
applied_live:
  description: The C(Writable) keys this run changed (relative to the service's configuration); EdgeX services
    apply these without a restart.
  returned: always
  type: list
  elements: str
  sample: [Writable/LogLevel]
restart_required:
  description:
    - The services (on O(node)) that must restart to run with the stored configuration, in dependency order
      (start order). Empty when nothing outside C(Writable) differs from what they run.
    - A service that is not registered (stopped) is never listed, as it reads the configuration when it starts.
  returned: always
  type: list
  elements: str
  sample: [core-data]
in_sync:
  description: True when nothing was (or would be) written and every registered instance the change applies
    to reports the stored values; null with O(check_running=false).
  returned: always
  type: bool
services:
  description: One entry per service instance the change applies to.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service key.
      type: str
    node:
      description: Registry node; null when the service is not known on the selected nodes.
      type: str
    via:
      description: The O(name) entries that apply to it (its own, or a common section).
      type: list
      elements: str
    registered:
      description: Whether the registry lists it (running, as far as the registry knows).
      type: bool
    reachable:
      description: Whether it answered C(GET /config).
      type: bool
    error:
      description: Why its effective configuration is not known.
      type: str
    pending_restart:
      description: Keys outside C(Writable) whose running value differs from what a restart gives it.
      type: list
      elements: str
    pending_live:
      description: C(Writable) keys it does not show yet (they arrive live, usually within a second).
      type: list
      elements: str
    overridden:
      description: Keys of a common section that its own configuration overrides (the common change does
        not reach it).
      type: list
      elements: str
    ignored:
      description: Keys it does not report at all, which this run did not add.
      type: list
      elements: str
    restart_required:
      description: Whether it is in RV(restart_required).
      type: bool
targets:
  description: Where each O(name) lives (C(name), C(kind) service or common, C(release), C(folder)).
  returned: always
  type: list
  elements: dict
check_and_set:
  description: Whether writes were check-and-set on the version read (Consul); false for core-keeper.
  returned: always
  type: bool
"""

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.config import (
    ConflictError, config_options, open_run)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule, TaskFailed


class ConfigModule(GatewayModule):
    options = dict(
        config_options(),
        settings=dict(type="dict", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    positive = ("probe_timeout",)

    def run(self):
        run = open_run(self.registry(), self.params, self.select, self.check_mode)
        try:
            result = run.change(self.params["settings"], self.params["state"])
        except ConflictError as exc:
            raise TaskFailed(str(exc), changed=bool(exc.written), changes=[c.to_dict() for c in exc.written])
        for warning in run.warnings:
            self.module.warn(warning)
        if not self.diff_mode:
            result.pop("diff")
        return result


def main():
    ConfigModule.main()


if __name__ == "__main__":
    main()
