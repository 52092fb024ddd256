#!/usr/bin/env python3
"""Control bench: one edgex_service task vs a community.docker.docker_container loop, on 12 containers.

One run starts 12 stand-in containers (host network, names bench-edgex-<service>) described by a
manifest (registry_type none) and measures, side by side, the wall time of ansible-playbook for:

  a  edgex_service_restart  ONE edgex.sysmgmt.edgex_service task: name all, state restarted
                            (level by level, each level waited for on its ping before the next)
  b  docker_container_loop  community.docker.docker_container in a loop over the 12 containers:
                            name, state started, restart true (what a user writes otherwise;
                            restarts one container after the other and waits for none)
  c  edgex_service_started  edgex_service name all, state started on services that already run
                            (the idempotent re-run: nothing to do)
  d  noop_ping              ansible.builtin.ping in the same play shape (the floor of one task)

a and b must really restart all 12 (StartedAt changes, the container Id does not: no
re-creation); c must change nothing. Wall time is the ansible-playbook process, median of
--repeat rounds (a, b, c, d in each round). Targets:
  a at least 3x faster than b       (b wall >= 3 x a wall)
  c at most 1.2x d                  (c wall <= 1.2 x d wall)

Run through bench/run.sh, or: PYTHONPATH=. ANSIBLE_COLLECTIONS_PATH=.collections .venv/bin/python bench/control/run.py
Needs Docker (holds the test-bed lock /tmp/edgex-testbed.lock while containers run; removes them at
the end, also on failure). Exit code: 0 even when a target fails, 1 with --strict when a target
fails; 2 when the bench could not measure (no Docker, a variant failed or did not do its job).
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
PREFIX = "bench-edgex-"
# 12 services; only the core services depend on core-metadata, so the levels are the EdgeX tiers:
# [core-metadata] [core-data, core-command] [support-*] [device-* and app-*]
SERVICES = {
    "core-metadata": [],
    "core-data": ["core-metadata"],
    "core-command": ["core-metadata"],
    "support-notifications": [],
    "support-scheduler": [],
    "device-virtual": [],
    "device-rest": [],
    "device-modbus": [],
    "device-mqtt": [],
    "app-rules-engine": [],
    "app-external-mqtt-trigger": [],
    "app-http-export": [],
}
SPEEDUP_TARGET = 3.0   # a at least this many times faster than b
NOOP_TARGET = 1.2      # c at most this many times d
VARIANTS = (
    ("edgex_service_restart", "a"),
    ("docker_container_loop", "b"),
    ("edgex_service_started", "c"),
    ("noop_ping", "d"),
)


def parse_args(argv=None):
    parser = bench_parser(__doc__, "control", repeat_help="rounds; wall time is the median (default 3)")
    parser.add_argument("--stop-timeout", type=int, default=5,
                        help="seconds docker waits for a container to stop, for both variants (default 5)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def our_containers():
    return containers_named(PREFIX)


def inspect(names):
    """{container: (Id, StartedAt, Running)}"""
    data = json.loads(docker("inspect", *names))
    return {d["Name"].lstrip("/"): (d["Id"], d["State"]["StartedAt"], d["State"]["Running"]) for d in data}


class Bench(object):
    def __init__(self, args):
        self.args = args
        self.playbook_bin = tool("ansible-playbook")
        self.runs = {name: [] for name, _ in VARIANTS}
        self.containers = {}   # service -> container
        self.ports = {}

    # -- set-up ------------------------------------------------------------------------
    def start_containers(self):
        from tests.testbed.images import standin_image

        image = standin_image()
        remove_containers(our_containers())  # left over by a killed run
        for service in SERVICES:
            port = free_port()
            name = PREFIX + service
            self.containers[service] = name
            self.ports[service] = port
            docker("run", "-d", "--name", name, "--network", "host", "--label", LABEL,
                   "--label", "edgex.bench=control", "--label", "edgex.service=%s" % service,
                   "--stop-timeout", str(self.args.stop_timeout), image,
                   "--service", service, "--host", "127.0.0.1", "--port", str(port), "--kind", "api",
                   "--registry", "none")
        self.wait_all_listening()
        return image

    def wait_all_listening(self, timeout=30.0):
        for service, port in self.ports.items():
            try:
                wait_listening("127.0.0.1", port, timeout)
            except RuntimeError as exc:
                raise BenchError("%s (%s) is not listening: %s" % (service, self.containers[service], exc))

    def write_files(self):
        import yaml

        services = {}
        for service, deps in SERVICES.items():
            services[service] = {"executor": "docker", "target": self.containers[service], "address": "127.0.0.1",
                                 "port": self.ports[service], "health": "/api/v3/ping", "depends_on": list(deps),
                                 "tags": [], "meta": {}}
        self.manifest = os.path.join(self.work, "manifest.yml")
        with open(self.manifest, "w") as handle:
            yaml.safe_dump({"version": 1, "generated_from": "manual", "hosts": {NODE: {
                "address": "127.0.0.1", "services": services}}}, handle, sort_keys=False)
        head = "- hosts: localhost\n  gather_facts: false\n  connection: local\n"
        module_args = {"node": NODE, "registry_type": "none", "manifest_path": self.manifest,
                       "stop_timeout": self.args.stop_timeout}
        self.playbooks = {}

        def write(name, text):
            path = os.path.join(self.work, "%s.yml" % name)
            with open(path, "w") as handle:
                handle.write(text)
            self.playbooks[name] = path

        write("edgex_service_restart", head + "  tasks:\n    - name: restart all EdgeX services\n"
              "      edgex.sysmgmt.edgex_service: %s\n" % json.dumps(dict(module_args, name="all", state="restarted")))
        write("docker_container_loop", head + "  vars:\n    containers: %s\n  tasks:\n"
              "    - name: restart every EdgeX container\n"
              "      community.docker.docker_container:\n"
              "        name: \"{{ item }}\"\n"
              "        state: started\n"
              "        restart: true\n"
              "      loop: \"{{ containers }}\"\n"
              % json.dumps([self.containers[s] for s in SERVICES]))
        # no stop_timeout: the containers were created with --stop-timeout (= the module's stop_timeout)
        write("edgex_service_started", head + "  tasks:\n    - name: start all EdgeX services\n"
              "      edgex.sysmgmt.edgex_service: %s\n" % json.dumps(dict(module_args, name="all", state="started")))
        write("noop_ping", head + "  tasks:\n    - name: ping\n      ansible.builtin.ping:\n")
        for path in self.playbooks.values():
            shutil.copy(path, os.path.join(self.args.out, os.path.basename(path)))
        shutil.copy(self.manifest, os.path.join(self.args.out, "manifest.yml"))

    # -- measuring ---------------------------------------------------------------------
    def play(self, name, label):
        return run_playbook(self.playbook_bin, self.playbooks[name], self.work, self.env,
                            os.path.join(self.args.out, "%s.log" % name), label, timeout=600)

    def measure(self, name, label):
        names = [self.containers[s] for s in SERVICES]
        before = inspect(names)
        wall, task_seconds, result = self.play(name, label)
        after = inspect(names)
        restarted = sorted(n for n in names if after[n][1] != before[n][1])
        recreated = sorted(n for n in names if after[n][0] != before[n][0])
        if recreated:
            raise BenchError("%s re-created %s (Id changed): not a restart" % (name, ", ".join(recreated)))
        run = {"wall": round(wall, 3), "task_seconds": round(task_seconds, 3),
               "restarted": len(restarted), "changed": bool(result.get("changed"))}
        if name in ("edgex_service_restart", "docker_container_loop"):
            if len(restarted) != len(names):
                raise BenchError("%s restarted only %d of %d containers (StartedAt unchanged: %s)" % (
                    name, len(restarted), len(names), ", ".join(sorted(set(names) - set(restarted)))))
        elif restarted:
            raise BenchError("%s restarted %s: it must change nothing" % (name, ", ".join(restarted)))
        if name.startswith("edgex_service"):
            run["levels"] = result.get("levels")
            # per service: from its stop (run while the level before restarts) or its state read to it answering
            run["service_elapsed"] = {s["name"]: s["elapsed"] for s in result.get("services", [])}
            if name == "edgex_service_started" and result.get("changed"):
                raise BenchError("edgex_service state=started reported a change on running services")
        if name == "docker_container_loop":
            items = result.get("results", [])
            run["items_changed"] = sum(1 for r in items if r.get("changed"))
        self.runs[name].append(run)
        print("  %-24s %s: wall %6.2fs  task %6.2fs  restarted %2d/%d%s" % (
            name, label, wall, run["task_seconds"], len(restarted), len(names),
            "  changed" if run["changed"] else ""), flush=True)
        return run

    def run(self):
        if subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            raise BenchError("no Docker engine answers (docker info failed)")
        clean_out(self.args.out)
        from tests.testbed.testbed import Lock

        with work_dir("control") as self.work:
            self.env = playbook_env(self.work)
            with Lock():
                try:
                    image = self.start_containers()
                    self.write_files()
                    print("%d stand-in containers (%s) on 127.0.0.1, ports %s" % (
                        len(SERVICES), image, ", ".join(str(self.ports[s]) for s in SERVICES)), flush=True)
                    return self._run(image)
                finally:
                    remove_containers(list(self.containers.values()) + our_containers())

    def _run(self, image):
        args = self.args
        # warm-up, not timed: the page cache for ansible and the modules (no-op variants only)
        for name in ("noop_ping", "edgex_service_started"):
            self.play(name, "warm-up")
        for round_number in range(1, args.repeat + 1):
            label = "round %d/%d" % (round_number, args.repeat)
            for name, _letter in VARIANTS:
                self.wait_all_listening()  # b does not wait for its containers: settle before the next variant
                self.measure(name, label)

        summary = summarize_runs(self.runs, VARIANTS)
        a, b = summary["edgex_service_restart"], summary["docker_container_loop"]
        c, d = summary["edgex_service_started"], summary["noop_ping"]
        speedup = b["wall_median"] / a["wall_median"]
        noop_ratio = c["wall_median"] / d["wall_median"]
        targets = [
            {"name": "a edgex_service restart >= %.0fx faster than b docker_container loop (b/a)" % SPEEDUP_TARGET,
             "value": round(speedup, 2), "limit": ">= %.1f" % SPEEDUP_TARGET, "pass": speedup >= SPEEDUP_TARGET},
            {"name": "c edgex_service started (no-op) <= %.1fx d ping (c/d)" % NOOP_TARGET,
             "value": round(noop_ratio, 2), "limit": "<= %.1f" % NOOP_TARGET, "pass": noop_ratio <= NOOP_TARGET},
        ]
        report = dict(report_header("control"), **{
            "params": {"services": len(SERVICES), "repeat": args.repeat, "stop_timeout": args.stop_timeout},
            "containers": self.containers,
            "ports": self.ports,
            "image": image,
            "ansible_playbook": self.playbook_bin,
            "variants": summary,
            "targets": targets,
        })
        return finish(report, args.out, print_table)


def print_table(report):
    variants = report["variants"]
    base = {"edgex_service_restart": "edgex_service_restart", "docker_container_loop": "edgex_service_restart",
            "edgex_service_started": "noop_ping", "noop_ping": "noop_ping"}
    print()
    print("control bench: %(services)d stand-in containers, median of %(repeat)d run(s)" % report["params"])
    print("%-2s %-24s %8s %8s %14s %10s" % ("", "variant", "wall s", "task s", "wall ratio", "restarted"))
    for name, letter in VARIANTS:
        v = variants[name]
        ref = variants[base[name]]
        restarted = v["runs"][-1]["restarted"]
        print("%-2s %-24s %8.2f %8.2f %8.2fx %-5s %7d/%d" % (
            letter, name, v["wall_median"], v["task_median"], v["wall_median"] / ref["wall_median"],
            "(/%s)" % variants[base[name]]["letter"], restarted, report["params"]["services"]))
    print("(wall = the ansible-playbook process; task = the task's own duration from the json callback;")
    print(" ratios: a,b against a; c,d against d)")
    levels = variants["edgex_service_restart"]["runs"][-1].get("levels")
    if levels:
        print("edgex_service restart levels: %s" % " -> ".join("[%s]" % ", ".join(level) for level in levels))
    for name in ("edgex_service_restart", "edgex_service_started"):
        elapsed = variants[name]["runs"][-1].get("service_elapsed")
        if elapsed:
            print("%s (last run), seconds per service: %s" % (
                name, ", ".join("%s %.2f" % (n, elapsed[n]) for level in levels or [] for n in level if n in elapsed)))
    loop = variants["docker_container_loop"]
    print("docker_container_loop: %.2fs per container (task median / %d)" % (
        loop["task_median"] / report["params"]["services"], report["params"]["services"]))
    print()
    print_targets(report["targets"])


def main(argv=None):
    return run_bench(Bench, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
