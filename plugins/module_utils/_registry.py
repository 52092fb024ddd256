# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The one answer to "which EdgeX services run where, and how healthy": the registry model,
the provider interface, the factory by registry type and the fallback to the manifest.

Every module and the inventory plugin go through ``discover()`` so that a host's
``edgex_services`` hostvar and a module's ``name: all`` always agree.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional

from ._common import (
    EdgeXError,
    ManifestError,
    RegistryAuthError,
    RegistryUnavailableError,
)

# Aggregated health, worst wins. "unknown" when nothing checks the service (manifest, none).
STATUS_ORDER = ("passing", "warning", "critical")
STATUSES = STATUS_ORDER + ("unknown",)


def worst_status(statuses):
    """Consul's aggregation: any critical -> critical, else any warning -> warning, else passing."""
    statuses = list(statuses)
    if not statuses:
        return "unknown"
    for status in ("critical", "warning"):
        if status in statuses:
            return status
    if all(s == "passing" for s in statuses):
        return "passing"
    return "unknown"


@dataclass
class NodeRecord:
    """A gateway: a Consul node, a manifest host."""

    name: str
    address: str
    datacenter: Optional[str] = None
    meta: Dict[str, str] = field(default_factory=dict)
    status: str = "unknown"  # serfHealth for Consul; "unknown" without a live registry


@dataclass
class ServiceRecord:
    """One EdgeX service instance on one node.

    ``executor``/``target``/``depends_on``/``health_path`` come from the manifest; a live
    registry does not know them and leaves them None/empty unless merged with a manifest.
    """

    name: str
    node: str
    id: Optional[str] = None
    address: Optional[str] = None
    port: Optional[int] = None
    tags: List[str] = field(default_factory=list)
    meta: Dict[str, str] = field(default_factory=dict)
    status: str = "unknown"
    checks: List[dict] = field(default_factory=list)
    datacenter: Optional[str] = None
    executor: Optional[str] = None
    target: Optional[str] = None
    depends_on: List[str] = field(default_factory=list)
    health_path: Optional[str] = None
    registered: bool = True  # False: deployed (manifest) but not in the live registry right now

    def __post_init__(self):
        if self.id is None:
            self.id = self.name


@dataclass
class Discovery:
    """What a registry (or the manifest standing in for it) knows, and where it came from."""

    source: str  # consul | keeper | manifest | none
    nodes: List[NodeRecord] = field(default_factory=list)
    services: List[ServiceRecord] = field(default_factory=list)
    manifest_age: Optional[float] = None  # seconds since the manifest's updated_at
    warnings: List[str] = field(default_factory=list)
    datacenter: Optional[str] = None

    def services_on(self, node):
        return [s for s in self.services if s.node == node]

    def to_dict(self):
        return asdict(self)


class Registry(object):
    """A provider: consul, keeper, manifest. Implementations raise the errors of _common."""

    type = "abstract"

    def discover(self):
        """Return a Discovery of every node and service, or raise a RegistryError."""
        raise NotImplementedError

    def register(self, service):
        """Register a ServiceRecord (with its health check). Returns True if anything changed."""
        raise NotImplementedError

    def deregister(self, service_id, node=None):
        """Remove a registration. Returns True if it existed."""
        raise NotImplementedError

    def kv_get(self, key, recurse=False):
        """Configuration read: {key: value-as-str} (empty dict when absent)."""
        raise NotImplementedError

    def kv_put(self, key, value):
        raise NotImplementedError


def overlay_manifest(discovery, manifest):
    """A live Discovery's services completed by the manifest (``manifest``: its Discovery).

    Registered services get executor/target/depends_on/health from their manifest entry (and
    its address and port when the registration has none); manifest services of the live nodes
    that are not registered (stopped: EdgeX deregisters on a clean stop) are added with
    ``registered=False``. Returns a new list.
    """
    if manifest is None or discovery.source == "manifest":
        return list(discovery.services)
    deployed = {(s.node, s.name): s for s in manifest.services}
    services = []
    for live in discovery.services:
        entry = deployed.get((live.node, live.name))
        if entry is not None:
            live = replace(live, executor=live.executor or entry.executor, target=live.target or entry.target,
                           depends_on=live.depends_on or list(entry.depends_on),
                           health_path=live.health_path or entry.health_path,
                           address=live.address or entry.address, port=live.port or entry.port)
        services.append(live)
    registered = {(s.node, s.name) for s in discovery.services}
    live_nodes = {n.name for n in discovery.nodes}
    for key, entry in sorted(deployed.items()):
        if key not in registered and entry.node in live_nodes:
            services.append(replace(entry, registered=False, datacenter=entry.datacenter or discovery.datacenter))
    return services


def open_registry(settings):
    """Factory by ``settings['registry_type']``; imports providers lazily so that a host
    without python-consul2 can still use the manifest."""
    registry_type = settings.get("registry_type", "consul")
    if registry_type == "consul":
        from ._consul import ConsulRegistry

        return ConsulRegistry(settings)
    if registry_type == "keeper":
        from ._keeper import KeeperRegistry

        return KeeperRegistry(settings)
    if registry_type == "manifest":
        from ._manifest import ManifestRegistry

        return ManifestRegistry(settings)
    if registry_type == "none":
        return None
    raise EdgeXError("unknown registry_type %r" % registry_type)


def _discover_manifest(settings, reason):
    from ._manifest import ManifestStore

    path = settings.get("manifest_path")
    if not path:
        raise ManifestError(
            "no manifest_path is set, so there is nothing to fall back to (%s)" % reason
        )
    discovery = ManifestStore(path).to_discovery()
    if reason:
        discovery.warnings.append(reason)
    return discovery


def discover(settings, registry=None):
    """Ask the configured registry; fall back to the manifest when it is unreachable.

    - registry_type manifest / none: the manifest (none: static data only, no live registry).
    - consul / keeper unreachable (refused, timeout, 5xx): the manifest, with a warning
      naming the cause and ``manifest_age`` set.
    - 401/403: raised, unless ``fallback_on_auth_error`` is true: a wrong token must not
      silently serve stale data.
    """
    registry_type = settings.get("registry_type", "consul")
    if registry_type in ("manifest", "none"):
        return _discover_manifest(settings, None)
    if registry is None:
        registry = open_registry(settings)
    started = time.time()
    try:
        return registry.discover()
    except RegistryUnavailableError as exc:
        reason = "%s registry unreachable (%s); using the manifest" % (registry_type, exc)
    except RegistryAuthError as exc:
        if not settings.get("fallback_on_auth_error"):
            raise
        reason = "%s registry refused access (%s); using the manifest as allowed by " \
                 "fallback_on_auth_error" % (registry_type, exc)
    if not settings.get("manifest_path"):
        raise RegistryUnavailableError(
            "%s (after %.1fs), and no manifest_path is set to fall back to"
            % (reason.split("; using")[0], time.time() - started)
        )
    return _discover_manifest(settings, reason)
