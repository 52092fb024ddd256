"""Executors driven by a fake command runner and recorded command outputs (tests/unit/data/executors).

The fake runner records every argv; "no command ran" is asserted on that record.
"""

import os
import subprocess
import sys

import pytest


from ansible_collections.edgex.sysmgmt.plugins.module_utils._names import validate_container_name
from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ExecutorError, InvalidNameError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.base import (
    CommandResult,
    CommandRunner,
    container_state,
    ToolNotFoundError,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import default_target, get_executor
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.compose import ComposeExecutor, parse_ps_json
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.snap import parse_logs, parse_services, SnapExecutor
from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.systemd import (
    parse_show,
    SystemdExecutor,
    user_environment,
)

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data", "executors")

SHOW = ["--property=ActiveState,SubState,LoadState,MainPID,ExecMainStartTimestamp,Result,NRestarts,ExecMainCode,"
        "ExecMainStatus", "--no-pager"]
HOSTILE = ["x; rm -rf /", "-rf", "../etc", "a b", "", "x\n", "$(id)", "a/b/c", None, 42,
           "edgex/core-data\n", "edgexfoundry.core-data\n", "edgex-core-data.service\n", "edgex\n/core-data"]


def recording(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as handle:
        return handle.read()


class FakeRunner(object):
    """Answers argv lists from a script; each entry is (argv prefix, result or exception)."""

    timeout = 120.0

    def __init__(self, *script):
        self.script = list(script)
        self.calls = []
        self.timeouts = []

    def run(self, argv, timeout=None):
        assert isinstance(argv, list) and all(isinstance(arg, str) for arg in argv), argv
        self.calls.append(argv)
        self.timeouts.append(timeout)
        for prefix, answer in self.script:
            if argv[:len(prefix)] == list(prefix):
                if isinstance(answer, list):  # one answer per call, the last one repeats
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                if isinstance(answer, Exception):
                    raise answer
                rc, stdout, stderr = answer
                return CommandResult(argv, rc, stdout, stderr)
        raise AssertionError("unexpected command %r" % (argv,))


def ok(stdout=""):
    return (0, stdout, "")


# --- interface, factory, default targets ---------------------------------------------------


def test_default_targets_follow_each_executors_naming():
    assert default_target("core-data", "docker") == "edgex-core-data"
    assert default_target("database", "docker") == "edgex-redis"
    assert default_target("device-foo", "docker") == "edgex-device-foo"
    assert default_target("core-data", "compose") == "edgex/core-data"
    assert default_target("core-data", "compose", project="gw7") == "gw7/core-data"
    assert default_target("core-data", "systemd") == "edgex-core-data.service"
    assert default_target("core-data", "snap") == "edgexfoundry.core-data"


def test_default_targets_are_valid_targets_of_their_executor():
    runner = FakeRunner()
    for name in ("compose", "systemd", "snap"):
        executor = get_executor(name, runner=runner)
        target = default_target("core-common-config-bootstrapper", name)
        assert executor.normalize_target(target) == target
    assert runner.calls == []


def test_default_target_refuses_unknown_executor_and_bad_keys():
    with pytest.raises(ExecutorError, match="unknown executor 'kubernetes'"):
        default_target("core-data", "kubernetes")
    with pytest.raises(InvalidNameError):
        default_target("core data", "docker")
    with pytest.raises(InvalidNameError):
        default_target("core-data", "compose", project="../x")


def test_get_executor_builds_each_kind_with_its_options():
    runner = FakeRunner()
    assert isinstance(get_executor("systemd", runner=runner, scope="user"), SystemdExecutor)
    assert isinstance(get_executor("snap", runner=runner), SnapExecutor)
    compose = get_executor("compose", runner=runner, project_directory="/opt/edgex", files=["a.yml"])
    assert isinstance(compose, ComposeExecutor) and compose.files == ["a.yml"]
    with pytest.raises(ExecutorError, match="unknown executor 'k8s'.*docker, compose, systemd, snap"):
        get_executor("k8s")
    with pytest.raises(ExecutorError, match="scope must be one of system, user"):
        get_executor("systemd", runner=runner, scope="global")
    with pytest.raises(TypeError):
        get_executor("snap", runner=runner, scope="user")


def test_a_module_that_does_not_use_docker_needs_no_docker_sdk():
    # A module that only uses systemd must not need the Docker SDK installed: with the SDK made
    # unimportable, the executors still load and systemd's is made, and the SDK is never imported.
    code = ("import sys\n"
            "class NoDocker:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'docker' or name.startswith('docker.'):\n"
            "            raise ImportError('no docker SDK here')\n"
            "sys.meta_path.insert(0, NoDocker())\n"
            "from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors.factory import get_executor\n"
            "get_executor('systemd')\n"
            "assert 'docker' not in sys.modules\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.parametrize("status, exit_code, oom, error, expected", [
    ("running", 0, False, "", "running"),
    ("restarting", 2, False, "", "running"),
    ("created", 0, False, "", "stopped"),
    ("paused", 0, False, "", "stopped"),
    ("exited", 0, False, "", "stopped"),
    ("exited", 143, False, "", "stopped"),   # died of docker stop's SIGTERM
    ("exited", 137, False, "", "stopped"),   # SIGKILLed after the stop timeout
    ("exited", 137, True, "", "failed"),     # ... unless the kernel OOM killer did it
    ("exited", 1, False, "", "failed"),
    ("exited", 0, False, "OCI runtime create failed", "failed"),
    ("dead", 0, False, "", "failed"),
])
def test_container_state_mapping(status, exit_code, oom, error, expected):
    assert container_state(status, exit_code, oom, error) == expected


# --- the real CommandRunner ----------------------------------------------------------------


def test_command_runner_returns_rc_stdout_stderr_without_a_shell(tmp_path):
    result = CommandRunner().run([sys.executable, "-c", "import sys; print('out $HOME;'); "
                                                        "sys.stderr.write('err'); sys.exit(3)"])
    assert (result.rc, result.stdout, result.stderr) == (3, "out $HOME;\n", "err")


def test_command_runner_runs_tools_in_the_c_locale(monkeypatch):
    # snap's table headers and states are translated; the parsers read the untranslated words.
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    result = CommandRunner().run([sys.executable, "-c", "import os; print(os.environ['LC_ALL'], os.environ['LANG'])"])
    assert result.stdout == "C C\n"


def test_command_runner_refuses_a_shell_string():
    with pytest.raises(TypeError, match="argv must be a list"):
        CommandRunner().run("systemctl start x")


def test_command_runner_times_out_with_a_clear_error():
    with pytest.raises(ExecutorError, match="did not finish within 1s"):
        CommandRunner(timeout=1).run([sys.executable, "-c", "import time; time.sleep(5)"])


@pytest.mark.parametrize("name, target, tool", [
    ("systemd", "edgex-core-data", "systemctl"),
    ("snap", "edgexfoundry.core-data", "snap"),
])
def test_missing_tool_gives_a_clear_error(tmp_path, monkeypatch, name, target, tool):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: the real runner finds nothing
    executor = get_executor(name)
    with pytest.raises(ExecutorError) as raised:
        executor.state(target)
    message = str(raised.value)
    assert "%s not found on this host" % tool in message
    assert message.startswith("%s executor cannot read the state of %s" % (name, executor.normalize_target(target)))


def test_missing_compose_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ExecutorError, match="neither the docker compose plugin nor docker-compose is installed"):
        get_executor("compose").state("edgex/core-data")


# --- hostile names: refused before any command runs -----------------------------------------


@pytest.mark.parametrize("name", ["compose", "systemd", "snap"])
@pytest.mark.parametrize("target", HOSTILE)
@pytest.mark.parametrize("action", ["state", "details", "start", "stop", "restart"])
def test_hostile_targets_are_refused_and_nothing_runs(name, target, action):
    runner = FakeRunner()
    executor = get_executor(name, runner=runner)
    with pytest.raises(InvalidNameError):
        getattr(executor, action)(target)
    assert runner.calls == []


@pytest.mark.parametrize("name, target", [
    ("compose", "edgex/core data"), ("compose", "edgex/-rf"), ("compose", "Edgex/core-data"),
    ("compose", "edgex/"), ("compose", "/core-data"),
    ("systemd", "edgex-core-data.socket;x"), ("systemd", ".service"), ("systemd", "-x.service"),
    ("systemd", "a/b.service"),
    ("snap", "edgexfoundry"), ("snap", "edgexfoundry.core.data"), ("snap", "edgexfoundry.-rf"),
    ("snap", ".core-data"),
])
def test_malformed_targets_are_refused(name, target):
    runner = FakeRunner()
    with pytest.raises(InvalidNameError):
        get_executor(name, runner=runner).state(target)
    assert runner.calls == []


def test_docker_container_names_follow_dockers_rule():
    validate = validate_container_name
    assert validate("edgex-core-data") == "edgex-core-data"
    assert validate("Gw2_edgex.core-data") == "Gw2_edgex.core-data"
    for bad in HOSTILE + ["_x", ".x", "x/y"]:
        with pytest.raises(InvalidNameError):
            validate(bad)


# --- systemd -------------------------------------------------------------------------------


def systemd(stdout=None, rc=0, stderr="", scope="system", extra=()):
    script = [(("systemctl", "--user", "show") if scope == "user" else ("systemctl", "show"),
               (rc, stdout or "", stderr))]
    runner = FakeRunner(*(list(extra) + script))
    return SystemdExecutor(runner=runner, scope=scope), runner


def test_systemd_show_argv_and_running_details():
    executor, runner = systemd(recording("systemctl-show-active.txt"))
    details = executor.details("edgex-core-data")
    assert runner.calls == [["systemctl", "show", "edgex-core-data.service"] + SHOW]
    assert details == {
        "state": "running", "target": "edgex-core-data.service", "raw": "active/running", "load_state": "loaded",
        "result": "success", "started_at": "Sun 2026-11-29 19:36:35 UTC", "pid": 102, "exit_code": None,
        "restarts": 0, "status_text": "active/running",
    }


@pytest.mark.parametrize("recorded, state, raw", [
    ("systemctl-show-active.txt", "running", "active/running"),
    ("systemctl-show-inactive.txt", "stopped", "inactive/dead"),
    ("systemctl-show-failed.txt", "failed", "failed/failed"),
    ("systemctl-show-not-found.txt", "absent", "inactive/dead"),
    ("systemctl-show-auto-restart.txt", "running", "activating/auto-restart"),
    ("systemctl-show-bad-setting.txt", "failed", "inactive/dead"),
])
def test_systemd_states_from_recorded_show_output(recorded, state, raw):
    executor, _runner = systemd(recording(recorded))
    details = executor.details("edgex-core-data.service")
    assert (details["state"], details["raw"]) == (state, raw)
    assert executor.state("edgex-core-data.service") == state


def test_systemd_stopped_and_missing_units_have_no_pid_or_start_time():
    executor, _runner = systemd(recording("systemctl-show-not-found.txt"))
    details = executor.details("edgex-nope")
    assert (details["pid"], details["started_at"], details["load_state"]) == (None, None, "not-found")
    executor, _runner = systemd(recording("systemctl-show-failed.txt"))
    details = executor.details("edgex-core-data")
    assert (details["result"], details["exit_code"], details["restarts"]) == ("exit-code", 1, 5)
    assert details["status_text"] == ("failed/failed, result exit-code, main process exited with status 1, "
                                      "restarted 5 time(s) by systemd")


def test_systemd_crash_loop_shows_its_restarts():
    # Restart=on-failure, between two attempts: systemd brings it back itself, like a restarting container.
    executor, _runner = systemd(recording("systemctl-show-auto-restart.txt"))
    details = executor.details("edgex-core-command")
    assert (details["state"], details["restarts"], details["exit_code"]) == ("running", 1, 1)
    assert details["status_text"].startswith("activating/auto-restart, result exit-code")


def test_systemd_user_scope_puts_user_before_the_verb():
    executor, runner = systemd(recording("systemctl-show-active.txt"), scope="user",
                               extra=[(("systemctl", "--user", "restart"), ok())])
    executor.state("edgex-core-data")
    executor.restart("edgex-core-data")
    assert runner.calls == [["systemctl", "--user", "show", "edgex-core-data.service"] + SHOW,
                            ["systemctl", "--user", "restart", "edgex-core-data.service"]]


def test_systemd_start_stop_restart_argv():
    runner = FakeRunner((("systemctl",), ok()))
    executor = SystemdExecutor(runner=runner)
    executor.start("edgex-core-data")
    executor.stop("edgex-core-data.service", timeout=30)
    executor.restart("snap.edgexfoundry.core-data")
    executor.start("edgex-device@modbus-1.service")
    assert runner.calls == [
        ["systemctl", "start", "edgex-core-data.service"],
        ["systemctl", "stop", "edgex-core-data.service"],
        ["systemctl", "restart", "snap.edgexfoundry.core-data.service"],
        ["systemctl", "start", "edgex-device@modbus-1.service"],
    ]
    # The stop grace time lengthens the wait for systemctl; no timeout keeps the runner's default.
    assert runner.timeouts == [None, 150.0, None, None]


def test_systemd_without_systemd_names_unit_and_cause():
    executor, _runner = systemd(rc=1, stderr=recording("systemctl-show-no-systemd.stderr"))
    with pytest.raises(ExecutorError) as raised:
        executor.state("edgex-core-data")
    assert str(raised.value) == ("systemd executor cannot read the state of edgex-core-data.service: System has "
                                 "not been booted with systemd as init system (PID 1). Can't operate.\n"
                                 "Failed to connect to bus: Host is down")


def test_systemd_user_scope_without_a_user_bus_says_how_to_reach_one():
    executor, _runner = systemd(rc=1, stderr=recording("systemctl-user-show-no-bus.stderr"), scope="user")
    with pytest.raises(ExecutorError) as raised:
        executor.state("edgex-core-data")
    assert "Failed to connect to bus: No medium found" in str(raised.value)
    assert "loginctl enable-linger" in str(raised.value)


def test_systemd_user_scope_finds_the_users_manager_without_xdg_runtime_dir(monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    executor = SystemdExecutor(scope="user")
    assert executor.runner._environment()["XDG_RUNTIME_DIR"] == "/run/user/%d" % os.geteuid()
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/4242")
    assert SystemdExecutor(scope="user").runner._environment()["XDG_RUNTIME_DIR"] == "/run/user/4242"
    assert user_environment({"PATH": "/bin"}, euid=1000) == {"PATH": "/bin", "XDG_RUNTIME_DIR": "/run/user/1000"}


def test_systemd_start_of_a_unit_past_its_start_limit_resets_it_once():
    # Captured: after 5 crashes systemd refuses even a manual start until reset-failed.
    refused = (1, "", recording("systemctl-start-limit-hit.stderr"))
    runner = FakeRunner((("systemctl", "start"), [refused, ok()]),
                        (("systemctl", "show"), ok(recording("systemctl-show-failed.txt"))),
                        (("systemctl", "reset-failed"), ok()))
    SystemdExecutor(runner=runner).start("edgex-core-command")
    assert runner.calls == [["systemctl", "start", "edgex-core-command.service"],
                            ["systemctl", "show", "edgex-core-command.service"] + SHOW,
                            ["systemctl", "reset-failed", "edgex-core-command.service"],
                            ["systemctl", "start", "edgex-core-command.service"]]


def test_systemd_failed_start_reports_systemctls_message_and_the_units_own_words():
    runner = FakeRunner((("systemctl", "start"), (1, "", recording("systemctl-start-limit-hit.stderr"))),
                        (("systemctl", "show"), ok(recording("systemctl-show-failed.txt"))),
                        (("systemctl", "reset-failed"), ok()),
                        (("journalctl",), ok(recording("journalctl-unit-crash.txt"))))
    with pytest.raises(ExecutorError) as raised:
        SystemdExecutor(runner=runner).start("edgex-core-command")
    message = str(raised.value)
    assert message.startswith("systemd executor cannot start edgex-core-command.service: Job for")
    assert ("unit: failed/failed, result exit-code, main process exited with status 1, restarted 5 time(s) by "
            "systemd; last logged: ") in message
    assert "standin: core-command: crashing on start as told" in message
    # Tried twice (once after reset-failed), then read what the unit says; journal lines of the unit's own processes.
    assert [c[1] for c in runner.calls if c[0] == "systemctl"] == ["start", "show", "reset-failed", "start", "show"]
    assert ["journalctl", "_SYSTEMD_UNIT=edgex-core-command.service", "-n", "3", "-o", "cat", "--no-pager"] \
        in runner.calls


def test_systemd_a_job_another_job_canceled_is_run_again():
    # Captured: restarting the database (Requires= of core-metadata) canceled a stop of core-metadata.
    canceled = (1, "", recording("systemctl-stop-canceled.stderr"))
    runner = FakeRunner((("systemctl", "stop"), [canceled, ok()]))
    SystemdExecutor(runner=runner).stop("edgex-core-metadata", timeout=5)
    assert runner.calls == [["systemctl", "stop", "edgex-core-metadata.service"]] * 2


def test_systemd_a_job_canceled_again_and_again_is_an_error_after_two_retries():
    canceled = (1, "", recording("systemctl-stop-canceled.stderr"))
    runner = FakeRunner((("systemctl", "stop"), [canceled]),
                        (("systemctl", "show"), ok(recording("systemctl-show-active.txt"))),
                        (("journalctl",), ok()))
    with pytest.raises(ExecutorError, match="cannot stop edgex-core-metadata.service: Job for edgex-core-metadata"
                                            ".service canceled.\nunit: active/running$"):
        SystemdExecutor(runner=runner).stop("edgex-core-metadata")
    assert [c[1] for c in runner.calls].count("stop") == 3


def test_systemd_failed_start_of_a_unit_that_is_not_failed_is_not_retried():
    runner = FakeRunner((("systemctl", "start"), (1, "", "Failed to start edgex-x.service: Access denied\n")),
                        (("systemctl", "show"), ok(recording("systemctl-show-inactive.txt"))),
                        (("journalctl",), (1, "", "No journal files were found.\n")))
    with pytest.raises(ExecutorError, match="Access denied\nunit: inactive/dead$"):
        SystemdExecutor(runner=runner).start("edgex-x")
    assert [c[1] for c in runner.calls] == ["start", "show", "show", "_SYSTEMD_UNIT=edgex-x.service"]


def test_systemd_garbage_output_is_an_error_not_a_state():
    executor, _runner = systemd("Welcome\n")
    with pytest.raises(ExecutorError, match="no LoadState/ActiveState"):
        executor.state("edgex-core-data")
    executor, _runner = systemd("LoadState=loaded\nActiveState=exploding\n")
    with pytest.raises(ExecutorError, match="unknown ActiveState 'exploding'"):
        executor.state("edgex-core-data")


def test_parse_show_keeps_equals_signs_in_values():
    assert parse_show("ExecStart={ path=/bin/x ; argv[]=/bin/x -a=b }\nMainPID=7\n") == {
        "ExecStart": "{ path=/bin/x ; argv[]=/bin/x -a=b }", "MainPID": "7"}


# --- snap ----------------------------------------------------------------------------------


def snap(rc=0, stdout="", stderr="", extra=()):
    runner = FakeRunner(*(list(extra) + [(("snap", "services"), (rc, stdout, stderr))]))
    return SnapExecutor(runner=runner), runner


def test_snap_services_argv_and_active_details():
    executor, runner = snap(stdout=recording("snap-services-active.txt"))
    assert executor.details("edgexfoundry.core-data") == {
        "state": "running", "target": "edgexfoundry.core-data", "raw": "active", "startup": "enabled",
        "notes": "-", "started_at": None, "pid": None, "exit_code": None,
    }
    assert runner.calls == [["snap", "services", "edgexfoundry.core-data"]]


def test_snap_inactive_is_stopped():
    executor, _runner = snap(stdout=recording("snap-services-inactive.txt"))
    details = executor.details("edgexfoundry.core-data")
    assert (details["state"], details["startup"]) == ("stopped", "disabled")


@pytest.mark.parametrize("recorded", ["snap-services-snap-not-found.stderr", "snap-services-no-service.stderr"])
def test_snap_missing_snap_or_app_is_absent(recorded):
    executor, _runner = snap(rc=1, stderr=recording(recorded))
    assert executor.state("edgexfoundry.core-data") == "absent"


def test_snap_older_unknown_service_error_is_absent():
    executor, _runner = snap(rc=1, stderr='error: unknown service: "edgexfoundry.core-data"\n')
    assert executor.state("edgexfoundry.core-data") == "absent"


def test_snap_other_errors_are_raised_with_snapds_words():
    executor, _runner = snap(rc=1, stderr="error: cannot communicate with server: Get \"http://localhost/v2/apps"
                                          "?names=edgexfoundry.core-data&select=service\": dial unix "
                                          "/run/snapd.socket: connect: no such file or directory\n")
    with pytest.raises(ExecutorError, match=r"^snap executor cannot read the state of edgexfoundry.core-data: "
                                            r"error: cannot communicate with server"):
        executor.state("edgexfoundry.core-data")


def test_snap_picks_its_row_from_a_longer_listing():
    rows = parse_services(recording("snap-services-all.txt"))
    assert rows["edgexfoundry.core-data"]["current"] == "active"
    assert rows["edgexfoundry.device-virtual"] == {"startup": "disabled", "current": "inactive", "notes": "-"}
    assert rows["edgexfoundry.support-scheduler"]["notes"] == "timer-activated"
    assert "Service" not in rows
    executor, _runner = snap(stdout=recording("snap-services-all.txt"))
    assert executor.state("edgexfoundry.device-virtual") == "stopped"
    assert executor.state("edgexfoundry.core-data") == "running"
    assert executor.state("edgexfoundry.ui") == "absent"


def test_snap_user_daemon_without_state_is_an_error():
    executor, _runner = snap(stdout="Service  Startup  Current  Notes\nedgexfoundry.ui  enabled  -  user\n")
    with pytest.raises(ExecutorError, match="Current='-'"):
        executor.state("edgexfoundry.ui")


def test_snap_states_from_edgexs_own_documentation():
    # EdgeX 3.0 snaps as EdgeX's docs show them (edgex-docs Ch-OSImageWithEdgeX.md; see the data README).
    rows = parse_services(recording("snap-services-edgex-3.0-docs.txt"))
    assert len(rows) == 16
    listing = recording("snap-services-edgex-3.0-docs.txt")
    for target, state, startup in [("edgexfoundry.core-data", "running", "enabled"),
                                   ("edgexfoundry.core-common-config-bootstrapper", "stopped", "enabled"),
                                   ("edgexfoundry.nginx", "stopped", "disabled"),
                                   ("edgex-device-virtual.device-virtual", "running", "enabled")]:
        executor, _runner = snap(stdout=listing)
        details = executor.details(target)
        assert (details["state"], details["startup"]) == (state, startup), target


def test_snap_logs_lines_from_edgexs_own_documentation():
    entries = parse_logs("...\n" + recording("snap-logs-edgexfoundry-docs.txt"))
    assert len(entries) == 6
    assert entries[0] == {"time": "2023-05-24T15:43:54Z", "app": "edgexfoundry.consul", "pid": 2785,
                          "message": "2023-05-24T15:43:54.667Z [INFO]  agent: Synced check: check=support-notifications"}


def test_snap_failure_text_is_the_apps_state_and_its_last_log_lines():
    runner = FakeRunner((("snap", "services"), ok(recording("snap-services-inactive.txt"))),
                        (("snap", "logs"), ok(recording("snap-logs-edgexfoundry-docs.txt"))))
    text = SnapExecutor(runner=runner).failure_text("edgexfoundry.core-data")
    assert text.startswith("inactive (disabled); last logged: 2023-05-24T15:43:54.667Z [INFO]")
    assert runner.calls[1] == ["snap", "logs", "-n=3", "edgexfoundry.core-data"]


def test_snap_start_stop_restart_argv():
    runner = FakeRunner((("snap",), (0, "Started.\n", "")))
    executor = SnapExecutor(runner=runner)
    executor.start("edgexfoundry.core-data")
    executor.stop("edgexfoundry.core-data", timeout=5)
    executor.restart("edgexfoundry.core-data")
    assert runner.calls == [["snap", "start", "edgexfoundry.core-data"], ["snap", "stop", "edgexfoundry.core-data"],
                            ["snap", "restart", "edgexfoundry.core-data"]]


def test_snap_refused_start_names_target_and_cause():
    runner = FakeRunner((("snap", "start"), (1, "", "error: access denied (try with sudo)\n")))
    with pytest.raises(ExecutorError, match=r"^snap executor cannot start edgexfoundry.core-data: error: access "
                                            r"denied \(try with sudo\)$"):
        SnapExecutor(runner=runner).start("edgexfoundry.core-data")


# --- compose -------------------------------------------------------------------------------

PLUGIN = ("docker", "compose", "version", "--short")
STANDALONE = ("docker-compose", "version", "--short")


def compose(ps_stdout, version=None, **options):
    runner = FakeRunner((PLUGIN, ok(version or recording("compose-version-v2.txt"))),
                        (("docker", "compose", "-p"), ok(ps_stdout)))
    return ComposeExecutor(runner=runner, **options), runner


@pytest.mark.parametrize("recorded", ["compose-ps-jsonlines.txt", "compose-ps-array.json"])
def test_compose_both_json_formats_give_the_same_states(recorded):
    executor, runner = compose(recording(recorded))
    assert executor.state("edgex/core-data") == "running"
    assert executor.state("edgex/core-common-config-bootstrapper") == "stopped"
    assert executor.state("edgex/device-virtual") == "failed"
    assert executor.state("edgex/app-rules-engine") == "running"
    assert executor.state("edgex/support-notifications") == "absent"
    # The compose binary is probed once, then every query lists the project's containers.
    assert runner.calls[0] == list(PLUGIN)
    assert runner.calls[1] == ["docker", "compose", "-p", "edgex", "ps", "--all", "--format", "json"]
    assert len(runner.calls) == 6


def test_compose_details_describe_the_container():
    executor, _runner = compose(recording("compose-ps-jsonlines.txt"))
    details = executor.details("edgex/device-virtual")
    assert details["state"] == "failed"
    assert details["exit_code"] == 1
    assert details["raw"] == ["exited"]
    assert details["containers"][0]["name"] == "edgex-device-virtual"


def test_compose_empty_project_is_absent():
    for empty in ("", "[]\n"):
        executor, _runner = compose(empty)
        assert executor.state("edgex/core-data") == "absent"


def test_compose_worst_replica_wins():
    lines = "\n".join([
        '{"Name":"edgex-device-rest-1","Service":"device-rest","State":"running","ExitCode":0}',
        '{"Name":"edgex-device-rest-2","Service":"device-rest","State":"exited","ExitCode":2}',
    ])
    executor, _runner = compose(lines)
    details = executor.details("edgex/device-rest")
    assert details["state"] == "failed"
    assert details["exit_code"] is None  # not one container's to give
    assert [c["state"] for c in details["containers"]] == ["running", "failed"]


def test_compose_project_directory_and_files_come_before_the_verb():
    runner = FakeRunner((PLUGIN, ok("2.29.7\n")), (("docker", "compose"), ok()))
    executor = ComposeExecutor(runner=runner, project_directory="/opt/edgex",
                               files=["/opt/edgex/docker-compose.yml", "/opt/edgex/override.yml"])
    executor.start("edgex/core-data")
    executor.stop("edgex/core-data", timeout=7)
    executor.restart("edgex/core-data")
    executor.restart("edgex/core-data", timeout=0)
    head = ["docker", "compose", "-p", "edgex", "--project-directory", "/opt/edgex",
            "-f", "/opt/edgex/docker-compose.yml", "-f", "/opt/edgex/override.yml"]
    assert runner.calls[1:] == [head + ["start", "core-data"], head + ["stop", "-t", "7", "core-data"],
                                head + ["restart", "core-data"], head + ["restart", "-t", "0", "core-data"]]


def test_compose_falls_back_to_standalone_docker_compose_v2():
    runner = FakeRunner((PLUGIN, (125, "", recording("docker-compose-plugin-missing.stderr"))),
                        (STANDALONE, ok("2.26.1\n")),
                        (("docker-compose", "-p"), ok(recording("compose-ps-jsonlines.txt"))))
    executor = ComposeExecutor(runner=runner)
    assert executor.state("edgex/core-data") == "running"
    assert runner.calls[2] == ["docker-compose", "-p", "edgex", "ps", "--all", "--format", "json"]


V1_PS = ["docker", "ps", "--all", "--quiet", "--no-trunc", "--filter", "label=com.docker.compose.project=edgex",
         "--filter", "label=com.docker.compose.service=device-virtual", "--filter",
         "label=com.docker.compose.oneoff=False"]


def compose_v1(*script):
    runner = FakeRunner((PLUGIN, ToolNotFoundError("docker")), (STANDALONE, ok(recording("compose-version-v1.txt"))),
                        *script)
    return ComposeExecutor(runner=runner), runner


def test_compose_v1_reads_state_by_its_labels_and_docker_inspect():
    # Captured from docker-compose 1.29.2: the labels it puts on a service's containers.
    executor, runner = compose_v1((("docker", "ps"), ok(recording("docker-ps-compose-v1-labels.txt"))),
                                  (("docker", "inspect"), ok(recording("docker-inspect-exited-1.json"))))
    details = executor.details("edgex/device-virtual")
    container_id = recording("docker-ps-compose-v1-labels.txt").strip()
    assert runner.calls[1:] == [list(STANDALONE), V1_PS, ["docker", "inspect", container_id]]
    assert (details["state"], details["exit_code"], details["pid"]) == ("failed", 1, None)
    assert details["started_at"].startswith("20")


def test_compose_v1_created_container_is_stopped():
    executor, _runner = compose_v1((("docker", "ps"), ok(recording("docker-ps-compose-v1-labels.txt"))),
                                   (("docker", "inspect"), ok(recording("docker-inspect-compose-v1-created.json"))))
    details = executor.details("edgexcmp/device-virtual")
    assert (details["state"], details["raw"], details["pid"]) == ("stopped", ["created"], None)
    assert details["containers"][0]["name"] == "edgexcmp_device-virtual_1"


def test_compose_v1_project_label_is_normalised_as_v1_does():
    executor, runner = compose_v1((("docker", "ps"), ok("")))
    # Valid project names are lower-case already; v1 also drops the dots.
    executor.state("edgex.gw-1_a/device-virtual")
    assert "label=com.docker.compose.project=edgexgw-1_a" in runner.calls[-1]


def test_compose_v1_without_containers_is_absent():
    executor, runner = compose_v1((("docker", "ps"), ok("")))
    assert executor.state("edgex/core-data") == "absent"
    assert len(runner.calls) == 3  # no docker inspect with an empty id list


def test_compose_v1_acting_without_its_file_says_so():
    # Captured: v1 run outside the project's directory, without -f or --project-directory.
    executor, _runner = compose_v1((("docker-compose", "-p"), (1, "", recording("compose-v1-no-config.stderr"))))
    with pytest.raises(ExecutorError, match="cannot start edgex/core-data: Can't find a suitable configuration file"):
        executor.start("edgex/core-data")


def test_compose_errors_name_target_and_cause():
    runner = FakeRunner((PLUGIN, ok("2.29.7\n")),
                        (("docker", "compose", "-p", "edgex", "start"),
                         (1, "", 'service "core-data" has no container to start\n')))
    with pytest.raises(ExecutorError, match=r'^compose executor cannot start edgex/core-data: service "core-data" '
                                            r'has no container to start$'):
        ComposeExecutor(runner=runner).start("edgex/core-data")


def test_compose_garbage_ps_output_is_an_error():
    executor, _runner = compose("this is not json\n")
    with pytest.raises(ExecutorError, match="unexpected compose ps output"):
        executor.state("edgex/core-data")


def test_parse_ps_json_handles_both_formats_alike():
    lines = parse_ps_json(recording("compose-ps-jsonlines.txt"))
    array = parse_ps_json(recording("compose-ps-array.json"))
    assert [(c["Service"], c["State"], c["ExitCode"]) for c in lines] == \
        [(c["Service"], c["State"], c["ExitCode"]) for c in array]
    assert len(lines) == 5
