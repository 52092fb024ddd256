# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Dependency order: which services start together, which wait for which.

A service's level is the higher of its EdgeX tier (registry < database < bootstrap <
core < support < device/app < UI) and one more than every selected service it
depends on. Services of one level can act at once; stop runs the levels in reverse.
"""

from __future__ import annotations

from ._errors import EdgeXError
from ._catalog import REGISTRY_SERVICES, tier_of


class DependencyCycleError(EdgeXError):
    def __init__(self, cycle):
        self.cycle = cycle
        super(DependencyCycleError, self).__init__(
            "dependency cycle: %s" % " -> ".join(cycle)
        )


def find_cycle(depends_on):
    """Return one cycle as a list of names (first == last), or None. ``depends_on``: name -> deps."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(depends_on, white)
    stack = []

    def visit(node):
        color[node] = grey
        stack.append(node)
        for dep in depends_on.get(node, ()):
            if dep not in color:
                continue
            if color[dep] == grey:
                return stack[stack.index(dep):] + [dep]
            if color[dep] == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in sorted(depends_on):
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def start_levels(depends_on):
    """Group services into start levels.

    ``depends_on``: {service: [services it depends on]}; dependencies outside the mapping
    are ignored (already running elsewhere, or not selected). Returns a list of sorted lists.
    """
    cycle = find_cycle(depends_on)
    if cycle:
        raise DependencyCycleError(cycle)
    rank = {}

    def rank_of(name):
        if name not in rank:
            deps = [d for d in depends_on.get(name, ()) if d in depends_on]
            rank[name] = max([tier_of(name) * 1000] + [rank_of(d) + 1 for d in deps])
        return rank[name]

    for name in depends_on:
        rank_of(name)
    levels = {}
    for name, value in rank.items():
        levels.setdefault(value, []).append(name)
    return [sorted(levels[value]) for value in sorted(levels)]


def stop_levels(depends_on):
    """Reverse of start: dependents stop before what they depend on; registry last."""
    return list(reversed(start_levels(depends_on)))


def restart_levels(depends_on, protected=()):
    """Restart in start order, but the registry and ``protected`` services (those hosting
    this control path) go in a final level of their own, so a run never cuts its own branch."""
    last = set(REGISTRY_SERVICES) | set(protected)
    head = {k: v for k, v in depends_on.items() if k not in last}
    tail = sorted(k for k in depends_on if k in last)
    levels = start_levels(head) if head else []
    if tail:
        levels.append(tail)
    return levels
