"""_module.GatewayModule with a fake AnsibleModule: argument specs, ranges, the one discovery
path, expected failures turned into fail_json, and Selection's one "unknown service" message."""

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils import _module
from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import (
    EdgeXError,
    RegistryAuthError,
    RegistryUnavailableError,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.select import Selection, UnknownServiceError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._module import GatewayModule, TaskFailed
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord


class Exited(Exception):
    pass


class FakeAnsibleModule(object):
    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = False
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)

    def fail_json(self, **result):
        raise Exited(dict(result, failed=True))

    def exit_json(self, **result):
        raise Exited(result)


def params(**overrides):
    values = {name: None for name in _module.REGISTRY_OPTION_NAMES}
    values.update(registry_type="consul", timeout=5.0, fallback_on_auth_error=False)
    values.update(overrides)
    return values


class Probing(GatewayModule):
    gateway = True
    options = dict(wait_timeout=dict(type="float", default=60.0))
    positive = ("probe_timeout",)
    non_negative = ("wait_timeout",)
    outcome = EdgeXError("each test sets the outcome of run()")

    def run(self):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_argument_spec_composes_registry_gateway_executor_and_own_options():
    spec = Probing.argument_spec()
    assert spec["node"]["required"] is True and spec["name"]["default"] == ["all"]
    assert spec["executor"]["choices"] == ["docker", "compose", "systemd", "snap"]
    assert spec["systemd_scope"]["choices"] == ["system", "user"] and spec["compose_files"]["elements"] == "path"
    assert spec["wait_timeout"]["default"] == 60.0 and spec["token"]["no_log"] is True
    assert "node" not in GatewayModule.argument_spec()  # a module not acting on a gateway gets the registry only
    Probing.argument_spec()["node"]["required"] = False
    assert Probing.argument_spec()["node"]["required"] is True  # each call gets its own copy


def test_ranges_are_checked_before_run():
    module = Probing(FakeAnsibleModule(params(probe_timeout=0, wait_timeout=-1)))
    Probing.outcome = AssertionError("run() must not be reached")
    with pytest.raises(Exited) as exited:
        module.execute()
    assert exited.value.args[0]["msg"] == "probe_timeout must be > 0, not 0; wait_timeout must be >= 0, not -1"


@pytest.mark.parametrize("error, expected", [
    (TaskFailed("2 of 3 services unhealthy", services=[1, 2]), {"msg": "2 of 3 services unhealthy", "services": [1, 2]}),
    (RegistryAuthError("Consul refused: 403"),
     {"msg": "Consul refused: 403 (check the token, or set fallback_on_auth_error to use the manifest instead)"}),
    (EdgeXError("node gw9 not known"), {"msg": "node gw9 not known"}),
])
def test_expected_failures_become_fail_json_without_a_traceback(error, expected):
    Probing.outcome = error
    with pytest.raises(Exited) as exited:
        Probing(FakeAnsibleModule(params(probe_timeout=1, wait_timeout=1))).execute()
    assert exited.value.args[0] == dict(expected, failed=True)


def test_a_fallback_warning_is_passed_on_once_however_often_a_module_asks(monkeypatch, tmp_path):
    calls = []

    def discover(settings, nodes=None):
        calls.append(settings["host"])
        return Discovery("manifest", warnings=["consul registry unreachable (refused); using the manifest"])

    monkeypatch.setattr(_module, "discover", discover)
    fake = FakeAnsibleModule(params(host="10.0.0.1", probe_timeout=1, wait_timeout=1, node="gw1"))
    module = Probing(fake)
    module.discover()
    module.discover()
    assert calls == ["10.0.0.1", "10.0.0.1"]
    assert fake.warnings == ["consul registry unreachable (refused); using the manifest"]
    assert module.facts() == {"source": "manifest", "manifest_age": None}


def test_without_fallback_the_registry_itself_is_asked(monkeypatch):
    class Down(object):
        def discover(self):
            raise RegistryUnavailableError("Consul at http://127.0.0.1:1 is unreachable")

    monkeypatch.setattr(_module, "open_registry", lambda settings, check_mode=False: Down())
    monkeypatch.setattr(_module, "discover", lambda settings, nodes=None: pytest.fail("the fallback path was taken"))
    with pytest.raises(RegistryUnavailableError):
        Probing(FakeAnsibleModule(params(node="gw1"))).discover(fallback=False)


def test_settings_resolve_the_environment_once(monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "s3cr3t")
    module = Probing(FakeAnsibleModule(params(node="gw1")))
    assert module.settings["token"] == "s3cr3t" and module.settings["port"] == 8500
    assert module.settings is module.settings


# -- Selection -----------------------------------------------------------------------------------------
LIVE = Discovery("consul", nodes=[NodeRecord("gw1", "127.0.0.1"), NodeRecord("gw2", "127.0.0.2")],
                 services=[ServiceRecord("core-data", "gw1"), ServiceRecord("core-command", "gw2")])


def test_selection_names_unknown_services_once_with_where_and_what_is_known():
    on_gw1 = Selection(LIVE, None, ["gw1"], ["core-data", "device-x", "device-y"])
    assert [s.name for s in on_gw1.services] == ["core-data"] and on_gw1.missing == ["device-x", "device-y"]
    assert on_gw1.unknown_message() == \
        "unknown services device-x, device-y on node gw1 in the consul registry; known there: core-data"
    with pytest.raises(UnknownServiceError):
        on_gw1.require_known()
    anywhere = Selection(LIVE, None, None, ["device-x"])
    assert anywhere.unknown_message() == \
        "unknown service device-x in the consul registry; known: core-command, core-data"


def test_selection_of_all_on_every_node_and_unknown_nodes():
    assert [s.name for s in Selection(LIVE, None).require_known()] == ["core-data", "core-command"]
    with pytest.raises(EdgeXError, match="node gw3 not known to the consul registry; known nodes: gw1, gw2"):
        Selection(LIVE, None, ["gw3"])
