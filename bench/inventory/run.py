#!/usr/bin/env python3
"""Inventory bench: the edgex inventory plugin vs the consul_io.py request pattern vs static YAML.

One run seeds the Consul emulator with --nodes x --services and measures, side by side,
`ansible-inventory --list` over:

  plugin     bench.edgex.yml (plugin: edgex.sysmgmt.edgex) against the emulator
  consul_io  bench/inventory/consul_io_baseline.py as an inventory script (CONSUL_TAGS=true),
             the per-node request pattern of the old consul_io.py script
  consul_io+availability  (only with --availability once|repeat) the same script with the
             availability groups on: one unfiltered /v1/health/service/<name> per service per node
  static     the plugin's own --list output written back as a static YAML inventory (the floor)

Requests are what the emulator counted (stats reset before each run, read after); wall time is
the median of --repeat runs. Targets:
  plugin requests <= 3 + distinct service names   (bulk reads, nothing per node)
  plugin wall     <= 1.5 x static YAML wall       (the registry costs at most half again the floor)

Run through bench/run.sh, or: PYTHONPATH=. ANSIBLE_COLLECTIONS_PATH=.collections .venv/bin/python bench/inventory/run.py
Exit code: 0 even when a target fails, 1 with --strict when a target fails; 2 when a variant
could not run at all (the bench measured nothing).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.common import (BenchError, base_env, bench_parser, clean_out, finish,  # noqa: E402
                          print_targets, report_header, run_bench, tool, work_dir)
from tests.testbed.fixtures_consul import ConsulHandle, start_consul_emulator  # noqa: E402

BASELINE = os.path.join(HERE, "consul_io_baseline.py")
WALL_TARGET = 1.5


def parse_args(argv=None):
    parser = bench_parser(__doc__, "inventory")
    parser.add_argument("--nodes", type=int, default=1000, help="synthetic nodes to seed (default 1000)")
    parser.add_argument("--services", type=int, default=12, help="services per node (default 12)")
    parser.add_argument("--availability", choices=("off", "once", "repeat"), default="off",
                        help="also run consul_io with availability groups (1 + N + N*M requests, slow): "
                             "off (default), once, or --repeat times")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.services < 1 or args.repeat < 1:
        parser.error("--nodes, --services and --repeat must be >= 1")
    return args


def inventory_env(work):
    """base_env for ansible-inventory: a source that does not parse is an error, not an empty inventory."""
    return dict(base_env(work), **{
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
        "PYTHONPATH": REPO + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""),
        # the baseline script's '#!/usr/bin/env python3' must find the venv python (python-consul2)
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    })


def plain(value):
    """ansible-inventory writes values marked unsafe as {"__ansible_unsafe": value}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return plain(value["__ansible_unsafe"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def hosts_of(listing):
    return sorted(listing.get("_meta", {}).get("hostvars", {}))


def to_yaml_inventory(listing):
    """ansible-inventory --list JSON -> the same inventory as a static YAML inventory file."""
    hostvars = plain(listing.get("_meta", {}).get("hostvars", {}))
    groups = {name: data for name, data in listing.items() if name != "_meta"}
    known = set(groups)

    def group_body(name):
        data = groups.get(name, {})
        body = {}
        if data.get("hosts"):
            body["hosts"] = {host: None for host in data["hosts"]}
        if data.get("children"):
            body["children"] = {child: None for child in data["children"] if child in known}
        if data.get("vars"):
            body["vars"] = plain(data["vars"])
        return body

    # hostvars once, under all; every other group flat under all.children with its own
    # hosts and children (a group listed twice merges in the YAML inventory plugin).
    top = {"hosts": {host: (hostvars.get(host) or None) for host in sorted(hostvars)}, "children": {}}
    for name in sorted(groups):
        if name in ("all",):
            continue
        top["children"][name] = group_body(name) or None
    return {"all": top}


class Bench(object):
    def __init__(self, args):
        self.args = args
        self.inventory_bin = tool("ansible-inventory")
        self.results = {}

    def measure(self, label, inventory, env=None, repeat=None):
        """Run ansible-inventory --list `repeat` times: median wall, requests per run, last listing."""
        repeat = repeat or self.args.repeat
        walls, requests, by_path = [], [], {}
        listing = None
        for attempt in range(repeat):
            if self.consul is not None:
                self.consul.reset_stats()
            started = time.perf_counter()
            proc = subprocess.run([self.inventory_bin, "-i", inventory, "--list"], cwd=self.work,
                                  env=dict(self.env, **(env or {})), capture_output=True, text=True)
            wall = time.perf_counter() - started
            stats = self.consul.stats() if self.consul is not None else {"requests": 0, "by_path": {}}
            log = os.path.join(self.args.out, "%s.stderr.log" % label.replace("+", "_"))
            with open(log, "a") as handle:
                handle.write("--- run %d rc=%d wall=%.3fs\n%s" % (attempt + 1, proc.returncode, wall, proc.stderr))
            if proc.returncode != 0:
                raise BenchError("%s: ansible-inventory failed (rc=%d), see %s:\n%s"
                                 % (label, proc.returncode, log, proc.stderr[-2000:]))
            listing = json.loads(proc.stdout)
            walls.append(wall)
            requests.append(stats["requests"])
            by_path = stats["by_path"]
            print("  %-24s run %d/%d: %7.3fs %7d requests" % (label, attempt + 1, repeat, wall, stats["requests"]),
                  flush=True)
        result = {
            "wall_median": statistics.median(walls),
            "walls": walls,
            "requests": requests[-1],
            "requests_per_run": requests,
            "by_route": summarize_paths(by_path),
            "hosts": len(hosts_of(listing)),
            "groups": len([g for g in listing if g != "_meta"]),
            "output_bytes": len(json.dumps(listing)),
        }
        self.results[label] = result
        return result, listing

    def run(self):
        clean_out(self.args.out)
        with work_dir("inventory") as self.work:
            self.env = inventory_env(self.work)
            emulator = start_consul_emulator(log_path=os.path.join(self.args.out, "consul-emulator.log"))
            self.consul = ConsulHandle(emulator.host, emulator.port, emulator=emulator)
            try:
                return self._run(emulator)
            finally:
                emulator.stop()

    def _run(self, emulator):
        args = self.args
        started = time.perf_counter()
        self.consul.seed(args.nodes, args.services, datacenter="dc1")
        seed_seconds = time.perf_counter() - started
        with urllib.request.urlopen(self.consul.url + "/v1/catalog/services?dc=dc1", timeout=30) as response:
            service_names = sorted(json.loads(response.read()))
        with urllib.request.urlopen(self.consul.url + "/v1/catalog/nodes?dc=dc1", timeout=30) as response:
            node_count = len(json.loads(response.read()))
        print("emulator %s: seeded %d nodes x %d services in %.2fs -> %d nodes, %d distinct service names (%s)"
              % (self.consul.url, args.nodes, args.services, seed_seconds, node_count, len(service_names),
                 ", ".join(service_names)), flush=True)

        # (a) the plugin
        plugin_cfg = os.path.join(self.work, "bench.edgex.yml")
        with open(plugin_cfg, "w") as handle:
            handle.write("plugin: edgex.sysmgmt.edgex\nregistry_type: consul\nhost: %s\nport: %d\n"
                         "datacenter: dc1\ntimeout: 60\n" % (self.consul.host, self.consul.port))
        # warm-up, not timed: byte-compile caches and the page cache for ansible itself
        subprocess.run([self.inventory_bin, "-i", "localhost,", "--list"], cwd=self.work, env=self.env,
                       capture_output=True)
        plugin, listing = self.measure("plugin", plugin_cfg)

        # (c) the floor: the plugin's own output as a static YAML inventory
        import yaml
        static_path = os.path.join(self.work, "bench.yml")
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        with open(static_path, "w") as handle:
            yaml.dump(to_yaml_inventory(listing), handle, Dumper=dumper, default_flow_style=False, sort_keys=True)
        shutil.copy(static_path, os.path.join(args.out, "static-inventory.yml"))
        with open(os.path.join(args.out, "plugin-list.json"), "w") as handle:
            json.dump(listing, handle)
        static, static_listing = self.measure("static_yaml", static_path)
        if hosts_of(static_listing) != hosts_of(listing):
            raise BenchError("the static YAML inventory does not have the plugin's hosts")
        # informational: the same file as JSON (ansible's YAML plugin reads .json too), which skips
        # the auto plugin's extra parse and most of the per-value YAML origin tagging
        static_json_path = os.path.join(self.work, "bench.json")
        with open(static_json_path, "w") as handle:
            json.dump(to_yaml_inventory(listing), handle)
        _static_json, static_json_listing = self.measure("static_json", static_json_path)
        if hosts_of(static_json_listing) != hosts_of(listing):
            raise BenchError("the static JSON inventory does not have the plugin's hosts")

        # (b) the consul_io.py request pattern
        consul_env = {"CONSUL_URL": self.consul.url, "CONSUL_DATACENTER": "dc1", "CONSUL_TAGS": "true"}
        self.measure("consul_io", BASELINE, env=consul_env)
        if args.availability != "off":
            self.measure("consul_io+availability", BASELINE,
                         env=dict(consul_env, CONSUL_SUFFIXES="true", CONSUL_AVAILABILITY="true"),
                         repeat=1 if args.availability == "once" else args.repeat)

        # targets
        request_limit = 3 + len(service_names)
        wall_limit = WALL_TARGET * static["wall_median"]
        targets = [
            {"name": "plugin requests <= 3 + distinct service names",
             "value": plugin["requests"], "limit": request_limit, "pass": plugin["requests"] <= request_limit},
            {"name": "plugin wall <= %.1f x static YAML wall" % WALL_TARGET,
             "value": round(plugin["wall_median"], 3), "limit": round(wall_limit, 3),
             "pass": plugin["wall_median"] <= wall_limit},
        ]
        report = dict(report_header("inventory"), **{
            "params": {"nodes": args.nodes, "services": args.services, "repeat": args.repeat,
                       "availability": args.availability},
            "consul": {"nodes": node_count, "service_names": service_names, "seed_seconds": seed_seconds},
            "ansible_inventory": self.inventory_bin,
            "variants": self.results,
            "targets": targets,
        })
        return finish(report, args.out, print_table)


def summarize_paths(by_path):
    """{"/v1/catalog/node/gw-1": 1, ...} -> {"/v1/catalog/node/*": 1001, ...} (routes, not instances)."""
    routes = {}
    for path, count in by_path.items():
        parts = path.split("/")
        if len(parts) > 4 and parts[1] == "v1" and parts[2] in ("catalog", "health", "kv") \
                and parts[3] in ("node", "service", "checks"):
            path = "/".join(parts[:4]) + "/*"
        routes[path] = routes.get(path, 0) + count
    return dict(sorted(routes.items()))


def print_table(report):
    variants = report["variants"]
    plugin = variants["plugin"]
    order = ["plugin", "consul_io", "consul_io+availability", "static_yaml", "static_json"]
    print()
    print("inventory bench: %(nodes)d nodes x %(services)d services, median of %(repeat)d run(s)" % report["params"])
    print("%-24s %9s %10s %11s %10s %7s %9s" % ("variant", "requests", "wall s", "wall ratio", "req ratio",
                                                  "hosts", "groups"))
    for name in order:
        if name not in variants:
            continue
        v = variants[name]
        req_ratio = ("%.1fx" % (v["requests"] / float(plugin["requests"]))) if plugin["requests"] else "-"
        print("%-24s %9d %10.3f %10.2fx %10s %7d %9d" % (name, v["requests"], v["wall_median"],
                                                         v["wall_median"] / plugin["wall_median"], req_ratio,
                                                         v["hosts"], v["groups"]))
    print("(ratios are variant / plugin: >1 means slower or more requests than the plugin;")
    print(" static_json is informational, the wall target is against static_yaml)")
    print()
    print_targets(report["targets"])
    print("plugin requests by route: %s" % json.dumps(plugin["by_route"]))


def main(argv=None):
    return run_bench(Bench, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
