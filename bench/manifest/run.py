#!/usr/bin/env python3
"""Manifest bench: load, write and add-one-service on manifests of 100 to 10,000 gateways x 15
services, this tree's code against the code before the fast path, side by side.

For every size a manifest is generated (15 EdgeX services per gateway, each with executor, target,
address, port, health, depends_on, tags and meta: what state=synced and the compose importer write)
and each operation runs in a fresh process (bench/manifest/worker.py) for each variant:

  new       this tree's plugins (ManifestStore: parser-event loader, compiled validator, direct writer)
  baseline  the same plugins at --baseline-rev (default: the commit before the one that added
            _manifest/yamlio.py), checked out into a scratch directory with git archive; only up to
            --baseline-max-gateways (it takes minutes at 10,000 gateways)

  load   ManifestStore.read(): read, parse, validate (what every fallback and inventory run pays)
  write  ManifestStore.write(data) of the whole manifest, one field changed: read again under the
         lock, validate, compare, dump, .bak, temporary file, fsync, rename
  add    ManifestStore.update() adding one service to one gateway (edgex_manifest state=present)

Times are the median of --repeat runs inside the worker; memory is the worker's peak RSS. Targets
(issue 11 item 12), at 1,000 gateways x 15 services:
  new load <= 1.0 s          new write <= 2.0 s          new add <= 2.0 s

Run through bench/run.sh, or: PYTHONPATH=. .venv/bin/python bench/manifest/run.py
Exit code: 0 even when a target fails, 1 with --strict when a target fails; 2 when the bench could
not measure (no git for the baseline, a worker failed).
"""

import json
import os
import statistics
import subprocess
import sys
import tarfile
import io

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.common import (BenchError, bench_parser, clean_out, finish, print_targets, report_header,  # noqa: E402
                          run_bench, work_dir)

WORKER = os.path.join(HERE, "worker.py")
SERVICES = ("database", "message-bus", "core-common-config-bootstrapper", "core-metadata", "core-data",
            "core-command", "support-notifications", "support-scheduler", "device-virtual", "device-rest",
            "device-modbus", "device-mqtt", "app-rules-engine", "app-external-mqtt-trigger", "app-http-export")
OPERATIONS = ("load", "write", "add")
TARGET_GATEWAYS = 1000
TARGETS = {"load": 1.0, "write": 2.0, "add": 2.0}
FIRST_FAST_FILE = "plugins/module_utils/_manifest/yamlio.py"


def parse_args(argv=None):
    parser = bench_parser(__doc__, "manifest")
    parser.add_argument("--sizes", default="100,300,1000,3000,10000",
                        help="gateways per manifest, comma-separated (default 100,300,1000,3000,10000)")
    parser.add_argument("--baseline-rev", help="git revision of the baseline (default: the commit before %s "
                                               "was added)" % FIRST_FAST_FILE)
    parser.add_argument("--baseline-max-gateways", type=int, default=1000,
                        help="largest size the baseline runs at (default 1000; 0: no baseline)")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error("--sizes must be integers separated by commas")
    if args.repeat < 1 or not args.sizes or min(args.sizes) < 1:
        parser.error("--repeat and every size must be >= 1")
    return args


def fleet(gateways):
    """A synced manifest of ``gateways`` x 15 services, as plain data."""
    hosts = {}
    for n in range(gateways):
        address = "10.%d.%d.%d" % (n // 65536, n // 256 % 256, n % 256)
        services = {}
        for index, name in enumerate(SERVICES):
            services[name] = {"id": name, "executor": "docker", "target": "edgex-%s" % name, "address": address,
                              "port": 59700 + index, "health": "/api/v3/ping",
                              "depends_on": [] if index < 3 else ["core-common-config-bootstrapper", "database"],
                              "tags": ["edgex"], "meta": {"version": "3.1.1"}}
        hosts["gw%05d" % n] = {"address": address, "datacenter": "dc1", "services": services}
    return {"version": 1, "generated_from": "consul://127.0.0.1:8500/dc1", "updated_at": "2026-11-24T23:00:00Z",
            "hosts": hosts}


def git(*argv):
    result = subprocess.run(["git", "-C", REPO] + list(argv), capture_output=True)
    if result.returncode != 0:
        raise BenchError("git %s failed: %s" % (" ".join(argv), result.stderr.decode(errors="replace").strip()))
    return result.stdout


def baseline_revision(requested):
    if requested:
        return git("rev-parse", "--verify", requested + "^{commit}").decode().strip()
    added = git("log", "--diff-filter=A", "--format=%H", "--", FIRST_FAST_FILE).decode().split()
    if not added:
        raise BenchError("%s is not in this repository's history: give --baseline-rev" % FIRST_FAST_FILE)
    return git("rev-parse", added[-1] + "^").decode().strip()


def check_out(revision, work):
    """The collection at ``revision`` as <work>/baseline/ansible_collections/edgex/sysmgmt."""
    root = os.path.join(work, "baseline")
    target = os.path.join(root, "ansible_collections", "edgex", "sysmgmt")
    os.makedirs(target)
    with tarfile.open(fileobj=io.BytesIO(git("archive", revision, "plugins"))) as archive:
        archive.extractall(target)
    return root


class Bench(object):
    def __init__(self, args):
        self.args = args
        self.results = {}

    def measure(self, variant, collections, size, op, manifest):
        proc = subprocess.run([sys.executable, WORKER, "--collections", collections, "--op", op,
                               "--manifest", manifest, "--repeat", str(self.args.repeat)],
                              capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise BenchError("%s %s at %d gateways failed:\n%s" % (variant, op, size, proc.stderr[-2000:]))
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        run["median"] = statistics.median(run["seconds"])
        run["best"] = min(run["seconds"])
        run["cpu_median"] = statistics.median(run["cpu_seconds"])
        print("  %-8s %-5s %6d gateways: %8.3f s median, %8.3f s best of %d, %8.3f s CPU, %7.1f MB peak, "
              "load average %.1f" % (variant, op, size, run["median"], run["best"], len(run["seconds"]),
                                     run["cpu_median"], run["max_rss_mb"], os.getloadavg()[0]), flush=True)
        return run

    def run(self):
        args = self.args
        clean_out(args.out)
        import yaml  # the generated files are written with PyYAML itself, neutral to both variants

        with work_dir("manifest") as work:
            variants = [("new", os.path.join(REPO, ".collections"))]
            revision = None
            if args.baseline_max_gateways > 0:
                revision = baseline_revision(args.baseline_rev)
                variants.append(("baseline", check_out(revision, work)))
            dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
            for size in args.sizes:
                source = os.path.join(work, "manifest-%d.yml" % size)
                with open(source, "w") as handle:
                    yaml.dump(fleet(size), handle, Dumper=dumper, default_flow_style=False, sort_keys=True)
                entry = self.results[str(size)] = {"gateways": size, "services": size * len(SERVICES),
                                                   "bytes": os.path.getsize(source), "variants": {}}
                for variant, collections in variants:
                    if variant == "baseline" and size > args.baseline_max_gateways:
                        continue
                    runs = entry["variants"][variant] = {}
                    for op in OPERATIONS:
                        manifest = os.path.join(work, "%s-%s-%d.yml" % (variant, op, size))
                        with open(source, "rb") as original, open(manifest, "wb") as copy:
                            copy.write(original.read())
                        runs[op] = self.measure(variant, collections, size, op, manifest)
        targets = self.targets()
        report = dict(report_header("manifest"), load_average_at_end=os.getloadavg(),
                      params={"sizes": args.sizes, "repeat": args.repeat,
                                                         "services_per_gateway": len(SERVICES),
                                                         "baseline_rev": revision,
                                                         "baseline_max_gateways": args.baseline_max_gateways},
                      sizes=self.results, targets=targets)
        return finish(report, args.out, print_table)

    def targets(self):
        entry = self.results.get(str(TARGET_GATEWAYS))
        if entry is None:
            print("(no targets: they are defined at %d gateways, not in --sizes)" % TARGET_GATEWAYS)
            return []
        new = entry["variants"]["new"]
        return [{"name": "new %s at %d gateways x %d services" % (op, TARGET_GATEWAYS, len(SERVICES)),
                 "value": round(new[op]["median"], 3), "limit": "<= %.1f s" % limit, "pass": new[op]["median"] <= limit}
                for op, limit in TARGETS.items()]


def print_table(report):
    print()
    print("manifest bench: median of %d run(s) per operation, each operation in a fresh process; baseline = %s"
          % (report["params"]["repeat"], report["params"]["baseline_rev"] or "not run"))
    print("%8s %8s %7s %-6s %9s %9s %9s %10s %8s %9s %10s" % (
        "gateways", "services", "MB", "op", "new s", "new best", "new CPU", "baseline s", "ratio", "new MB", "base MB"))
    for key in sorted(report["sizes"], key=int):
        entry = report["sizes"][key]
        for op in OPERATIONS:
            new = entry["variants"]["new"][op]
            base = entry["variants"].get("baseline", {}).get(op)
            print("%8d %8d %7.1f %-6s %9.3f %9.3f %9.3f %10s %8s %9.0f %10s" % (
                entry["gateways"], entry["services"], entry["bytes"] / 1e6, op, new["median"], new["best"],
                new["cpu_median"],
                "%.3f" % base["median"] if base else "-", "%.1fx" % (base["median"] / new["median"]) if base else "-",
                new["max_rss_mb"], "%.0f" % base["max_rss_mb"] if base else "-"))
    print("(s = median wall time, best = fastest run, CPU = median CPU time of the worker; ratio = baseline s /")
    print(" new s: how many times faster; MB = peak RSS of the worker; load average at the end: %s)" % ", ".join(
        "%.1f" % load for load in report["load_average_at_end"]))
    print()
    print_targets(report["targets"])


def main(argv=None):
    return run_bench(Bench, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
