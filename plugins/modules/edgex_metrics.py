#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_metrics
short_description: CPU, memory, restarts, uptime and state of the EdgeX services on a gateway
version_added: 0.1.0
description:
  - Reads, for every EdgeX service of one registry node (the gateway this task runs on), what it uses and
    how it runs, through the executor it runs under, in one concurrent pass.
  - Docker and docker compose services are read from the Docker engine (C(GET /containers/{id}/stats) one-shot,
    and the container's inspect); systemd units from C(systemctl show) (C(CPUUsageNSec), C(MemoryCurrent),
    C(MemoryMax), C(NRestarts), C(ActiveEnterTimestamp)); snap apps through their systemd units
    (C(snap.<snap>.<app>.service)).
  - CPU % needs two readings. Every service is read once, all at the same time; one O(interval) after that
    round started, the running ones are read again, all at the same time. CPU % is over the time that really
    passed between a service's two readings. A gateway costs about one O(interval) plus one read, whatever the
    number of services; the Docker engine hands out a one-shot reading at its next collection (once a second),
    so there a pass takes about two seconds.
  - EdgeX 3.x and 4.x services have no metrics endpoint of their own (2.x had C(/api/v2/metrics)), so these
    numbers come from the engine or from systemd, for every release alike.
  - Never changes anything.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
  - edgex.sysmgmt.executor
attributes:
  check_mode:
    description: Reads the same; the module never changes anything.
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
      - Service keys to read, or V(all) for every service of O(node). A name the node does not have fails the
        task, naming it and listing the known ones.
    type: list
    elements: str
    default: [all]
  node:
    description: The registry node (Consul node name, manifest host) whose services to read; the gateway the
      task runs on, since its engine or systemd is asked.
    type: str
    required: true
  interval:
    description: Seconds from the start of the first round of readings to the start of the second (the same for
      every service); CPU % is computed from the two.
    type: float
    default: 1.0
  max_workers:
    description: How many services are read at the same time.
    type: int
    default: 32
  read_timeout:
    description:
      - Seconds one Docker engine call may take, connect included (1 to 60); an engine that does not answer
        costs each service that long, and its RV(services[].reason) says so.
    type: float
    default: 5.0
notes:
  - Memory used is the container's usage without its inactive page cache, as C(docker stats) shows it; a
    container without a memory limit reports the host's memory as its limit. A unit without C(MemoryMax)
    (or C(MemoryLimit)) has no limit (null).
  - CPU % is of one CPU (C(200) is two CPUs busy), as C(docker stats) shows it. systemd reports CPU time
    (C(CPUUsageNSec)) only for units with C(CPUAccounting=yes) and a cpu cgroup controller it may use; without
    it RV(services[].cpu_percent) is null and RV(services[].reason) says so.
  - Restarts are the ones the engine's restart policy or systemd's C(Restart=) made, not the ones asked for.
seealso:
  - module: edgex.sysmgmt.edgex_health
"""

EXAMPLES = r"""
- name: Resource use of every EdgeX service on this gateway
  edgex.sysmgmt.edgex_metrics:
    node: "{{ inventory_hostname }}"
  register: metrics

- name: The busiest services
  ansible.builtin.debug:
    msg: "{{ metrics.services | selectattr('cpu_percent') | sort(attribute='cpu_percent', reverse=true)
             | map(attribute='name') | list }}"

- name: EdgeX as systemd units, CPU over five seconds
  edgex.sysmgmt.edgex_metrics:
    node: "{{ inventory_hostname }}"
    executor: systemd
    interval: 5
"""

RETURN = r"""
services:
  description: One entry per service, in registry order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service key.
      type: str
    node:
      description: Registry node.
      type: str
    executor:
      description: Executor it runs under.
      type: str
    target:
      description: Container, compose service, unit or snap app read.
      type: str
    state:
      description: V(running), V(stopped), V(absent) (no such container, unit or app on this host),
        V(failed), or V(unknown) (its executor could not tell; see RV(services[].reason)).
      type: str
    cpu_percent:
      description: Percent of one CPU over O(interval); null when not running or not measured.
      type: float
    memory_used:
      description: Bytes in use.
      type: int
    memory_limit:
      description: Its memory limit in bytes; null when it has none.
      type: int
    memory_percent:
      description: RV(services[].memory_used) of RV(services[].memory_limit), in percent.
      type: float
    restarts:
      description: Restarts its engine or systemd made by itself.
      type: int
    uptime:
      description: Seconds since it (re)started; null when not running.
      type: float
    started_at:
      description: When it started, as its executor prints it.
      type: str
    reason:
      description: Why a number is missing (not running, not measured, an executor error); null otherwise.
      type: str
  sample:
    - {name: core-data, node: gw1, executor: docker, target: edgex-core-data, state: running, cpu_percent: 0.42,
       memory_used: 11653120, memory_limit: 25276510208, memory_percent: 0.05, restarts: 0, uptime: 3605.2,
       started_at: "2026-11-29T20:29:37.433701285Z", reason: null}
by_service:
  description: The same entries by service key (without C(name)), for a report to look up.
  returned: always
  type: dict
summary:
  description: Number of services per state, and C(total).
  returned: always
  type: dict
  sample: {"running": 7, "stopped": 1, "absent": 1, "failed": 0, "unknown": 0, "total": 9}
interval:
  description: Seconds between the two readings.
  returned: always
  type: float
elapsed:
  description: Seconds the whole reading took.
  returned: always
  type: float
source:
  description: Where the services came from, V(consul), V(keeper) or V(manifest).
  returned: always
  type: str
manifest_age:
  description: Seconds since the manifest was written, when the services came from it.
  returned: always
  type: float
"""

import time

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.metrics import collect, summary
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import (
    GatewayModule, TaskFailed, executor_argument_spec)


class MetricsModule(GatewayModule):
    options = dict(
        executor_argument_spec(),
        name=dict(type="list", elements="str", default=["all"]),
        node=dict(type="str", required=True),
        interval=dict(type="float", default=1.0),
        max_workers=dict(type="int", default=32),
        read_timeout=dict(type="float", default=5.0),
    )
    positive = ("interval", "max_workers", "read_timeout")
    engine_timeout_option = "read_timeout"

    def run(self):
        started = time.monotonic()
        selection = self.select([self.params["node"]], self.requested_names())
        if selection.missing:
            raise TaskFailed(selection.unknown_message(), **self.facts())
        results = collect(selection.services, self.executors, self.params["interval"], self.params["max_workers"])
        services = [r.to_dict() for r in results]
        return dict(changed=False, services=services, summary=summary(results), interval=self.params["interval"],
                    by_service={s["name"]: {k: v for k, v in s.items() if k != "name"} for s in services},
                    elapsed=round(time.monotonic() - started, 3), **self.facts())


def main():
    MetricsModule.main()


if __name__ == "__main__":
    main()
