# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The services of one gateway as the registry and the manifest know them together, and the
executors that run them: what a module acting on a gateway's services starts from."""

from __future__ import annotations

import os
from dataclasses import replace

from ._common import EdgeXError, registry_argument_spec, validate_name
from ._executor import EXECUTORS, default_target, get_executor
from ._manifest import ManifestStore
from ._registry import overlay_manifest


def gateway_argument_spec(**options):
    """The argument_spec of a module acting on the services of one gateway: the registry options,
    the selection, the health probe and the executors, plus the module's own ``options``."""
    spec = registry_argument_spec()
    spec.update(
        name=dict(type="list", elements="str", default=["all"]),
        node=dict(type="str", required=True),
        probe_timeout=dict(type="float", default=3.0),
        executor=dict(type="str", default="docker", choices=list(EXECUTORS)),
        docker_host=dict(type="str"),
    )
    spec.update(options)
    return spec


def manifest_for(settings, discovery):
    """The manifest's Discovery to join with ``discovery``: the discovery itself when it came from
    the manifest, the file at ``manifest_path`` when there is one, else None."""
    if discovery.source == "manifest":
        return discovery
    path = settings.get("manifest_path")
    if path and os.path.exists(path):
        return ManifestStore(path).to_discovery()
    return None


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


def executor_options(params):
    """Per executor, the options a module's params give it."""
    return {"docker": {"docker_host": params.get("docker_host"), "stop_timeout": params.get("stop_timeout", 10)}}


class Executors(dict):
    """Executor by name, made on first use; a dict so that BatchControl can take it as it is."""

    def __init__(self, default, options=None):
        super(Executors, self).__init__()
        self.default = default
        self.options = options or {}

    def __missing__(self, name):
        self[name] = get_executor(name, **self.options.get(name, {}))
        return self[name]

    def named(self, name):
        return self[name]

    def for_service(self, service):
        """(executor, target) of a ServiceRecord: its manifest executor and target, or the defaults."""
        name = service.executor or self.default
        return self[name], service.target or default_target(service.name, name)

    def state(self, service):
        """running|stopped|absent|failed."""
        executor, target = self.for_service(service)
        return executor.state(target)
