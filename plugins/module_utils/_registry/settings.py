# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The registry connection options: their argument spec and their resolution from explicit
values, the Consul CLI's environment variables and defaults.
"""

from __future__ import annotations

import os


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


def _parse_addr(addr):
    """CONSUL_HTTP_ADDR is ``host:port`` or ``scheme://host:port``."""
    scheme = None
    if "://" in addr:
        scheme, addr = addr.split("://", 1)
    addr = addr.rstrip("/")
    host, _sep, port = addr.rpartition(":")
    if not host:
        return scheme, addr, None
    return scheme, host.strip("[]"), int(port)


def _env_bool(value):
    return value.strip().lower() in ("1", "true", "yes", "on")


def resolve_registry_settings(params, environ=None):
    """Fill unset connection options from the standard CONSUL_* variables and defaults.

    ``params`` is a plain dict (module params or inventory options). Returns a new dict;
    explicit values always win over the environment.
    """
    env = os.environ if environ is None else environ
    settings = dict(params)
    addr = env.get("CONSUL_HTTP_ADDR")
    env_scheme = env_host = env_port = None
    if addr:
        env_scheme, env_host, env_port = _parse_addr(addr)
    if env.get("CONSUL_HTTP_SSL") and env_scheme is None:
        env_scheme = "https" if _env_bool(env["CONSUL_HTTP_SSL"]) else "http"
    registry_type = settings.get("registry_type") or "consul"
    default_port = 59890 if registry_type == "keeper" else 8500
    # CONSUL_HTTP_ADDR describes Consul only; it must not redirect a keeper client.
    use_env_addr = registry_type == "consul"
    if settings.get("host") is None:
        settings["host"] = (env_host if use_env_addr else None) or "127.0.0.1"
    if settings.get("port") is None:
        settings["port"] = (env_port if use_env_addr else None) or default_port
    if settings.get("scheme") is None:
        settings["scheme"] = (env_scheme if use_env_addr else None) or "http"
    if settings.get("validate_certs") is None:
        verify = env.get("CONSUL_HTTP_SSL_VERIFY")
        settings["validate_certs"] = _env_bool(verify) if verify is not None else True
    for option, names in REGISTRY_ENV.items():
        if option == "token" and not use_env_addr:
            continue  # a Consul token is never sent to core-keeper
        if settings.get(option) is None:
            for name in names:
                if env.get(name):
                    settings[option] = env[name]
                    break
    settings.setdefault("timeout", 5.0)
    settings.setdefault("registry_type", registry_type)
    return settings
