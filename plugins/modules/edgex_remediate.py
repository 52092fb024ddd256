#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: edgex_remediate
short_description: Restart unhealthy EdgeX services of a gateway, with grace, back-off and a restart limit
version_added: 0.1.0
description:
  - Checks the health of the EdgeX services of one registry node (the gateway this task runs on)
    as M(edgex.sysmgmt.edgex_health) does with O(edgex.sysmgmt.edgex_health#module:check_executor=true),
    and restarts those that have been V(unhealthy) for longer than O(grace) through their executor
    (Docker SDK, docker compose, systemd or snap), in dependency order; then checks them again.
  - Only V(unhealthy) services are restarted. A V(degraded) service answers its ping, a V(unknown)
    one has nothing to judge it by, and a service whose target is V(absent) has nothing to
    restart (M(edgex.sysmgmt.edgex_reap) removes its registration).
  - A service is restarted at most O(max_restarts) times within O(window) seconds, with exponential
    back-off between attempts; at the limit it is reported in RV(gave_up) and left alone until the
    oldest attempt leaves the window. A service seen healthy starts again from a clean record.
  - Because one run sees one moment, the ledger at O(state_path) on the gateway remembers across
    runs since when each service is unhealthy and when it was restarted. Run the task
    periodically (cron, AWX schedule, systemd timer); the policy decides, not the schedule.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
extends_documentation_fragment:
  - edgex.sysmgmt.registry.modules
  - edgex.sysmgmt.registry.actiongroup_registry
  - edgex.sysmgmt.executor
attributes:
  check_mode:
    description: Checks health and reports what would be restarted, waited for or given up on; restarts
      nothing and writes nothing (the ledger stays untouched).
    support: full
  diff_mode:
    description: Shows the ledger before and after.
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
    default: [all]
  node:
    description: The registry node (Consul node name, manifest host) whose services to check and restart.
    type: str
    required: true
  grace:
    description:
      - Seconds a service must have been seen unhealthy (by this or earlier runs) before it is restarted,
        so that a service that is starting or briefly overloaded is left alone.
      - With V(0) a service is restarted on the first run that sees it unhealthy.
    type: float
    default: 60
  max_restarts:
    description:
      - Restarts of one service allowed within O(window). At the limit the service is given up on.
      - V(0) never restarts and reports unhealthy services as given up once O(grace) has passed.
    type: int
    default: 3
  window:
    description: Seconds over which O(max_restarts) counts restarts; older attempts are forgotten.
    type: float
    default: 3600
  backoff:
    description:
      - Seconds between the first restart and the next; each further one waits twice as long
        (an attempt is allowed when the last one is at least O(backoff) * 2^(attempts in the window - 1)
        seconds ago).
    type: float
    default: 30
  state_path:
    description:
      - The ledger, a JSON file on the gateway, written atomically under a lock (C(<state_path>.lock)).
        Its directory is created when missing. M(edgex.sysmgmt.edgex_reap) uses the same file.
      - A ledger that is not valid fails the task and is never overwritten; fix or remove it.
    type: path
    default: /var/lib/edgex-sysmgmt/remediation.json
  wait_timeout:
    description:
      - Seconds each restarted service may take to run and answer on its health endpoint; also how long
        the check after the restarts waits for them to become healthy.
    type: float
    default: 60
  probe_timeout:
    description:
      - Seconds one service may take to answer its health probe, name lookups, connect and every read
        included. Services are probed by kind and at the address M(edgex.sysmgmt.edgex_health) describes.
    type: float
    default: 3.0
  stop_timeout:
    description: Seconds a service may take to stop during its restart before it is killed.
    type: int
    default: 10
notes:
  - A restart that fails (the service exits again at once, or does not answer within O(wait_timeout))
    counts as an attempt, is reported with its C(error) and as a warning, and does not fail the task.
    Services that depend on it are not restarted in that run.
  - The Docker executor reports a container killed by a signal (exit code 137 or 143, as after
    C(docker kill)) as V(stopped), and that is restarted like a crash. Leave services that are
    stopped on purpose out of O(name).
  - The ledger's times are wall-clock seconds; a large clock jump makes waits shorter or longer once.
seealso:
  - module: edgex.sysmgmt.edgex_health
  - module: edgex.sysmgmt.edgex_reap
  - module: edgex.sysmgmt.edgex_service
"""

EXAMPLES = r"""
- name: Restart what has been unhealthy for two minutes, at most 3 times an hour
  edgex.sysmgmt.edgex_remediate:
    node: "{{ inventory_hostname }}"
    grace: 120
    max_restarts: 3
    window: 3600
    backoff: 60
    manifest_path: /var/lib/edgex/manifest.yml
  register: remediation

- name: Tell someone about the services given up on
  ansible.builtin.debug:
    msg: "Given up on {{ remediation.gave_up | join(', ') }}"
  when: remediation.gave_up | length > 0

- name: What would be restarted, without the registry (manifest only)?
  edgex.sysmgmt.edgex_remediate:
    name: [core-data, core-metadata]
    node: gw1
    registry_type: none
    manifest_path: /var/lib/edgex/manifest.yml
  check_mode: true
"""

RETURN = r"""
services:
  description: One entry per service checked, in registry order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service key.
      type: str
      sample: core-data
    node:
      description: Registry node.
      type: str
      sample: gw1
    verdict:
      description: Health verdict before any restart, V(healthy), V(degraded), V(unhealthy) or V(unknown).
      type: str
      sample: unhealthy
    reasons:
      description: Why the verdict is not V(healthy).
      type: list
      elements: str
      sample: ["ping failed: connection refused", "container failed"]
    executor_state:
      description: What the executor reported, V(running), V(stopped), V(absent) or V(failed).
      type: str
      sample: failed
    action:
      description: V(restart) (restarted, or would be in check mode), V(wait) (in grace or back-off),
        V(give_up) (O(max_restarts) reached within O(window)) or V(none).
      type: str
      sample: restart
    reason:
      description: Why this action.
      type: str
      sample: "unhealthy for 75s; restart 1 of at most 3 within 3600s"
    next_eligible:
      description: When waiting or given up, the UTC time from which a restart is allowed again.
      type: str
      sample: "2026-05-04T10:15:00Z"
    restarts_in_window:
      description: Restarts within O(window), this run's included.
      type: int
      sample: 1
    error:
      description: Why the restart did not bring the service up.
      type: str
      returned: when a restart failed
    skipped:
      description: Why it was not restarted after all (a dependency's restart failed).
      type: str
      returned: when skipped
    verdict_after:
      description: Verdict when checked again after the restart.
      type: str
      returned: when restarted and it came up
      sample: healthy
    reasons_after:
      description: Reasons for RV(services[].verdict_after).
      type: list
      elements: str
      returned: when restarted and it came up
restarted:
  description: Services restarted (in check mode, that would be), whether or not they came up.
  returned: always
  type: list
  elements: str
  sample: [core-data]
gave_up:
  description: Unhealthy services not restarted because they reached O(max_restarts) within O(window).
  returned: always
  type: list
  elements: str
  sample: [core-command]
waiting:
  description: Unhealthy services in their grace period or back-off, with C(name), C(reason),
    C(next_eligible) (UTC) and C(next_eligible_in) (seconds).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "core-command", "reason": "unhealthy for 12s, within the grace of 60s",
            "next_eligible": "2026-05-04T10:15:00Z", "next_eligible_in": 48.0}]
healthy:
  description: Services healthy at the end of the run (after their restart, if restarted).
  returned: always
  type: list
  elements: str
  sample: [core-data, core-metadata]
source:
  description: Where the services came from, V(consul), V(keeper) or V(manifest).
  returned: always
  type: str
  sample: consul
manifest_age:
  description: Age in seconds of the manifest when it stood in for the registry.
  returned: when source is manifest
  type: float
"""

import time

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.control import BatchControl, ControlError, plan
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import HealthCheck, check_health
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.ledger import LEDGER_PATH, Ledger, ledger_text
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.remediation import Policy, RemediationRun
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule, TaskFailed


class RemediateModule(GatewayModule):
    gateway = True
    engine_timeout_option = "wait_timeout"
    options = dict(grace=dict(type="float", default=60.0), max_restarts=dict(type="int", default=3),
                   window=dict(type="float", default=3600.0), backoff=dict(type="float", default=30.0),
                   state_path=dict(type="path", default=LEDGER_PATH), wait_timeout=dict(type="float", default=60.0),
                   stop_timeout=dict(type="int", default=10))
    positive = ("probe_timeout",)
    non_negative = ("wait_timeout",)

    def run(self):
        params, names = self.params, self.requested_names()
        policy = Policy(params["grace"], params["max_restarts"], params["window"], params["backoff"])
        if policy.problems():
            raise TaskFailed("; ".join(policy.problems()))
        services = self.select([params["node"]], names).require_known()
        results = check_health(services, self.discovery.source, self.executors, params["probe_timeout"])
        run = RemediationRun(params["node"], results, policy, time.time(), names)
        _changed, before, after = Ledger(params["state_path"]).update(
            lambda ledger: run.decide_and_restart(ledger, self.restart), check_mode=self.check_mode)
        for name, error in run.failed_restarts().items():
            self.module.warn("restarting %s did not bring it up: %s" % (name, error))
        result = run.report(self.recheck(run.came_up()))
        result.update(changed=bool(result["restarted"]), **self.facts())
        if self.diff_mode:
            result["diff"] = self.text_diff(ledger_text(before), ledger_text(after), params["state_path"])
        return result

    def restart(self, names):
        """Restarts ``names`` in dependency order; per-service results, failures included."""
        params = self.params
        planned = plan(self.discovery, self.manifest(), params["node"], names, params["executor"], params["project"])
        control = BatchControl(self.executors, wait_timeout=params["wait_timeout"], stop_timeout=params["stop_timeout"],
                               check_mode=self.check_mode)
        try:
            return control.run(planned, "restarted")
        except ControlError as exc:
            return exc.results

    def recheck(self, names):
        """name -> HealthResult of the services that came up again, once healthy or after wait_timeout
        (a registry check may stay critical until its next interval)."""
        if not names or self.check_mode:
            return {}
        health = HealthCheck(lambda: self.select([self.params["node"]], names), self.params["probe_timeout"],
                             executors=self.executors)
        return {r.name: r for r in health.wait(self.params["wait_timeout"])[0]}


def main():
    RemediateModule.main()


if __name__ == "__main__":
    main()
