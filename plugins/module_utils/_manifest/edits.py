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
from .._registry.model import Discovery, NodeRecord, ServiceRecord
from .schema import age_seconds


# -- model <-> registry records ---------------------------------------------------
def to_discovery(data):
    """The manifest as a Discovery (no live health: every status is "unknown")."""
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
            ))
    return Discovery(source="manifest", nodes=nodes, services=services,
                     manifest_age=age_seconds(data.get("updated_at")))


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
    return {k: v for k, v in entry.items() if v is not None}


def merge_discovery(data, discovery, generated_from):
    """Refresh a manifest from a complete registry read (the "last known state").

    Hosts of the datacenter(s) read are replaced by what the registry knows; their
    services keep executor/target/depends_on/health from the old manifest. A service the
    registry no longer lists is kept only if it has an executor (it is deployed there and
    may just be stopped: EdgeX deregisters on a clean stop); otherwise it is dropped.
    Hosts of other datacenters are untouched. depends_on pointing at a dropped service is pruned.
    """
    merged = copy.deepcopy(data)
    merged["generated_from"] = generated_from
    hosts = merged.setdefault("hosts", {})
    read_dcs = {n.datacenter for n in discovery.nodes} | ({discovery.datacenter} - {None})
    for name in [h for h, e in hosts.items() if e.get("datacenter") in read_dcs]:
        if name not in {n.name for n in discovery.nodes}:
            del hosts[name]
    for node in discovery.nodes:
        old = hosts.get(node.name, {})
        old_services = old.get("services") or {}
        services = {}
        for record in discovery.services_on(node.name):
            services[validate_name(record.name)] = service_entry(record, old_services.get(record.name))
        for key, svc in old_services.items():
            if key not in services and svc.get("executor"):
                services[key] = copy.deepcopy(svc)
        for svc in services.values():
            if "depends_on" in svc:
                svc["depends_on"] = [d for d in svc["depends_on"] if d in services]
        host = {"address": node.address, "services": services}
        if node.datacenter:
            host["datacenter"] = node.datacenter
        if node.meta:
            host["meta"] = dict(node.meta)
        hosts[validate_name(node.name, "node name")] = host
    return merged


# -- edits (pure functions on the manifest dict; the store writes them) -----------------
SERVICE_FIELDS = ("id", "executor", "target", "address", "port", "health", "depends_on", "tags", "meta")


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
