# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The services of one gateway as the registry and the manifest know them together: what a
module acting on a gateway's services starts from.
"""

from __future__ import annotations

from dataclasses import replace

from .._errors import EdgeXError
from .._names import validate_name
from .._registry.discover import overlay_manifest


def nodes_services(discovery, manifest, nodes):
    """The ServiceRecords of ``nodes``, node by node: registered ones completed by the manifest,
    deployed but unregistered ones added, also on a node the registry does not know at all
    (core-keeper knows no gateway whose services are all stopped). Unknown nodes raise, listing
    the known ones."""
    live_nodes = {n.name for n in discovery.nodes} | {s.node for s in discovery.services}
    deployed_nodes = ({n.name for n in manifest.nodes} | {s.node for s in manifest.services}) if manifest else set()
    unknown = [node for node in nodes if node not in live_nodes | deployed_nodes]
    if unknown:
        raise EdgeXError("node %s not known to the %s registry; known nodes: %s"
                         % (", ".join(unknown), discovery.source, ", ".join(sorted(live_nodes | deployed_nodes))
                            or "none"))
    by_node = {}
    if any(node in live_nodes for node in nodes):  # the overlay once, whatever the number of nodes
        for service in overlay_manifest(discovery, manifest):
            by_node.setdefault(service.node, []).append(service)
    services = []
    for node in nodes:
        if node in live_nodes:
            services += by_node.get(node, [])
        else:
            services += [replace(s, registered=False) for s in manifest.services_on(node)]
    return services


def node_services(discovery, manifest, node):
    """``nodes_services`` of one node."""
    return nodes_services(discovery, manifest, [node])


def pick(services, names):
    """(the services named, the names none of them has); ``names`` None picks all."""
    if names is None:
        return list(services), []
    names = [validate_name(n) for n in dict.fromkeys(names)]
    present = {s.name for s in services}
    return [s for s in services if s.name in names], [n for n in names if n not in present]


def services_named(discovery, manifest, node, names):
    """``pick`` from ``node_services``; a name the node does not have raises, listing those it has."""
    on_node = node_services(discovery, manifest, node)
    services, missing = pick(on_node, names)
    if missing:
        raise EdgeXError("unknown service%s %s on node %s in the %s registry; known there: %s" % (
            "s" if len(missing) > 1 else "", ", ".join(missing), node, discovery.source,
            ", ".join(sorted({s.name for s in on_node})) or "none"))
    return services


def requested(names):
    """Module option ``name`` -> a list of service keys, or None for all."""
    return None if "all" in names else list(names)
