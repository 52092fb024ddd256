"""_registry.registration and the Registration model: only what a request names is compared, checks
by kind, durations checked, and a check description read back exactly."""

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import (
    Check,
    Registration,
    ServiceRecord,
    registration_of,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.registration import (
    RegistrationError,
    check_of,
    plan,
)

CURRENT = Registration(name="device-acme", id="device-acme", node="gw1", address="127.0.0.1", port=59990,
                       tags=["acme"], meta={"owner": "ops"}, check=Check(kind="http", path="/api/v3/ping"))


@pytest.mark.parametrize("check", [
    Check(kind="http", path="/api/v3/ping"), Check(kind="tcp", interval="5s", timeout="1s"),
    Check(kind="http", path="/api/v2/ping", interval="1m30s", deregister_critical_after="10m"),
    Check(kind="none", interval=""), Check(kind="unknown", interval=""),
])
def test_a_check_description_reads_back_as_the_same_check(check):
    assert Check.parse(check.describe()) == check


@pytest.mark.parametrize("text", ["", "Check the health of the API", "http", "ftp / every 10s", "tcp every"])
def test_what_is_not_a_check_description_is_none(text):
    assert Check.parse(text) is None


def test_checks_by_kind():
    assert check_of(None, "core-data", 59880) == Check(kind="http", path="/api/v3/ping")
    assert check_of(None, "redis", 6379) == Check(kind="tcp")
    assert check_of(None, "device-acme", None) == Check(kind="none", interval="")
    assert check_of({"path": "/api/v2/ping"}, "core-data", 59880).path == "/api/v2/ping"
    assert check_of({"type": "none"}, "core-data", 59880).kind == "none"


@pytest.mark.parametrize("options, port, message", [
    ({"interval": "10"}, 1, "check interval must be a duration such as 10s or 1m, not '10'"),
    ({"deregister_critical_after": "ten minutes"}, 1, "check deregister_critical_after must be a duration"),
    ({"path": "api/v3/ping"}, 1, "an http check needs a path that starts with /"),
    ({"type": "tcp"}, None, "a tcp check needs the service's port"),
])
def test_checks_that_cannot_be_made_are_named(options, port, message):
    with pytest.raises(RegistrationError, match=message):
        check_of(options, "core-data", port)


def test_only_named_fields_are_compared():
    wanted, changed = plan(CURRENT, "device-acme", "device-acme", None, {"port": 59990})
    assert changed == [] and wanted == CURRENT
    wanted, changed = plan(CURRENT, "device-acme", "device-acme", None, {"port": 59991, "tags": ["b", "a"]})
    assert changed == ["port", "tags"] and wanted.tags == ["a", "b"] and wanted.meta == {"owner": "ops"}
    wanted, changed = plan(CURRENT, "device-acme", "device-acme", "gw1",
                           {"check": Check(kind="http", path="/api/v3/ping", interval="30s")})
    assert changed == ["check"] and wanted.check.interval == "30s"


def test_a_new_registration_takes_every_field_and_the_check_of_its_kind():
    wanted, changed = plan(None, "redis", "redis", "gw1", {"port": 6379, "address": "127.0.0.1"})
    assert changed == ["name", "address", "port", "check"]
    assert wanted.check == Check(kind="tcp") and wanted.tags == [] and wanted.node == "gw1"


def test_hostile_names_are_refused_before_any_registry_call():
    with pytest.raises(Exception, match="invalid service name"):
        plan(None, "$(id)", "x", None, {})
    with pytest.raises(Exception, match="invalid service id"):
        plan(None, "redis", "../x", None, {})


def test_a_service_record_registers_with_its_health_path():
    record = ServiceRecord("core-data", "gw1", address="127.0.0.1", port=59880, health_path="/api/v2/ping")
    assert registration_of(record).check == Check(kind="http", path="/api/v2/ping")
    assert registration_of(ServiceRecord("x", "gw1")).check.kind == "none"
