"""Argument handling of every module, in-process, without a registry or an engine: defaults,
aliases, ranges, required combinations, what is refused before anything runs, and that the
executor options reach the executors."""

import socket
import time

import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.module_utils._executors import factory
from ansible_collections.edgex.sysmgmt.plugins.modules import (
    edgex_config,
    edgex_config_info,
    edgex_health,
    edgex_manifest,
    edgex_metrics,
    edgex_reap,
    edgex_remediate,
    edgex_service,
)


def manifest(tmp_path, services=None):
    path = tmp_path / "manifest.yml"
    services = services if services is not None else {
        "core-data": {"executor": "docker", "target": "edgex-core-data", "address": "127.0.0.1", "port": 1,
                      "health": "/api/v3/ping"}}
    path.write_text(yaml.safe_dump({"version": 1, "hosts": {"gw1": {"address": "127.0.0.1", "services": services}}}))
    return str(path)


MODULE_CLASSES = [edgex_config.ConfigModule, edgex_config_info.ConfigInfoModule, edgex_health.HealthModule,
                  edgex_manifest.ManifestModule, edgex_metrics.MetricsModule, edgex_reap.ReapModule,
                  edgex_remediate.RemediateModule, edgex_service.ServiceModule]


@pytest.mark.parametrize("module_class", MODULE_CLASSES, ids=lambda c: c.__name__)
def test_every_module_takes_the_same_registry_options(module_class):
    spec = module_class.argument_spec()
    for option in ("registry_type", "host", "port", "scheme", "datacenter", "token", "validate_certs", "ca_path",
                   "client_cert", "client_key", "timeout", "manifest_path", "fallback_on_auth_error"):
        assert option in spec, option
    assert spec["token"]["no_log"] is True


@pytest.mark.parametrize("module, args, message", [
    (edgex_health, {"probe_timeout": 0}, "probe_timeout must be > 0, not 0.0"),
    (edgex_health, {"max_workers": 0, "wait_timeout": -1}, "max_workers must be > 0, not 0; wait_timeout must be >= 0"),
    (edgex_service, {"node": "gw1", "name": ["all"], "state": "started", "wait_timeout": -2},
     "wait_timeout must be >= 0, not -2.0"),
    (edgex_reap, {"node": "gw1", "critical_for": -1}, "critical_for must be >= 0, not -1.0"),
    (edgex_remediate, {"node": "gw1", "grace": -1, "window": 0},
     "grace and backoff must be >= 0; window must be > 0"),
    (edgex_metrics, {"node": "gw1", "interval": 0, "max_workers": 0},
     "interval must be > 0, not 0.0; max_workers must be > 0, not 0"),
    (edgex_config, {"name": ["core-data"], "settings": {"Writable": {"LogLevel": "DEBUG"}}, "probe_timeout": 0},
     "probe_timeout must be > 0, not 0.0"),
])
def test_out_of_range_values_fail_before_anything_runs(run_module, module, args, message, monkeypatch):
    def no_registry(*_args, **_kwargs):
        raise AssertionError("the registry was asked although an argument is out of range")

    monkeypatch.setattr("ansible_collections.edgex.sysmgmt.plugins.module_utils._module.discover", no_registry)
    result = run_module(module.main, dict(args, registry_type="none"))
    assert result["failed"] is True and result["msg"].startswith(message)


def test_manifest_takes_service_as_an_alias_of_name(run_module, tmp_path):
    path = manifest(tmp_path)
    by_alias = run_module(edgex_manifest.main, {"manifest_path": path, "state": "present", "node": "gw1",
                                                "service": "device-rest", "service_port": 59986}, check_mode=True)
    by_name = run_module(edgex_manifest.main, {"manifest_path": path, "state": "present", "node": "gw1",
                                               "name": "device-rest", "service_port": 59986}, check_mode=True)
    assert by_alias["changed"] is True and by_alias == by_name
    assert by_name["changes"]["services_added"] == ["gw1/device-rest"] and by_name["services"] == 2


@pytest.mark.parametrize("args, message", [
    ({"state": "present", "node": "gw1"}, "state=present needs node and name, or node and src"),
    ({"state": "absent"}, "state is absent but any of the following are missing: name, node"),
    ({"state": "present", "name": "core-data", "src": "x.yml", "node": "gw1"}, "mutually exclusive: src|name"),
    ({"state": "synced", "registry_type": "manifest"},
     "state=synced reads a live registry: registry_type must be consul or keeper, not manifest"),
])
def test_manifest_refuses_incomplete_requests(run_module, tmp_path, args, message):
    result = run_module(edgex_manifest.main, dict(args, manifest_path=manifest(tmp_path)))
    assert result["failed"] is True and message in result["msg"]


def test_reap_refuses_registry_type_none(run_module, tmp_path):
    result = run_module(edgex_reap.main, {"node": "gw1", "registry_type": "none", "manifest_path": manifest(tmp_path)})
    assert result["failed"] is True
    assert result["msg"] == "registry_type none has no registrations to reap; use consul, keeper or manifest"


@pytest.mark.parametrize("module, extra", [
    (edgex_service, {"name": ["core-dta"], "state": "started"}),
    (edgex_remediate, {"name": ["core-dta"]}),
    (edgex_health, {"name": ["core-dta"], "node": ["gw1"]}),
])
def test_an_unknown_service_gets_the_same_message_everywhere(run_module, tmp_path, module, extra):
    args = dict(extra, registry_type="none", manifest_path=manifest(tmp_path))
    args.setdefault("node", "gw1")
    result = run_module(module.main, args, check_mode=True)
    assert result["failed"] is True
    assert result["msg"] == "unknown service core-dta on node gw1 in the manifest registry; known there: core-data"


def test_hostile_names_are_refused_before_any_command(run_module, tmp_path):
    result = run_module(edgex_service.main, {"name": ["core-data; reboot"], "state": "started", "node": "gw1",
                                             "registry_type": "none", "manifest_path": manifest(tmp_path)})
    assert result["failed"] is True and "invalid service name 'core-data; reboot'" in result["msg"]


class RecordingExecutor(object):
    """Stands in for every executor class: remembers the options it was made with; always running."""

    made = []

    def __init__(self, runner=None, **options):
        self.options = options
        self.name = "recording"
        RecordingExecutor.made.append(self)

    def state(self, target):
        return "running"


@pytest.mark.parametrize("executor, args, options", [
    ("compose", {"project": "factory", "project_directory": "/opt/edgex", "compose_files": ["/opt/edgex/a.yml"]},
     {"project_directory": "/opt/edgex", "files": ["/opt/edgex/a.yml"]}),
    ("systemd", {"systemd_scope": "user"}, {"scope": "user"}),
    # an engine call's deadline is the task's wait_timeout
    ("docker", {"docker_host": "unix:///run/other.sock", "stop_timeout": 4, "wait_timeout": 2},
     {"docker_host": "unix:///run/other.sock", "stop_timeout": 4, "api_timeout": 2.0}),
])
def test_executor_options_reach_the_executor(run_module, tmp_path, monkeypatch, executor, args, options):
    monkeypatch.setattr(factory, "executor_class", lambda name: RecordingExecutor)
    RecordingExecutor.made = []
    path = manifest(tmp_path, {"core-data": {"address": "127.0.0.1", "port": 1}})  # no executor: the option decides
    result = run_module(edgex_service.main, dict(args, name=["core-data"], state="stopped", node="gw1",
                                                 executor=executor, registry_type="none", manifest_path=path,
                                                 wait=False), check_mode=True)
    assert result.get("failed") is not True, result
    assert [e.options for e in RecordingExecutor.made] == [options]
    expected_target = {"compose": "factory/core-data", "systemd": "edgex-core-data.service",
                       "docker": "edgex-core-data"}[executor]
    assert result["services"][0]["target"] == expected_target


@pytest.mark.parametrize("args, message", [
    ({"host": "evil host"}, "host must be a host name or an IP address, without a scheme, port, path or query"),
    ({"host": "127.0.0.1/?token=S#"}, "host must be a host name or an IP address"),
    ({"port": 70000}, "port must be a number from 1 to 65535, not 70000"),
    ({"port": 0, "registry_type": "keeper"}, "port must be a number from 1 to 65535, not 0"),
    ({"timeout": 0}, "timeout must be a number of seconds > 0 (a total deadline per registry call), not 0.0"),
    ({"timeout": -1, "registry_type": "keeper"}, "timeout must be a number of seconds > 0"),
])
def test_registry_options_are_checked_before_anything_runs(run_module, args, message, monkeypatch):
    monkeypatch.setattr("ansible_collections.edgex.sysmgmt.plugins.module_utils._module.discover",
                        lambda *a: pytest.fail("the registry was asked"))
    result = run_module(edgex_health.main, args)
    assert result["failed"] is True and result["msg"].startswith(message)
    assert "S#" not in result["msg"]


def test_a_silent_docker_engine_costs_edgex_service_about_its_wait_timeout(run_module, tmp_path):
    # Issue 11 item 4: three engine reads of a fixed 60 s each made this 180 s with wait_timeout 2.
    engine = str(tmp_path / "silent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(engine)
    listener.listen(64)  # takes connections, never answers
    path = manifest(tmp_path)
    started = time.monotonic()
    try:
        result = run_module(edgex_service.main, {"name": ["core-data"], "state": "started", "node": "gw1",
                                                 "registry_type": "none", "manifest_path": path,
                                                 "docker_host": "unix://" + engine, "wait_timeout": 2})
    finally:
        listener.close()
    elapsed = time.monotonic() - started
    assert result["failed"] is True
    assert "is not answering: no answer within 2.0s" in result["services"][0]["error"]
    assert elapsed < 30, elapsed


def test_a_brief_health_result_keeps_the_verdict_and_why_and_drops_the_rest(run_module, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # answers nothing: an unhealthy ping, with its reason
    services = {"core-data": {"address": "127.0.0.1", "port": listener.getsockname()[1], "health": "/api/v3/ping"}}
    args = {"registry_type": "none", "manifest_path": manifest(tmp_path, services), "probe_timeout": 0.5,
            "fail_on": "never"}
    try:
        full = run_module(edgex_health.main, args)["services"][0]
        brief = run_module(edgex_health.main, dict(args, detail="brief"))["services"][0]
    finally:
        listener.close()
    assert sorted(brief) == sorted(["name", "id", "node", "address", "port", "verdict", "reasons", "latency_ms",
                                    "registry_status", "probe"])
    assert {key: full[key] for key in brief} == brief
    assert brief["verdict"] == "unhealthy" and brief["reasons"] == ["ping timed out after 0.5s"]
    assert {"checks", "target", "registered_address", "mapped", "http_status"} <= set(full)


@pytest.mark.parametrize("module, args", [
    (edgex_config, {"settings": {"Writable": {"LogLevel": "DEBUG"}}}),
    (edgex_config_info, {}),
])
@pytest.mark.parametrize("registry_type", ["none", "manifest"])
def test_configuration_needs_a_registry_with_a_store(run_module, tmp_path, module, args, registry_type):
    result = run_module(module.main, dict(args, name=["core-data"], registry_type=registry_type,
                                          manifest_path=manifest(tmp_path)), check_mode=True)
    assert result["failed"] is True
    assert result["msg"] == ("registry_type %s has no configuration store: EdgeX keeps its configuration in Consul "
                             "(2.x, 3.x) or core-keeper (4.x)" % registry_type)


def test_metrics_of_unknown_names_fail_with_the_shared_message(run_module, tmp_path):
    result = run_module(edgex_metrics.main, {"name": ["core-dta"], "node": "gw1", "registry_type": "none",
                                             "manifest_path": manifest(tmp_path)})
    assert result["failed"] is True
    assert result["msg"] == "unknown service core-dta on node gw1 in the manifest registry; known there: core-data"
