#!/usr/bin/env python3
"""Where the control bench's time goes: edgex_service's restart, level by level, and its fixed cost.

    PYTHONPATH=. .venv/bin/python bench/control/profile.py [--rounds 3] [--out bench/out/control]

Not run by bench/run.sh. Starts the same 12 stand-in containers as bench/control/run.py (test-bed
lock held, removed at the end) and measures, without changing any plugin code:

1. The restart, in-process: BatchControl.run(state=restarted) of the collection's own
   module_utils with the executor and the probe wrapped, so that every docker call (stop, start,
   restart, state read) and the moment each service first answers are put on one timeline.
   Printed per level: when its stop (run while the level before restarts) and its start or
   restart began and ended, and when its last service answered.
2. The fixed cost of one edgex_service task against ansible.builtin.ping: the AnsiballZ payload
   build on the controller (module_common.modify_module, a fresh process each), the module process
   run alone (the payload kept with ANSIBLE_KEEP_REMOTE_FILES and run with the venv python), and
   its imports by package (python -X importtime).

Writes profile.json next to results.json.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import run as bench  # noqa: E402  (bench/control/run.py)
from bench.common import playbook_env  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out", "control"))
    return parser.parse_args(argv)


def collection_path():
    paths = (os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(REPO, ".collections")).split(os.pathsep)
    return [os.path.abspath(p) for p in paths]


class Timeline(object):
    """Wraps an executor and a probe: (seconds since start, event, target, seconds it took), thread-safe."""

    def __init__(self, inner, is_up):
        self.inner = inner
        self.is_up = is_up
        self.lock = threading.Lock()
        self.events = []
        self.origin = time.perf_counter()

    def _add(self, event, target, began, seconds=0.0):
        with self.lock:
            self.events.append((round(began - self.origin, 3), event, target, round(seconds, 3)))

    def _timed(self, method, target, *args, **kwargs):
        began = time.perf_counter()
        try:
            return getattr(self.inner, method)(target, *args, **kwargs)
        finally:
            self._add(method, target, began, time.perf_counter() - began)

    def state(self, target):
        return self._timed("state", target)

    def restart(self, target, timeout=None):
        return self._timed("restart", target, timeout=timeout)

    def start(self, target):
        return self._timed("start", target)

    def stop(self, target, timeout=None):
        return self._timed("stop", target, timeout=timeout)

    def probe(self, service, timeout=2.0):
        began = time.perf_counter()
        answered = self.is_up(service, timeout)
        self._add("answered" if answered else "probe", service.target, began, time.perf_counter() - began)
        return answered


def level_timeline(levels, target_of, events):
    """Per level: when its stops, its starts/restarts ran, and when its last service answered."""
    out = []
    for level in levels:
        targets = {target_of[name] for name in level}

        def span(kinds):
            hits = [(at, at + took) for at, event, target, took in events if event in kinds and target in targets]
            return [min(h[0] for h in hits), max(h[1] for h in hits)] if hits else None

        answered = [at + took for at, event, target, took in events if event == "answered" and target in targets]
        out.append({"services": level, "stop": span(("stop",)), "start": span(("start", "restart")),
                    "answered": round(max(answered), 3) if answered else None})
    return out


def profile_restart(planned, control_mod, executor_mod, rounds, wait_listening):
    """[{wall, levels: [...], state_reads, probes}] per round."""
    out = []
    target_of = {p.name: p.target for p in planned}
    for _ in range(rounds):
        timeline = Timeline(executor_mod.get_executor("docker", stop_timeout=5), control_mod.is_up)
        control = control_mod.BatchControl({"docker": timeline}, wait_timeout=60, stop_timeout=5,
                                           probe=timeline.probe)
        levels = control.levels(planned, "restarted")
        timeline.origin = time.perf_counter()
        control.run(planned, "restarted")
        wall = time.perf_counter() - timeline.origin
        out.append({
            "wall": round(wall, 3),
            "levels": level_timeline(levels, target_of, timeline.events),
            "state_reads": sum(1 for e in timeline.events if e[1] == "state"),
            "probes": sum(1 for e in timeline.events if e[1] in ("probe", "answered")),
        })
        for p in planned:  # let every stand-in finish starting before the next round
            wait_listening(p.address, p.port, 30)
        time.sleep(0.5)
    return out


def import_breakdown(argv, env, cwd):
    """python -X importtime: self time per top-level package, in ms."""
    proc = subprocess.run([sys.executable, "-X", "importtime"] + argv, capture_output=True, text=True, env=env,
                          cwd=cwd)
    totals = {}
    for line in proc.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not found:
            continue
        name = found.group(4)
        if name.startswith("ansible_collections.edgex"):
            key = "edgex module_utils"
        elif name.startswith("ansible.module_utils"):
            key = "ansible.module_utils"
        elif name.split(".")[0] in ("docker", "requests", "urllib3", "charset_normalizer", "idna", "certifi"):
            key = "docker SDK (+requests, urllib3)"
        else:
            key = name.split(".")[0]
        totals[key] = totals.get(key, 0) + int(found.group(1))
    return {k: round(v / 1000.0, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:12]}


BUILD = r"""
import sys, time
from ansible.plugins.loader import module_loader, init_plugin_loader
init_plugin_loader(sys.argv[2].split(":"))
from ansible.executor import module_common
from ansible.template import Templar
ctx = module_loader.find_plugin_with_context(sys.argv[1])
started = time.perf_counter()
built = module_common.modify_module(module_name=ctx.plugin_resolved_name, module_path=ctx.plugin_resolved_path,
                                    module_args={}, templar=Templar(loader=None),
                                    task_vars={"ansible_playbook_python": sys.executable}, remote_is_local=True)
print("%.4f %d" % (time.perf_counter() - started, len(built.b_module_data)))
"""


def fixed_cost(b, rounds):
    out = {"build_seconds": {}, "payload_bytes": {}, "module_process_seconds": {}, "imports_ms": {}}
    collections = ":".join(collection_path())
    for module in ("ansible.builtin.ping", "edgex.sysmgmt.edgex_service"):
        runs = []
        for _ in range(rounds):
            proc = subprocess.run([sys.executable, "-c", BUILD, module, collections], capture_output=True, text=True,
                                  env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections))
            seconds, size = proc.stdout.split()
            runs.append(float(seconds))
        out["build_seconds"][module] = round(statistics.median(runs), 3)
        out["payload_bytes"][module] = int(size)
    keep = os.path.join(b.work, "keep")
    os.makedirs(keep, exist_ok=True)
    for playbook, module in (("noop_ping", "ping"), ("edgex_service_started", "edgex_service")):
        env = dict(b.env, ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_STDOUT_CALLBACK="default",
                   ANSIBLE_REMOTE_TMP=keep, ANSIBLE_LOCAL_TEMP=os.path.join(b.work, "local"))
        proc = subprocess.run([b.playbook_bin, "-i", "localhost,", "-vvv", b.playbooks[playbook]], env=env,
                              capture_output=True, text=True, cwd=b.work)
        found = [f.strip("'\"") for f in re.findall(r"(\S+/AnsiballZ_%s\.py)" % module, proc.stdout)]
        found = [f for f in found if os.path.exists(f)]
        if not found:
            out["module_process_seconds"][module] = None
            continue
        payload = os.path.join(b.work, "AnsiballZ_%s.py" % module)
        shutil.copy(found[0], payload)
        runs = []
        for _ in range(rounds):
            started = time.perf_counter()
            subprocess.run([sys.executable, payload], capture_output=True, cwd=b.work, env=b.env)
            runs.append(time.perf_counter() - started)
        out["module_process_seconds"][module] = round(statistics.median(runs), 3)
        out["imports_ms"][module] = import_breakdown([payload], b.env, b.work)
    return out


def main(argv=None):
    args = parse_args(argv)
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    for path in collection_path():
        if path not in sys.path:
            sys.path.insert(0, path)
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway import control as _control
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors import factory as _executor
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore
    from tests.testbed.fixtures_consul import wait_listening
    from tests.testbed.testbed import Lock

    b = bench.Bench(bench.parse_args(["--out", args.out]))
    b.work = tempfile.mkdtemp(prefix="edgex-bench-control-profile-")
    b.env = playbook_env(b.work)
    report = {}
    try:
        with Lock():
            try:
                b.start_containers()
                b.write_files()
                discovery = ManifestStore(b.manifest).to_discovery()
                planned = _control.plan(discovery, discovery, bench.NODE, ["all"])
                report["restart"] = runs = profile_restart(planned, _control, _executor, args.rounds, wait_listening)
                walls = [r["wall"] for r in runs]
                print("control.run(restarted) median %.2fs  (runs %s)" % (
                    statistics.median(walls), ", ".join("%.2f" % w for w in walls)), flush=True)
                last = runs[-1]
                for level in last["levels"]:
                    print("    %-64s stop %-11s start %-11s answered %s" % (
                        "[%s]" % ", ".join(level["services"]),
                        "%.2f-%.2f" % tuple(level["stop"]) if level["stop"] else "-",
                        "%.2f-%.2f" % tuple(level["start"]) if level["start"] else "-", level["answered"]))
                print("    %d state reads, %d probes" % (last["state_reads"], last["probes"]))
                report["fixed_cost"] = cost = fixed_cost(b, args.rounds)
            finally:
                bench.remove_containers(list(b.containers.values()) + bench.our_containers())
    finally:
        shutil.rmtree(b.work, ignore_errors=True)
    print("AnsiballZ build on the controller (fresh process, median): %s" % json.dumps(cost["build_seconds"]))
    print("payload bytes: %s" % json.dumps(cost["payload_bytes"]))
    print("module process alone (median): %s" % json.dumps(cost["module_process_seconds"]))
    for module, imports in cost["imports_ms"].items():
        print("imports of %s (self ms by package): %s" % (module, json.dumps(imports)))
    with open(os.path.join(args.out, "profile.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
