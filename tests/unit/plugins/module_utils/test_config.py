"""_gateway/config: EdgeX configuration keys and values as go-mod-configuration stores them, where each
release keeps them, the plan of a change, check-and-set writes, and what a change affects (restart
or live) judged against what the instances run. A fake store and fake running configurations here;
the providers against the emulators are in test_registry_kv.py, the modules on stand-ins in
tests/integration/test_edgex_config_module.py."""

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway import config
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.config import (
    ConfigError,
    ConfigRun,
    ConflictError,
    Layout,
    encode,
    flatten,
    plan_changes,
    resolve_targets,
    same_value,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import KVEntry, ServiceRecord

V3 = "edgex/v3"
COMMON = "edgex/v3/core-common-config-bootstrapper"


# -- values and keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("value, stored", [
    (True, "true"), (False, "false"), (10, "10"), (-3, "-3"), (0.5, "0.5"), (2.0, "2"), (1e21, "1000000000000000000000"),
    (1e-7, "0.0000001"), (None, ""), ("5s", "5s"), ("", ""),
])
def test_values_are_stored_as_go_mod_configuration_writes_them(value, stored):
    assert encode(value) == stored


def test_a_mapping_value_cannot_be_encoded_as_a_leaf():
    with pytest.raises(ConfigError, match="cannot be stored"):
        encode(object())


def test_settings_flatten_to_one_key_per_leaf_lists_indexed():
    keys, lists = flatten({"Writable": {"LogLevel": "DEBUG", "InsecureSecrets": {}},
                           "Service/RequestTimeout": "10s",
                           "Trigger": {"SubscribeTopics": ["events/#", "commands/#"]},
                           "MaxEventSize": 0, "Device": {"DataTransform": False}})
    assert keys == {"Writable/LogLevel": "DEBUG", "Service/RequestTimeout": "10s",
                    "Trigger/SubscribeTopics/0": "events/#", "Trigger/SubscribeTopics/1": "commands/#",
                    "MaxEventSize": "0", "Device/DataTransform": "false"}
    assert lists == ["Trigger/SubscribeTopics"]


@pytest.mark.parametrize("settings", [
    {"Writable": {"..": "x"}}, {"Writable//LogLevel": "x"}, {"Writable/./LogLevel": "x"}, {"Writable": {"a b": 1}},
    {"Writable": {"Log?Level": 1}}, {"": "x"},
])
def test_keys_that_could_leave_the_folder_or_break_a_url_are_refused(settings):
    with pytest.raises(ConfigError, match="invalid configuration key"):
        flatten(settings)


def test_settings_must_be_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping"):
        flatten(["Writable"])


@pytest.mark.parametrize("stored, running, same", [
    ("true", True, True), ("True", True, True), ("1", True, True), ("false", True, False), ("f", False, True),
    ("10", 10, True), ("10", 11, False), ("0.5", 0.5, True), ("ten", 10, False), ("5s", "5s", True),
    ("5s", "10s", False), ("", None, True), (None, None, True), (None, "x", False),
])
def test_stored_strings_compare_with_running_values_by_the_fields_type(stored, running, same):
    assert same_value(stored, running) is same


# -- layouts -----------------------------------------------------------------------------------


def test_each_release_keeps_configuration_where_go_mod_bootstrap_reads_it():
    v2, v3, v4 = Layout(2), Layout(3), Layout(4)
    assert v2.service_folder("core-data") == "edgex/core/2.0/core-data"
    assert v2.service_folder("device-virtual") == "edgex/devices/2.0/device-virtual"
    assert v2.service_folder("app-rules-engine") == "edgex/appservices/2.0/app-rules-engine"
    assert v2.service_folder("security-bootstrapper") == "edgex/security/2.0/security-bootstrapper"
    assert v2.layers("core-data") == ["edgex/core/2.0/core-data"]
    assert v3.layers("core-data") == [COMMON + "/all-services", V3 + "/core-data"]
    assert v3.layers("device-virtual") == [COMMON + "/all-services", COMMON + "/device-services",
                                           V3 + "/device-virtual"]
    assert v4.layers("app-rules-engine") == ["edgex/v4/core-common-config-bootstrapper/all-services",
                                             "edgex/v4/core-common-config-bootstrapper/app-services",
                                             "edgex/v4/app-rules-engine"]
    assert (v2.api_base, v3.api_base, v4.api_base) == ("/api/v2", "/api/v3", "/api/v3")
    with pytest.raises(ConfigError, match="EdgeX 2.x has no common configuration"):
        v2.common_folder("all-services")


def entries(pairs, start=100):
    return {key: KVEntry(value, start + n) for n, (key, value) in enumerate(sorted(pairs.items()))}


STORE = {
    COMMON + "/IsCommonConfigReady": "true",
    COMMON + "/all-services/Service/RequestTimeout": "5s",
    COMMON + "/all-services/Service/MaxResultCount": "1024",
    COMMON + "/all-services/Writable/Telemetry/Interval": "30s",
    COMMON + "/device-services/Device/MaxCmdOps": "128",
    COMMON + "/app-services/Writable/StoreAndForward/Enabled": "false",
    V3 + "/core-metadata/Writable/LogLevel": "INFO",
    V3 + "/core-data/Writable/LogLevel": "INFO",
    V3 + "/core-data/Service/Port": "59880",
    V3 + "/core-data/Writable/InsecureSecrets/DB/SecretName": "redisdb",
    V3 + "/core-data/Writable/InsecureSecrets/DB/SecretData/username": "",
    V3 + "/device-virtual/Writable/LogLevel": "INFO",
    V3 + "/device-virtual/Service/RequestTimeout": "8s",
    V3 + "/app-rules-engine/Writable/LogLevel": "INFO",
    V3 + "/app-rules-engine/Trigger/SubscribeTopics/0": "events/#",
    V3 + "/app-rules-engine/Trigger/SubscribeTopics/1": "commands/#",
    V3 + "/app-rules-engine/Trigger/SubscribeTopics/2": "replies/#",
    V3 + "/bad name/Writable/LogLevel": "INFO",
    "edgex/core/2.0/sys-mgmt-agent/Writable/LogLevel": "INFO",
}


def test_services_with_configuration_leave_out_the_bootstrapper_and_hostile_names():
    store = entries(STORE)
    assert Layout(3).services_with_configuration(store) == ["app-rules-engine", "core-data", "core-metadata",
                                                            "device-virtual"]
    assert Layout(2).services_with_configuration(store) == ["sys-mgmt-agent"]
    assert Layout(4).services_with_configuration(store) == []


def test_auto_finds_each_name_newest_layout_first():
    store = entries(dict(STORE, **{"edgex/core/2.0/core-data/Writable/LogLevel": "INFO"}))
    targets = resolve_targets(["core-data", "sys-mgmt-agent", "all-services"], store, "consul")
    assert [(t.name, t.kind, t.release, t.folder) for t in targets] == [
        ("core-data", "service", 3, V3 + "/core-data"),
        ("sys-mgmt-agent", "service", 2, "edgex/core/2.0/sys-mgmt-agent"),
        ("all-services", "common", 3, COMMON + "/all-services")]


def test_a_name_without_configuration_fails_saying_where_it_looked_and_what_is_there():
    with pytest.raises(ConfigError) as failed:
        resolve_targets(["core-dta"], entries(STORE), "consul")
    message = str(failed.value)
    assert "no configuration for core-dta in Consul" in message
    assert "edgex/v4/core-dta/, edgex/v3/core-dta/, edgex/core/2.0/core-dta/" in message
    assert "set release to write it anyway" in message
    assert message.endswith("app-rules-engine, core-data, core-metadata, device-virtual, sys-mgmt-agent")


def test_keeper_looks_at_the_4x_layout_only_and_an_explicit_release_writes_anywhere():
    with pytest.raises(ConfigError, match=r"no configuration for core-data in core-keeper \(looked under edgex/v4/"):
        resolve_targets(["core-data"], entries(STORE), "keeper")
    [target] = resolve_targets(["core-data"], {}, "keeper", release="4")
    assert (target.release, target.folder) == (4, "edgex/v4/core-data")
    with pytest.raises(ConfigError, match="EdgeX 2.x has no common configuration"):
        resolve_targets(["all-services"], {}, "consul", release="2")


@pytest.mark.parametrize("name, message", [
    ("core-common-config-bootstrapper", "is the job that pushes the common configuration"),
    ("core-data/../x", "invalid service name"),
])
def test_names_that_are_no_configuration_are_refused(name, message):
    with pytest.raises(Exception, match=message):
        resolve_targets([name], entries(STORE), "consul")


# -- planning ----------------------------------------------------------------------------------


def target(name="core-data"):
    return resolve_targets([name], entries(STORE), "consul")[0]


def test_only_keys_that_differ_change_and_a_new_key_is_created_only_if_still_absent():
    store = entries(STORE)
    changes = plan_changes(target(), {"Writable": {"LogLevel": "INFO"}, "Service": {"RequestTimeout": "10s"}},
                           "present", store)
    assert [(c.key, c.before, c.after, c.index) for c in changes] == [
        (V3 + "/core-data/Service/RequestTimeout", None, "10s", 0)]
    changes = plan_changes(target(), {"Writable": {"LogLevel": "DEBUG"}}, "present", store)
    assert [(c.key, c.before, c.after, c.index) for c in changes] == [
        (V3 + "/core-data/Writable/LogLevel", "INFO", "DEBUG", store[V3 + "/core-data/Writable/LogLevel"].index)]


def test_absent_removes_each_key_with_everything_below_it_and_nothing_else():
    changes = plan_changes(target(), {"Writable": {"InsecureSecrets": {"DB": None}, "Nothing": None}}, "absent",
                           entries(STORE))
    assert sorted(c.key for c in changes) == [V3 + "/core-data/Writable/InsecureSecrets/DB/SecretData/username",
                                              V3 + "/core-data/Writable/InsecureSecrets/DB/SecretName"]
    assert all(c.after is None and c.index >= 100 for c in changes)


def test_a_shorter_list_removes_the_stored_items_past_its_end():
    changes = plan_changes(target("app-rules-engine"), {"Trigger": {"SubscribeTopics": ["events/#"]}}, "present",
                           entries(STORE))
    assert [(c.relative, c.after) for c in changes] == [("Trigger/SubscribeTopics/1", None),
                                                        ("Trigger/SubscribeTopics/2", None)]


@pytest.mark.parametrize("settings, message", [
    ({"writable": {"loglevel": "DEBUG"}}, "differs only in case from the stored edgex/v3/core-data/Writable/LogLevel"),
    ({"Writable": {"InsecureSecrets": "x"}}, "Writable/InsecureSecrets is a section of the stored configuration"),
    ({"Service": {"Port": {"Inner": 1}}}, "Service/Port is a value in the stored configuration, not a section"),
])
def test_keys_edgex_could_not_read_unambiguously_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        plan_changes(target(), settings, "present", entries(STORE))


# -- check-and-set writes ----------------------------------------------------------------------


class FakeStore(object):
    """A key/value store as the providers expose it; ``race`` changes a key just before it is written."""

    type = "consul"

    def __init__(self, pairs, check_and_set=True, race=None):
        self.entries = entries(pairs)
        self.kv_check_and_set = check_and_set
        self.race = race or {}
        self.writes = []
        self.next_index = 1000

    def kv_entries(self, folder):
        return {k: v for k, v in self.entries.items() if k.startswith(folder + "/")}

    def _bump(self):
        self.next_index += 1
        return self.next_index

    def _check(self, key, index):
        if key in self.race:
            self.entries[key] = KVEntry(self.race.pop(key), self._bump())
        if index is None:
            return True
        current = self.entries.get(key)
        return (current is None) if index == 0 else (current is not None and current.index == index)

    def kv_write(self, key, value, index=None):
        self.writes.append(("put", key, value, index))
        if not self._check(key, index):
            return False
        self.entries[key] = KVEntry(value, self._bump())
        return True

    def kv_delete(self, key, index=None):
        self.writes.append(("delete", key, None, index))
        if not self._check(key, index):
            return False
        self.entries.pop(key, None)
        return True


class FakeSelection(object):
    def __init__(self, services):
        self.services = services


def record(name, registered=True, depends_on=(), node="gw1"):
    return ServiceRecord(name=name, node=node, address="127.0.0.1", port=1, registered=registered,
                         depends_on=list(depends_on))


def running_config(store, name, overrides=None):
    """What an instance started from ``store`` reports (its layers merged, values typed by the defaults)."""
    flat = config.merged(Layout(3), name, entries(store))
    flat.update(overrides or {})
    typed = {k: (int(v) if v.isdigit() else v) for k, v in flat.items()}
    return config.unflatten(typed)


def make_run(store, services=(), running=None, names=("core-data",), check_mode=False, monkeypatch=None,
             unreachable=()):
    """A ConfigRun on a FakeStore; ``running`` {name: reported config} answers GET /config."""
    running = running if running is not None else {s.name: running_config(STORE, s.name) for s in services}

    def read(service, api_base, timeout):
        if service.name in unreachable or service.name not in running:
            return None, "GET http://127.0.0.1:1%s/config failed: connection refused" % api_base
        return running[service.name], None

    monkeypatch.setattr(config, "read_running", read)
    return ConfigRun(store, list(names), lambda: FakeSelection(list(services)), check_mode=check_mode)


NODE = [record("core-metadata"), record("core-data", depends_on=["core-metadata"]), record("device-virtual"),
        record("app-rules-engine"), record("database")]


def test_a_writable_change_is_applied_live_and_restarts_nothing(monkeypatch):
    store = FakeStore(STORE)
    result = make_run(store, NODE, monkeypatch=monkeypatch).change({"Writable": {"LogLevel": "DEBUG"}}, "present")
    assert result["changed"] is True and result["applied_live"] == ["Writable/LogLevel"]
    assert result["restart_required"] == [] and result["in_sync"] is False
    [core_data] = result["services"]
    assert core_data["pending_live"] == ["Writable/LogLevel"] and core_data["pending_restart"] == []
    assert store.writes == [("put", V3 + "/core-data/Writable/LogLevel", "DEBUG",
                             entries(STORE)[V3 + "/core-data/Writable/LogLevel"].index)]


def test_a_change_outside_writable_needs_a_restart_of_that_service_only(monkeypatch):
    result = make_run(FakeStore(STORE), NODE, monkeypatch=monkeypatch).change(
        {"Service": {"RequestTimeout": "10s"}}, "present")
    assert result["restart_required"] == ["core-data"] and result["applied_live"] == []
    assert result["services"][0]["pending_restart"] == ["Service/RequestTimeout"]
    assert result["diff"] == {"before": {}, "after": {V3 + "/core-data/Service/RequestTimeout": "10s"}}


def test_a_common_change_restarts_its_readers_in_start_order_but_not_those_overriding_it(monkeypatch):
    result = make_run(FakeStore(STORE), NODE, names=["all-services"], monkeypatch=monkeypatch).change(
        {"Service": {"RequestTimeout": "7s"}}, "present")
    # device-virtual sets its own RequestTimeout: the common one does not reach it.
    assert result["restart_required"] == ["core-metadata", "core-data", "app-rules-engine"]
    by_name = {s["name"]: s for s in result["services"]}
    assert by_name["device-virtual"]["overridden"] == ["Service/RequestTimeout"]
    assert by_name["device-virtual"]["restart_required"] is False
    assert "database" not in by_name  # it has no configuration of its own: no EdgeX configuration reader


def test_a_type_section_reaches_only_its_type(monkeypatch):
    result = make_run(FakeStore(STORE), NODE, names=["device-services"], monkeypatch=monkeypatch).change(
        {"Device": {"MaxCmdOps": 256}}, "present")
    assert result["restart_required"] == ["device-virtual"]
    assert [s["name"] for s in result["services"]] == ["device-virtual"]


def test_a_rerun_restarts_what_still_runs_the_old_value_though_nothing_is_written(monkeypatch):
    """A second gateway sharing one Consul, or a run that failed before its restart."""
    stored = dict(STORE, **{COMMON + "/all-services/Service/RequestTimeout": "7s"})
    running = {"core-data": running_config(STORE, "core-data"),
               "core-metadata": running_config(stored, "core-metadata")}
    services = [record("core-metadata"), record("core-data", depends_on=["core-metadata"])]
    result = make_run(FakeStore(stored), services, running=running, names=["all-services"],
                      monkeypatch=monkeypatch).change({"Service": {"RequestTimeout": "7s"}}, "present")
    assert result["changed"] is False and result["restart_required"] == ["core-data"]
    assert result["in_sync"] is False


def test_in_sync_once_every_running_instance_reports_the_stored_values(monkeypatch):
    stored = dict(STORE, **{V3 + "/core-data/Service/RequestTimeout": "10s"})
    running = {"core-data": running_config(stored, "core-data")}
    result = make_run(FakeStore(stored), [record("core-data")], running=running, check_mode=True,
                      monkeypatch=monkeypatch).change({"Service": {"RequestTimeout": "10s"}}, "present")
    assert (result["changed"], result["restart_required"], result["in_sync"]) == (False, [], True)


def test_an_instance_that_cannot_be_read_is_restarted_only_when_registered_and_changed_now(monkeypatch):
    services = [record("core-data"), record("core-metadata", registered=False)]
    result = make_run(FakeStore(STORE), services, running={}, names=["core-data", "core-metadata"],
                      monkeypatch=monkeypatch).change({"Service": {"MaxResultCount": 50}}, "present")
    assert result["restart_required"] == ["core-data"]
    by_name = {s["name"]: s for s in result["services"]}
    assert "connection refused" in by_name["core-data"]["error"]
    assert "(not registered: stopped?)" in by_name["core-metadata"]["error"]
    assert result["in_sync"] is False  # core-data runs and could not prove it took the change


def test_a_key_the_running_service_does_not_report_is_ignored_unless_added_now(monkeypatch):
    stored = dict(STORE, **{V3 + "/core-data/Custom/Knob": "1"})
    run = make_run(FakeStore(stored), [record("core-data")], monkeypatch=monkeypatch)
    result = run.change({"Custom": {"Knob": "1"}}, "present")
    assert result["restart_required"] == [] and result["services"][0]["ignored"] == ["Custom/Knob"]
    assert run.warnings == ["core-data on gw1 does not report Custom/Knob in its configuration: EdgeX ignores keys "
                            "its configuration does not define"]
    added = make_run(FakeStore(STORE), [record("core-data")], monkeypatch=monkeypatch).change(
        {"Clients": {"core-foo": {"Port": 1}}}, "present")
    assert added["restart_required"] == ["core-data"]  # a new map entry shows only after a restart


def test_check_mode_writes_nothing_and_says_the_same(monkeypatch):
    store = FakeStore(STORE)
    checked = make_run(store, NODE, check_mode=True, monkeypatch=monkeypatch).change(
        {"Service": {"RequestTimeout": "10s"}, "Writable": {"LogLevel": "DEBUG"}}, "present")
    assert store.writes == [] and checked["changed"] is True
    done = make_run(FakeStore(STORE), NODE, monkeypatch=monkeypatch).change(
        {"Service": {"RequestTimeout": "10s"}, "Writable": {"LogLevel": "DEBUG"}}, "present")
    for key in ("changes", "applied_live", "restart_required", "diff"):
        assert checked[key] == done[key], key


def test_a_lost_check_and_set_race_fails_naming_the_key_and_what_was_written(monkeypatch):
    store = FakeStore(STORE, race={V3 + "/core-data/Writable/LogLevel": "WARN"})
    with pytest.raises(ConflictError) as failed:
        make_run(store, NODE, monkeypatch=monkeypatch).change(
            {"Service": {"RequestTimeout": "10s"}, "Writable": {"LogLevel": "DEBUG"}}, "present")
    message = str(failed.value)
    assert message.startswith("check-and-set failed on %s/core-data/Writable/LogLevel: it changed in Consul after "
                              "this task read it (it had ModifyIndex" % V3)
    assert "Written before the conflict: %s/core-data/Service/RequestTimeout." % V3 in message
    assert "Run the task again" in message
    assert [c.key for c in failed.value.written] == [V3 + "/core-data/Service/RequestTimeout"]
    assert store.entries[V3 + "/core-data/Writable/LogLevel"].value == "WARN"  # theirs stays
    # The re-run reads their value and converges.
    again = make_run(store, NODE, monkeypatch=monkeypatch).change({"Writable": {"LogLevel": "DEBUG"}}, "present")
    assert again["changes"] == [{"key": V3 + "/core-data/Writable/LogLevel", "name": "core-data", "before": "WARN",
                                 "after": "DEBUG"}]


def test_a_key_created_meanwhile_loses_the_create_only_write(monkeypatch):
    store = FakeStore(STORE, race={V3 + "/core-data/Service/RequestTimeout": "3s"})
    with pytest.raises(ConflictError, match="it did not exist then"):
        make_run(store, NODE, monkeypatch=monkeypatch).change({"Service": {"RequestTimeout": "10s"}}, "present")
    assert store.writes[0][3] == 0  # cas=0: create only


def test_without_check_and_set_writes_carry_no_version(monkeypatch):
    store = FakeStore(STORE, check_and_set=False)
    result = make_run(store, NODE, monkeypatch=monkeypatch).change({"Writable": {"LogLevel": "DEBUG"}}, "present")
    assert store.writes[0][3] is None and result["check_and_set"] is False


def test_all_names_every_service_with_configuration_on_the_node(monkeypatch):
    run = make_run(FakeStore(STORE), [record("core-data"), record("database"), record("device-virtual")],
                   names=["all"], monkeypatch=monkeypatch)
    assert [t.name for t in run.targets] == ["core-data", "device-virtual"]


def test_without_looking_at_running_services_a_change_outside_writable_restarts_its_readers():
    run = ConfigRun(FakeStore(STORE), ["all-services"], select=None)
    result = run.change({"Service": {"MaxResultCount": 10}, "Writable": {"Telemetry": {"Interval": "1m"}}},
                        "present")
    assert result["restart_required"] == ["core-metadata", "core-data", "app-rules-engine", "device-virtual"]
    assert result["in_sync"] is None and result["applied_live"] == ["Writable/Telemetry/Interval"]


def test_info_puts_stored_and_running_side_by_side(monkeypatch):
    running = {"core-data": running_config(STORE, "core-data", {"Service/Port": "59999", "Writable/LogLevel": "DEBUG"})}
    [core_data] = make_run(FakeStore(STORE), [record("core-data")], running=running, monkeypatch=monkeypatch).read()
    assert core_data["stored"]["Writable"]["LogLevel"] == "INFO" and core_data["layers"][0] == COMMON + "/all-services"
    [instance] = core_data["instances"]
    assert instance["running"]["Service"]["Port"] == 59999
    assert instance["differences"] == [
        {"key": "Service/Port", "stored": "59880", "running": 59999, "live": False},
        {"key": "Writable/LogLevel", "stored": "INFO", "running": "DEBUG", "live": True}]


def test_registry_types_without_a_store_are_refused():
    with pytest.raises(ConfigError, match="registry_type none has no configuration store"):
        config.open_run(None, {"name": ["core-data"]}, None)
