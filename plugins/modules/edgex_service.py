#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_service
short_description: Start, stop or restart EdgeX services on a gateway, in dependency order
version_added: 0.1.0
description:
  - Acts on one, several or all EdgeX services of one registry node (the gateway this task runs
    on) in one task, through the executor each service runs under (Docker SDK, docker compose,
    systemd or snap).
  - Which services run comes from the registry (Consul, core-keeper) with the manifest as
    fallback; how they run (executor, target, depends_on, health path) comes from the manifest.
    Services that are deployed but stopped (EdgeX deregisters on a clean stop) are known from
    the manifest.
  - Services are grouped into levels by C(depends_on) and EdgeX tier (registry, then database and
    message bus, config bootstrap, core-metadata, core, support, device and app services, UI).
    O(state=started) starts level by level and waits for each level to answer on its health
    endpoint (or to run) before the next; O(state=stopped) runs the levels in reverse;
    O(state=restarted) goes in start order too. The first level restarts while the next one is
    stopped, and each later level starts once the level before it answers, while the one after
    it is stopped in turn. So nothing starts before what it depends on answers, and a restart
    of all costs about one restart plus one start per level. The registry and O(protected)
    services restart last, by themselves, and are never stopped ahead of their turn, so a run
    never cuts the branch it sits on.
  - If a service fails, the services that depend on it are not started (after a failed restart
    they stay stopped, and their result says so), the task fails with the per-service results
    so far, and a re-run converges.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
  - edgex.sysmgmt.executor
attributes:
  check_mode:
    description: Reports per service what would change; nothing is started or stopped.
    support: full
  diff_mode:
    description: Shows each service's state before and after.
    support: full
requirements:
  - docker (Docker SDK for Python) for O(executor=docker)
  - python-consul2 for O(registry_type=consul)
options:
  name:
    description:
      - Service keys (for example V(core-data)), or V(all) for every service of O(node).
    type: list
    elements: str
    required: true
    aliases: [services]
  state:
    description:
      - V(started) and V(stopped) change only what is not already so (idempotent).
      - V(restarted) always restarts, and always reports a change (as community.docker does).
    type: str
    required: true
    choices: [started, stopped, restarted]
  node:
    description: The registry node (Consul node name, manifest host) whose services to act on.
    type: str
    required: true
  probe_timeout:
    description: Seconds one probe of a service's health endpoint may take while waiting for it to answer.
    type: float
    default: 2
  stop_timeout:
    description: Seconds a service may take to stop before it is killed.
    type: int
    default: 10
  wait:
    description:
      - Wait for each level to answer on its health endpoint (or to run) before the next one, and for each
        one-shot job to exit 0.
      - Without it, a dependency is still waited for as its dependents' C(depends_on_conditions) in the
        manifest ask (V(service_completed_successfully), V(service_healthy)); otherwise running is enough.
    type: bool
    default: true
  wait_timeout:
    description: Seconds each service may take to come up (or go down) before it counts as failed.
    type: float
    default: 60
  protected:
    description:
      - Services restarted last, after everything else, because the control path depends on them
        (the registry always is).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Start every EdgeX service of this gateway, in order
  edgex.sysmgmt.edgex_service:
    name: all
    state: started
    node: "{{ inventory_hostname }}"
    manifest_path: /var/lib/edgex/manifest.yml

- name: Restart core-data and the device services after a configuration change
  edgex.sysmgmt.edgex_service:
    name: [core-data, device-virtual, device-rest]
    state: restarted
    node: "{{ inventory_hostname }}"

- name: What would stopping everything do?
  edgex.sysmgmt.edgex_service:
    name: all
    state: stopped
    node: gw1
    registry_type: none
    manifest_path: /var/lib/edgex/manifest.yml
  check_mode: true
"""

RETURN = r"""
services:
  description: One entry per service, in the order acted on.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service key.
      type: str
    executor:
      description: Executor used.
      type: str
    target:
      description: Container, compose service, unit or snap app acted on.
      type: str
    before:
      description: State before, V(running), V(stopped), V(absent) or V(failed); for a one-shot job
        (manifest C(one_shot)) V(completed) (exited 0), V(pending) (never ran, or was stopped), V(running)
        or V(failed).
      type: str
    after:
      description: State after (what it would be in check mode).
      type: str
    changed:
      description: Whether this service was (or would be) started, stopped or restarted.
      type: bool
    elapsed:
      description: Seconds spent on this service, waiting included (for a restart, from the
        stop that ran while the level before restarted to the service answering).
      type: float
    error:
      description: Why it failed.
      type: str
      returned: on failure
    skipped:
      description: Why it was not acted on (a dependency failed).
      type: str
      returned: when skipped
  sample:
    - {name: core-data, executor: docker, target: edgex-core-data, before: stopped, after: running,
       changed: true, elapsed: 1.42}
levels:
  description: The dependency levels, in the order they were acted on.
  returned: always
  type: list
  elements: list
source:
  description: Where the list of services came from (consul, keeper, manifest).
  returned: always
  type: str
manifest_age:
  description: Age in seconds of the manifest when it stood in for the registry.
  returned: when source is manifest
  type: float
"""

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.control import BatchControl, ControlError, plan
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule, TaskFailed


class ServiceModule(GatewayModule):
    gateway = True
    engine_timeout_option = "wait_timeout"
    options = dict(
        name=dict(type="list", elements="str", required=True, aliases=["services"]),
        state=dict(type="str", required=True, choices=["started", "stopped", "restarted"]),
        probe_timeout=dict(type="float", default=2.0),
        stop_timeout=dict(type="int", default=10),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=60.0),
        protected=dict(type="list", elements="str", default=[]),
    )
    positive = ("probe_timeout",)
    non_negative = ("stop_timeout", "wait_timeout")

    def run(self):
        params = self.params
        discovery = self.discover(nodes=[params["node"]])
        planned = plan(discovery, self.manifest(), params["node"], params["name"], params["executor"], params["project"])
        control = BatchControl(self.executors, wait_timeout=params["wait_timeout"], stop_timeout=params["stop_timeout"],
                               check_mode=self.check_mode, wait=params["wait"], protected=params["protected"],
                               probe_timeout=params["probe_timeout"])
        levels = control.levels(planned, params["state"])
        try:
            services = control.run(planned, params["state"], levels)
        except ControlError as exc:
            raise TaskFailed(str(exc), services=exc.results, changed=any(r["changed"] for r in exc.results),
                             levels=levels, **self.facts())
        result = dict(services=services, changed=any(s["changed"] for s in services), levels=levels, **self.facts())
        if self.diff_mode:
            result["diff"] = self.text_diff("".join("%s: %s\n" % (s["name"], s["before"]) for s in services),
                                            "".join("%s: %s\n" % (s["name"], s["after"]) for s in services))
        return result


def main():
    ServiceModule.main()


if __name__ == "__main__":
    main()
