# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The one answer to "which EdgeX services run where": the provider for a registry type, the
fallback to the manifest, and the manifest's overlay on a live answer.

Every module and the inventory plugin go through ``discover()`` so that a host's
``edgex_services`` hostvar and a module's ``name: all`` always agree.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from .._errors import (
    EdgeXError,
    ManifestError,
    RegistryAuthError,
    RegistryFilteredError,
    RegistryServerError,
    RegistryTLSError,
    RegistryUnavailableError,
)
from .._manifest.store import ManifestStore
from .consul import ConsulRegistry
from .keeper import KeeperRegistry
from .manifest import ManifestRegistry
from .model import DEPLOYMENT_FIELDS


PROVIDERS = {"consul": ConsulRegistry, "keeper": KeeperRegistry, "manifest": ManifestRegistry}


def open_registry(settings, check_mode=False):
    """The provider for ``settings['registry_type']``; None for ``none`` (static data only).
    ``check_mode`` reaches the manifest provider, the only one that writes a file."""
    registry_type = settings.get("registry_type", "consul")
    if registry_type == "none":
        return None
    if registry_type == "manifest":
        return ManifestRegistry(settings, check_mode=check_mode)
    if registry_type not in PROVIDERS:
        raise EdgeXError("unknown registry_type %r" % registry_type)
    return PROVIDERS[registry_type](settings)


def read_registry(registry, nodes=None):
    """The registry's answer: about ``nodes`` only when they are few and the registry can say so
    (Consul), else about everything."""
    if nodes and len(nodes) <= NODE_SCOPED_MAX and hasattr(registry, "discover_nodes"):
        scoped = registry.discover_nodes(nodes)
        if {n.name for n in scoped.nodes} >= set(nodes):
            return scoped
        # a node the registry does not know: the bulk read, so that an error can list those it knows
    return registry.discover()


def _discover_manifest(settings, reason):
    path = settings.get("manifest_path")
    if not path:
        raise ManifestError(
            "no manifest_path is set, so there is nothing to fall back to (%s)" % reason
        )
    discovery = ManifestStore(path).to_discovery()
    if reason:
        discovery.warnings.append(reason)
    return discovery


# Up to this many nodes, Consul is read node by node (two requests each, the size of what the
# nodes hold); beyond, in bulk (3 + one per service name, the size of the whole datacenter).
NODE_SCOPED_MAX = 8


def discover(settings, registry=None, nodes=None):
    """Ask the configured registry; fall back to the manifest when it is unavailable.

    ``nodes``: the only nodes the caller needs, a hint: Consul then reads just those when they
    are few (NODE_SCOPED_MAX); other registries, or many nodes, read everything.

    - registry_type manifest / none: the manifest (none: static data only, no live registry).
    - consul / keeper unreachable (refused, time-out) or failing (5xx): the manifest, with a
      warning naming the cause and ``manifest_age`` set.
    - 401/403, an answer filtered by ACLs, a TLS identity check that failed: raised, unless
      ``fallback_on_auth_error`` is true: a wrong token or an impostor must not silently serve
      stale data, and a filtered answer says nothing about what is absent.
    - anything else (a client that cannot be built, an answer that is not the registry's): raised.
    """
    registry_type = settings.get("registry_type", "consul")
    if registry_type in ("manifest", "none"):
        return _discover_manifest(settings, None)
    started = time.time()
    try:
        return read_registry(registry or open_registry(settings), nodes)
    except RegistryServerError as exc:
        reason = "%s registry failed (%s); using the manifest" % (registry_type, exc)
    except RegistryUnavailableError as exc:
        reason = "%s registry unreachable (%s); using the manifest" % (registry_type, exc)
    except RegistryAuthError as exc:
        if not settings.get("fallback_on_auth_error"):
            raise
        what = "could not be trusted" if isinstance(exc, RegistryTLSError) else \
            "filtered its answer" if isinstance(exc, RegistryFilteredError) else "refused access"
        reason = "%s registry %s (%s); using the manifest as allowed by fallback_on_auth_error" \
                 % (registry_type, what, exc)
    if not settings.get("manifest_path"):
        raise RegistryUnavailableError(
            "%s (after %.1fs), and no manifest_path is set to fall back to"
            % (reason.split("; using")[0], time.time() - started)
        )
    return _discover_manifest(settings, reason)


def overlay_manifest(discovery, manifest):
    """A live Discovery's services completed by the manifest (``manifest``: its Discovery).

    Registered services get executor/target/depends_on/health from their manifest entry (and
    its address and port when the registration has none); manifest services of the live nodes
    that are not registered (stopped: EdgeX deregisters on a clean stop) are added with
    ``registered=False``. Every service also gets what the address rule needs
    (_gateway/addresses.py): ``node_address``, and ``manifest_address``/``manifest_port`` from
    its manifest entry. Returns a new list.
    """
    node_addresses = {n.name: n.address for n in discovery.nodes}
    if discovery.source == "manifest":
        return [replace(s, node_address=node_addresses.get(s.node), manifest_address=s.address,
                        manifest_port=s.port) for s in discovery.services]
    if manifest is None:
        return [replace(s, node_address=node_addresses.get(s.node)) for s in discovery.services]
    deployed_addresses = {n.name: n.address for n in manifest.nodes}
    deployed = {(s.node, s.name): s for s in manifest.services}
    services = []
    for live in discovery.services:
        entry = deployed.get((live.node, live.name))
        node_address = node_addresses.get(live.node) or deployed_addresses.get(live.node)
        if entry is None:
            live = replace(live, node_address=node_address)
        else:
            # Where a compose import found it published (published set) is where the gateway reaches
            # it; a registration names its address inside the compose network.
            reached = entry.published is not None
            live = replace(live, executor=live.executor or entry.executor, target=live.target or entry.target,
                           depends_on=live.depends_on or list(entry.depends_on),
                           health_path=live.health_path or entry.health_path,
                           address=entry.address if reached else live.address or entry.address,
                           port=entry.port if reached else live.port or entry.port,
                           node_address=node_address, manifest_address=entry.address, manifest_port=entry.port,
                           **{name: getattr(entry, name) for name in DEPLOYMENT_FIELDS})
        services.append(live)
    registered = {(s.node, s.name) for s in discovery.services}
    for key, entry in sorted(deployed.items()):
        if key not in registered and entry.node in node_addresses:
            services.append(replace(entry, registered=False, datacenter=entry.datacenter or discovery.datacenter,
                                    node_address=node_addresses[entry.node], manifest_address=entry.address,
                                    manifest_port=entry.port))
    return services


def manifest_for(settings, discovery):
    """The manifest's Discovery to join with ``discovery``: the discovery itself when it came from
    the manifest, the file at ``manifest_path`` when there is one, else None."""
    if discovery.source == "manifest":
        return discovery
    path = settings.get("manifest_path")
    if path and os.path.exists(path):
        return ManifestStore(path).to_discovery()
    return None
