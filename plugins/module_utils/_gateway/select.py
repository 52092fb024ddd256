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
            address = next((n.address for n in manifest.nodes if n.name == node), None)
            services += [replace(s, registered=False, node_address=address, manifest_address=s.address,
                                 manifest_port=s.port) for s in manifest.services_on(node)]
    return services


def pick(services, names):
    """(the services named, the names none of them has); ``names`` None picks all."""
    if names is None:
        return list(services), []
    names = [validate_name(n) for n in dict.fromkeys(names)]
    present = {s.name for s in services}
    return [s for s in services if s.name in names], [n for n in names if n not in present]


class UnknownServiceError(EdgeXError):
    """A service name that no selected node has."""


class Selection(object):
    """The services named (None: all) on the nodes named (None: every node), from one discovery
    completed by the manifest, with the names none of them has (``missing``)."""

    def __init__(self, discovery, manifest, nodes=None, names=None):
        self.nodes = None if nodes is None else list(dict.fromkeys(nodes))
        if self.nodes is None:
            in_scope = overlay_manifest(discovery, manifest)
        else:
            in_scope = nodes_services(discovery, manifest, self.nodes)
        self.source = discovery.source
        self.known = sorted({s.name for s in in_scope})
        self.services, self.missing = pick(in_scope, names)

    def unknown_message(self):
        """The one wording of "unknown service" every module uses."""
        where = " on node %s" % ", ".join(self.nodes) if self.nodes else ""
        return "unknown service%s %s%s in the %s registry; known%s: %s" % (
            "s" if len(self.missing) > 1 else "", ", ".join(self.missing), where, self.source,
            " there" if self.nodes else "", ", ".join(self.known) or "none")

    def require_known(self):
        """The services, when every name asked for is known; else UnknownServiceError."""
        if self.missing:
            raise UnknownServiceError(self.unknown_message())
        return self.services
