# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


# The thirteen registry options, in two forms, as amazon.aws's common fragment does:
#   edgex.sysmgmt.registry.modules   modules (no env: entries; AnsibleModule does not read them)
#   edgex.sysmgmt.registry.plugins   the inventory plugin (env: entries that ansible-doc shows)
# Both describe one resolution, module_utils/_registry/settings.py resolve_registry_settings():
# an explicit value > the Consul CLI's environment variables > the default. ansible-test needs
# each block as one string literal, so the text is written out in each; keep them in step:
# tests/unit/plugins/doc_fragments/test_registry.py compares them with each other and with
# registry_argument_spec().
#
# CONSUL_HTTP_ADDR is not mapped to one option: it is "host:port" or "scheme://host:port" and
# fills host, port and scheme together, and only for registry_type consul. CONSUL_HTTP_SSL is a
# boolean, not a value of scheme. Both are therefore described in the text, not as env: entries.


class ModuleDocFragment(object):
    # Registry connection options of modules (edgex.sysmgmt.registry.modules).
    MODULES = r"""
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
      - Registry host.
      - When unset and O(registry_type=consul), the host part of E(CONSUL_HTTP_ADDR)
        (C(host:port), C(scheme://host:port), an IPv6 address in brackets, read as the Consul CLI
        reads it); otherwise V(127.0.0.1).
      - E(CONSUL_HTTP_ADDR) describes Consul only and is never used for core-keeper; with O(host) or
        O(port) given it is not read at all.
      - A host name or an IP address and nothing else (no scheme, port, path or query).
    type: str
  port:
    description:
      - Registry port.
      - When unset and O(registry_type=consul), the port part of E(CONSUL_HTTP_ADDR) (without one,
        the scheme's, 80 or 443, as the Consul CLI connects); otherwise V(8500) for Consul and
        V(59890) for core-keeper. From 1 to 65535.
    type: int
  scheme:
    description:
      - V(http) or V(https).
      - When unset and O(registry_type=consul), the scheme part of E(CONSUL_HTTP_ADDR) if it has
        one, else V(https) when E(CONSUL_HTTP_SSL) is true; otherwise V(http).
    type: str
    choices: [http, https]
  datacenter:
    description:
      - Consul datacenter to ask. Defaults to the agent's own datacenter.
    type: str

  token:
    description:
      - The registry's access token.
      - Consul receives it in the C(X-Consul-Token) header; when unset, E(CONSUL_HTTP_TOKEN) is used.
      - "core-keeper (EdgeX 4.x in secure mode) receives it as C(Authorization: Bearer <token>).
        E(CONSUL_HTTP_TOKEN) is never sent to core-keeper."
      - Never logged, cached or returned.
    type: str

  validate_certs:
    description:
      - Verify the registry's TLS certificate.
      - When unset, E(CONSUL_HTTP_SSL_VERIFY) (V(true)/V(false)), else V(true).
    type: bool
  ca_path:
    description:
      - CA bundle to verify the registry's certificate with. When unset, E(CONSUL_CACERT).
    type: path
  client_cert:
    description:
      - Client certificate for mutual TLS. When unset, E(CONSUL_CLIENT_CERT).
    type: path
  client_key:
    description:
      - Key of O(client_cert). When unset, E(CONSUL_CLIENT_KEY).
    type: path

  timeout:
    description:
      - Seconds one registry call may take in total, name lookup, connect, TLS handshake and the
        whole answer included (a registry that trickles its answer is cut off); a call that takes
        longer counts as the registry being unreachable (the manifest fallback then applies).
        Must be > 0.
      - A discovery makes several calls (for Consul a few fixed ones plus one per service name),
        each under its own deadline.
    type: float
    default: 5.0
  manifest_path:
    description:
      - The manifest file (see the collection's C(docs/manifest.md)). The fallback when the registry
        is unreachable, and the registry itself when O(registry_type=manifest) or V(none).
    type: path
  fallback_on_auth_error:
    description:
      - Also fall back to the manifest when the registry answers 401/403, filters its answer by ACLs
        (Consul's C(X-Consul-Results-Filtered-By-ACLs), or no token under a default-deny policy; the
        token cannot see the whole catalogue, so the answer says nothing about what is absent), or
        fails the TLS check of its certificate (unknown CA, name mismatch, expired).
      - Off by default because a wrong token or an impostor must not silently serve stale data.
    type: bool
    default: false

notes:
  - The environment variables are read on the host the module runs on (usually the gateway),
    not on the control node.
"""

    # The same options for the inventory plugin (edgex.sysmgmt.registry.plugins), with the
    # variables Ansible's configuration system reads (ansible-doc lists them). The plugin hands
    # only the values written in its file to resolve_registry_settings(), which reads these same
    # variables by the same rules as in modules, so an option never means two things.
    PLUGINS = r"""
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
      - Registry host.
      - When unset and O(registry_type=consul), the host part of E(CONSUL_HTTP_ADDR)
        (C(host:port), C(scheme://host:port), an IPv6 address in brackets, read as the Consul CLI
        reads it); otherwise V(127.0.0.1).
      - E(CONSUL_HTTP_ADDR) describes Consul only and is never used for core-keeper; with O(host) or
        O(port) given it is not read at all.
      - A host name or an IP address and nothing else (no scheme, port, path or query).
    type: str
  port:
    description:
      - Registry port.
      - When unset and O(registry_type=consul), the port part of E(CONSUL_HTTP_ADDR) (without one,
        the scheme's, 80 or 443, as the Consul CLI connects); otherwise V(8500) for Consul and
        V(59890) for core-keeper. From 1 to 65535.
    type: int
  scheme:
    description:
      - V(http) or V(https).
      - When unset and O(registry_type=consul), the scheme part of E(CONSUL_HTTP_ADDR) if it has
        one, else V(https) when E(CONSUL_HTTP_SSL) is true; otherwise V(http).
    type: str
    choices: [http, https]
  datacenter:
    description:
      - Consul datacenter to ask. Defaults to the agent's own datacenter.
    type: str

  token:
    description:
      - The registry's access token.
      - Consul receives it in the C(X-Consul-Token) header; when unset, E(CONSUL_HTTP_TOKEN) is used.
      - "core-keeper (EdgeX 4.x in secure mode) receives it as C(Authorization: Bearer <token>).
        E(CONSUL_HTTP_TOKEN) is never sent to core-keeper."
      - Never logged, cached or returned.
    type: str
    env:
      - name: CONSUL_HTTP_TOKEN

  validate_certs:
    description:
      - Verify the registry's TLS certificate.
      - When unset, E(CONSUL_HTTP_SSL_VERIFY) (V(true)/V(false)), else V(true).
    type: bool
    env:
      - name: CONSUL_HTTP_SSL_VERIFY
  ca_path:
    description:
      - CA bundle to verify the registry's certificate with. When unset, E(CONSUL_CACERT).
    type: path
    env:
      - name: CONSUL_CACERT
  client_cert:
    description:
      - Client certificate for mutual TLS. When unset, E(CONSUL_CLIENT_CERT).
    type: path
    env:
      - name: CONSUL_CLIENT_CERT
  client_key:
    description:
      - Key of O(client_cert). When unset, E(CONSUL_CLIENT_KEY).
    type: path
    env:
      - name: CONSUL_CLIENT_KEY

  timeout:
    description:
      - Seconds one registry call may take in total, name lookup, connect, TLS handshake and the
        whole answer included (a registry that trickles its answer is cut off); a call that takes
        longer counts as the registry being unreachable (the manifest fallback then applies).
        Must be > 0.
      - A discovery makes several calls (for Consul a few fixed ones plus one per service name),
        each under its own deadline.
    type: float
    default: 5.0
  manifest_path:
    description:
      - The manifest file (see the collection's C(docs/manifest.md)). The fallback when the registry
        is unreachable, and the registry itself when O(registry_type=manifest) or V(none).
    type: path
  fallback_on_auth_error:
    description:
      - Also fall back to the manifest when the registry answers 401/403, filters its answer by ACLs
        (Consul's C(X-Consul-Results-Filtered-By-ACLs), or no token under a default-deny policy; the
        token cannot see the whole catalogue, so the answer says nothing about what is absent), or
        fails the TLS check of its certificate (unknown CA, name mismatch, expired).
      - Off by default because a wrong token or an impostor must not silently serve stale data.
    type: bool
    default: false

notes:
  - The environment variables are read on the control node (for AWX, from the credential
    injected into the inventory sync).
  - Relative paths in O(manifest_path), O(ca_path), O(client_cert) and O(client_key), at the top
    level or in O(sources), are relative to the directory of the inventory file.
"""

    # The action group of meta/runtime.yml, as community.general documents actiongroup_consul.
    ACTIONGROUP_REGISTRY = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/edgex.sysmgmt.registry) in C(module_defaults) to set the registry options
      once for every module of this collection that talks to the registry.
    support: full
    membership:
      - edgex.sysmgmt.registry
"""
