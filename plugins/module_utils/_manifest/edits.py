# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Pure edits of the manifest dict, and its translation to and from registry records; the store
writes what they return.
"""

from __future__ import annotations

import copy

from .._errors import ManifestError
from .._names import validate_name
from .._registry.model import DEPLOYMENT_FIELDS, Discovery, NodeRecord, ServiceRecord
from .schema import age_seconds, last_confirmed


# -- model <-> registry records ---------------------------------------------------
_FROM_FILE = object()


def to_discovery(data, confirmed_at=_FROM_FILE):
    """The manifest as a Discovery (no live health: every status is "unknown"). Its
    ``manifest_age`` is the time since a registry last confirmed it: ``confirmed_at`` when the
    caller knows better than the file (ManifestStore does), else what the file says."""
    nodes, services = [], []
    for host, entry in sorted(data.get("hosts", {}).items()):
        datacenter = entry.get("datacenter")
        nodes.append(NodeRecord(name=host, address=entry["address"], datacenter=datacenter,
                                meta=dict(entry.get("meta") or {})))
        for key, svc in sorted((entry.get("services") or {}).items()):
            services.append(ServiceRecord(
                name=key, node=host, id=svc.get("id") or key, address=svc.get("address") or entry["address"],
                port=svc.get("port"), tags=list(svc.get("tags") or []), meta=dict(svc.get("meta") or {}),
                datacenter=datacenter, executor=svc.get("executor"), target=svc.get("target"),
                depends_on=list(svc.get("depends_on") or []), health_path=svc.get("health"),
                **deployment_of(svc)))
    if confirmed_at is _FROM_FILE:
        confirmed_at = last_confirmed(data)[1]
    return Discovery(source="manifest", nodes=nodes, services=services, manifest_age=age_seconds(confirmed_at))


def copy_tree(value):
    """A copy of plain data (dicts, lists, scalars), several times quicker than copy.deepcopy."""
    kind = type(value)
    if kind is dict:
        return {key: copy_tree(item) for key, item in value.items()}
    if kind is list:
        return [copy_tree(item) for item in value]
    if kind in (str, int, float, bool, type(None)):
        return value
    return copy.deepcopy(value)


def deployment_of(entry):
    """The DEPLOYMENT_FIELDS of a manifest service entry, as ServiceRecord keyword arguments."""
    return {name: copy.deepcopy(entry[name]) for name in DEPLOYMENT_FIELDS if entry.get(name) is not None}


def service_entry(record, previous=None):
    """A manifest service entry from a ServiceRecord; what the registry does not know
    (executor, target, depends_on, health) is kept from ``previous``."""
    previous = previous or {}
    entry = {
        "id": record.id or record.name,
        "address": record.address,
        "port": record.port,
        "tags": sorted(record.tags or []),
        "meta": dict(record.meta or {}),
        "executor": record.executor or previous.get("executor"),
        "target": record.target or previous.get("target"),
        "depends_on": list(record.depends_on or previous.get("depends_on") or []),
        "health": record.health_path or previous.get("health"),
    }
    for name in DEPLOYMENT_FIELDS:  # a registry never knows these: they are the manifest's
        value = getattr(record, name)
        value = previous.get(name) if value in (None, {}, []) else value
        entry[name] = None if value in ({}, []) else copy.deepcopy(value)
    if previous.get("published") is not None:
        # A compose import recorded where the service is reached from its host (or that it is not);
        # a registration gives its address inside the compose network (edgex-core-data:59880).
        entry["address"], entry["port"] = previous.get("address"), previous.get("port")
    return {k: v for k, v in entry.items() if v is not None}


class RegistrySync(object):
    """``state: synced`` as a change of the manifest (a callable for ManifestStore.update), and
    what it kept instead of removing, and why.

    A complete answer (``discovery.complete``) is the truth about the datacenters it names: their
    hosts get the registry's address and services, keeping what the registry does not know
    (executor, target, depends_on, health); a host it no longer lists is removed; a service it no
    longer lists is removed unless it is deployed but stopped: it has an executor (EdgeX
    deregisters on a clean stop), or the registry says it is stopped (a record with ``registered``
    False, as core-keeper keeps a HALT registration). Hosts without a datacenter, or of datacenters
    the answer does not name, are never removed (core-keeper names none: it knows one gateway).

    An incomplete answer (filtered by ACLs, registrations skipped, ...: ``discovery.gaps``) is
    never an answer about absence: it updates and adds what it lists, and removes nothing.
    ``generated_from`` changes only with the hosts it describes.
    """

    def __init__(self, discovery, generated_from):
        self.discovery = discovery
        self.generated_from = generated_from
        self.hosts_not_removed = []  # not listed by an incomplete answer: kept
        self.services_not_removed = []  # "host/service", likewise
        self.services_kept_stopped = []  # "host/service": not registered (or halted) but deployed

    def __call__(self, data):
        discovery = self.discovery
        complete = discovery.complete
        self.hosts_not_removed, self.services_not_removed, self.services_kept_stopped = [], [], []
        old_hosts = data.get("hosts") or {}
        listed = {node.name for node in discovery.nodes}
        named = {node.datacenter for node in discovery.nodes} | {discovery.datacenter}
        named.discard(None)
        hosts = {}
        for name, entry in old_hosts.items():
            in_scope = entry.get("datacenter") in named or (not complete and not named)
            if name in listed or not in_scope:
                hosts[name] = entry
            elif not complete:
                hosts[name] = entry
                self.hosts_not_removed.append(name)
        for node in discovery.nodes:
            hosts[validate_name(node.name, "node name")] = self._host(node, old_hosts.get(node.name) or {}, complete)
        merged = dict(data)
        merged["hosts"] = hosts
        unchanged = hosts == old_hosts and old_hosts
        merged["generated_from"] = data.get("generated_from") if unchanged else self.generated_from
        self.hosts_not_removed.sort()
        self.services_not_removed.sort()
        self.services_kept_stopped.sort()
        return merged

    def _host(self, node, old, complete):
        old_services = old.get("services") or {}
        services, stopped = {}, set()
        for record in self.discovery.services_on(node.name):
            name = validate_name(record.name)
            if record.registered:
                services[name] = service_entry(record, old_services.get(name))
            else:
                stopped.add(name)
        for key, service in old_services.items():
            if key in services:
                continue
            where = "%s/%s" % (node.name, key)
            if key in stopped or (complete and service.get("executor")):
                services[key] = service
                self.services_kept_stopped.append(where)
            elif not complete:
                services[key] = service
                self.services_not_removed.append(where)
        for key, service in services.items():
            depends_on = service.get("depends_on")
            if depends_on and any(d not in services for d in depends_on):
                services[key] = dict(service, depends_on=[d for d in depends_on if d in services])
        host = {"address": node.address, "services": services}
        datacenter = node.datacenter or old.get("datacenter")
        if datacenter:
            host["datacenter"] = datacenter
        if node.meta:
            host["meta"] = dict(node.meta)
        return host

    def not_removed(self):
        """Hosts and "host/service" an incomplete answer did not list, kept."""
        return self.hosts_not_removed + self.services_not_removed


def merge_discovery(data, discovery, generated_from):
    """``data`` refreshed from a registry read (see RegistrySync); ``data`` itself is not changed."""
    return RegistrySync(discovery, generated_from)(data)


# -- what a change did ------------------------------------------------------------
SUMMARY_LIMIT = 100  # names per list in a result; the counts are always complete


def change_summary(before, after):
    """What differs between two manifests: hosts added and removed, services ("host/service")
    added, removed and updated, each a sorted list."""
    old_hosts, new_hosts = before.get("hosts") or {}, after.get("hosts") or {}
    summary = {"hosts_added": sorted(set(new_hosts) - set(old_hosts)),
               "hosts_removed": sorted(set(old_hosts) - set(new_hosts)),
               "services_added": [], "services_removed": [], "services_updated": []}
    for host in sorted(set(old_hosts) | set(new_hosts)):
        old = (old_hosts.get(host) or {}).get("services") or {}
        new = (new_hosts.get(host) or {}).get("services") or {}
        if old is new:
            continue
        summary["services_added"] += ["%s/%s" % (host, k) for k in sorted(set(new) - set(old))]
        summary["services_removed"] += ["%s/%s" % (host, k) for k in sorted(set(old) - set(new))]
        summary["services_updated"] += ["%s/%s" % (host, k) for k in sorted(set(old) & set(new)) if old[k] != new[k]]
    return summary


def result_summary(lists, limit=SUMMARY_LIMIT):
    """(counts, names): every list's length, and the lists cut to ``limit`` names each."""
    return {k: len(v) for k, v in lists.items()}, {k: v[:limit] for k, v in lists.items()}


# -- edits (pure functions on the manifest dict; the store writes them) -----------------
SERVICE_FIELDS = ("id", "executor", "target", "address", "port", "health", "depends_on", "tags",
                  "meta") + DEPLOYMENT_FIELDS


def entry_fields(meta=None, **fields):
    """Service entry fields as ``set_service`` takes them: meta values as strings (as Consul keeps them)."""
    fields["meta"] = None if meta is None else {k: str(v) for k, v in meta.items()}
    return {name: fields.get(name) for name in SERVICE_FIELDS}


def counts(data):
    """How many hosts and service entries a manifest holds."""
    hosts = data.get("hosts") or {}
    return {"hosts": len(hosts), "services": sum(len(h.get("services") or {}) for h in hosts.values())}


def set_service(data, host, key, fields, address=None, datacenter=None):
    """Create or update one service entry; fields that are None keep their current value."""
    validate_name(host, "host name")
    validate_name(key)
    hosts = data.setdefault("hosts", {})
    if host not in hosts:
        if not address:
            raise ManifestError("host %s is not in the manifest; give its address to add it" % host)
        hosts[host] = {"address": address, "services": {}}
    entry = hosts[host]
    if address:
        entry["address"] = address
    if datacenter:
        entry["datacenter"] = datacenter
    services = entry.setdefault("services", {})
    service = services.setdefault(key, {})
    for name in SERVICE_FIELDS:
        if fields.get(name) is not None:
            service[name] = fields[name]
    return data


def set_host(data, host, entry):
    """Replace one host's entry (an import); datacenter and meta survive unless given."""
    validate_name(host, "host name")
    old = data.setdefault("hosts", {}).get(host, {})
    merged = dict(entry)
    for name in ("datacenter", "meta"):
        if name not in merged and name in old:
            merged[name] = old[name]
    data["hosts"][host] = merged
    return data


def remove_service(data, host, service_id):
    """Remove the entries whose id (or key) is ``service_id`` on ``host`` (every host when None).
    Refuses when another service there depends on it: dependency data is not dropped silently."""
    removed = []
    for name, entry in sorted(data.get("hosts", {}).items()):
        if host is not None and name != host:
            continue
        services = entry.get("services") or {}
        for key in [k for k, s in services.items() if (s.get("id") or k) == service_id]:
            dependents = sorted(k for k, s in services.items() if key in (s.get("depends_on") or ()))
            if dependents:
                raise ManifestError("cannot remove %s from host %s: %s depend%s on it (change their depends_on "
                                    "first)" % (key, name, ", ".join(dependents), "s" if len(dependents) == 1 else ""))
            del services[key]
            removed.append((name, key))
    return removed


def remove_host(data, host):
    return data.get("hosts", {}).pop(host, None) is not None


def import_host(data, host, imported):
    """``data`` with ``host`` replaced by the host of the same name in ``imported`` (a manifest
    made by the compose importer), and its origin recorded."""
    set_host(data, host, imported["hosts"][host])
    data["generated_from"] = imported["generated_from"]
    return data


def remove_entry(data, host, service_id):
    """``data`` without the service ``service_id`` on ``host`` (every host when None), or without
    the whole ``host`` when ``service_id`` is None."""
    if service_id:
        remove_service(data, host, service_id)
    else:
        remove_host(data, host)
    return data
