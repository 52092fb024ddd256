"""What every bench/<name>/run.py shares: options, the environment for ansible-* runs, timed
ansible-playbook runs, medians, results.json and PASS/FAIL lines, and the exit-code convention:

  0  the bench ran (a failed target is reported, not enforced)
  1  with --strict, when a target failed
  2  the bench could not measure (BenchError or any other RuntimeError, a timeout, SIGTERM)
"""

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BenchError(RuntimeError):
    """The bench could not measure (exit 2)."""


def bench_parser(doc, name, repeat_help="runs per variant; wall time is the median (default 3)"):
    """An argument parser with the options of every bench (--repeat, --out, --strict); the bench adds its own."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help=repeat_help)
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out", name),
                        help="directory for results.json and logs (default bench/out/%s)" % name)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    return parser


def run_bench(bench_class, args):
    """bench_class(args).run() (1 when a target failed, else 0) under the exit-code convention above."""
    args.out = os.path.abspath(args.out)
    # bench/run.sh killed: SystemExit instead of death, so the finally blocks stop what the bench started
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(2))
    try:
        failed = bench_class(args).run()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print("ERROR: %s" % exc, file=sys.stderr)
        return 2
    return 1 if (failed and args.strict) else 0


def tool(name):
    """The ansible-* command next to this python (the venv's), else the one on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(candidate):
        return candidate
    found = shutil.which(name)
    if not found:
        raise BenchError("%s not found next to %s or on PATH" % (name, sys.executable))
    return found


@contextlib.contextmanager
def work_dir(name):
    """A scratch directory for the bench's files, removed at the end (also on failure)."""
    path = tempfile.mkdtemp(prefix="edgex-bench-%s-" % name)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_out(out):
    """Create the output directory and drop the logs of the last run (runs append to them)."""
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith(".log"):
            os.remove(os.path.join(out, name))


def base_env(work):
    """The environment for ansible-* runs, the same for every variant of a bench.

    Writes an empty work/ansible.cfg so that no user or system ansible.cfg applies. Drops ANSIBLE_*,
    CONSUL_* and EDGEX_* settings of the caller and every *_proxy variable: the benches only talk to
    127.0.0.1 (emulator, stand-ins, Docker socket) and a proxy would be timed along."""
    config = os.path.join(work, "ansible.cfg")
    with open(config, "w") as handle:
        handle.write("[defaults]\n")
    env = {key: value for key, value in os.environ.items()
           if not (key.startswith(("ANSIBLE_", "CONSUL_", "EDGEX_")) or key.lower().endswith("_proxy"))}
    env.update({
        "ANSIBLE_CONFIG": config,
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(os.path.abspath(p) for p in (
            os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(REPO, ".collections")).split(os.pathsep)),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        # ansible-core 2.19 deprecation notices (e.g. for inventory scripts printing groups as lists)
        # would time the warnings, not the work
        "ANSIBLE_DEPRECATION_WARNINGS": "false",
        "NO_PROXY": "*",  # also against proxies configured outside the environment
    })
    return env


def playbook_env(work):
    """base_env for ansible-playbook: json callback output (parsed by run_playbook), modules on this python."""
    return dict(base_env(work), **{
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    })


def parse_time(text):
    # ansible.posix.json writes "2025-11-25T15:17:00.123456Z"
    return datetime.datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")


def task_seconds(play_json):
    """The tasks' own durations (ansible.posix.json callback), summed."""
    total = 0.0
    for play in play_json.get("plays", []):
        for task in play.get("tasks", []):
            duration = task["task"].get("duration") or {}
            if duration.get("start") and duration.get("end"):
                total += (parse_time(duration["end"]) - parse_time(duration["start"])).total_seconds()
    return total


def run_playbook(playbook_bin, playbook, work, env, log, label, timeout):
    """ansible-playbook -i localhost, <playbook> in work, timed: (wall s, task s, result of the first task).

    Appends stderr and stdout to log; BenchError when the play failed or printed no JSON."""
    name = os.path.splitext(os.path.basename(playbook))[0]
    started = time.perf_counter()
    proc = subprocess.run([playbook_bin, "-i", "localhost,", playbook], cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout)
    wall = time.perf_counter() - started
    with open(log, "a") as handle:
        handle.write("--- %s rc=%d wall=%.3fs\n%s\n%s\n" % (label, proc.returncode, wall, proc.stderr, proc.stdout))
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise BenchError("%s: ansible-playbook printed no JSON (rc=%d), see %s:\n%s"
                         % (name, proc.returncode, log, proc.stderr[-2000:]))
    if proc.returncode != 0:
        failed = [r.get("msg") for p in result.get("plays", []) for t in p["tasks"] for r in t["hosts"].values()
                  if r.get("failed")]
        raise BenchError("%s: ansible-playbook failed (rc=%d), see %s: %s" % (name, proc.returncode, log, failed))
    return wall, task_seconds(result), result["plays"][0]["tasks"][0]["hosts"]["localhost"]


def summarize_runs(runs, variants):
    """{name: [run, ...]} -> {name: medians of wall and task_seconds, walls, runs} for (name, letter) variants."""
    summary = {}
    for name, letter in variants:
        summary[name] = {"letter": letter, "wall_median": statistics.median(r["wall"] for r in runs[name]),
                         "task_median": statistics.median(r["task_seconds"] for r in runs[name]),
                         "walls": [r["wall"] for r in runs[name]], "runs": runs[name]}
    return summary


def report_header(bench):
    """The fields every results.json starts with."""
    return {"bench": bench, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": sys.version.split()[0],
            "cpus": os.cpu_count()}


def finish(report, out, print_table):
    """Write out/results.json and print the table: 1 when a target failed, else 0 (what Bench.run returns)."""
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
    print_table(report)
    return 0 if all(t["pass"] for t in report["targets"]) else 1


def print_targets(targets):
    for target in targets:
        print("%s  %s: %s (limit %s)" % ("PASS" if target["pass"] else "FAIL", target["name"], target["value"],
                                         target["limit"]))


# -- Docker (the benches that run containers: control, metrics) ---------------------------------


def docker(*argv, check=True):
    """stdout of ``docker argv``; BenchError naming the command when it fails (unless check is False)."""
    result = subprocess.run(["docker"] + list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise BenchError("docker %s failed: %s" % (" ".join(argv[:3]), result.stderr.strip()))
    return result.stdout


def containers_named(prefix):
    """Names of the containers (running or not) whose name starts with ``prefix``."""
    out = docker("ps", "-a", "--filter", "name=^%s" % prefix, "--format", "{{.Names}}", check=False)
    return [name for name in out.split() if name.startswith(prefix)]


def remove_containers(names):
    if names:
        subprocess.run(["docker", "rm", "-f"] + list(names), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
