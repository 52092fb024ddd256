#!/usr/bin/env python3
"""Fleet bench: the collection over a simulated fleet of 1,000 gateways x 12 services.

The fleet is tests/testbed/fleet.py: one process serving every gateway's EdgeX services on its
own loopback address, 5 % of them hung (--hung), and the Consul emulator seeded with the same
nodes and registrations. No Docker. Parts (--parts, default all), each with its ratios printed
side by side and PASS/FAIL per target:

  playbook   playbooks/health.yml on every gateway (each checks itself, one task per gateway,
             --forks 50) vs the floor: the same hosts and forks running one ansible.builtin.ping
             task; and health.yml with edgex_health_probe_from=controller (one edgex_health task
             on the control node for the whole fleet). Static inventory for all three (the
             inventory's own cost is the `inventory` part). Every verdict is checked against the
             simulator's faults. Targets: per-gateway play <= 1.5 x floor; the controller-side
             probe task <= 2 x probe_timeout + 5 s; the report play (12,000 rows) <= 10 s;
             Chromium loads the page in <= 2 s.
  profile    where a gateway's time goes: the AnsiballZ payload of edgex_health vs ping (size,
             the module process's wall and CPU, its imports by package) and the CPU per gateway
             of the two plays (ansible-playbook and everything it ran, from wait4).
  inventory  `ansible-inventory --list` through the edgex inventory plugin (service_detail
             --inventory-detail, default brief) at --inventory-sizes
             nodes (default 1000, 3000, 10000) x 12 services: requests, wall, peak RSS, and under
             cProfile the plugin's own share. Targets at the largest size: <= 60 s, <= 2 GB,
             requests <= 3 + service names, wall(largest)/wall(smallest) <= 1.1 x the size ratio.
  restart    playbooks/restart.yml in check mode, serial 10 %, over --restart-gateways healthy
             gateways (their docker executor reads a stand-in engine): registry requests in all
             and per gateway, wall.

Results: --out/results.json (everything), and <part>-<size>/results.json per size; logs next to
them. Run through bench/run.sh, or:
  PYTHONPATH=. ANSIBLE_COLLECTIONS_PATH=.collections .venv/bin/python bench/fleet/run.py
Exit code: 0 even when a target fails, 1 with --strict when a target fails; 2 when the bench could
not measure.
"""

import glob
import json
import os
import pstats
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.common import (BenchError, base_env, bench_parser, clean_out, parse_time, playbook_env,  # noqa: E402
                          print_targets, report_header, run_bench, tool, work_dir)
from tests.testbed import fleet as fleet_  # noqa: E402

PARTS = ("playbook", "profile", "inventory", "restart")
FLOOR_TARGET = 1.5
REPORT_TARGET = 10.0
PAGE_TARGET = 2.0
INVENTORY_WALL_TARGET = 60.0
INVENTORY_RSS_TARGET = 2 * 1024 * 1024  # KiB
# The bench's own loopback range; `make fleet-up` uses 127.10/16, the fleet test 127.12/16.
BASE = "127.16.0.0"
CONSUL_ADDRESS = "127.15.255.254"


def parse_args(argv=None):
    parser = bench_parser(__doc__, "fleet", repeat_help="runs per variant of the playbook part (default 1)")
    parser.set_defaults(repeat=1)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated, of %s" % ", ".join(PARTS))
    parser.add_argument("--gateways", type=int, default=1000)
    parser.add_argument("--services", type=int, default=12)
    parser.add_argument("--hung", type=float, default=0.05, help="fraction of services that hang (default 0.05)")
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--probe-timeout", type=float, default=2.0)
    parser.add_argument("--inventory-sizes", default="1000,3000,10000")
    parser.add_argument("--inventory-detail", choices=("full", "brief"), default="brief",
                        help="the plugin's service_detail (default brief, the layout for large inventories)")
    parser.add_argument("--restart-gateways", type=int, default=1000)
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="record verdicts that differ from the simulator's faults instead of stopping (to measure "
                             "a variant that loses gateways, e.g. to registry time-outs)")
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error("unknown part(s) %s" % ", ".join(sorted(unknown)))
    args.inventory_sizes = [int(n) for n in args.inventory_sizes.split(",") if n]
    return args


# --------------------------------------------------------------------------- measuring


def run_measured(argv, env, cwd, log, label, timeout=3600):
    """Run argv; (wall s, CPU s of it and everything it waited for, peak RSS KiB of the largest
    one, stdout). stderr and stdout go to log."""
    started = time.perf_counter()
    with open(os.path.join(cwd, "stdout.tmp"), "w+") as out, open(log, "a") as err:
        err.write("--- %s: %s\n" % (label, " ".join(argv)))
        err.flush()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                raise BenchError("%s: no end after %ss" % (label, timeout))
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read()
    wall = time.perf_counter() - started
    with open(log, "a") as err:
        err.write("--- %s rc=%d wall=%.2fs cpu=%.2fs\n" % (label, process.returncode, wall,
                                                         usage.ru_utime + usage.ru_stime))
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
            "rc": process.returncode}, stdout


def process_cpu(pid):
    """CPU seconds a running process used so far (/proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fleet_cpu(fleet):
    return {name: process_cpu(p.pid) for name, p in fleet.processes.items()}


def loadavg():
    with open("/proc/loadavg") as handle:
        return handle.read().split()[:3]


def consul_stats(fleet, reset=False):
    import urllib.request

    path = "/_emulator/stats/reset" if reset else "/_emulator/stats"
    request = urllib.request.Request(fleet.consul_url + path, data=b"{}" if reset else None,
                                     method="POST" if reset else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def task_durations(play_json):
    """[(play name, task name, seconds)] from the ansible.posix.json callback."""
    out = []
    for play in play_json.get("plays", []):
        for task in play.get("tasks", []):
            duration = task["task"].get("duration") or {}
            if duration.get("start") and duration.get("end"):
                seconds = (parse_time(duration["end"]) - parse_time(duration["start"])).total_seconds()
                out.append((play["play"]["name"], task["task"]["name"], seconds))
    return out


def routes(by_path):
    """{"/v1/catalog/node/gw-00001": 1, ...} -> {"/v1/catalog/node/*": n, ...}."""
    out = {}
    for path, count in by_path.items():
        parts = path.split("/")
        if len(parts) > 4 and parts[1] == "v1" and parts[3] in ("node", "service", "checks"):
            path = "/".join(parts[:4]) + "/*"
        out[path] = out.get(path, 0) + count
    return dict(sorted(out.items()))


def target(name, value, limit, passed):
    return {"name": name, "value": value, "limit": limit, "pass": bool(passed)}


def write_results(out, name, data):
    directory = os.path.join(out, name)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "results.json"), "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)


# --------------------------------------------------------------------------- the bench


class Bench(object):
    def __init__(self, args):
        self.args = args
        self.playbook_bin = tool("ansible-playbook")
        self.inventory_bin = tool("ansible-inventory")
        self.results = {}
        self.targets = []

    def run(self):
        clean_out(self.args.out)
        with work_dir("fleet") as self.work:
            self.log = os.path.join(self.args.out, "fleet.log")
            env = playbook_env(self.work)
            # our own temporary directories: kept payloads and ansible's own never touch anyone else's
            for key, name in (("ANSIBLE_LOCAL_TEMP", "local-tmp"), ("ANSIBLE_REMOTE_TMP", "remote-tmp")):
                env[key] = os.path.join(self.work, name)
                os.makedirs(env[key], exist_ok=True)
            self.env = env
            started = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg": loadavg()}
            for part in PARTS:
                if part in self.args.parts:
                    print("=== part %s (load average %s)" % (part, " ".join(loadavg())), flush=True)
                    getattr(self, "part_" + part)()
        report = dict(report_header("fleet"), **{
            "params": {k: v for k, v in vars(self.args).items() if k not in ("out", "strict")},
            "started": started, "finished": {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg": loadavg()},
            "parts": self.results, "targets": self.targets})
        with open(os.path.join(self.args.out, "results.json"), "w") as handle:
            json.dump(report, handle, indent=2, sort_keys=True)
        print()
        print_targets(self.targets)
        return 0 if all(t["pass"] for t in self.targets) else 1

    # -- the fleet ---------------------------------------------------------------------------
    def start_fleet(self, gateways, hung, label, with_gateways=True):
        spec = fleet_.build_spec(gateways, self.args.services, {"hung": hung}, seed=15, base=BASE,
                                 slow_delay=0.3)
        fleet = fleet_.Fleet(spec, os.path.join(self.work, label), consul_address=CONSUL_ADDRESS,
                             gateways=with_gateways)
        started = time.perf_counter()
        fleet.start()
        seconds = time.perf_counter() - started
        print("fleet %s: %d gateways x %d services (%d hung) up in %.1fs; %s" % (
            label, gateways, self.args.services, spec["params"]["counts"].get("hung", 0), seconds,
            json.dumps(fleet.memory_kib())), flush=True)
        return fleet, {"start_seconds": round(seconds, 2), "memory_kib": fleet.memory_kib(), **fleet.timings}

    def playbook(self, name, inventory, label, extra=(), playbook=None, env=None):
        argv = [self.playbook_bin, "-i", inventory, "-f", str(self.args.forks), playbook or name] + list(extra)
        measured, stdout = run_measured(argv, env or self.env, self.work, self.log, label)
        try:
            result = json.loads(stdout)
        except ValueError:
            raise BenchError("%s printed no JSON (rc=%d), see %s" % (label, measured["rc"], self.log))
        return measured, result

    def write_play(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as handle:
            handle.write(text)
        return path

    # -- part: playbook ---------------------------------------------------------------------
    def part_playbook(self):
        args = self.args
        fleet, fleet_info = self.start_fleet(args.gateways, args.hung, "playbook")
        try:
            self._playbook(fleet, fleet_info)
        finally:
            fleet.stop()

    def _playbook(self, fleet, fleet_info):
        args = self.args
        inventory = fleet.static_inventory_path
        expected = fleet_.expected_verdicts(fleet.spec)
        ping = self.write_play("ping.yml", "- hosts: edgex\n  gather_facts: false\n  tasks:\n"
                                           "    - ansible.builtin.ping:\n")
        health = os.path.join(REPO, "playbooks", "health.yml")
        common = ["-e", json.dumps({"edgex_health_probe_timeout": args.probe_timeout, "edgex_health_fail_on": "never"})]
        variants = {}
        for attempt in range(args.repeat):
            for label, playbook, extra in (
                    ("floor_ping", ping, []),
                    ("gateway", health, common + ["-e", "edgex_report_dir=%s" % os.path.join(self.work, "report-gw")]),
                    ("controller", health, common + ["-e", "edgex_report_dir=%s" % os.path.join(self.work, "report-c"),
                                                     "-e", "edgex_health_probe_from=controller"])):
                before = fleet_cpu(fleet)
                consul_stats(fleet, reset=True)
                load = loadavg()
                measured, result = self.playbook(label, inventory, "%s run %d" % (label, attempt + 1),
                                                 extra=extra, playbook=playbook)
                if measured["rc"] != 0:
                    raise BenchError("%s failed (rc=%d), see %s" % (label, measured["rc"], self.log))
                after = fleet_cpu(fleet)
                measured["fleet_cpu"] = {k: round(after[k] - before[k], 2) for k in after}
                measured["consul_requests"] = consul_stats(fleet)["requests"]
                measured["loadavg_before"] = load
                durations = task_durations(result)
                measured["report_play_seconds"] = round(sum(s for play, _t, s in durations
                                                            if play == "Write the fleet health report"), 2)
                measured["tasks"] = [{"play": p, "task": t, "seconds": round(s, 2)} for p, t, s in durations]
                if label == "controller":
                    measured["probe_task_seconds"] = round(sum(s for _p, t, s in durations
                                                               if "Probe every gateway's EdgeX" in t), 2)
                if label != "floor_ping":
                    report_dir = os.path.join(self.work, "report-gw" if label == "gateway" else "report-c")
                    measured["verdict_mismatches"] = self.check_report(os.path.join(report_dir, "health.json"),
                                                                       expected, label)
                    measured["report_bytes"] = {name: os.path.getsize(os.path.join(report_dir, name))
                                                for name in ("health.json", "health.html")}
                variants.setdefault(label, []).append(measured)
                print("  %-11s run %d/%d: wall %7.1fs  cpu %7.1fs  report play %5.1fs  consul requests %6d  "
                      "fleet cpu %s" % (label, attempt + 1, args.repeat, measured["wall"], measured["cpu"],
                                        measured["report_play_seconds"], measured["consul_requests"],
                                        measured["fleet_cpu"]), flush=True)
        page = self.page_load(os.path.join(self.work, "report-c", "health.html"))
        median = {label: sorted(r["wall"] for r in runs)[len(runs) // 2] for label, runs in variants.items()}
        best = {label: min(runs, key=lambda r: r["wall"]) for label, runs in variants.items()}
        floor = median["floor_ping"]
        summary = {
            "fleet": fleet_info, "variants": variants, "median_wall": median, "page": page,
            "ratios": {label: round(wall / floor, 3) for label, wall in median.items()},
            "cpu_per_gateway": {label: round(best[label]["cpu"] / args.gateways, 4) for label in best},
        }
        self.results["playbook"] = summary
        write_results(args.out, "playbook-%d" % args.gateways, summary)
        probe_limit = 2 * args.probe_timeout + 5
        report_play = max(best["gateway"]["report_play_seconds"], best["controller"]["report_play_seconds"])
        self.targets += [
            target("per-gateway health.yml wall <= %.1f x ping floor (%d gateways, forks %d)"
                   % (FLOOR_TARGET, args.gateways, args.forks), summary["ratios"]["gateway"], FLOOR_TARGET,
                   summary["ratios"]["gateway"] <= FLOOR_TARGET),
            target("controller-side probe task <= 2 x probe_timeout + 5 s", best["controller"]["probe_task_seconds"],
                   probe_limit, best["controller"]["probe_task_seconds"] <= probe_limit),
            target("report play at %d rows <= %.0f s" % (args.gateways * args.services, REPORT_TARGET),
                   round(report_play, 2), REPORT_TARGET, report_play <= REPORT_TARGET),
            target("page loads in Chromium in <= %.0f s" % PAGE_TARGET, page["load_seconds"], PAGE_TARGET,
                   page["load_seconds"] <= PAGE_TARGET),
        ]
        print_playbook(summary, args)

    def check_report(self, path, expected, label):
        with open(path) as handle:
            report = json.load(handle)
        got = {(host, s["name"]): s["verdict"] for host, entry in report["hosts"].items() for s in entry["services"]}
        wrong = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
        if wrong and not self.args.allow_mismatch:
            raise BenchError("%s: %d verdicts differ from the simulator's faults, e.g. %s" % (
                label, len(wrong), [(k, got.get(k), expected.get(k)) for k in wrong[:5]]))
        return {"count": len(wrong), "without_result": report["summary"]["hosts_without_result"],
                "examples": [[list(k), got.get(k), expected.get(k)] for k in wrong[:5]]}

    def page_load(self, html_path):
        """Chromium: the page's own load time (data-loaded-ms), and the --dump-dom wall vs a blank page."""
        chromium = "/usr/bin/chromium"
        if not os.access(chromium, os.X_OK):
            raise BenchError("%s is missing: the page part needs it" % chromium)
        blank = self.write_play("blank.html", "<!DOCTYPE html><html><body></body></html>")
        profile = os.path.join(self.work, "chromium-profile")
        out = {}
        for label, url in (("blank", "file://" + blank), ("report", "file://" + html_path),
                           ("report_filtered", "file://%s#filter=verdict:unhealthy" % html_path)):
            argv = ["/usr/bin/chromium", "--headless", "--disable-gpu", "--no-sandbox", "--user-data-dir=" + profile,
                    "--dump-dom", url]
            started = time.perf_counter()
            dom = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
            wall = time.perf_counter() - started
            loaded = None
            if 'data-loaded-ms="' in dom:
                loaded = int(dom.split('data-loaded-ms="', 1)[1].split('"', 1)[0]) / 1000.0
            out[label] = {"dump_dom_wall": round(wall, 3), "loaded_seconds": loaded, "dom_bytes": len(dom)}
        out["load_seconds"] = max(out["report"]["loaded_seconds"] or 99, out["report_filtered"]["loaded_seconds"] or 99)
        out["html_bytes"] = os.path.getsize(html_path)
        return out

    # -- part: profile ----------------------------------------------------------------------
    def part_profile(self):
        fleet, _info = self.start_fleet(20, 0.0, "profile")
        try:
            self._profile(fleet)
        finally:
            fleet.stop()

    def _profile(self, fleet):
        """The AnsiballZ payloads of one ping and one edgex_health run, kept and run again directly."""
        keep = dict(self.env, ANSIBLE_KEEP_REMOTE_FILES="1")
        ping = self.write_play("ping-one.yml", "- hosts: gw-00001\n  gather_facts: false\n  tasks:\n"
                                               "    - ansible.builtin.ping:\n")
        health = self.write_play("health-one.yml", (
            "- hosts: gw-00001\n  gather_facts: false\n  tasks:\n"
            "    - ansible.builtin.import_role:\n        name: edgex.sysmgmt.edgex_health\n        tasks_from: check\n"
            "      vars:\n        edgex_health_fail_on: never\n"))
        payloads = {}
        for label, play in (("ping", ping), ("edgex_health", health)):
            remote = keep["ANSIBLE_REMOTE_TMP"]
            before = set(glob.glob(os.path.join(remote, "ansible-tmp-*", "AnsiballZ_*.py")))
            measured, _result = self.playbook(label, fleet.static_inventory_path, "profile %s" % label,
                                              playbook=play, env=keep)
            found = sorted(set(glob.glob(os.path.join(remote, "ansible-tmp-*", "AnsiballZ_*.py"))) - before)
            if measured["rc"] != 0 or not found:
                raise BenchError("profile: the %s payload was not kept (rc=%d), see %s" % (label, measured["rc"],
                                                                                          self.log))
            payloads[label] = found[-1]
        out = {}
        for label, path in payloads.items():
            runs = []
            for _ in range(7):
                measured, _stdout = run_measured([sys.executable, path], self.env, self.work, self.log,
                                                 "payload %s" % label, timeout=60)
                runs.append(measured)
            runs.sort(key=lambda r: r["wall"])
            importtime = subprocess.run([sys.executable, "-X", "importtime", path], capture_output=True, text=True,
                                        cwd=self.work, env=self.env, timeout=60).stderr
            out[label] = {"payload_bytes": os.path.getsize(path), "wall_median": round(runs[3]["wall"], 3),
                          "cpu_median": round(sorted(r["cpu"] for r in runs)[3], 3),
                          "maxrss_kib": runs[3]["maxrss_kib"], "imports_ms": imports_by_package(importtime)}
        self.results["profile"] = out
        write_results(self.args.out, "profile", out)
        print_profile(out)

    # -- part: inventory --------------------------------------------------------------------
    def part_inventory(self):
        sizes = sorted(self.args.inventory_sizes)
        rows = {}
        for size in sizes:
            fleet, info = self.start_fleet(size, 0.0, "inventory-%d" % size, with_gateways=False)
            try:
                rows[size] = dict(self.inventory_size(fleet, size), fleet=info)
            finally:
                fleet.stop()
            write_results(self.args.out, "inventory-%d" % size, rows[size])
        smallest, largest = sizes[0], sizes[-1]
        growth = rows[largest]["wall"] / rows[smallest]["wall"] if rows[smallest]["wall"] else None
        cpu_growth = rows[largest]["cpu"] / rows[smallest]["cpu"] if rows[smallest]["cpu"] else None
        names = rows[largest]["service_names"]
        summary = {"sizes": {str(k): v for k, v in rows.items()}, "growth": {
            "wall_ratio": round(growth, 2) if growth else None,
            "cpu_ratio": round(cpu_growth, 2) if cpu_growth else None, "size_ratio": largest / float(smallest)}}
        self.results["inventory"] = summary
        self.targets += [
            target("inventory requests at %d nodes <= 3 + service names" % largest, rows[largest]["requests"],
                   3 + names, rows[largest]["requests"] <= 3 + names),
            target("inventory wall at %d nodes <= %.0f s" % (largest, INVENTORY_WALL_TARGET),
                   round(rows[largest]["wall"], 2), INVENTORY_WALL_TARGET, rows[largest]["wall"] <= INVENTORY_WALL_TARGET),
            target("inventory peak RSS at %d nodes <= 2 GB (KiB)" % largest, rows[largest]["maxrss_kib"],
                   INVENTORY_RSS_TARGET, rows[largest]["maxrss_kib"] <= INVENTORY_RSS_TARGET),
        ]
        if growth and len(sizes) > 1:
            limit = 1.1 * largest / float(smallest)
            self.targets.append(target("inventory wall %d/%d <= %.1f (at most linear)" % (largest, smallest, limit),
                                       round(growth, 2), round(limit, 1), growth <= limit))
            self.targets.append(target("inventory cpu %d/%d <= %.1f (at most linear; informational)" % (
                largest, smallest, limit), round(cpu_growth, 2), round(limit, 1), cpu_growth <= limit))
        print_inventory(summary)

    def inventory_size(self, fleet, size):
        env = dict(base_env(self.work), ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
                   ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true")
        with open(fleet.plugin_inventory_path, "a") as plugin_file:
            plugin_file.write("service_detail: %s\n" % self.args.inventory_detail)
        consul_stats(fleet, reset=True)
        measured, stdout = run_measured([self.inventory_bin, "-i", fleet.plugin_inventory_path, "--list"], env,
                                        self.work, self.log, "inventory %d" % size)
        if measured["rc"] != 0:
            raise BenchError("ansible-inventory at %d nodes failed, see %s" % (size, self.log))
        listing = json.loads(stdout)
        hosts = len(listing.get("_meta", {}).get("hostvars", {}))
        if hosts != size:
            raise BenchError("ansible-inventory listed %d hosts of %d" % (hosts, size))
        stats = consul_stats(fleet)
        names = len([p for p in stats["by_path"] if p.startswith("/v1/health/service/")])
        # once more under cProfile: what the plugin costs itself, and what ansible-core costs for it
        prof = os.path.join(self.work, "inventory-%d.prof" % size)
        profiled, _out = run_measured([sys.executable, "-m", "cProfile", "-o", prof, self.inventory_bin, "-i",
                                       fleet.plugin_inventory_path, "--list"], env, self.work, self.log,
                                      "inventory %d profiled" % size)
        shares = inventory_shares(prof)
        row = {"service_detail": self.args.inventory_detail, "wall": round(measured["wall"], 3), "cpu": round(measured["cpu"], 3),
               "maxrss_kib": measured["maxrss_kib"], "requests": stats["requests"], "by_route": routes(stats["by_path"]),
               "service_names": names, "hosts": hosts, "output_bytes": len(stdout),
               "profiled_wall": round(profiled["wall"], 3), "shares": shares}
        print("  %6d nodes: wall %6.2fs  peak RSS %7.0f MiB  requests %3d  (profiled: %s)" % (
            size, row["wall"], row["maxrss_kib"] / 1024.0, row["requests"], json.dumps(shares)), flush=True)
        return row

    # -- part: restart ----------------------------------------------------------------------
    def part_restart(self):
        fleet, info = self.start_fleet(self.args.restart_gateways, 0.0, "restart")
        try:
            env = dict(self.env, DOCKER_HOST="unix://" + fleet.engine_socket)
            consul_stats(fleet, reset=True)
            extra = ["--check", "-e", json.dumps({"edgex_serial": "10%", "edgex_max_fail_percentage": 10,
                                                  "edgex_wait_timeout": 10})]
            measured, result = self.playbook("restart", fleet.static_inventory_path, "restart check mode", extra=extra,
                                             playbook=os.path.join(REPO, "playbooks", "restart.yml"), env=env)
            if measured["rc"] != 0:
                raise BenchError("restart.yml --check failed (rc=%d), see %s" % (measured["rc"], self.log))
            stats = consul_stats(fleet)
            planned = sum(1 for play in result["plays"] for task in play["tasks"]
                          if task["task"]["name"].endswith("restarted") for _h in task["hosts"])
            gateways = self.args.restart_gateways
            out = {"fleet": info, "wall": round(measured["wall"], 2), "cpu": round(measured["cpu"], 2),
                   "requests": stats["requests"], "requests_per_gateway": round(stats["requests"] / float(gateways), 2),
                   "by_route": routes(stats["by_path"]), "batches": len(result["plays"]), "planned_hosts": planned}
            self.results["restart"] = out
            write_results(self.args.out, "restart-%d" % gateways, out)
            print("restart.yml --check, serial 10%%, %d gateways: wall %.1fs, %d plays (batches), %d registry requests "
                  "(%.1f per gateway): %s" % (gateways, out["wall"], out["batches"], out["requests"],
                                               out["requests_per_gateway"], json.dumps(out["by_route"])), flush=True)
        finally:
            fleet.stop()


# --------------------------------------------------------------------------- analysis and tables


def imports_by_package(importtime):
    """python -X importtime output -> {package: self ms}, largest first (top 12); the collection's
    own modules count as one package."""
    totals = {}
    for line in importtime.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:"):].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        name = fields[2].strip()
        key = "edgex.sysmgmt (module_utils)" if name.startswith("ansible_collections.edgex") else name.split(".")[0]
        totals[key] = totals.get(key, 0) + int(fields[0])
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return {name: round(us / 1000.0, 1) for name, us in ranked[:12]}


def inventory_shares(profile_path):
    """Seconds (cumulative, under cProfile) of what ansible-inventory --list spends, by who."""
    stats = pstats.Stats(profile_path)

    def cumulative(match):
        return round(sum(cum for (path, _line, func), (_cc, _nc, _tt, cum, _callers) in stats.stats.items()
                         if match(path, func)), 3)

    plugin = "plugins/inventory/edgex.py"
    return {
        "total": round(stats.total_tt, 3),
        "plugin_parse": cumulative(lambda p, f: p.endswith(plugin) and f == "parse"),
        "plugin_discover": cumulative(lambda p, f: p.endswith("_registry/discover.py") and f == "discover"),
        "plugin_populate": cumulative(lambda p, f: p.endswith(plugin) and f == "_populate"),
        "core_set_variable": cumulative(lambda p, f: p.endswith("inventory/data.py") and f == "set_variable"),
        "core_add_host_group_child": cumulative(lambda p, f: p.endswith("inventory/data.py")
                                                and f in ("add_host", "add_group", "add_child")),
        "core_wrap_var": cumulative(lambda p, f: p.endswith("unsafe_proxy.py") and f == "wrap_var"),
        "cli_dump": cumulative(lambda p, f: p.endswith("cli/inventory.py") and f in ("dump", "json_inventory")),
    }


def print_playbook(summary, args):
    median, ratios = summary["median_wall"], summary["ratios"]
    print()
    print("playbook: %d gateways x %d services, %.0f%% hung, forks %d, probe_timeout %ss (median of %d)" % (
        args.gateways, args.services, args.hung * 100, args.forks, args.probe_timeout, args.repeat))
    print("%-12s %9s %9s %11s %12s %12s %9s" % ("variant", "wall s", "ratio", "cpu/gw s", "report s", "probe task s",
                                             "requests"))
    for label in ("floor_ping", "gateway", "controller"):
        runs = summary["variants"][label]
        best = min(runs, key=lambda r: r["wall"])
        print("%-12s %9.1f %8.2fx %11.3f %12s %12s %9d" % (
            label, median[label], ratios[label], summary["cpu_per_gateway"][label],
            "%.1f" % best["report_play_seconds"] if label != "floor_ping" else "-",
            "%.1f" % best["probe_task_seconds"] if label == "controller" else "-", best["consul_requests"]))
    print("(ratios: variant / floor_ping; cpu/gw: CPU of ansible-playbook and all it ran, per gateway)")
    page = summary["page"]
    print("page: %d KB; Chromium load %.2fs (filtered %.2fs; --dump-dom wall %.2fs vs %.2fs for a blank page)" % (
        page["html_bytes"] / 1024, page["report"]["loaded_seconds"] or -1, page["report_filtered"]["loaded_seconds"] or -1,
        page["report"]["dump_dom_wall"], page["blank"]["dump_dom_wall"]))


def print_profile(out):
    print()
    print("%-13s %10s %10s %10s %10s" % ("module run", "payload KB", "wall s", "cpu s", "RSS MiB"))
    for label in ("ping", "edgex_health"):
        row = out[label]
        print("%-13s %10.0f %10.3f %10.3f %10.1f" % (label, row["payload_bytes"] / 1024.0, row["wall_median"],
                                                    row["cpu_median"], row["maxrss_kib"] / 1024.0))
    print("edgex_health imports (self ms by package): %s" % json.dumps(out["edgex_health"]["imports_ms"]))
    print("ping imports (self ms by package): %s" % json.dumps(out["ping"]["imports_ms"]))


def print_inventory(summary):
    print()
    print("service_detail: %s" % next(iter(summary["sizes"].values()))["service_detail"])
    print("%8s %9s %8s %8s %8s %10s %9s %9s %10s %10s %9s" % (
        "nodes", "wall s", "x 1st", "cpu s", "x 1st", "RSS MiB", "requests", "plugin s", "discover s", "wrap_var s",
        "dump s"))
    sizes = sorted(summary["sizes"], key=int)
    first = summary["sizes"][sizes[0]]
    for size in sizes:
        row = summary["sizes"][size]
        shares = row["shares"]
        print("%8s %9.2f %7.2fx %8.2f %7.2fx %10.0f %9d %9.2f %10.2f %10.2f %9.2f" % (
            size, row["wall"], row["wall"] / first["wall"], row["cpu"], row["cpu"] / first["cpu"],
            row["maxrss_kib"] / 1024.0, row["requests"], shares["plugin_parse"], shares["plugin_discover"],
            shares["core_wrap_var"], shares["cli_dump"]))
    print("(x 1st: against the smallest size; cpu: the ansible-inventory process, which on a busy machine is a")
    print(" steadier measure than its wall; plugin/discover/wrap_var/dump: cumulative seconds under cProfile,")
    print(" which inflates them: plugin = the plugin's parse(), discover = its registry read, wrap_var = the")
    print(" unsafe marking of its values, dump = ansible-inventory's JSON output)")


def main(argv=None):
    return run_bench(Bench, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
