#!/usr/bin/env python3
"""Metrics bench: one edgex_metrics task vs a loop of `docker stats --no-stream <container>`, on 12 containers.

One run starts 12 stand-in containers (host network, names bench-metrics-<service>) described by a
manifest (registry_type none) and measures, side by side, ansible-playbook running:

  a  edgex_metrics       ONE edgex.sysmgmt.edgex_metrics task: name all, interval 1 s (every container
                         read twice from the engine, concurrently, one interval for all)
  b  docker_stats_loop   ansible.builtin.command `docker stats --no-stream <container>` in a loop over the
                         12 containers (what a user writes without the module; the CLI waits for the
                         engine's own two samples of each container, one container after the other)
  c  noop_ping           ansible.builtin.ping in the same play shape (the floor of one task; informational)

a must report all 12 running with a CPU % and memory; b must give 12 answers with exit code 0.
Wall time is the ansible-playbook process; task time the task's own duration (ansible.posix.json).
Targets (from --repeat runs, default one, as the issue asks for "a ratio from one run"):
  a at least 5x faster than b          (b task >= 5 x a task)
  a within one interval + 1 s           (a task <= interval + 1 s)
The machine's load average (1, 5, 15 min) before and after is recorded: on a shared machine it decides
how far b's per-container CLI start-ups and a's thread pool get in a second.

Run through bench/run.sh, or: PYTHONPATH=. ANSIBLE_COLLECTIONS_PATH=.collections .venv/bin/python bench/metrics/run.py
Needs Docker (holds the test-bed lock /tmp/edgex-testbed.lock while its containers run; removes them at
the end, also on failure). Exit code: 0 even when a target fails, 1 with --strict when a target fails;
2 when the bench could not measure.
"""

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.common import (BenchError, bench_parser, clean_out, containers_named, docker, finish,  # noqa: E402
                          playbook_env, print_targets, remove_containers, report_header, run_bench, run_playbook,
                          summarize_runs, tool, work_dir)
from tests.testbed.fixtures_consul import free_port, wait_listening  # noqa: E402
from tests.testbed.images import LABEL  # noqa: E402

NODE = "benchgw"
PREFIX = "bench-metrics-"
SERVICES = ("core-metadata", "core-data", "core-command", "support-notifications", "support-scheduler",
            "device-virtual", "device-rest", "device-modbus", "device-mqtt", "app-rules-engine",
            "app-external-mqtt-trigger", "app-http-export")
SPEEDUP_TARGET = 5.0   # a at least this many times faster than b
SLACK = 1.0            # a within interval + this many seconds
VARIANTS = (("edgex_metrics", "a"), ("docker_stats_loop", "b"), ("noop_ping", "c"))


def parse_args(argv=None):
    parser = bench_parser(__doc__, "metrics", repeat_help="runs per variant; times are medians (default 1)")
    parser.set_defaults(repeat=1)
    parser.add_argument("--interval", type=float, default=1.0, help="edgex_metrics' interval in seconds (default 1)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.interval <= 0:
        parser.error("--repeat must be >= 1 and --interval > 0")
    return args


def our_containers():
    return containers_named(PREFIX)


def load_average():
    return [round(value, 2) for value in os.getloadavg()]


class Bench(object):
    def __init__(self, args):
        self.args = args
        self.playbook_bin = tool("ansible-playbook")
        self.runs = {name: [] for name, _ in VARIANTS}
        self.containers = {}
        self.ports = {}

    def start_containers(self):
        from tests.testbed.images import standin_image

        image = standin_image()
        remove_containers(our_containers())  # left over by a killed run
        for service in SERVICES:
            self.containers[service] = PREFIX + service
            self.ports[service] = free_port()
            docker("run", "-d", "--pull", "never", "--name", self.containers[service], "--network", "host",
                   "--label", LABEL, "--label", "edgex.bench=metrics", "--label", "edgex.service=%s" % service,
                   "--stop-timeout", "5", image, "--service", service, "--host", "127.0.0.1",
                   "--port", str(self.ports[service]), "--kind", "api", "--registry", "none")
        for service, port in self.ports.items():
            try:
                wait_listening("127.0.0.1", port, 60)
            except RuntimeError as exc:
                raise BenchError("%s (%s) is not listening: %s" % (service, self.containers[service], exc))
        return image

    def write_files(self):
        import yaml

        services = {s: {"executor": "docker", "target": self.containers[s], "address": "127.0.0.1",
                        "port": self.ports[s], "health": "/api/v3/ping"} for s in SERVICES}
        self.manifest = os.path.join(self.work, "manifest.yml")
        with open(self.manifest, "w") as handle:
            yaml.safe_dump({"version": 1, "generated_from": "manual", "hosts": {NODE: {
                "address": "127.0.0.1", "services": services}}}, handle, sort_keys=False)
        head = "- hosts: localhost\n  gather_facts: false\n  connection: local\n"
        self.playbooks = {}

        def write(name, text):
            path = os.path.join(self.work, "%s.yml" % name)
            with open(path, "w") as handle:
                handle.write(text)
            self.playbooks[name] = path
            shutil.copy(path, os.path.join(self.args.out, os.path.basename(path)))

        module_args = {"node": NODE, "registry_type": "none", "manifest_path": self.manifest,
                       "interval": self.args.interval}
        write("edgex_metrics", head + "  tasks:\n    - name: metrics of every EdgeX service\n"
              "      edgex.sysmgmt.edgex_metrics: %s\n" % json.dumps(module_args))
        write("docker_stats_loop", head + "  vars:\n    containers: %s\n  tasks:\n"
              "    - name: docker stats of every EdgeX container\n"
              "      ansible.builtin.command:\n"
              "        argv: [docker, stats, --no-stream, \"{{ item }}\"]\n"
              "      loop: \"{{ containers }}\"\n"
              "      changed_when: false\n" % json.dumps([self.containers[s] for s in SERVICES]))
        write("noop_ping", head + "  tasks:\n    - name: ping\n      ansible.builtin.ping:\n")
        shutil.copy(self.manifest, os.path.join(self.args.out, "manifest.yml"))

    def measure(self, name, label):
        load_before = load_average()
        wall, task_seconds, result = run_playbook(self.playbook_bin, self.playbooks[name], self.work, self.env,
                                                  os.path.join(self.args.out, "%s.log" % name), label, timeout=900)
        run = {"wall": round(wall, 3), "task_seconds": round(task_seconds, 3), "load_before": load_before,
               "load_after": load_average()}
        if name == "edgex_metrics":
            services = result.get("services", [])
            measured = [s for s in services if s["state"] == "running" and s["cpu_percent"] is not None
                        and s["memory_used"]]
            if len(measured) != len(SERVICES):
                raise BenchError("edgex_metrics measured %d of %d containers: %s" % (
                    len(measured), len(SERVICES), [(s["name"], s["state"], s["reason"]) for s in services]))
            run["module_elapsed"] = result.get("elapsed")
            run["cpu_percent"] = {s["name"]: s["cpu_percent"] for s in services}
        elif name == "docker_stats_loop":
            items = result.get("results", [])
            if len(items) != len(SERVICES) or any(i.get("rc") != 0 for i in items):
                raise BenchError("docker stats did not answer for every container: %s" % [
                    (i.get("item"), i.get("rc"), i.get("stderr")) for i in items])
            run["per_container"] = round(task_seconds / len(SERVICES), 3)
        self.runs[name].append(run)
        print("  %-18s %s: wall %6.2fs  task %6.2fs  load %s" % (name, label, wall, task_seconds,
                                                                  "/".join(str(v) for v in run["load_after"])),
              flush=True)

    def run(self):
        if subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            raise BenchError("no Docker engine answers (docker info failed)")
        clean_out(self.args.out)
        from tests.testbed.testbed import Lock

        with work_dir("metrics") as self.work:
            self.env = playbook_env(self.work)
            with Lock():
                try:
                    image = self.start_containers()
                    self.write_files()
                    print("%d stand-in containers (%s)" % (len(SERVICES), image), flush=True)
                    return self._run(image)
                finally:
                    remove_containers(list(self.containers.values()) + our_containers())

    def _run(self, image):
        args = self.args
        self.play_warm_up()
        for number in range(1, args.repeat + 1):
            for name, _letter in VARIANTS:
                self.measure(name, "run %d/%d" % (number, args.repeat))
        summary = summarize_runs(self.runs, VARIANTS)
        a, b = summary["edgex_metrics"], summary["docker_stats_loop"]
        speedup = b["task_median"] / a["task_median"]
        limit = args.interval + SLACK
        targets = [
            {"name": "a edgex_metrics >= %.0fx faster than b docker stats loop (b task / a task)" % SPEEDUP_TARGET,
             "value": round(speedup, 2), "limit": ">= %.1f" % SPEEDUP_TARGET, "pass": speedup >= SPEEDUP_TARGET},
            {"name": "a edgex_metrics task <= interval + %.0f s" % SLACK,
             "value": round(a["task_median"], 2), "limit": "<= %.1f" % limit, "pass": a["task_median"] <= limit},
        ]
        report = dict(report_header("metrics"), **{
            "params": {"services": len(SERVICES), "repeat": args.repeat, "interval": args.interval},
            "containers": self.containers, "image": image, "ansible_playbook": self.playbook_bin,
            "load_average": load_average(), "variants": summary, "targets": targets})
        return finish(report, args.out, print_table)

    def play_warm_up(self):
        """Untimed: the page cache for ansible, the modules and the docker CLI."""
        for name in ("noop_ping", "edgex_metrics"):
            run_playbook(self.playbook_bin, self.playbooks[name], self.work, self.env,
                         os.path.join(self.args.out, "%s.log" % name), "warm-up", timeout=900)
        docker("stats", "--no-stream", self.containers[SERVICES[0]])


def print_table(report):
    variants = report["variants"]
    print()
    print("metrics bench: %(services)d stand-in containers, interval %(interval)ss, median of %(repeat)d run(s)"
          % report["params"])
    print("%-2s %-18s %8s %8s %12s" % ("", "variant", "wall s", "task s", "task ratio"))
    base = variants["edgex_metrics"]["task_median"]
    for name, letter in VARIANTS:
        v = variants[name]
        print("%-2s %-18s %8.2f %8.2f %11.2fx" % (letter, name, v["wall_median"], v["task_median"],
                                                   v["task_median"] / base))
    print("(wall = the ansible-playbook process; task = the task's own duration from the json callback;")
    print(" ratios against a)")
    last = variants["edgex_metrics"]["runs"][-1]
    print("edgex_metrics' own elapsed (module, last run): %.2fs" % last["module_elapsed"])
    loop = variants["docker_stats_loop"]["runs"][-1]
    print("docker stats loop: %.2fs per container" % loop["per_container"])
    print("load average (1/5/15 min): before a %s, after the last run %s, %d CPUs" % (
        "/".join(str(v) for v in last["load_before"]), "/".join(str(v) for v in report["load_average"]),
        report["cpus"]))
    print()
    print_targets(report["targets"])


def main(argv=None):
    return run_bench(Bench, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
