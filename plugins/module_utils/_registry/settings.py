# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The registry connection options: their argument spec and their resolution from explicit
values, the Consul CLI's environment variables and defaults.
"""

from __future__ import annotations

import ipaddress
import os
import re

from .._errors import EdgeXError


REGISTRY_TYPES = ("consul", "keeper", "manifest", "none")


# The registry connection options, shared by modules (argument_spec) and the
# inventory plugin (doc fragments edgex.sysmgmt.registry.modules and .plugins). Environment fallbacks
# follow the Consul CLI so AWX credentials work unchanged.
REGISTRY_ENV = {
    "token": ("CONSUL_HTTP_TOKEN",),
    "ca_path": ("CONSUL_CACERT",),
    "client_cert": ("CONSUL_CLIENT_CERT",),
    "client_key": ("CONSUL_CLIENT_KEY",),
}


def registry_argument_spec():
    """The AnsibleModule argument_spec fragment for registry connection options."""
    return dict(
        registry_type=dict(type="str", default="consul", choices=list(REGISTRY_TYPES)),
        host=dict(type="str"),
        port=dict(type="int"),
        scheme=dict(type="str", choices=["http", "https"]),
        datacenter=dict(type="str"),
        token=dict(type="str", no_log=True),
        validate_certs=dict(type="bool"),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        timeout=dict(type="float", default=5.0),
        manifest_path=dict(type="path"),
        fallback_on_auth_error=dict(type="bool", default=False),
    )


class SettingsError(EdgeXError):
    """A registry option (or the environment variable standing in for it) that cannot be used.
    The message names the option and the rule, never the value (it may hold a token)."""


# A host name (RFC 1123 labels) or an address; anything else (a scheme, a path, a query, a
# space) would change the request URL.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
SCHEME_PORTS = {"http": 80, "https": 443}


def valid_host(host):
    """Is ``host`` a host name or an IP address, and nothing else?"""
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST_NAME.match(host))


def parse_consul_http_addr(value):
    """(scheme or None, host, port or None) of CONSUL_HTTP_ADDR, read as the Consul CLI reads it:
    ``[http://|https://]host[:port]``, an IPv6 address in brackets; without a port the scheme's
    (80 or 443), as the CLI connects. A path, query, fragment or user name is refused, and the
    error never repeats the value: it may carry a token."""
    scheme, separator, rest = value.strip().partition("://")
    if not separator:
        scheme, rest = None, value.strip()
    elif scheme not in SCHEME_PORTS:
        raise SettingsError("CONSUL_HTTP_ADDR: the scheme must be http or https (a unix socket is not supported)")
    if any(mark in rest for mark in "/?#@") or not rest:
        raise SettingsError("CONSUL_HTTP_ADDR must be [scheme://]host[:port], without a path, query, fragment or "
                            "user name")
    if rest.startswith("["):
        host, bracket, port = rest[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise SettingsError("CONSUL_HTTP_ADDR: an IPv6 address must be written [address]:port")
        port = port[1:]
    else:
        host, _colon, port = rest.partition(":")
    if not valid_host(host):
        raise SettingsError("CONSUL_HTTP_ADDR: the host must be a host name or an IP address")
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise SettingsError("CONSUL_HTTP_ADDR: the port must be a number from 1 to 65535")
    return scheme, host, int(port) if port else None


def _env_bool(value):
    return value.strip().lower() in ("1", "true", "yes", "on")


def resolve_registry_settings(params, environ=None):
    """Fill unset connection options from the standard CONSUL_* variables and defaults, and
    check them: ``host`` a host name or address, ``port`` 1-65535, ``timeout`` > 0.

    ``params`` is a plain dict (module params or inventory options). Returns a new dict;
    explicit values always win over the environment: with ``host`` or ``port`` given,
    CONSUL_HTTP_ADDR is not read at all. Raises SettingsError.
    """
    env = os.environ if environ is None else environ
    settings = dict(params)
    registry_type = settings.get("registry_type") or "consul"
    # The CONSUL_* variables describe Consul only: they must not redirect a keeper client, and a
    # Consul token is never sent to core-keeper.
    consul = registry_type == "consul"
    env_scheme = env_host = env_port = None
    if consul and settings.get("host") is None and settings.get("port") is None and env.get("CONSUL_HTTP_ADDR"):
        env_scheme, env_host, env_port = parse_consul_http_addr(env["CONSUL_HTTP_ADDR"])
    if consul and env.get("CONSUL_HTTP_SSL") and env_scheme is None:
        env_scheme = "https" if _env_bool(env["CONSUL_HTTP_SSL"]) else "http"
    if settings.get("scheme") is None:
        settings["scheme"] = env_scheme or "http"
    if settings.get("host") is None:
        settings["host"] = env_host or "127.0.0.1"
    if settings.get("port") is None:
        if env_host is not None:
            settings["port"] = env_port or SCHEME_PORTS[settings["scheme"]]
        else:
            settings["port"] = 59890 if registry_type == "keeper" else 8500
    if settings.get("validate_certs") is None:
        verify = env.get("CONSUL_HTTP_SSL_VERIFY") if consul else None
        settings["validate_certs"] = _env_bool(verify) if verify is not None else True
    for option, names in REGISTRY_ENV.items():
        if not consul or settings.get(option) is not None:
            continue
        for name in names:
            if env.get(name):
                settings[option] = env[name]
                break
    if settings.get("timeout") is None:
        settings["timeout"] = 5.0
    settings["registry_type"] = registry_type
    _check(settings)
    return settings


def _check(settings):
    if not valid_host(settings["host"]):
        raise SettingsError("host must be a host name or an IP address, without a scheme, port, path or query")
    if isinstance(settings["port"], bool) or not isinstance(settings["port"], int) or \
            not 1 <= settings["port"] <= 65535:
        raise SettingsError("port must be a number from 1 to 65535, not %r" % (settings["port"],))
    if not isinstance(settings["timeout"], (int, float)) or not settings["timeout"] > 0:
        raise SettingsError("timeout must be a number of seconds > 0 (a total deadline per registry call), not %r"
                            % (settings["timeout"],))


def registry_label(settings, datacenter=None):
    """Where resolved ``settings`` point, for messages and the manifest's ``generated_from``:
    ``consul://host:port/dc`` (``datacenter`` when given, else the settings'), or
    ``manifest:<path>``. Never includes the token."""
    if settings["registry_type"] in ("manifest", "none"):
        return "%s:%s" % (settings["registry_type"], settings.get("manifest_path"))
    label = "%s://%s:%s" % (settings["registry_type"], settings["host"], settings["port"])
    datacenter = datacenter or settings.get("datacenter")
    return label + ("/" + datacenter if datacenter else "")
