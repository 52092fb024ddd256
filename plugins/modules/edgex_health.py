#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_health
short_description: Check the health of EdgeX services, optionally waiting until they are healthy
version_added: 0.1.0
description:
  - Finds the EdgeX services in the registry (Consul, core-keeper, or the manifest as fallback),
    probes each one concurrently and gives a verdict per service with the reasons for it.
  - "Each service is probed by its kind (RV(services[].probe) says which): an EdgeX API service
    (a known one, or a key starting with C(core-), C(support-), C(device-) or C(app-)) with
    C(GET) of its health path (the manifest's C(health), the registry's, else C(/api/v3/ping)),
    which must answer 2xx with EdgeX's ping JSON naming the service (V(edgex-ping)); another
    manifest health path with C(GET), 2xx (V(http)); Consul with C(GET /v1/status/leader) naming a
    leader (V(consul-leader)); Vault or OpenBao (C(vault), C(secret-store)) with
    C(GET /v1/sys/health), active or standby (V(vault-health)); Redis with the inline command
    C(PING) answered C(+PONG), or an error asking for a password (V(redis-ping)); PostgreSQL with an
    SSLRequest answered C(S) or C(N), before any authentication (V(postgres-ssl-request));
    an MQTT broker with an MQTT 3.1.1 C(CONNECT) answered by a C(CONNACK), one refusing an
    anonymous client included (V(mqtt-connect)); C(database) is PostgreSQL on port 5432, else Redis.
    Any other registration gets a TCP connect (V(tcp)) and its registry checks."
  - "Where a service is probed (the address rule): a registered address that is an IP, or a name
    that resolves on the host running the module, is probed at the registered port. A name that
    does not resolve there (EdgeX in Docker registers container names such as C(edgex-core-data),
    resolvable only inside the compose network) is mapped to the manifest's address for the
    service when it has one, else to C(127.0.0.1) when the node's address is one of this host's
    own addresses (the module runs on the gateway, where edgex-compose publishes ports on
    127.0.0.1), else to the node's address; the port is then the manifest's C(port) (the port
    published on the host; a registration's port is the container's), else the registered one.
    RV(services[].address) is where it was probed, RV(services[].registered_address) where it is
    registered, RV(services[].mapped) why they differ."
  - O(probe_timeout) bounds each probe as a whole, name lookups included; a lookup that does not
    answer in time fails the probe ("cannot resolve <name> within Ns"), and is never waited for longer.
  - V(healthy) the probe succeeded and nothing disagrees; V(degraded) the probe succeeded but a
    registry check (or the node's C(serfHealth)) is warning or critical; V(unhealthy) the probe
    failed; V(unknown) there is neither an address to probe nor registry checks.
  - Never changes anything; check mode runs the same probes.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
  - edgex.sysmgmt.executor
attributes:
  check_mode:
    description: Runs the same probes; the module only reads.
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to show.
    support: none
  idempotent:
    description: Never changes anything; only the services' health may differ between runs.
    support: full
requirements:
  - python-consul2 for O(registry_type=consul)
options:
  name:
    description:
      - EdgeX service keys to check, for example V(core-data), or V(all) for every service found.
      - A name the registry does not know fails the task, naming it and listing the known ones;
        with O(wait_for=healthy) it is waited for first, because a starting service registers late.
    type: list
    elements: str
    default: [all]
  node:
    description:
      - Only the services registered on these registry nodes (Consul node names, manifest hosts),
        usually the C(inventory_hostname) of a gateway.
      - By default the services of every node are checked.
    type: list
    elements: str
  probe_timeout:
    description:
      - Seconds one service may take to answer its probe, name lookups, connect and every read included.
      - Named so because O(timeout) is the registry's timeout.
    type: float
    default: 3.0
  max_workers:
    description:
      - How many services are probed at the same time. With more services than workers the
        check takes about O(probe_timeout) per batch of hung services.
    type: int
    default: 32
  wait_for:
    description:
      - V(none) checks once.
      - V(healthy) checks again, with exponential back-off from 0.5 up to 5 seconds, until every
        selected service is healthy or O(wait_timeout) passes. The registry is asked again each time.
    type: str
    choices: [none, healthy]
    default: none
  wait_timeout:
    description: Seconds to wait with O(wait_for=healthy).
    type: float
    default: 60.0
  fail_on:
    description:
      - V(unhealthy) fails the task when a service is unhealthy; V(degraded) also when one is
        degraded; V(never) only reports.
      - With O(wait_for=healthy), running out of O(wait_timeout) fails unless O(fail_on=never).
    type: str
    choices: [unhealthy, degraded, never]
    default: unhealthy
  check_executor:
    description:
      - Also ask each service's executor (container, compose service, unit, snap app named in the
        manifest) whether it runs. Only meaningful where the module runs on the gateway itself.
    type: bool
    default: false
notes:
  - With a live registry and O(manifest_path) set, services the manifest lists on a registry node
    but that are not registered (stopped; EdgeX deregisters on a clean stop) are checked too, with
    the reason "not registered in Consul".
  - edgex-compose publishes service ports on C(127.0.0.1) only, so run the module on the gateway
    itself with O(node) set to it, or where the registered or mapped addresses are reachable.
  - A verdict of V(unknown) never fails the task through O(fail_on), but is not V(healthy) for
    O(wait_for=healthy).
seealso:
  - plugin: edgex.sysmgmt.edgex
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Check every EdgeX service on this gateway
  edgex.sysmgmt.edgex_health:
    node: "{{ inventory_hostname }}"
    host: consul.factory-a.example
  register: health

- name: Wait up to two minutes for core services after an upgrade
  edgex.sysmgmt.edgex_health:
    name: [core-metadata, core-data, core-command]
    node: "{{ inventory_hostname }}"
    wait_for: healthy
    wait_timeout: 120

- name: Report only, including degraded services
  edgex.sysmgmt.edgex_health:
    fail_on: never
  register: health

- name: Show what is not healthy
  ansible.builtin.debug:
    msg: "{{ health.services | rejectattr('verdict', 'equalto', 'healthy') | list }}"

- name: Use the manifest when there is no live registry
  edgex.sysmgmt.edgex_health:
    registry_type: none
    manifest_path: /var/lib/edgex/manifest.yml
"""

RETURN = r"""
services:
  description: One entry per service instance checked, in registry order.
  returned: success, and on failure once services were checked
  type: list
  elements: dict
  contains:
    name:
      description: Service key.
      type: str
      sample: core-data
    id:
      description: Registration ID (null for a name that is not registered).
      type: str
      sample: core-data
    node:
      description: Registry node the service is registered on.
      type: str
      sample: gw1
    address:
      description: Address probed, by the address rule (see the description).
      type: str
      sample: 127.0.0.1
    port:
      description: Port probed (for a mapped address, the port published on the host).
      type: int
      sample: 59880
    registered_address:
      description: The address the registry holds; null for a service that is not registered.
      type: str
      sample: edgex-core-data
    registered_port:
      description: The port the registry holds (the container's port); null for a service that is not registered.
      type: int
      sample: 59880
    mapped:
      description: Why the service was not probed at its registered address; null when it was.
      type: str
      sample: edgex-core-data does not resolve here
    verdict:
      description: V(healthy), V(degraded), V(unhealthy) or V(unknown).
      type: str
      sample: unhealthy
    reasons:
      description: Why the verdict is not V(healthy); empty when it is.
      type: list
      elements: str
      sample: ["ping timed out after 3.0s", "Consul check 'core-data' critical"]
    latency_ms:
      description: Time to the probe's answer in milliseconds (name lookup included); null when it did not answer.
      type: float
      sample: 1.8
    registry_status:
      description: The registry's aggregated status, V(passing), V(warning), V(critical) or V(unknown).
      type: str
      sample: passing
    checks:
      description: The registry's checks of the service (C(id), C(name), C(status), C(output), C(service_id)).
      type: list
      elements: dict
    executor_state:
      description: What the service's executor reports (V(running), V(stopped), V(absent), V(failed); for a
        one-shot job V(completed), V(pending), V(running) or V(failed)); null when not asked.
      type: str
    probe:
      description:
        - How it was probed (see the description), V(edgex-ping), V(http), V(consul-leader),
          V(vault-health), V(redis-ping), V(postgres-ssl-request), V(mqtt-connect), V(tcp),
          V(none) (no address or port, so judged by its registry checks alone), or V(unpublished)
          (it publishes no port; judged by its executor and its registry checks).
      type: str
      sample: edgex-ping
    target:
      description: The URL or C(host:port) probed.
      type: str
      sample: http://127.0.0.1:59880/api/v3/ping
    http_status:
      description: HTTP status of the answer, for the probes over HTTP.
      type: int
      sample: 200
summary:
  description: Number of services per verdict, and C(total).
  returned: success, and on failure once services were checked
  type: dict
  sample: {"healthy": 11, "degraded": 0, "unhealthy": 1, "unknown": 0, "total": 12}
unhealthy:
  description: Names of the services whose verdict is V(unhealthy).
  returned: success, and on failure once services were checked
  type: list
  elements: str
  sample: [core-data]
failing:
  description:
    - The services whose verdict O(fail_on) fails (none with O(fail_on=never)), each with C(node), C(name),
      C(verdict) and C(reasons). The task fails when this is not empty, so a playbook that lets the
      task fail (to write a report first) reads its gate from here instead of deciding again.
  returned: success, and on failure once services were checked
  type: list
  elements: dict
  sample: [{"node": "gw1", "name": "core-data", "verdict": "unhealthy", "reasons": ["ping answered 500"]}]
not_healthy:
  description: Names of the services whose verdict is anything but V(healthy).
  returned: success, and on failure once services were checked
  type: list
  elements: str
source:
  description: Where the services came from, V(consul), V(keeper) or V(manifest).
  returned: success, and on failure once services were checked
  type: str
  sample: consul
manifest_age:
  description: Seconds since the manifest was written, when the services came from it.
  returned: success, and on failure once services were checked
  type: float
attempts:
  description: With O(wait_for=healthy), one entry per check that was followed by a retry
    (C(attempt), C(elapsed), C(not_healthy), C(summary), C(retry_in)).
  returned: when O(wait_for=healthy)
  type: list
  elements: dict
waited:
  description: Seconds spent checking and waiting.
  returned: when O(wait_for=healthy)
  type: float
"""

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import HealthCheck, failing, summary
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule, TaskFailed


class HealthModule(GatewayModule):
    gateway = True
    options = dict(
        node=dict(type="list", elements="str"),
        max_workers=dict(type="int", default=32),
        wait_for=dict(type="str", default="none", choices=["none", "healthy"]),
        wait_timeout=dict(type="float", default=60.0),
        fail_on=dict(type="str", default="unhealthy", choices=["unhealthy", "degraded", "never"]),
        check_executor=dict(type="bool", default=False),
    )
    positive = ("probe_timeout", "max_workers")
    non_negative = ("wait_timeout",)

    def run(self):
        params = self.params
        names, nodes, waiting = self.requested_names(), params["node"], params["wait_for"] == "healthy"
        health = HealthCheck(lambda: self.select(nodes, names), params["probe_timeout"], params["max_workers"],
                             self.executors if params["check_executor"] else None)
        if waiting:
            results, _pending = health.wait(params["wait_timeout"])
        else:
            services = health.services()
            if health.selection.missing:
                raise TaskFailed(health.selection.unknown_message(), **self.facts())
            results = health.check(services)
        result = dict(changed=False, services=[r.to_dict() for r in results], summary=summary(results),
                      unhealthy=sorted(set(r.name for r in results if r.verdict == "unhealthy")),
                      not_healthy=sorted(set(r.name for r in results if r.verdict != "healthy")),
                      failing=failing(results, params["fail_on"]), **self.facts())
        if waiting:
            result.update(attempts=health.attempts, waited=health.elapsed())
        message = health.verdict(results, params["fail_on"], params["wait_timeout"] if waiting else None)
        if message:
            raise TaskFailed(message, **result)
        return result


def main():
    HealthModule.main()


if __name__ == "__main__":
    main()
