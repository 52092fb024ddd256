# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment(object):
    # Registry connection options shared by every module and the inventory plugin.
    DOCUMENTATION = r"""
options:
  registry_type:
    description:
      - Who knows which EdgeX services run where.
      - V(consul) asks Consul (EdgeX 2.x/3.x), V(keeper) asks core-keeper (EdgeX 4.x); both fall
        back to the manifest at O(manifest_path) when the registry is unreachable, and say so.
      - V(manifest) makes the manifest itself the registry (the collection registers and
        deregisters services in it); V(none) uses the manifest as static data only.
    type: str
    choices: [consul, keeper, manifest, none]
    default: consul
  host:
    description:
      - Registry host. Defaults to the host in E(CONSUL_HTTP_ADDR) for Consul, else V(127.0.0.1).
    type: str
  port:
    description:
      - Registry port. Defaults to the port in E(CONSUL_HTTP_ADDR), else V(8500) for Consul and
        V(59890) for core-keeper.
    type: int
  scheme:
    description:
      - V(http) or V(https). Defaults from E(CONSUL_HTTP_ADDR) or E(CONSUL_HTTP_SSL), else V(http).
    type: str
    choices: [http, https]
  datacenter:
    description:
      - Consul datacenter to ask. Defaults to the agent's own datacenter.
    type: str
  token:
    description:
      - ACL token sent as C(X-Consul-Token). Defaults to E(CONSUL_HTTP_TOKEN).
      - Never logged, cached or returned.
    type: str
  validate_certs:
    description:
      - Verify the registry's TLS certificate. Defaults to E(CONSUL_HTTP_SSL_VERIFY), else V(true).
    type: bool
  ca_path:
    description:
      - CA bundle for TLS. Defaults to E(CONSUL_CACERT).
    type: path
  client_cert:
    description:
      - Client certificate for mutual TLS. Defaults to E(CONSUL_CLIENT_CERT).
    type: path
  client_key:
    description:
      - Client key for mutual TLS. Defaults to E(CONSUL_CLIENT_KEY).
    type: path
  timeout:
    description:
      - Seconds to wait for the registry before treating it as unreachable.
    type: float
    default: 5.0
  manifest_path:
    description:
      - The manifest file (see the collection's C(docs/manifest.md)). The fallback when the registry
        is unreachable, and the registry itself when O(registry_type=manifest) or V(none).
    type: path
  fallback_on_auth_error:
    description:
      - Also fall back to the manifest when the registry answers 401/403. Off by default because a
        wrong token must not silently serve stale data.
    type: bool
    default: false
"""
