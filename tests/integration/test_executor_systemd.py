"""The systemd executor on a real systemd (252, PID 1 of the test-bed's systemd gateway).

The collection's modules run inside the gateway (community.docker.docker connection, Debian's
python3) with ``executor: systemd``; what happened is read back from systemd itself
(``ActiveEnterTimestampMonotonic``, ``NRestarts``, ``ActiveState``), never from the module.
"""

import pytest
import yaml

from tests.testbed import systemd_gateway, systemd_units
from tests.testbed.images import SYSTEMD_USER, standin_image, systemd_image
from tests.testbed.testbed import Lock

pytestmark = pytest.mark.docker

START_ORDER = [["consul"], ["database"], ["core-metadata"], ["core-data", "core-command"], ["device-virtual"]]
EDGEX = [service for level in START_ORDER for service in level]


def by_name(task):
    return {s["name"]: s for s in task["services"]}


def started_all(gw):
    task, play = gw.service(name=["all"], state="started")
    assert play.returncode == 0, play.failures()
    assert all(gw.active(s) == "active" for s in EDGEX)
    return task


def assert_levels_in_order(times, levels, reverse=False):
    """Every unit of a level changed state after every unit of the level before (systemd's clock)."""
    for before, after in zip(levels, levels[1:]):
        for first in before:
            for then in after:
                if reverse:
                    assert times[first] > times[then], (first, then, times)
                else:
                    assert times[first] < times[then], (first, then, times)


def test_start_all_in_dependency_order_then_a_second_run_changes_nothing(systemd_gw):
    gw = systemd_gw
    assert [gw.active(s) for s in EDGEX] == ["active"] + ["inactive"] * (len(EDGEX) - 1)

    task = started_all(gw)
    assert task["changed"] is True and task["source"] == "consul"
    assert [sorted(level) for level in task["levels"]] == [sorted(level) for level in START_ORDER]
    results = by_name(task)
    assert results["consul"]["changed"] is False
    assert all(results[s]["before"] == "stopped" and results[s]["after"] == "running" for s in EDGEX[1:])
    assert all(results[s]["executor"] == "systemd" and results[s]["target"] == systemd_units.unit_name(s)
               for s in EDGEX)
    entered = {s: gw.entered_active(s) for s in EDGEX}
    assert_levels_in_order(entered, START_ORDER)

    again, _play = gw.service(name=["all"], state="started")
    assert again["changed"] is False
    assert not any(s["changed"] for s in again["services"])
    assert {s: gw.entered_active(s) for s in EDGEX} == entered


def test_stop_all_in_reverse_order_and_check_mode_touches_nothing(systemd_gw):
    gw = systemd_gw
    started_all(gw)
    entered = {s: gw.entered_active(s) for s in EDGEX}

    check, play = gw.service(name=["all"], state="stopped", check=True, diff=True)
    assert play.returncode == 0, play.failures()
    assert check["changed"] is True
    assert all(s["before"] == "running" and s["after"] == "stopped" for s in check["services"])
    assert "core-data: running" in check["diff"]["before"] and "core-data: stopped" in check["diff"]["after"]
    assert [gw.active(s) for s in EDGEX] == ["active"] * len(EDGEX)
    assert {s: gw.entered_active(s) for s in EDGEX} == entered

    task, play = gw.service(name=["all"], state="stopped")
    assert play.returncode == 0, play.failures()
    assert task["changed"] is True
    assert [gw.active(s) for s in EDGEX] == ["inactive"] * len(EDGEX)
    left = gw.stopped_at(EDGEX)
    assert_levels_in_order(left, START_ORDER, reverse=True)

    again, _play = gw.service(name=["all"], state="stopped")
    assert again["changed"] is False
    assert {s: gw.stop_jobs_done(s) for s in EDGEX} == {s: [left[s]] for s in EDGEX}


def test_restart_all_restarts_every_unit_and_the_registry_last(systemd_gw):
    gw = systemd_gw
    started_all(gw)
    before = {s: gw.entered_active(s) for s in EDGEX}
    main_pids = {s: gw.show(s, "MainPID")["MainPID"] for s in EDGEX}

    task, play = gw.service(name=["all"], state="restarted")
    assert play.returncode == 0, play.failures()
    assert task["changed"] is True
    assert task["levels"][-1] == ["consul"]
    after = {s: gw.entered_active(s) for s in EDGEX}
    assert all(after[s] > before[s] for s in EDGEX), (before, after)
    assert all(gw.show(s, "MainPID")["MainPID"] != main_pids[s] for s in EDGEX)
    assert after["consul"] == max(after.values())
    assert_levels_in_order(after, START_ORDER[1:])
    assert all(gw.active(s) == "active" for s in EDGEX)


def test_a_unit_that_fails_to_start_leaves_its_dependents_unstarted(systemd_gw):
    gw = systemd_gw
    gw.set_fault("core-metadata", STANDIN_CRASH_ON_START="1")

    task, play = gw.service(name=["all"], state="started", wait_timeout=90)
    assert play.returncode != 0
    results = by_name(task)
    assert results["database"]["after"] == "running"
    # Restart=on-failure retried it 5 times (StartLimitBurst) until systemd gave up: the unit failed.
    assert results["core-metadata"]["after"] == "failed"
    assert "edgex-core-metadata.service" in results["core-metadata"]["error"]
    for dependent in ("core-data", "core-command", "device-virtual"):
        assert results[dependent]["skipped"].startswith("not started: "), results[dependent]
        assert gw.active(dependent) == "inactive"
    assert gw.show("core-metadata", "ActiveState", "NRestarts") == {"ActiveState": "failed", "NRestarts": "5"}
    assert "core-metadata" in task["msg"]


def test_a_unit_that_fails_to_start_is_reported_with_the_units_own_words(systemd_gw):
    gw = systemd_gw
    gw.set_fault("core-metadata", STANDIN_CRASH_ON_START="1")
    task, _play = gw.service(name=["all"], state="started", wait_timeout=90)
    error = by_name(task)["core-metadata"]["error"]
    assert "main process exited with status 1" in error
    assert "crashing on start as told" in error


def test_the_executor_gives_the_units_own_words_for_a_failed_unit(systemd_gw):
    gw = systemd_gw
    gw.set_fault("core-metadata", STANDIN_CRASH_ON_START="1")
    gw.systemctl("start", "edgex-core-metadata.service")
    systemd_gateway.wait_until(lambda: gw.active("core-metadata") == "failed", timeout=60,
                               what="core-metadata to fail")
    out = gw.python(
        "from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor\n"
        "e = get_executor('systemd')\n"
        "d = e.details('edgex-core-metadata.service')\n"
        "print(d['state'], d['restarts'], d['exit_code'])\n"
        "print(e.failure_text('edgex-core-metadata.service'))\n")
    assert out.returncode == 0, out.stderr
    state_line, text = out.stdout.splitlines()[:2]
    assert state_line == "failed 5 1"
    assert text.startswith("failed/failed, result exit-code, main process exited with status 1, "
                           "restarted 5 time(s) by systemd; last logged: ")
    assert "core-metadata: crashing on start as told" in text


def test_a_unit_past_its_start_limit_starts_again_once_fixed(systemd_gw):
    # systemd refuses even a manual start after the start limit; the executor resets it once.
    gw = systemd_gw
    started_all(gw)
    gw.set_fault("device-virtual", STANDIN_CRASH_ON_START="1")
    gw.systemctl("restart", "edgex-device-virtual.service")
    systemd_gateway.wait_until(lambda: gw.active("device-virtual") == "failed", timeout=60,
                               what="device-virtual to fail")
    refused = gw.systemctl("start", "edgex-device-virtual.service", check=False)
    assert refused.returncode == 1 and "Job for edgex-device-virtual.service failed" in refused.stderr
    gw.set_fault("device-virtual")

    task, play = gw.service(name=["device-virtual"], state="started")
    assert play.returncode == 0, play.failures()
    assert by_name(task)["device-virtual"]["before"] == "failed"
    assert by_name(task)["device-virtual"]["after"] == "running"
    assert gw.show("device-virtual", "ActiveState", "NRestarts") == {"ActiveState": "active", "NRestarts": "0"}


def test_health_and_remediation_see_a_crash_looping_unit(systemd_gw):
    gw = systemd_gw
    started_all(gw)
    gw.set_fault("device-virtual", STANDIN_CRASH_ON_START="1")
    gw.systemctl("restart", "edgex-device-virtual.service")
    systemd_gateway.wait_until(lambda: gw.active("device-virtual") == "failed", timeout=60,
                               what="device-virtual to fail")
    common = {"node": gw.node, "executor": "systemd", "registry_type": "consul", "host": "127.0.0.1",
              "manifest_path": "/etc/edgex/manifest.yml", "probe_timeout": 2}

    health, _play = gw.module("edgex_health", name=["device-virtual", "core-data"], check_executor=True,
                              fail_on="never", **common)
    results = {s["name"]: s for s in health["services"]}
    assert results["core-data"]["verdict"] == "healthy" and results["core-data"]["executor_state"] == "running"
    assert results["device-virtual"]["verdict"] == "unhealthy"
    assert results["device-virtual"]["executor_state"] == "failed"
    assert "unit failed" in results["device-virtual"]["reasons"]

    gw.set_fault("device-virtual")
    remediated, play = gw.module("edgex_remediate", name=["device-virtual"], grace=0, backoff=1, window=300,
                                 wait_timeout=60, state_path="/var/lib/edgex/remediation.json", **common)
    assert play.returncode == 0, play.failures()
    assert remediated["restarted"] == ["device-virtual"]
    # A manual (re)start clears systemd's restart counter: the remediation's restart went through systemd.
    assert gw.show("device-virtual", "ActiveState", "NRestarts") == {"ActiveState": "active", "NRestarts": "0"}


def test_requires_on_the_database_stops_its_dependents_with_it(systemd_gw):
    # systemd, not the collection: Requires= stops the units that need the database. The module
    # reports the database only; a start of all brings everything back in order.
    gw = systemd_gw
    started_all(gw)
    task, play = gw.service(name=["database"], state="stopped")
    assert play.returncode == 0, play.failures()
    assert [s["name"] for s in task["services"]] == ["database"]
    assert {s: gw.active(s) for s in ("core-metadata", "core-data", "core-command")} == {
        "core-metadata": "inactive", "core-data": "inactive", "core-command": "inactive"}
    assert gw.active("device-virtual") == "active"  # Wants= only: left alone

    task = started_all(gw)
    assert sorted(s["name"] for s in task["services"] if s["changed"]) == [
        "core-command", "core-data", "core-metadata", "database"]


def test_a_host_without_systemd_as_pid_1_gives_a_clear_error(docker_engine, tmp_path):
    from tests.testbed.fixtures_systemd import SystemdGateway

    with Lock():
        container = systemd_gateway.run_container("edgex-sdtest-nopid1", systemd_image(),
                                                  command=["sleep", "infinity"])
        try:
            gw = SystemdGateway(container, "sdgw", tmp_path)
            systemd_gateway.write_file(container, "/etc/edgex/manifest.yml",
                                       yaml.safe_dump(systemd_units.manifest("sdgw")))
            task, play = gw.service(name=["core-data"], state="started", registry_type="none")
        finally:
            systemd_gateway.remove_gateway(container)
    assert play.returncode != 0
    assert "System has not been booted with systemd as init system (PID 1)" in task["msg"]
    assert "edgex-core-data.service" in task["msg"]


def test_a_host_without_systemctl_gives_a_clear_error(docker_engine, tmp_path):
    with Lock():
        container = systemd_gateway.run_container("edgex-sdtest-nosystemctl", standin_image(),
                                                  command=["infinity"], entrypoint="sleep")
        try:
            out = systemd_gateway.run_python(
                container,
                "from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor\n"
                "from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ExecutorError\n"
                "try:\n"
                "    get_executor('systemd').start('edgex-core-data.service')\n"
                "except ExecutorError as exc:\n"
                "    print(exc)\n")
        finally:
            systemd_gateway.remove_gateway(container)
    assert out.stdout.strip() == ("systemd executor cannot start edgex-core-data.service: "
                                  "systemctl not found on this host")


USER_UNIT = systemd_units.USER_SERVICE[1]
USER_EXECUTOR = ("from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import "
                 "get_executor\ne = get_executor('systemd', scope='user')\n")


def test_scope_user_drives_the_users_own_manager(systemd_gw):
    # As a become/docker exec -u session: the user, no XDG_RUNTIME_DIR, no login.
    gw = systemd_gw
    out = gw.python(USER_EXECUTOR + "print(e.state(%r))\ne.start(%r)\nprint(e.details(%r)['raw'])\n"
                    % (USER_UNIT, USER_UNIT, USER_UNIT), user=SYSTEMD_USER)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["stopped", "active/running"]
    user_unit = systemd_gateway.systemctl(gw.container, "show", USER_UNIT, "--property=ActiveState,MainPID",
                                          user=True).stdout
    props = dict(line.split("=", 1) for line in user_unit.splitlines())
    assert props["ActiveState"] == "active"
    owner = systemd_gateway.exec_in(gw.container, ["ps", "-o", "user=", "-p", props["MainPID"]]).stdout.strip()
    assert owner == SYSTEMD_USER
    # The system manager has no such unit: scope user really went to the user's manager.
    assert gw.show("consul", "LoadState")["LoadState"] == "loaded"
    assert systemd_gateway.show(gw.container, USER_UNIT, "LoadState") == {"LoadState": "not-found"}

    out = gw.python(USER_EXECUTOR + "e.stop(%r)\nprint(e.state(%r))\n" % (USER_UNIT, USER_UNIT), user=SYSTEMD_USER)
    assert out.stdout.split() == ["stopped"], out.stderr


def test_scope_user_as_root_says_how_to_reach_a_user_manager(systemd_gw):
    out = systemd_gw.python(USER_EXECUTOR + "from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors "
                            "import ExecutorError\ntry:\n    e.state(%r)\nexcept ExecutorError as exc:\n"
                            "    print(exc)\n" % USER_UNIT)
    assert "Failed to connect to bus" in out.stdout
    assert "loginctl enable-linger" in out.stdout


def test_edgex_service_with_scope_user_runs_as_the_user(systemd_gw, tmp_path):
    gw = systemd_gw
    service = systemd_units.USER_SERVICE[0]
    manifest = systemd_units.manifest(gw.node)
    manifest["hosts"][gw.node]["services"] = {service: {
        "executor": "systemd", "target": USER_UNIT, "address": "127.0.0.1", "port": systemd_units.USER_SERVICE[2],
        "health": "/api/v3/ping", "depends_on": [], "tags": [], "meta": {}}}
    path = "/home/%s/manifest.yml" % SYSTEMD_USER
    systemd_gateway.write_file(gw.container, path, yaml.safe_dump(manifest))
    task, play = gw.service(name=[service], state="started", registry_type="none", manifest_path=path,
                            systemd_scope="user", user=SYSTEMD_USER)
    assert play.returncode == 0, play.failures()
    assert by_name(task)[service]["after"] == "running"
    shown = systemd_gateway.systemctl(gw.container, "show", USER_UNIT, "--property=ActiveState", user=True).stdout
    assert shown.strip() == "ActiveState=active"
    again, _play = gw.service(name=[service], state="started", registry_type="none", manifest_path=path,
                              systemd_scope="user", user=SYSTEMD_USER)
    assert again["changed"] is False
