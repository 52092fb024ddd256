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
  - An EdgeX API service is probed with C(GET /api/v3/ping) (or its manifest health path) and must
    answer 2xx with EdgeX's ping JSON naming the service. A service without an HTTP API (redis,
    MQTT broker) gets a TCP connect; Consul itself C(GET /v1/status/leader) on its API port.
  - V(healthy) the probe succeeded and nothing disagrees; V(degraded) the probe succeeded but a
    registry check (or the node's C(serfHealth)) is warning or critical; V(unhealthy) the probe
    failed; V(unknown) there is neither an address to probe nor registry checks.
  - Never changes anything; check mode runs the same probes.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry
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
      - Seconds one service may take to answer its probe, connect and every read included.
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
    itself with O(node) set to it, or where the registered addresses are reachable.
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
      description: Address probed.
      type: str
      sample: 127.0.0.1
    port:
      description: Port probed.
      type: int
      sample: 59880
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
      description: Time to the probe's answer in milliseconds; null when it did not answer.
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
      description: What the service's executor reports (V(running), V(stopped), V(absent), V(failed)); null
        when not asked.
      type: str
    probe:
      description: How it was probed, V(http), V(tcp) or V(none) (nothing to probe; judged by its registry checks).
      type: str
      sample: http
    target:
      description: The URL or C(host:port) probed.
      type: str
      sample: http://127.0.0.1:59880/api/v3/ping
    http_status:
      description: HTTP status of the answer.
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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import EdgeXError, RegistryAuthError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import (
    check_services,
    HealthResult,
    not_healthy,
    summary,
    wait_until_healthy,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import (
    discovery_facts,
    registry_settings,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import registry_argument_spec
from ansible_collections.edgex.sysmgmt.plugins.module_utils._catalog import EXECUTORS
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import discover, overlay_manifest
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import executor_options, Executors
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.select import nodes_services, pick, requested
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import manifest_for


def argument_spec():
    spec = registry_argument_spec()
    spec.update(
        name=dict(type="list", elements="str", default=["all"]),
        node=dict(type="list", elements="str"),
        probe_timeout=dict(type="float", default=3.0),
        max_workers=dict(type="int", default=32),
        wait_for=dict(type="str", default="none", choices=["none", "healthy"]),
        wait_timeout=dict(type="float", default=60.0),
        fail_on=dict(type="str", default="unhealthy", choices=["unhealthy", "degraded", "never"]),
        check_executor=dict(type="bool", default=False),
        executor=dict(type="str", default="docker", choices=list(EXECUTORS)),
        docker_host=dict(type="str"),
    )
    return spec


class Selection(object):
    """The services asked for on the nodes asked for (None: every node), from one discovery
    completed by the manifest, and the asked-for names none of them has."""

    def __init__(self, discovery, manifest, names, nodes):
        if nodes is None:
            in_scope = overlay_manifest(discovery, manifest)
        else:
            in_scope = nodes_services(discovery, manifest, list(dict.fromkeys(nodes)))
        self.known = sorted(set(s.name for s in in_scope))
        self.services, self.missing = pick(in_scope, names)
        self.discovery = discovery

    def missing_message(self, nodes):
        where = " on node %s" % ", ".join(nodes) if nodes else ""
        return "unknown service name%s %s%s in the %s registry; known: %s" % (
            "s" if len(self.missing) > 1 else "", ", ".join(self.missing), where, self.discovery.source,
            ", ".join(self.known) or "none")


def describe(results):
    return "; ".join("%s on %s: %s" % (r.name, r.node or "no node", ", ".join(r.reasons) or r.verdict)
                     for r in results)


class HealthRun(object):
    """One module run: asks the registry (again on every attempt when waiting) and probes."""

    def __init__(self, module, settings, names, nodes):
        self.module = module
        self.settings = settings
        self.names = names
        self.nodes = nodes
        self.selection = None
        self.executors = Executors(module.params["executor"], executor_options(module.params))
        self.warned = set()
        self.attempts = []
        self.started = time.monotonic()

    def services(self):
        discovery = discover(self.settings, nodes=self.nodes)
        for warning in discovery.warnings:
            if warning not in self.warned:  # the same fallback, seen again on a retry
                self.warned.add(warning)
                self.module.warn(warning)
        self.selection = Selection(discovery, manifest_for(self.settings, discovery), self.names, self.nodes)
        return self.selection.services

    def check(self, services):
        params = self.module.params
        results = check_services(services, timeout=params["probe_timeout"], max_workers=params["max_workers"],
                                 registry_source=self.selection.discovery.source,
                                 executor_state=self.executors.state if params["check_executor"] else None)
        # A name not registered yet is waited for like an unhealthy service.
        return results + [HealthResult(name=n, verdict="unknown", reasons=["not registered"])
                          for n in self.selection.missing]

    def record_retry(self, attempt, results, pending, pause):
        self.attempts.append(dict(attempt=attempt, elapsed=self.elapsed(), not_healthy=pending,
                                  summary=summary(results), retry_in=round(pause, 2)))

    def elapsed(self):
        return round(time.monotonic() - self.started, 2)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params["probe_timeout"] <= 0 or params["max_workers"] < 1 or params["wait_timeout"] < 0:
        module.fail_json(msg="probe_timeout must be > 0, max_workers >= 1 and wait_timeout >= 0")
    waiting = params["wait_for"] == "healthy"
    try:
        run = HealthRun(module, registry_settings(module), requested(params["name"]), params["node"])
        if waiting:
            results, pending = wait_until_healthy(run.services, run.check, params["wait_timeout"],
                                                  on_retry=run.record_retry)
        else:
            services = run.services()
            if run.selection.missing:
                module.fail_json(msg=run.selection.missing_message(run.nodes),
                                 **discovery_facts(run.selection.discovery))
            results = run.check(services)
            pending = not_healthy(results)
    except RegistryAuthError as exc:
        module.fail_json(msg="%s (check the token, or set fallback_on_auth_error to use the manifest instead)" % exc)
    except EdgeXError as exc:
        module.fail_json(msg=str(exc))

    result = dict(changed=False, services=[r.to_dict() for r in results], summary=summary(results),
                  unhealthy=sorted(set(r.name for r in results if r.verdict == "unhealthy")), not_healthy=pending,
                  **discovery_facts(run.selection.discovery))
    if waiting:
        result.update(attempts=run.attempts, waited=run.elapsed())
        if run.selection.missing:
            missing = run.selection.missing_message(run.nodes)
            module.fail_json(msg="after waiting %ss, %s" % (params["wait_timeout"], missing), **result)
        if pending and params["fail_on"] != "never":
            module.fail_json(msg="not healthy after waiting %ss: %s" % (
                params["wait_timeout"], describe(r for r in results if r.verdict != "healthy")), **result)

    failing = {"unhealthy": ("unhealthy",), "degraded": ("unhealthy", "degraded"), "never": ()}[params["fail_on"]]
    bad = [r for r in results if r.verdict in failing]
    if bad:
        module.fail_json(msg="%d of %d services %s: %s" % (len(bad), len(results), " or ".join(failing), describe(bad)),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
