"""edgex_metrics' pieces: readings from the engine's one-shot stats (recorded) and from systemctl show,
CPU % from two readings, compose replicas added up, and one concurrent pass with one interval for all."""

import calendar
import json
import os
import threading
import time

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ExecutorError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.compose import combine_usage
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.docker import container_usage, engine_time
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.snap import SnapExecutor
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.systemd import (
    SHOW_PROPERTIES,
    SystemdExecutor,
    parse_show,
    systemd_number,
    unit_usage,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.metrics import collect, cpu_percent, summary
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord

from test_executors import FakeRunner, ok, recording  # noqa: E402 (same directory: pytest puts it on sys.path)

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data", "executors")
RUNNING = {"State": {"Status": "running", "Running": True, "ExitCode": 0,
                     "StartedAt": "2026-11-29T20:29:37.433701285Z"}, "RestartCount": 2}


def stats(number):
    with open(os.path.join(DATA, "docker-stats-oneshot-%d.json" % number)) as handle:
        return json.load(handle)


# -- docker: the engine's one-shot stats ------------------------------------------------------


def test_two_one_shot_samples_give_cpu_percent_as_docker_stats_computes_it():
    first = container_usage("edgex-core-data", RUNNING, stats(1))
    second = container_usage("edgex-core-data", RUNNING, stats(2))
    # docker CLI: (delta total_usage / delta system_cpu_usage) x online_cpus x 100
    cpu_delta = 77370907 - 76544095
    system_delta = 7912050000000 - 7910020000000
    assert cpu_percent(first, second) == round(100.0 * cpu_delta / system_delta * 2, 2) == 0.08


def test_a_reading_holds_memory_restarts_and_uptime():
    reading = container_usage("edgex-core-data", RUNNING, stats(1), now=engine_time("2026-11-29T20:30:37Z"))
    assert reading["state"] == "running" and reading["restarts"] == 2
    assert reading["memory_used"] == 11653120 and reading["memory_limit"] == 25276510208
    assert reading["uptime"] == 59.6
    assert reading["cpu_ns"] == 76544095 and reading["cpu_clock_ns"] == 7910020000000 / 2


def test_memory_used_leaves_out_the_inactive_page_cache():
    sample = stats(1)
    sample["memory_stats"]["stats"]["total_inactive_file"] = 1653120
    assert container_usage("x", RUNNING, sample)["memory_used"] == 10000000
    del sample["memory_stats"]["stats"]["total_inactive_file"]
    sample["memory_stats"]["stats"]["inactive_file"] = 653120  # cgroup v2's name
    assert container_usage("x", RUNNING, sample)["memory_used"] == 11000000


def test_online_cpus_missing_falls_back_to_the_per_cpu_list():
    sample = stats(1)
    del sample["cpu_stats"]["online_cpus"]
    assert container_usage("x", RUNNING, sample)["cpu_clock_ns"] == 7910020000000 / 2


def test_a_stopped_container_has_state_and_restarts_only():
    exited = {"State": {"Status": "exited", "Running": False, "ExitCode": 143,
                        "StartedAt": "2026-11-29T20:29:37Z"}, "RestartCount": 0}
    reading = container_usage("x", exited, None)
    assert reading["state"] == "stopped" and reading["restarts"] == 0
    assert reading["cpu_ns"] is None and reading["memory_used"] is None and reading["uptime"] is None


AT = calendar.timegm((2026, 11, 29, 20, 29, 37))


@pytest.mark.parametrize("text, seconds", [
    ("2026-11-29T20:29:37.433701285Z", AT + 0.433701285), ("2026-11-29T20:29:37Z", AT),
    ("2026-11-29T21:29:37.5+01:00", AT + 0.5), ("0001-01-01T00:00:00Z", None), ("", None), (None, None),
])
def test_engine_timestamps(text, seconds):
    assert engine_time(text) == (pytest.approx(seconds, abs=1e-6) if seconds else None)


@pytest.mark.parametrize("first, second", [
    ({"cpu_ns": None, "cpu_clock_ns": None}, {"cpu_ns": 5, "cpu_clock_ns": 10}),
    ({"cpu_ns": 5, "cpu_clock_ns": 10}, {"cpu_ns": 6, "cpu_clock_ns": 10}),   # no time passed
    ({"cpu_ns": 500, "cpu_clock_ns": 10}, {"cpu_ns": 6, "cpu_clock_ns": 20}),  # restarted: its counter went back
])
def test_cpu_percent_is_none_when_two_readings_cannot_tell(first, second):
    assert cpu_percent(first, second) is None


def test_compose_replicas_add_up():
    one = container_usage("edgex/core-data", RUNNING, stats(1))
    two = container_usage("edgex/core-data", dict(RUNNING, RestartCount=1), stats(2))
    combined = combine_usage("edgex/core-data", "running", [one, two])
    assert combined["memory_used"] == 2 * 11653120 and combined["restarts"] == 3
    assert combined["cpu_ns"] == 76544095 + 77370907 and combined["cpu_clock_ns"] == one["cpu_clock_ns"]
    assert combine_usage("edgex/core-data", "stopped", [])["cpu_ns"] is None


# -- systemd and snap: systemctl show ----------------------------------------------------------


@pytest.mark.parametrize("value, number", [
    ("123", 123), ("0", 0), ("[not set]", None), ("infinity", None), ("18446744073709551615", None), ("", None),
    (None, None),
])
def test_systemd_numbers(value, number):
    assert systemd_number(value) == number


USAGE_SHOW = ["--property=CPUUsageNSec,MemoryCurrent,MemoryMax,MemoryLimit,NRestarts,ActiveEnterTimestamp,"
              "ActiveEnterTimestampMonotonic,ActiveState", "--no-pager"]
STATE_SHOW = ["--property=" + ",".join(SHOW_PROPERTIES), "--no-pager"]


def test_unit_usage_from_systemctl_show():
    props = {"CPUUsageNSec": "2500000000", "MemoryCurrent": "20971520", "MemoryMax": "infinity",
             "MemoryLimit": "268435456", "NRestarts": "3", "ActiveState": "active",
             "ActiveEnterTimestamp": "Sun 2026-11-29 20:29:37 UTC", "ActiveEnterTimestampMonotonic": "100000000"}
    usage = unit_usage(props, 5_000_000_000, monotonic_now=160.0)
    assert usage == {"cpu_ns": 2500000000, "cpu_clock_ns": 5000000000, "memory_used": 20971520,
                     "memory_limit": 268435456, "restarts": 3, "uptime": 60.0,
                     "started_at": "Sun 2026-11-29 20:29:37 UTC"}
    off = unit_usage(dict(props, CPUUsageNSec="[not set]"), 5_000_000_000, monotonic_now=160.0)
    assert off["cpu_ns"] is None and off["cpu_clock_ns"] is None
    stopped = unit_usage(dict(props, ActiveState="inactive"), 5_000_000_000, monotonic_now=160.0)
    assert (stopped["cpu_ns"], stopped["memory_used"], stopped["uptime"], stopped["restarts"]) == (None, None, None, 3)


def test_unit_usage_from_what_systemd_252_printed():
    active = unit_usage(parse_show(recording("systemctl-show-usage-active.txt")), 10**12, monotonic_now=4312.46)
    assert active == {"cpu_ns": None, "cpu_clock_ns": None, "memory_used": 11235328, "memory_limit": 268435456,
                      "restarts": 0, "uptime": 7.9, "started_at": "Sun 2026-11-29 20:35:26 UTC"}
    unlimited = unit_usage(parse_show(recording("systemctl-show-usage-no-accounting.txt")), 10**12)
    assert unlimited["memory_used"] == 16232448 and unlimited["memory_limit"] is None
    for name in ("systemctl-show-usage-inactive.txt", "systemctl-show-usage-not-found.txt"):
        stopped = unit_usage(parse_show(recording(name)), 10**12)
        assert (stopped["cpu_ns"], stopped["memory_used"], stopped["uptime"], stopped["started_at"]) == (None,) * 4


def test_systemd_stats_reads_state_and_usage_of_the_unit():
    usage = ("CPUUsageNSec=1500000\nMemoryCurrent=1048576\nMemoryMax=infinity\nMemoryLimit=infinity\nNRestarts=0\n"
             "ActiveEnterTimestamp=Sun 2026-11-29 20:29:37 UTC\nActiveEnterTimestampMonotonic=1000000\n"
             "ActiveState=active\n")
    runner = FakeRunner((["systemctl", "show", "edgex-core-data.service"] + STATE_SHOW,
                         ok(recording("systemctl-show-active.txt"))),
                        (["systemctl", "show", "edgex-core-data.service"] + USAGE_SHOW, ok(usage)))
    reading = SystemdExecutor(runner).stats("edgex-core-data.service")
    assert reading["state"] == "running" and reading["target"] == "edgex-core-data.service"
    assert reading["cpu_ns"] == 1500000 and reading["memory_used"] == 1048576 and reading["memory_limit"] is None


def test_snap_stats_reads_the_apps_systemd_unit():
    usage = "CPUUsageNSec=7\nMemoryCurrent=9\nNRestarts=1\nActiveState=active\n"
    runner = FakeRunner((["snap", "services", "edgexfoundry.core-data"], ok(recording("snap-services-active.txt"))),
                        (["systemctl", "show", "snap.edgexfoundry.core-data.service"] + USAGE_SHOW, ok(usage)))
    reading = SnapExecutor(runner).stats("edgexfoundry.core-data")
    assert (reading["state"], reading["cpu_ns"], reading["memory_used"], reading["restarts"]) == ("running", 7, 9, 1)


def test_snap_stats_of_an_absent_app_runs_no_systemctl():
    runner = FakeRunner((["snap", "services", "edgexfoundry.nothing"],
                         (1, "", recording("snap-services-no-service.stderr"))))
    assert SnapExecutor(runner).stats("edgexfoundry.nothing")["state"] == "absent"
    assert [call[0] for call in runner.calls] == ["snap"]


# -- one pass over a gateway ---------------------------------------------------------------------


class ScriptedExecutor(object):
    """stats() answers from a script per target: a list of readings (one per round) or an exception.
    Records when each call ran, to show that a round reads every service at the same time."""

    name = "docker"

    def __init__(self, script, delay=0.2):
        self.script = {k: list(v) if isinstance(v, list) else v for k, v in script.items()}
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()

    def stats(self, target):
        started = time.monotonic()
        time.sleep(self.delay)
        with self.lock:
            self.calls.append((target, started))
        answer = self.script[target]
        if isinstance(answer, Exception):
            raise answer
        return answer.pop(0)


class Executors(dict):
    default = "docker"

    def named(self, name):
        return self[name]

    def for_service(self, service):
        return self[service.executor or self.default], service.target


def reading(state="running", cpu_ns=0, clock=0, **extra):
    base = {"state": state, "target": None, "cpu_ns": cpu_ns if state == "running" else None,
            "cpu_clock_ns": clock if state == "running" else None, "memory_used": 1000 if state == "running" else None,
            "memory_limit": 4000, "restarts": 1, "uptime": 12.0 if state == "running" else None, "started_at": "t"}
    base.update(extra)
    return base


def service(name, target):
    return ServiceRecord(name=name, node="gw1", executor="docker", target=target)


def test_one_pass_reads_every_service_twice_at_once_with_one_interval_for_all():
    executor = ScriptedExecutor({
        "edgex-core-data": [reading(cpu_ns=0, clock=0), reading(cpu_ns=250, clock=1000)],
        "edgex-core-metadata": [reading(cpu_ns=10, clock=0), reading(cpu_ns=1010, clock=1000)],
        "edgex-support-scheduler": [reading("stopped")],
        "edgex-device-rest": [reading("absent", restarts=None)],
        "edgex-app-rules-engine": ExecutorError("docker executor: Docker daemon at unix:///x is not answering"),
    })
    services = [service("core-data", "edgex-core-data"), service("core-metadata", "edgex-core-metadata"),
                service("support-scheduler", "edgex-support-scheduler"), service("device-rest", "edgex-device-rest"),
                service("app-rules-engine", "edgex-app-rules-engine")]
    slept, now = [], [100.0]
    results = collect(services, Executors(docker=executor), interval=0.5, sleep=slept.append,
                      clock=lambda: now.pop(0) if len(now) > 1 else now[0])
    assert slept == [0.5]
    by_name = {r.name: r for r in results}
    assert [r.name for r in results] == [s.name for s in services]
    assert by_name["core-data"].cpu_percent == 25.0 and by_name["core-metadata"].cpu_percent == 100.0
    assert by_name["core-data"].memory_percent == 25.0 and by_name["core-data"].uptime == 12.0
    assert by_name["support-scheduler"].state == "stopped"
    assert by_name["support-scheduler"].reason == "container edgex-support-scheduler is stopped"
    assert by_name["device-rest"].state == "absent"
    assert by_name["device-rest"].reason == "container edgex-device-rest does not exist on this host"
    assert by_name["app-rules-engine"].state == "unknown" and "not answering" in by_name["app-rules-engine"].reason
    assert summary(results) == {"running": 2, "stopped": 1, "absent": 1, "failed": 0, "unknown": 1, "total": 5}
    # Five reads in the first round, two (the running ones) in the second, each round at once:
    # every call of a round started before any of them could have finished (0.2 s each).
    assert len(executor.calls) == 7
    first_round = sorted(started for _target, started in executor.calls)[:5]
    assert first_round[-1] - first_round[0] < executor.delay


def test_nothing_running_means_no_interval_and_no_second_round():
    executor = ScriptedExecutor({"edgex-core-data": [reading("stopped")]}, delay=0)
    slept = []
    [result] = collect([service("core-data", "edgex-core-data")], Executors(docker=executor), sleep=slept.append)
    assert slept == [] and result.state == "stopped" and len(executor.calls) == 1


def test_a_service_that_stops_between_the_readings_reports_the_latest_state():
    executor = ScriptedExecutor({"edgex-core-data": [reading(cpu_ns=5, clock=5), reading("stopped")]}, delay=0)
    [result] = collect([service("core-data", "edgex-core-data")], Executors(docker=executor), sleep=lambda s: None)
    assert result.state == "stopped" and result.cpu_percent is None


def test_a_unit_without_cpu_accounting_says_so():
    executor = ScriptedExecutor({"u": [reading(cpu_ns=None, clock=None)]}, delay=0)
    [result] = collect([service("core-data", "u")], Executors(docker=executor), sleep=lambda s: None)
    assert result.state == "running" and result.cpu_percent is None and result.memory_used == 1000
    assert "reports no CPU time" in result.reason


def test_the_second_round_starts_one_interval_after_the_first_started():
    """A first round that took 0.3 s leaves 0.7 s of a 1 s interval; one that took longer, none."""
    for took, pause in ((0.3, 0.7), (1.4, 0.0)):
        executor = ScriptedExecutor({"u": [reading(cpu_ns=0, clock=0), reading(cpu_ns=1, clock=10)]}, delay=0)
        times, slept = [50.0, 50.0 + took], []
        collect([service("core-data", "u")], Executors(docker=executor), interval=1.0, sleep=slept.append,
                clock=lambda: times.pop(0))
        assert slept == [pytest.approx(pause)]
