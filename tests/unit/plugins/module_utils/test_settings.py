"""_registry.settings: CONSUL_HTTP_ADDR read as the Consul CLI reads it, explicit options winning,
and host, port and timeout checked, with messages that never repeat what may hold a token."""

import re

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import (
    SettingsError,
    parse_consul_http_addr,
    registry_label,
    resolve_registry_settings,
)


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1:8500", (None, "127.0.0.1", 8500)),
    ("https://consul.example:8501", ("https", "consul.example", 8501)),
    ("consul.example", (None, "consul.example", None)),
    ("[::1]:8500", (None, "::1", 8500)),
    ("http://[fe80::1]", ("http", "fe80::1", None)),
    ("127.0.0.1:", (None, "127.0.0.1", None)),
])
def test_consul_http_addr_forms_the_cli_accepts(value, expected):
    assert parse_consul_http_addr(value) == expected


@pytest.mark.parametrize("value, message", [
    ("http://127.0.0.1:8500?token=s3cr3t", "without a path, query, fragment or user name"),
    ("https://user:s3cr3t@consul.example:8501", "without a path, query, fragment or user name"),
    ("127.0.0.1:8500/v1?x=s3cr3t", "without a path, query, fragment or user name"),
    ("h:abc", "the port must be a number from 1 to 65535"),
    ("h:70000", "the port must be a number from 1 to 65535"),
    ("unix:///var/run/consul.sock", "the scheme must be http or https"),
    ("[::1:8500", "an IPv6 address must be written [address]:port"),
    ("evil host:8500", "the host must be a host name or an IP address"),
])
def test_consul_http_addr_that_cannot_be_used_is_refused_without_echo(value, message):
    with pytest.raises(SettingsError, match=re.escape(message)) as error:
        parse_consul_http_addr(value)
    assert "s3cr3t" not in str(error.value)


def test_without_a_port_the_address_takes_the_schemes_port_as_the_cli_does():
    assert resolve_registry_settings({}, {"CONSUL_HTTP_ADDR": "consul.example"})["port"] == 80
    https = resolve_registry_settings({}, {"CONSUL_HTTP_ADDR": "https://consul.example"})
    assert (https["scheme"], https["port"]) == ("https", 443)
    ssl = resolve_registry_settings({}, {"CONSUL_HTTP_ADDR": "consul.example", "CONSUL_HTTP_SSL": "true"})
    assert (ssl["scheme"], ssl["port"]) == ("https", 443)


def test_explicit_host_or_port_ignores_consul_http_addr_even_when_malformed():
    env = {"CONSUL_HTTP_ADDR": "http://127.0.0.1:8500?token=s3cr3t"}
    assert resolve_registry_settings({"host": "10.0.0.5"}, env)[("port")] == 8500
    assert resolve_registry_settings({"port": 8600}, env)["host"] == "127.0.0.1"
    with pytest.raises(SettingsError) as error:
        resolve_registry_settings({}, env)
    assert "s3cr3t" not in str(error.value)


def test_keeper_never_reads_the_consul_variables():
    env = {"CONSUL_HTTP_ADDR": "not a valid address at all", "CONSUL_HTTP_TOKEN": "t", "CONSUL_HTTP_SSL": "true",
           "CONSUL_HTTP_SSL_VERIFY": "false", "CONSUL_CACERT": "/ca.pem"}
    settings = resolve_registry_settings({"registry_type": "keeper"}, env)
    assert (settings["host"], settings["port"], settings["scheme"]) == ("127.0.0.1", 59890, "http")
    assert settings.get("token") is None and settings["validate_certs"] is True and settings.get("ca_path") is None


@pytest.mark.parametrize("params, message", [
    ({"host": "127.0.0.1/x"}, "host must be a host name or an IP address"),
    ({"host": ""}, "host must be a host name or an IP address"),
    ({"port": -5}, "port must be a number from 1 to 65535, not -5"),
    ({"port": True}, "port must be a number from 1 to 65535, not True"),
    ({"timeout": 0}, "timeout must be a number of seconds > 0"),
    ({"timeout": -1, "registry_type": "keeper"}, "timeout must be a number of seconds > 0"),
])
def test_options_are_checked_for_every_registry_type(params, message):
    with pytest.raises(SettingsError, match=message):
        resolve_registry_settings(params, {})


def test_ipv6_and_host_names_are_hosts_and_labels_never_hold_the_token():
    settings = resolve_registry_settings({"host": "::1", "token": "s3cr3t", "datacenter": "dc2"}, {})
    assert settings["host"] == "::1"
    assert registry_label(settings) == "consul://::1:8500/dc2"
    assert "s3cr3t" not in registry_label(settings)
