# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""What edgex_manifest returns about a change: where the file is, how many hosts and services it
holds, what was added, removed, updated and kept (and why), never the whole manifest (thousands of
lines for a large fleet)."""

from __future__ import annotations

from .edits import change_summary, counts, result_summary


def _plural(number, word):
    return "%d %s%s" % (number, word, "" if number == 1 else "s")


def incomplete_warning(discovery, sync, limit=10):
    """The warning for a sync from an incomplete answer: why, and what it did not remove."""
    kept = sync.not_removed()
    names = ", ".join(kept[:limit]) + (", ..." if len(kept) > limit else "")
    what = ("%s and %s it did not list were kept, not removed (%s)"
            % (_plural(len(sync.hosts_not_removed), "host"), _plural(len(sync.services_not_removed), "service"), names)
            if kept else "nothing was removed")
    return ("the %s answer was incomplete (%s): %s; only a complete answer removes entries from the manifest"
            % (discovery.source, "; ".join(discovery.gaps), what))


def update_result(store, changed, before, after, sync=None, warn=None):
    """The module's result for ``store.update`` (changed, before, after); ``sync``: the
    RegistrySync of a ``state: synced`` run; ``warn(message)`` is told what went wrong without
    failing (an incomplete answer, a confirmation not recorded)."""
    lists = change_summary(before, after)
    if sync is not None:
        lists.update(hosts_not_removed=sync.hosts_not_removed, services_not_removed=sync.services_not_removed,
                     services_kept_stopped=sync.services_kept_stopped)
    summary, changes = result_summary(lists)
    result = dict(changed=changed, path=store.path, summary=summary, changes=changes,
                  confirmed_at=store.confirmed_at, **counts(after))
    if store.backed_up:
        result["backup_path"] = store.backup_path
    warnings = list(store.warnings)
    if sync is not None:
        result.update(complete=sync.discovery.complete, gaps=list(sync.discovery.gaps))
        if not sync.discovery.complete:
            warnings.append(incomplete_warning(sync.discovery, sync))
    for warning in warnings if warn else ():
        warn(warning)
    return result
