#!/usr/bin/env python3
"""Health bench: one edgex_health task vs an ansible.builtin.uri loop, over 100 EdgeX ping endpoints.

One run starts --endpoints EdgeX ping endpoints on 127.0.0.1 (default 100, every tenth one hangs
like a stand-in with STANDIN_PING_HANG=1), registers them in a manifest (10 gateways x 10
services, registry_type none) and measures, side by side:

  a  edgex_health   ONE edgex.sysmgmt.edgex_health task over all of them, probe_timeout T
                    (concurrent probes; fail_on never so the play goes on)
  b  uri_loop       ansible.builtin.uri in a loop over the same ping URLs, timeout T,
                    status_code 200, ignore_errors true (what a user writes otherwise)
  f  noop_ping      ansible.builtin.ping in the same play shape (informational: ansible's fixed cost)

Both must see the same fleet: 10 hung endpoints unhealthy / failed, the rest healthy / ok.

--unresolvable N (the variant of issue 10): N further endpoints are registered under host names
(as EdgeX in Docker registers container names) that do not resolve. The whole bench then runs in
a network and mount namespace of its own (unshare; needs root): loopback only, /etc/resolv.conf
bind-mounted to name a stub DNS server on 127.0.0.1 (bench/health/stub_dns.py), so no lookup can
leave the machine. --unresolvable-answer hang (default): the stub never answers those names, as a
DNS server that is down (glibc waits 5 s, twice); edgex_health must fail them within T ("cannot
resolve <name> within Ts"), the uri loop fails them after glibc's own wait. nxdomain: the stub
says they do not exist; edgex_health maps them to the node's address (127.0.0.1) and the port
they publish, and finds them healthy; the uri loop fails them.
Wall time is the ansible-playbook process; the task time is the task's own duration from the
ansible.posix.json callback. Medians of --repeat runs. Targets:
  a task <= 1.2 x T + 1 s              (the module costs about one probe timeout, not one per hung service)
  a wall at least 10x faster than b    (b wall >= 10 x a wall)

Endpoints: by default one helper process (bench/health/endpoints.py, asyncio) serves every port;
--server standin starts one tests/testbed/standin/edgex_standin.py process per endpoint instead
(LocalStandin; heavier: one python process each). No Docker needed.

Run through bench/run.sh, or: PYTHONPATH=. ANSIBLE_COLLECTIONS_PATH=.collections .venv/bin/python bench/health/run.py
Exit code: 0 even when a target fails, 1 with --strict when a target fails; 2 when the bench could
not measure (endpoints did not start, a variant failed or saw a different fleet).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.common import (BenchError, bench_parser, clean_out, finish, playbook_env,  # noqa: E402
                          print_targets, report_header, run_bench, run_playbook, summarize_runs, tool, work_dir)
from tests.testbed.fixtures_consul import free_port, wait_listening  # noqa: E402

HELPER = os.path.join(HERE, "endpoints.py")
# Set in the bench process that runs inside its own network namespace (see run_in_namespace).
NAMESPACE_ENV = "EDGEX_BENCH_OWN_NETNS"
# glibc's defaults, written out: the uri loop waits this long (5 s x 2) per unanswered name.
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n"
# the services of one gateway; the fleet is gateways x these
SERVICE_NAMES = ("core-metadata", "core-data", "core-command", "support-notifications", "support-scheduler",
                 "device-virtual", "device-rest", "device-modbus", "app-rules-engine", "app-external-mqtt-trigger")
MODULE_SLACK = 1.0      # a task <= MODULE_FACTOR x T + MODULE_SLACK
MODULE_FACTOR = 1.2
SPEEDUP_TARGET = 10.0   # b wall >= SPEEDUP_TARGET x a wall
VARIANTS = (("edgex_health", "a"), ("uri_loop", "b"), ("noop_ping", "f"))


def parse_args(argv=None):
    parser = bench_parser(__doc__, "health")
    parser.add_argument("--endpoints", type=int, default=100, help="ping endpoints (default 100)")
    parser.add_argument("--hang-every", type=int, default=10,
                        help="every Nth endpoint hangs (default 10: 10 of 100); 0 for none")
    parser.add_argument("--timeout", type=float, default=2.0, help="T: probe_timeout / uri timeout (default 2)")
    parser.add_argument("--unresolvable", type=int, default=0,
                        help="N more endpoints registered under host names that do not resolve (default 0; "
                             "runs the bench in a network namespace with a stub DNS server: needs root)")
    parser.add_argument("--unresolvable-answer", choices=("hang", "nxdomain"), default="hang",
                        help="what the stub DNS server answers for those names (default hang: nothing)")
    parser.add_argument("--server", choices=("helper", "standin"), default="helper",
                        help="helper: one process serves every endpoint (default); standin: one "
                             "edgex_standin.py process per endpoint")
    args = parser.parse_args(argv)
    if args.endpoints < 1 or args.repeat < 1 or args.timeout <= 0 or args.hang_every < 0:
        parser.error("--endpoints and --repeat must be >= 1, --timeout > 0, --hang-every >= 0")
    hung = sum(1 for index in range(args.endpoints) if is_hung(args, index))
    if not 0 <= args.unresolvable <= args.endpoints - hung:
        parser.error("--unresolvable must be between 0 and the endpoints that do not hang (%d)" % (args.endpoints - hung))
    return args


def is_hung(args, index):
    return bool(args.hang_every) and index % args.hang_every == args.hang_every - 1


def unresolvable_indexes(args):
    """Which endpoints get a host name that does not resolve: spread evenly over those that do not hang."""
    if not args.unresolvable:
        return set()
    candidates = [index for index in range(args.endpoints) if not is_hung(args, index)]
    step = len(candidates) // args.unresolvable
    return set(candidates[step // 2::step][:args.unresolvable])


def memory_kb(pids):
    """Proportional set size of these processes (kB; shared pages split between their users),
    from /proc/<pid>/smaps_rollup; VmRSS where that is missing."""
    total = 0
    for pid in pids:
        for path, field in (("/proc/%d/smaps_rollup" % pid, "Pss:"), ("/proc/%d/status" % pid, "VmRSS:")):
            try:
                with open(path) as handle:
                    found = [int(line.split()[1]) for line in handle if line.startswith(field)]
            except OSError:
                continue
            if found:
                total += found[0]
                break
    return total


class Fleet(object):
    """The endpoints: [{"node", "service", "port", "hang"}], served by the helper or by stand-ins."""

    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.entries = []
        unresolvable = unresolvable_indexes(args)
        for index in range(args.endpoints):
            node = "benchgw%02d" % (index // len(SERVICE_NAMES) + 1)
            service = SERVICE_NAMES[index % len(SERVICE_NAMES)]
            self.entries.append({
                "node": node, "service": service, "hang": is_hung(args, index),
                # as EdgeX in Docker registers it: a container's host name, resolvable only in its network
                "address": "%s-edgex-%s" % (node, service) if index in unresolvable else "127.0.0.1",
                "unresolvable": index in unresolvable,
            })
        self.helper = None
        self.standins = []

    def start(self):
        started = time.perf_counter()
        if self.args.server == "helper":
            spec = os.path.join(self.work, "endpoints.json")
            with open(spec, "w") as handle:
                json.dump([{"service": e["service"], "hang": e["hang"]} for e in self.entries], handle)
            self.helper_log = open(os.path.join(self.args.out, "endpoints.log"), "w")
            self.helper = subprocess.Popen([sys.executable, HELPER, "--spec", spec], stdout=subprocess.PIPE,
                                           stderr=self.helper_log, text=True)
            line = self.helper.stdout.readline()
            if not line:
                raise BenchError("endpoints.py exited with %s before listening, see %s"
                                 % (self.helper.wait(), self.helper_log.name))
            ports = json.loads(line)["ports"]
            for entry, port in zip(self.entries, ports):
                entry["port"] = port
            pids = [self.helper.pid]
        else:
            from tests.testbed.fixtures_docker import LocalStandin

            for entry in self.entries:
                entry["port"] = free_port()
                env = {"STANDIN_PING_HANG": "1"} if entry["hang"] else {}
                self.standins.append(LocalStandin(entry["service"], entry["port"], env=env))
            for standin in self.standins:
                standin.wait(timeout=60)
            pids = [s.process.pid for s in self.standins]
        for entry in self.entries:
            wait_listening("127.0.0.1", entry["port"], timeout=30)
        self.setup_seconds = time.perf_counter() - started
        self.memory_kb = memory_kb(pids)
        self.processes = len(pids)

    def stop(self):
        if self.helper is not None and self.helper.poll() is None:
            self.helper.terminate()
            try:
                self.helper.wait(10)
            except subprocess.TimeoutExpired:
                self.helper.kill()
                self.helper.wait()
        for standin in self.standins:
            standin.stop()

    def urls(self):
        return ["http://%s:%d/api/v3/ping" % (e["address"], e["port"]) for e in self.entries]

    def expected_bad(self, variant):
        """How many endpoints ``variant`` must find not ok: the hung ones, and those whose names do
        not resolve, except for edgex_health when the stub says NXDOMAIN (it maps them)."""
        unresolvable = sum(e["unresolvable"] for e in self.entries)
        if variant == "edgex_health" and self.args.unresolvable_answer == "nxdomain":
            unresolvable = 0
        return sum(e["hang"] for e in self.entries) + unresolvable

    def manifest(self):
        hosts = {}
        for entry in self.entries:
            host = hosts.setdefault(entry["node"], {"address": "127.0.0.1", "services": {}})
            host["services"][entry["service"]] = {
                "executor": "docker", "target": "%s-edgex-%s" % (entry["node"], entry["service"]),
                "address": entry["address"], "port": entry["port"], "health": "/api/v3/ping", "depends_on": [],
                "tags": [], "meta": {}}
        return {"version": 1, "generated_from": "manual", "hosts": hosts}


class Bench(object):
    def __init__(self, args):
        self.args = args
        self.playbook_bin = tool("ansible-playbook")
        self.runs = {name: [] for name, _ in VARIANTS}

    def write_files(self, fleet):
        import yaml

        manifest = os.path.join(self.work, "manifest.yml")
        with open(manifest, "w") as handle:
            yaml.safe_dump(fleet.manifest(), handle, sort_keys=False)
        shutil.copy(manifest, os.path.join(self.args.out, "manifest.yml"))
        head = "- hosts: localhost\n  gather_facts: false\n  connection: local\n"
        timeout = self.args.timeout
        self.playbooks = {}

        def write(name, text):
            path = os.path.join(self.work, "%s.yml" % name)
            with open(path, "w") as handle:
                handle.write(text)
            shutil.copy(path, os.path.join(self.args.out, os.path.basename(path)))
            self.playbooks[name] = path

        write("edgex_health", head + "  tasks:\n    - name: check every EdgeX service\n"
              "      edgex.sysmgmt.edgex_health: %s\n" % json.dumps({
                  "registry_type": "none", "manifest_path": manifest, "probe_timeout": timeout,
                  "fail_on": "never"}))
        # the URLs go in as a play var (as a user would template them from an inventory/var file)
        write("uri_loop", head + "  vars:\n    ping_urls: %s\n  tasks:\n"
              "    - name: ping every EdgeX service\n"
              "      ansible.builtin.uri:\n"
              "        url: \"{{ item }}\"\n"
              "        timeout: %s\n"
              "        status_code: 200\n"
              "      loop: \"{{ ping_urls }}\"\n"
              "      ignore_errors: true\n" % (json.dumps(fleet.urls()), int(timeout) if timeout == int(timeout)
                                               else timeout))
        write("noop_ping", head + "  tasks:\n    - name: ping\n      ansible.builtin.ping:\n")

    def play(self, name, label):
        return run_playbook(self.playbook_bin, self.playbooks[name], self.work, self.env,
                            os.path.join(self.args.out, "%s.log" % name), label, timeout=3600)

    def measure(self, name, label, fleet):
        wall, seconds, result = self.play(name, label)
        run = {"wall": round(wall, 3), "task_seconds": round(seconds, 3)}
        expected_bad = fleet.expected_bad(name)
        total = len(fleet.entries)
        if name == "edgex_health":
            summary = result.get("summary") or {}
            run["summary"] = summary
            run["ok"], run["bad"] = summary.get("healthy", 0), summary.get("unhealthy", 0)
            slow = sorted((s for s in result.get("services", []) if s.get("latency_ms") is not None),
                          key=lambda s: -s["latency_ms"])
            run["max_latency_ms"] = slow[0]["latency_ms"] if slow else None
            run["reasons"] = sorted(set(r for s in result.get("services", []) for r in s.get("reasons", [])))
        elif name == "uri_loop":
            items = result.get("results", [])
            run["ok"] = sum(1 for r in items if not r.get("failed"))
            run["bad"] = sum(1 for r in items if r.get("failed"))
            run["reasons"] = sorted(set(str(r.get("msg"))[:120] for r in items if r.get("failed")))
        if name != "noop_ping" and (run["ok"], run["bad"]) != (total - expected_bad, expected_bad):
            raise BenchError("%s saw %d ok / %d not ok, expected %d / %d: %s"
                             % (name, run["ok"], run["bad"], total - expected_bad, expected_bad, run["reasons"]))
        self.runs[name].append(run)
        print("  %-14s %s: wall %7.2fs  task %7.2fs%s" % (
            name, label, wall, seconds, "  ok %d, not ok %d" % (run["ok"], run["bad"]) if "ok" in run else ""),
            flush=True)

    def run(self):
        args = self.args
        clean_out(args.out)
        with work_dir("health") as self.work:
            self.env = playbook_env(self.work)
            fleet = Fleet(args, self.work)
            self.dns = None
            try:
                if args.unresolvable:
                    self.dns = own_name_resolution(self.work, fleet)
                fleet.start()
                print("%d endpoints (%d hang, %d under names that do not resolve: %s) on 127.0.0.1 from %d %s "
                      "process(es): up in %.2fs, %.1f MB PSS"
                      % (len(fleet.entries), sum(e["hang"] for e in fleet.entries),
                         sum(e["unresolvable"] for e in fleet.entries), args.unresolvable_answer, fleet.processes,
                         args.server, fleet.setup_seconds, fleet.memory_kb / 1024.0), flush=True)
                self.write_files(fleet)
                return self._run(fleet)
            finally:
                fleet.stop()
                if self.dns is not None:
                    self.dns.stop()

    def _run(self, fleet):
        args = self.args
        self.play("noop_ping", "warm-up")  # not timed: the page cache for ansible
        for number in range(1, args.repeat + 1):
            label = "run %d/%d" % (number, args.repeat)
            for name, _letter in VARIANTS:
                self.measure(name, label, fleet)
        summary = summarize_runs(self.runs, VARIANTS)
        a, b = summary["edgex_health"], summary["uri_loop"]
        module_limit = MODULE_FACTOR * args.timeout + MODULE_SLACK
        speedup = b["wall_median"] / a["wall_median"]
        targets = [
            {"name": "a edgex_health task <= %.1f x T + %.0f s (T = %ss)" % (MODULE_FACTOR, MODULE_SLACK, args.timeout),
             "value": round(a["task_median"], 3), "limit": "<= %.2f" % module_limit,
             "pass": a["task_median"] <= module_limit},
            {"name": "a edgex_health >= %.0fx faster than b uri loop (b wall / a wall)" % SPEEDUP_TARGET,
             "value": round(speedup, 2), "limit": ">= %.1f" % SPEEDUP_TARGET, "pass": speedup >= SPEEDUP_TARGET},
        ]
        if args.unresolvable:
            # issue 10's wall target, less what any one-task play costs before the task runs
            module_wall = summary["edgex_health"]["wall_median"] - summary["noop_ping"]["wall_median"]
            targets.append({"name": "a edgex_health wall - f noop_ping wall <= %.1f x T + %.0f s"
                                    % (MODULE_FACTOR, MODULE_SLACK),
                            "value": round(module_wall, 3), "limit": "<= %.2f" % module_limit,
                            "pass": module_wall <= module_limit})
        report = dict(report_header("health"), **{
            "params": {"endpoints": args.endpoints, "hung": sum(e["hang"] for e in fleet.entries),
                       "unresolvable": sum(e["unresolvable"] for e in fleet.entries),
                       "unresolvable_answer": args.unresolvable_answer if args.unresolvable else None,
                       "timeout": args.timeout, "repeat": args.repeat, "server": args.server},
            "stub_dns_queries": dict(self.dns.queries) if self.dns is not None else None,
            "fleet": {"processes": fleet.processes, "setup_seconds": round(fleet.setup_seconds, 3),
                      "pss_mb": round(fleet.memory_kb / 1024.0, 1),
                      "gateways": len({e["node"] for e in fleet.entries})},
            "ansible_playbook": self.playbook_bin,
            "variants": summary,
            "targets": targets,
        })
        return finish(report, args.out, print_table)


def print_table(report):
    variants = report["variants"]
    a = variants["edgex_health"]
    p = report["params"]
    print()
    print("health bench: %(endpoints)d endpoints (%(hung)d hang, %(unresolvable)d under names that do not resolve), "
          "T = %(timeout)ss, median of %(repeat)d run(s)" % p)
    print("%-2s %-14s %8s %8s %11s %11s %8s" % ("", "variant", "wall s", "task s", "wall ratio", "task ratio",
                                                 "ok/bad"))
    for name, letter in VARIANTS:
        v = variants[name]
        last = v["runs"][-1]
        print("%-2s %-14s %8.2f %8.2f %10.2fx %10.2fx %8s" % (
            letter, name, v["wall_median"], v["task_median"], v["wall_median"] / a["wall_median"],
            v["task_median"] / a["task_median"], ("%d/%d" % (last["ok"], last["bad"])) if "ok" in last else "-"))
    print("(wall = the ansible-playbook process; task = the task's own duration from the json callback;")
    print(" ratios are variant / edgex_health; noop_ping is ansible's fixed cost for one task, informational)")
    print()
    print_targets(report["targets"])


def own_name_resolution(work, fleet):
    """Inside the bench's own network namespace: loopback up, /etc/resolv.conf (in this mount
    namespace only) naming a stub DNS server on 127.0.0.1 that never answers the fleet's
    unresolvable names (--unresolvable-answer hang) and says NXDOMAIN to everything else."""
    from bench.health.stub_dns import StubDNS

    if os.environ.get(NAMESPACE_ENV) != "1" or [name for _index, name in socket.if_nameindex() if name != "lo"]:
        raise BenchError("refusing to change name resolution outside the bench's own network namespace")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hang = [e["address"] for e in fleet.entries if e["unresolvable"]] if fleet.args.unresolvable_answer == "hang" else []
    dns = StubDNS(hang=hang).start()
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as handle:
        handle.write(RESOLV_CONF)
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)
    return dns


def run_in_namespace(argv):
    """This bench again, in a new network and mount namespace (loopback only): nothing it resolves
    or connects to can leave the machine, and its /etc/resolv.conf is its own."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("bench/health --unresolvable needs root and unshare(1) for a network namespace of its own",
              file=sys.stderr)
        return 2
    command = ["unshare", "--net", "--mount", "--", sys.executable, os.path.abspath(__file__)]
    return subprocess.call(command + list(sys.argv[1:] if argv is None else argv),
                           env=dict(os.environ, **{NAMESPACE_ENV: "1"}))


def main(argv=None):
    args = parse_args(argv)
    if args.unresolvable and os.environ.get(NAMESPACE_ENV) != "1":
        return run_in_namespace(argv)
    return run_bench(Bench, args)


if __name__ == "__main__":
    sys.exit(main())
