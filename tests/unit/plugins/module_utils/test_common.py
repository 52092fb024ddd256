import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import InvalidNameError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._names import group_safe, validate_name
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import resolve_registry_settings


@pytest.mark.parametrize("name", ["core-data", "edgex-core-data.service", "device_rest", "a", "edgexfoundry.core-data"])
def test_safe_names_pass(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "-rf", "Core-Data", "core data", "core-data;reboot", "../etc/passwd", "a/b", "$(id)", "x" * 200, None, 3],
)
def test_hostile_names_are_refused_and_named(name):
    with pytest.raises(InvalidNameError) as err:
        validate_name(name, what="container name")
    assert "container name" in str(err.value)
    assert repr(name) in str(err.value)


def test_group_safe():
    assert group_safe("core-data") == "core_data"
    assert group_safe("edgexfoundry.core-data") == "edgexfoundry_core_data"


def test_settings_default_to_local_consul():
    settings = resolve_registry_settings({"registry_type": "consul"}, environ={})
    assert (settings["scheme"], settings["host"], settings["port"]) == ("http", "127.0.0.1", 8500)
    assert settings["validate_certs"] is True
    assert settings.get("token") is None


def test_settings_from_consul_environment():
    environ = {
        "CONSUL_HTTP_ADDR": "https://consul.example:8501",
        "CONSUL_HTTP_TOKEN": "secret",
        "CONSUL_HTTP_SSL_VERIFY": "false",
        "CONSUL_CACERT": "/etc/ca.pem",
    }
    settings = resolve_registry_settings({"registry_type": "consul"}, environ=environ)
    assert (settings["scheme"], settings["host"], settings["port"]) == ("https", "consul.example", 8501)
    assert settings["token"] == "secret"
    assert settings["validate_certs"] is False
    assert settings["ca_path"] == "/etc/ca.pem"


def test_explicit_options_win_over_environment():
    environ = {"CONSUL_HTTP_ADDR": "10.0.0.1:8500", "CONSUL_HTTP_TOKEN": "from-env"}
    settings = resolve_registry_settings(
        {"registry_type": "consul", "host": "127.0.0.2", "port": 9500, "token": "explicit"}, environ=environ
    )
    assert (settings["host"], settings["port"], settings["token"]) == ("127.0.0.2", 9500, "explicit")


def test_consul_http_ssl_sets_scheme_when_addr_has_none():
    settings = resolve_registry_settings(
        {"registry_type": "consul"}, environ={"CONSUL_HTTP_ADDR": "127.0.0.1:8501", "CONSUL_HTTP_SSL": "true"}
    )
    assert (settings["scheme"], settings["port"]) == ("https", 8501)


def test_keeper_ignores_consul_address_and_token_and_defaults_to_59890():
    settings = resolve_registry_settings({"registry_type": "keeper"},
                                         environ={"CONSUL_HTTP_ADDR": "10.0.0.1:8500", "CONSUL_HTTP_TOKEN": "secret"})
    assert (settings["host"], settings["port"]) == ("127.0.0.1", 59890)
    assert settings.get("token") is None
