#!/usr/bin/env python3
"""Print what the EdgeX registry knows: one row per node x service, with health and source."""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import EdgeXError  # noqa: E402
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.discover import discover  # noqa: E402
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import (  # noqa: E402
    resolve_registry_settings,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registry-type", default="consul", choices=["consul", "keeper", "manifest", "none"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--manifest")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    settings = resolve_registry_settings({"registry_type": args.registry_type, "host": args.host, "port": args.port,
                                          "manifest_path": args.manifest, "timeout": args.timeout})
    try:
        discovery = discover(settings)
    except EdgeXError as exc:
        sys.exit("error: %s" % exc)
    for warning in discovery.warnings:
        print("WARNING: %s" % warning)
    age = "" if discovery.manifest_age is None else ", manifest age %.0fs" % discovery.manifest_age
    print("source: %s%s" % (discovery.source, age))
    print("%-6s %-24s %-22s %-9s %s" % ("NODE", "SERVICE", "ADDRESS", "HEALTH", "CHECKS"))
    for service in sorted(discovery.services, key=lambda s: (s.node, s.name)):
        checks = ", ".join("%s=%s" % (c["id"], c["status"]) for c in service.checks)
        where = "%s:%s" % (service.address, service.port) if service.port else service.address
        print("%-6s %-24s %-22s %-9s %s" % (service.node, service.name, where, service.status, checks))


if __name__ == "__main__":
    main()
