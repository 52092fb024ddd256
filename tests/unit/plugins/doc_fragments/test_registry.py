"""The registry doc fragment's variants say the same as the code: the options of
registry_argument_spec(), the same text for modules and the plugin, env: entries only where
resolve_registry_settings() really reads a variable for that option alone."""

import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.doc_fragments.registry import ModuleDocFragment
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import (
    REGISTRY_ENV,
    registry_argument_spec,
    resolve_registry_settings,
)

MODULES = yaml.safe_load(ModuleDocFragment.MODULES)["options"]
PLUGINS = yaml.safe_load(ModuleDocFragment.PLUGINS)["options"]


@pytest.mark.parametrize("options", [MODULES, PLUGINS], ids=["modules", "plugins"])
def test_the_fragment_documents_the_argument_spec(options):
    spec = registry_argument_spec()
    assert list(options) == list(spec)
    for name, documented in options.items():
        assert documented["type"] == spec[name]["type"], name
        assert documented.get("default") == spec[name].get("default"), name
        assert documented.get("choices") == spec[name].get("choices"), name


def test_modules_and_plugins_differ_only_by_env_entries():
    assert {name: {k: v for k, v in option.items() if k != "env"} for name, option in PLUGINS.items()} == MODULES
    assert not any("env" in option for option in MODULES.values())  # AnsibleModule reads no env: entries


def test_env_entries_are_the_variables_the_resolution_reads():
    documented = {name: [entry["name"] for entry in option["env"]] for name, option in PLUGINS.items()
                  if "env" in option}
    assert documented == dict({name: list(names) for name, names in REGISTRY_ENV.items()},
                              validate_certs=["CONSUL_HTTP_SSL_VERIFY"])
    # CONSUL_HTTP_ADDR fills host, port and scheme together: no single option carries it.
    assert not any("CONSUL_HTTP_ADDR" in names or "CONSUL_HTTP_SSL" in names for names in documented.values())
    for name in ("host", "port", "scheme"):
        assert "E(CONSUL_HTTP_ADDR)" in " ".join(PLUGINS[name]["description"])


@pytest.mark.parametrize("option, variable, value, expected", [
    ("token", "CONSUL_HTTP_TOKEN", "t0k3n", "t0k3n"),
    ("validate_certs", "CONSUL_HTTP_SSL_VERIFY", "false", False),
    ("ca_path", "CONSUL_CACERT", "/etc/consul/ca.pem", "/etc/consul/ca.pem"),
    ("client_cert", "CONSUL_CLIENT_CERT", "/etc/consul/c.pem", "/etc/consul/c.pem"),
    ("client_key", "CONSUL_CLIENT_KEY", "/etc/consul/c.key", "/etc/consul/c.key"),
])
def test_each_env_entry_really_fills_its_option(option, variable, value, expected):
    assert resolve_registry_settings({}, environ={variable: value})[option] == expected


def test_the_token_documents_both_registries_and_the_timeout_its_deadline():
    token = " ".join(MODULES["token"]["description"])
    assert "X-Consul-Token" in token and "Authorization: Bearer" in token
    assert "never sent to core-keeper" in token
    assert resolve_registry_settings({"registry_type": "keeper"}, environ={"CONSUL_HTTP_TOKEN": "x"}).get("token") is None
    assert "in total" in " ".join(MODULES["timeout"]["description"])


def test_the_action_group_fragment_names_the_runtime_group():
    import os

    attributes = yaml.safe_load(ModuleDocFragment.ACTIONGROUP_REGISTRY)["attributes"]
    assert attributes["action_group"]["membership"] == ["edgex.sysmgmt.registry"]
    runtime = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "meta", "runtime.yml")
    with open(runtime) as handle:
        assert "registry" in yaml.safe_load(handle)["action_groups"]


def test_every_module_talking_to_the_registry_uses_the_modules_fragment_and_its_action_group():
    import glob
    import os

    modules = glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules", "edgex_*.py"))
    assert modules
    for path in modules:
        fragments = yaml.safe_load(open(path).read().split('DOCUMENTATION = r"""')[1].split('"""')[0])[
            "extends_documentation_fragment"]
        assert {"edgex.sysmgmt.registry.modules", "edgex.sysmgmt.registry.actiongroup_registry"} <= set(fragments), path
    assert not hasattr(ModuleDocFragment, "DOCUMENTATION")
