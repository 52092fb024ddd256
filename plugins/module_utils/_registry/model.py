# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The registry model: nodes, service instances, what one discovery found, and the provider interface.

Plain data, shared by every provider (Consul, core-keeper, the manifest) and by everything that
reads their answers.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional


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
    # Why this answer may not be the whole truth (a list filtered by ACLs, a registration skipped
    # as unsafe, ...). Only a complete answer may say that something is gone.
    gaps: List[str] = field(default_factory=list)

    @property
    def complete(self):
        return not self.gaps

    def services_on(self, node):
        return [s for s in self.services if s.node == node]

    def to_dict(self):
        return asdict(self)


class Registry(object):
    """A provider: consul, keeper, manifest. Implementations raise the errors of ``_errors``."""

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

    # Whether kv_write and kv_delete honour ``index`` (Consul's check-and-set on ModifyIndex).
    kv_check_and_set = False

    def kv_entries(self, folder):
        """Every key below ``folder/`` as {key: KVEntry}; empty when there is none. An answer the
        registry filtered (ACLs) raises: a partial configuration must never look whole."""
        raise NotImplementedError

    def kv_write(self, key, value, index=None):
        """Set ``key`` to ``value`` (str). With ``index`` and kv_check_and_set, only if the key's
        version is still ``index`` (0: only if it does not exist). False: that check failed."""
        raise NotImplementedError

    def kv_delete(self, key, index=None):
        """Remove ``key`` (only that key), with ``index`` as in kv_write. False: the check failed."""
        raise NotImplementedError


# One configuration key's value (str) and version (Consul's ModifyIndex; None where the
# registry keeps no version).
KVEntry = namedtuple("KVEntry", "value index")
