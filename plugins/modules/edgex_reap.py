#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_reap
short_description: Deregister EdgeX registrations left behind by services that are gone
version_added: 0.1.0
description:
  - An EdgeX service deregisters itself when it stops cleanly. One that crashes (SIGKILL, OOM kill,
    power loss, a container removed by force) never does, and its registration stays in the
    registry forever with a critical health check. Consul does not remove it by itself, as that needs
    C(DeregisterCriticalServiceAfter) on the check, which EdgeX's go-mod-registry does not set.
  - This module deregisters the registrations of one registry node (the gateway this task runs on)
    that the registry itself has reported critical for longer than O(critical_for) seconds and
    whose executor target is gone (O(require_target=absent)) or not running
    (O(require_target=not_running)).
  - "Critical means what the registry says: the registration's own checks are critical (Consul's
    check, core-keeper's C(DOWN)), or its node's C(serfHealth) is. A registration without checks
    of its own is as healthy as its node, as Consul has it. Our failing to reach a service never
    makes it critical: a registration under an address that does not resolve, with no checks, on a
    node whose C(serfHealth) passes, is kept."
  - With O(registry_type=manifest) there are no health checks at all, so nothing there is ever
    critical and nothing is reaped (each registration is kept with the reason "its registry reports
    no checks for it"); remove a service that is gone with M(edgex.sysmgmt.edgex_manifest)
    O(edgex.sysmgmt.edgex_manifest#module:state=absent).
  - A registration is never reaped while its executor says the target is running, while anything
    answers on its address and port (probed as M(edgex.sysmgmt.edgex_health) does, by the same
    address rule; any answer counts, an HTTP error or a bare TCP connect included), or when its
    executor cannot tell.
  - Consul does not say since when a check is critical, so the first run that sees it critical
    records the time in the ledger at O(state_path) (the file M(edgex.sysmgmt.edgex_remediate) uses).
    Run the task periodically; a registration is reaped by the first run after O(critical_for).
  - The registry itself is asked, never the manifest as a fallback; when it cannot be reached the
    task fails and nothing is reaped.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
  - edgex.sysmgmt.executor
attributes:
  check_mode:
    description: Lists what would be reaped and what is kept; deregisters nothing and writes nothing
      (the ledger stays untouched).
    support: full
  diff_mode:
    description: Shows the node's registrations before and after.
    support: full
requirements:
  - docker (Docker SDK for Python) for O(executor=docker)
  - python-consul2 for O(registry_type=consul)
options:
  name:
    description:
      - Service keys whose registrations may be reaped, or V(all) for every registration of O(node).
      - A name that is not registered is reported in RV(kept) and is not an error, so that a
        second run after a reap succeeds.
    type: list
    elements: str
    default: [all]
  node:
    description:
      - The registry node (Consul node name, manifest host) whose registrations to reap; the gateway
        the task runs on, since its executor is asked whether each service's target exists.
      - On Consul, registrations of the node whose agent answers are removed through that agent,
        those of any other node from the catalog.
    type: str
    required: true
  critical_for:
    description: Seconds a registration must have been seen critical (by this or earlier runs) before it is reaped.
    type: float
    default: 300
  require_target:
    description:
      - V(absent) reaps only when the executor target no longer exists (container removed, unit or snap
        not installed).
      - V(not_running) also when it exists but is stopped or failed, as after a crash.
    type: str
    choices: [absent, not_running]
    default: absent
  state_path:
    description:
      - The ledger, a JSON file on the gateway, written atomically under a lock (C(<state_path>.lock)).
        Its directory is created when missing.
      - A ledger that is not valid fails the task and is never overwritten; fix or remove it.
    type: path
    default: /var/lib/edgex-sysmgmt/remediation.json
  probe_timeout:
    description: Seconds to wait for an answer on a registration's address and port, name lookups included.
    type: float
    default: 3.0
notes:
  - O(registry_type=none) has no registrations, and is refused.
  - The executor and target of a registration come from the manifest at O(manifest_path); one the
    manifest does not list is looked for under O(executor)'s default target (for Docker the container
    C(edgex-<service>)).
  - Consul's own C(consul) entry is never reaped.
seealso:
  - module: edgex.sysmgmt.edgex_remediate
  - module: edgex.sysmgmt.edgex_health
"""

EXAMPLES = r"""
- name: Remove registrations of crashed services whose containers are gone for 10 minutes
  edgex.sysmgmt.edgex_reap:
    node: "{{ inventory_hostname }}"
    critical_for: 600
    manifest_path: /var/lib/edgex/manifest.yml
  register: reap

- name: Also reap when the container is still there but stopped or failed
  edgex.sysmgmt.edgex_reap:
    node: "{{ inventory_hostname }}"
    require_target: not_running

- name: What would be reaped?
  edgex.sysmgmt.edgex_reap:
    node: gw1
    host: consul.factory-a.example
  check_mode: true
"""

RETURN = r"""
reaped:
  description: Registrations deregistered (in check mode, that would be).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service key.
      type: str
      sample: support-notifications
    id:
      description: Registration ID.
      type: str
      sample: support-notifications
    node:
      description: Registry node.
      type: str
      sample: gw1
    registry_status:
      description:
        - What the registry reports of it, V(passing), V(warning), V(critical) or V(unknown) (no
          checks of its own nor of its node, as in the manifest registry). V(critical) when its own
          checks or its node's C(serfHealth) are.
      type: str
      sample: critical
    executor:
      description: Executor asked.
      type: str
      sample: docker
    target:
      description: Container, compose service, unit or snap app asked about.
      type: str
      sample: edgex-support-notifications
    executor_state:
      description: What the executor reported, V(running), V(stopped), V(absent) or V(failed).
      type: str
      sample: absent
    answered:
      description: Whether anything answered on its address and port (after the address rule of M(edgex.sysmgmt.edgex_health)).
      type: bool
      sample: false
    critical_since:
      description: UTC time a run first saw it critical.
      type: str
      sample: "2026-05-04T10:15:00Z"
    reason:
      description: Why it was reaped or kept.
      type: str
      sample: critical for 612s and its target is absent
    next_eligible:
      description: When kept only because it has not been critical long enough, the UTC time from which
        it may be reaped.
      type: str
    error:
      description: Why deregistering failed (the task fails).
      type: str
      returned: when deregistering failed
kept:
  description: Registrations (and asked-for names) not reaped, each with the fields of RV(reaped) and its C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "core-command", "id": "core-command", "reason": "its executor says it is running"}]
source:
  description: The registry asked, V(consul), V(keeper) or V(manifest).
  returned: always
  type: str
  sample: consul
"""

import time

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import SELF_ENTRY, check_health
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.ledger import LEDGER_PATH, Ledger
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.reaping import REQUIRE_TARGET, ReapingRun
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.select import pick
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule, TaskFailed


def registrations(entries):
    return "".join("%s (%s)\n" % (e["name"], e["id"]) for e in entries)


class ReapModule(GatewayModule):
    gateway = True
    options = dict(critical_for=dict(type="float", default=300.0), state_path=dict(type="path", default=LEDGER_PATH),
                   require_target=dict(type="str", default="absent", choices=list(REQUIRE_TARGET)))
    positive = ("probe_timeout",)
    non_negative = ("critical_for",)

    def run(self):
        params, names = self.params, self.requested_names()
        if self.settings["registry_type"] == "none":
            raise TaskFailed("registry_type none has no registrations to reap; use consul, keeper or manifest")
        # The registry itself, without the manifest fallback: a fallback cannot be reaped from.
        selection = self.select([params["node"]], None, fallback=False)
        registered = [s for s in selection.services if s.registered and SELF_ENTRY.get(selection.source) != s.name]
        services, missing = pick(registered, names)
        results = check_health(services, selection.source, self.executors, params["probe_timeout"])
        run = ReapingRun(params["node"], services, results, self.executors, params["critical_for"],
                         params["require_target"], time.time(), names)
        registry = self.registry()
        deregister = None if self.check_mode else (lambda s: registry.deregister(s.id, node=s.node))
        Ledger(params["state_path"]).update(lambda ledger: run.decide_and_deregister(ledger, deregister),
                                            check_mode=self.check_mode)
        reaped, kept = run.split()
        kept += [dict(name=name, node=params["node"], reason="not registered on %s" % params["node"]) for name in missing]
        gone = {e["id"] for e in reaped if not e.get("error")}
        result = dict(changed=bool(gone), reaped=reaped, kept=kept, source=selection.source)
        if self.diff_mode:
            present = sorted(reaped + [e for e in kept if e.get("id")], key=lambda e: (e["name"], e["id"]))
            result["diff"] = self.text_diff(registrations(present),
                                            registrations(e for e in present if e["id"] not in gone))
        failed = [e for e in reaped if e.get("error")]
        if failed:
            raise TaskFailed("could not deregister %s" % "; ".join("%s: %s" % (e["id"], e["error"]) for e in failed),
                             **result)
        return result


def main():
    ReapModule.main()


if __name__ == "__main__":
    main()
