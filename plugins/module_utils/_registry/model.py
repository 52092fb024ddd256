# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The registry model: nodes, service instances, what one discovery found, and the provider interface.

Plain data, shared by every provider (Consul, core-keeper, the manifest) and by everything that
reads their answers.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional

from .._catalog import DEFAULT_CHECK_INTERVAL, PING_PATH


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


# ServiceRecord fields only the manifest knows (a compose import fills them), with the same names in
# the manifest's service entries: carried over wherever a manifest entry completes a live record.
DEPLOYMENT_FIELDS = ("one_shot", "api_version", "depends_on_conditions", "depends_on_optional", "published",
                     "container_port")


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
    # Where to reach it when ``address`` is a name only its compose network resolves (see
    # _gateway/addresses.py): its node's address, and the manifest's address and port (the
    # port published on the host; a registration's port is the container's). Set by the overlay.
    node_address: Optional[str] = None
    manifest_address: Optional[str] = None
    manifest_port: Optional[int] = None
    # How it is deployed, from the manifest only (see DEPLOYMENT_FIELDS); a live registry knows none of it.
    one_shot: Optional[bool] = None  # None: the manifest does not say (the catalog's default applies)
    api_version: Optional[str] = None
    depends_on_conditions: Dict[str, str] = field(default_factory=dict)
    depends_on_optional: List[str] = field(default_factory=list)
    published: Optional[bool] = None
    container_port: Optional[int] = None

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


@dataclass
class Check:
    """The health check a registry runs for a service: an HTTP GET of ``path`` (EdgeX's ping, as
    go-mod-registry registers it), a TCP connect (redis, an MQTT broker), or none. ``unknown``:
    the registry has one but does not say which (one made by someone else)."""

    kind: str = "http"
    path: Optional[str] = None
    interval: str = DEFAULT_CHECK_INTERVAL
    timeout: Optional[str] = None
    deregister_critical_after: Optional[str] = None

    def describe(self):
        """One line that says the whole check (``parse`` reads it back)."""
        if self.kind in ("none", "unknown"):
            return self.kind
        words = [self.kind] + ([self.path] if self.kind == "http" else []) + ["every", self.interval]
        if self.timeout:
            words += ["timeout", self.timeout]
        if self.deregister_critical_after:
            words += ["deregister-after", self.deregister_critical_after]
        return " ".join(words)

    @classmethod
    def parse(cls, text):
        """The Check ``describe`` wrote, or None when ``text`` is not one."""
        words = (text or "").split()
        if words in (["none"], ["unknown"]):
            return cls(kind=words[0], interval="")
        try:
            kind = words.pop(0)
            path = words.pop(0) if kind == "http" else None
            options = dict(zip(words[::2], words[1::2]))
            known = {"every", "timeout", "deregister-after"}
            if kind not in ("http", "tcp") or len(words) % 2 or not set(options) <= known:
                return None
            return cls(kind=kind, path=path, interval=options["every"], timeout=options.get("timeout"),
                       deregister_critical_after=options.get("deregister-after"))
        except (IndexError, KeyError):
            return None


@dataclass
class Registration:
    """One service's registration as a registry keeps it (what ``Registry.registration`` reads and
    ``Registry.apply_registration`` writes)."""

    name: str
    id: str
    node: Optional[str] = None
    address: Optional[str] = None
    port: Optional[int] = None
    tags: List[str] = field(default_factory=list)
    meta: Dict[str, str] = field(default_factory=dict)
    check: Check = field(default_factory=lambda: Check(kind="none", interval=""))

    def to_dict(self):
        return asdict(self)

    def describe(self):
        """The registration as text, one field a line (a diff's before and after)."""
        lines = ["service: %s (id %s) on node %s" % (self.name, self.id, self.node or "-"),
                 "address: %s" % (self.address or ""), "port: %s" % (self.port or ""),
                 "tags: %s" % ", ".join(sorted(self.tags)),
                 "meta: %s" % ", ".join("%s=%s" % item for item in sorted(self.meta.items())),
                 "check: %s" % self.check.describe()]
        return "".join(line + "\n" for line in lines)


def registration_of(service):
    """The Registration of a ServiceRecord: its health path as an HTTP check (EdgeX's ping when it
    names none), none without a port."""
    check = Check(kind="http", path=service.health_path or PING_PATH) if service.port else \
        Check(kind="none", interval="")
    return Registration(name=service.name, id=service.id or service.name, node=service.node, address=service.address,
                        port=service.port, tags=sorted(service.tags or []), meta=dict(service.meta or {}), check=check)


class Registry(object):
    """A provider: consul, keeper, manifest. Implementations raise the errors of ``_errors``."""

    type = "abstract"
    keeps_names = True  # False: a registration is known by its id alone (core-keeper)

    def discover(self):
        """Return a Discovery of every node and service, or raise a RegistryError."""
        raise NotImplementedError

    def registration(self, service_id, node=None):
        """The Registration of ``service_id`` on ``node`` as the registry keeps it, or None."""
        raise NotImplementedError

    def apply_registration(self, registration):
        """Write ``registration`` (the caller decided that it differs from what is there)."""
        raise NotImplementedError

    def register(self, service):
        """Register a ServiceRecord (with its health check) unless it is registered so already.
        Returns True if anything changed."""
        wanted = registration_of(service)
        current = self.registration(wanted.id, service.node)
        if current is not None:  # read on wanted.node; a registry that keeps no names knows the id alone
            current = replace(current, node=wanted.node, name=current.name if self.keeps_names else wanted.name)
        if current == wanted:
            return False
        self.apply_registration(wanted)
        return True

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
