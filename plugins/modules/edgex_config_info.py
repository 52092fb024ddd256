#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_config_info
short_description: Read EdgeX configuration from the registry's key/value store beside what the services run
version_added: 0.1.0
description:
  - Reads the configuration of EdgeX services, or of sections of the common configuration, where EdgeX
    services read it at start (go-mod-bootstrap's configuration provider; see M(edgex.sysmgmt.edgex_config)
    for the layout per release), and, for each running instance of a service, the effective configuration it
    reports (C(GET /api/v3/config), C(/api/v2/config) for 2.x), side by side.
  - RV(configurations[].instances[].differences) lists the keys whose stored value (the service's layers
    merged, as a restart would read them) is not what the instance runs; keys outside C(Writable) among them
    need a restart of that instance.
  - Never changes anything.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
attributes:
  check_mode:
    description: Reads the same; the module never writes.
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to show.
    support: none
  idempotent:
    description: Never changes anything.
    support: full
requirements:
  - python-consul2 for O(registry_type=consul)
options:
  name:
    description:
      - Service keys (for example V(core-data)), common configuration sections (V(all-services),
        V(app-services), V(device-services); 3.x and 4.x), or V(all) for every service that has its own
        configuration in the store (on O(node) when given).
    type: list
    elements: str
    required: true
  release:
    description:
      - The EdgeX release whose layout to read. V(auto) looks for each name's configuration, newest layout
        first, and fails for a name that has none.
    type: str
    choices: [auto, "2", "3", "4"]
    default: auto
  node:
    description: The registry node whose instances to ask for their effective configuration; by default every node's.
    type: str
  check_running:
    description: Ask the running instances for their effective configuration.
    type: bool
    default: true
  probe_timeout:
    description: Seconds one service may take to answer C(GET /config), connect included.
    type: float
    default: 3.0
notes:
  - The token must be able to read every key under C(edgex/).
seealso:
  - module: edgex.sysmgmt.edgex_config
"""

EXAMPLES = r"""
- name: What core-data has stored, and what it runs
  edgex.sysmgmt.edgex_config_info:
    name: core-data
    node: "{{ inventory_hostname }}"
  register: core_data

- name: Keys that need a restart to take effect
  ansible.builtin.debug:
    msg: "{{ core_data.configurations[0].instances[0].differences | rejectattr('live') | map(attribute='key') }}"

- name: The common configuration of device services
  edgex.sysmgmt.edgex_config_info:
    name: device-services
    check_running: false
"""

RETURN = r"""
configurations:
  description: One entry per O(name).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service key or common section.
      type: str
    kind:
      description: V(service) or V(common).
      type: str
    release:
      description: The EdgeX major release whose layout it was found in.
      type: int
    folder:
      description: Where it lives in the store.
      type: str
      sample: edgex/v3/core-data
    stored:
      description: The keys under RV(configurations[].folder), as a nested mapping of strings.
      type: dict
    layers:
      description: For a service, the folders it merges at start, in order (later wins).
      type: list
      elements: str
    read_by:
      description: For a common section, the services with a configuration in the store that read it.
      type: list
      elements: str
    instances:
      description: For a service, each instance on the selected nodes (none with O(check_running=false)).
      type: list
      elements: dict
      contains:
        node:
          description: Registry node.
          type: str
        registered:
          description: Whether the registry lists it.
          type: bool
        error:
          description: Why its effective configuration is not known.
          type: str
        running:
          description: The effective configuration it reports; null when it could not be read.
          type: dict
        differences:
          description: Keys whose stored value (its layers merged) differs from what it runs (C(key),
            C(stored), C(running), C(live) for C(Writable) keys).
          type: list
          elements: dict
"""

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.config import config_options, open_run
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule


class ConfigInfoModule(GatewayModule):
    options = config_options()
    positive = ("probe_timeout",)

    def run(self):
        run = open_run(self.registry(), self.params, self.select)
        return dict(changed=False, configurations=run.read())


def main():
    ConfigInfoModule.main()


if __name__ == "__main__":
    main()
