#!/usr/bin/env python3
"""Where the control bench's time goes: edgex_service's restart levels and its fixed cost.

    PYTHONPATH=. .venv/bin/python bench/control/profile.py [--rounds 3] [--out bench/out/control]

Not run by bench/run.sh. Starts the same 12 stand-in containers as bench/control/run.py (test-bed
lock held, removed at the end) and measures, without changing any plugin code:

1. The restart levels, in-process: BatchControl.run(state=restarted) of the collection's own
   module_utils, with the executor and the probe wrapped to time each docker restart call, each
   state read and each probe, and time.sleep wrapped to sum the polling pauses. Once with the
   shipped poll interval (0.25 s) and once with --fast-poll (default 0.02 s): the difference is
   what a shorter first poll would save per run.
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
    parser.add_argument("--fast-poll", type=float, default=0.02, help="the shorter poll interval to compare")
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out", "control"))
    return parser.parse_args(argv)


def collection_path():
    paths = (os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(REPO, ".collections")).split(os.pathsep)
    return [os.path.abspath(p) for p in paths]


class Timed(object):
    """Wraps an executor: seconds per call of restart/state, thread-safe."""

    def __init__(self, inner):
        self.inner = inner
        self.lock = threading.Lock()
        self.calls = []  # (method, target, seconds)

    def _timed(self, method, target, *args, **kwargs):
        started = time.perf_counter()
        try:
            return getattr(self.inner, method)(target, *args, **kwargs)
        finally:
            with self.lock:
                self.calls.append((method, target, time.perf_counter() - started))

    def state(self, target):
        return self._timed("state", target)

    def restart(self, target, timeout=None):
        return self._timed("restart", target, timeout=timeout)

    def start(self, target):
        return self._timed("start", target)

    def stop(self, target, timeout=None):
        return self._timed("stop", target, timeout=timeout)


def profile_levels(planned, control_mod, executor_mod, poll_interval, rounds, wait_listening):
    """[{level: [...], wall, restart_max, probes, sleeps, sleep_seconds}] per round."""
    out = []
    for _ in range(rounds):
        timed = Timed(executor_mod.get_executor("docker", stop_timeout=5))
        counters = {"probes": 0, "probe_seconds": 0.0, "sleeps": 0, "sleep_seconds": 0.0}
        lock = threading.Lock()

        def probe(service, timeout=2.0):
            started = time.perf_counter()
            ok = control_mod.is_up(service, timeout)
            with lock:
                counters["probes"] += 1
                counters["probe_seconds"] += time.perf_counter() - started
            return ok

        def sleep(seconds):
            with lock:
                counters["sleeps"] += 1
                counters["sleep_seconds"] += seconds
            time.sleep(seconds)

        control = control_mod.BatchControl({"docker": timed}, wait_timeout=60, stop_timeout=5, probe=probe,
                                           sleep=sleep, poll_interval=poll_interval)
        levels = control.levels(planned, "restarted")
        started = time.perf_counter()
        results = control.run(planned, "restarted")
        wall = time.perf_counter() - started
        elapsed = {r["name"]: r["elapsed"] for r in results}
        target_of = {p.name: p.target for p in planned}
        restart_of = {t: s for m, t, s in timed.calls if m == "restart"}
        out.append({
            "wall": round(wall, 3),
            "levels": [{"services": level,
                        "seconds": round(max(elapsed[n] for n in level), 3),
                        "restart_call_max": round(max(restart_of[target_of[n]] for n in level), 3)}
                       for level in levels],
            "state_reads": sum(1 for m, _, _ in timed.calls if m == "state"),
            "probes": counters["probes"], "probe_seconds": round(counters["probe_seconds"], 3),
            "sleeps": counters["sleeps"], "sleep_seconds": round(counters["sleep_seconds"], 3),
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
    from ansible_collections.edgex.sysmgmt.plugins.module_utils import _control, _executor
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest import ManifestStore
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
                for label, interval in (("shipped_poll_0.25", 0.25), ("fast_poll_%g" % args.fast_poll,
                                                                     args.fast_poll)):
                    report[label] = profile_levels(planned, _control, _executor, interval, args.rounds,
                                                   wait_listening)
                    walls = [r["wall"] for r in report[label]]
                    print("%-18s control.run(restarted) median %.2fs  (runs %s)" % (
                        label, statistics.median(walls), ", ".join("%.2f" % w for w in walls)), flush=True)
                    last = report[label][-1]
                    for level in last["levels"]:
                        print("    level %-70s %.2fs (slowest docker restart call %.2fs)" % (
                            "[%s]" % ", ".join(level["services"]), level["seconds"], level["restart_call_max"]))
                    print("    %d state reads, %d probes (%.2fs), %d poll pauses (%.2fs of sleep summed over threads)"
                          % (last["state_reads"], last["probes"], last["probe_seconds"], last["sleeps"],
                             last["sleep_seconds"]))
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
