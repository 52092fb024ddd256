#!/usr/bin/env python3
"""Baseline for bench/inventory: the request pattern of the old consul_io.py inventory script.

This is a re-implementation (not a copy) of what ansible's contrib/inventory/consul_io.py
(later ansible-community/contrib-scripts inventory/consul_io.py) does on the wire, so the
bench compares the plugin with the per-node way of reading Consul rather than a strawman.
Like the original it uses the python-consul client (python-consul2 here) and reads its
settings from CONSUL_* environment variables (consul_io.ini is not read).

Request pattern of the original with a datacenter set (CONSUL_DATACENTER, the documented way;
its no-datacenter path goes through bulk_load, which fails on Python 3 unless kv_groups
and kv_metadata are configured):

  GET /v1/catalog/nodes?dc=DC                     once
  GET /v1/catalog/node/<node>?dc=DC               once per node
  GET /v1/kv/<kv_groups>/DC/<node>                once per node, only with CONSUL_KV_GROUPS
  GET /v1/kv/<kv_metadata>/DC/<node>              once per node, only with CONSUL_KV_METADATA
  GET /v1/health/service/<service>                once per service *instance* on every node,
                                                  only with CONSUL_SUFFIXES=true and
                                                  CONSUL_AVAILABILITY set (availability groups);
                                                  no ?dc=, unfiltered, like the original

So: 1 + N requests (tags/service groups only), or 1 + N + N*M with availability groups, where
every one of the N*M health requests returns all N instances of that service.

Groups and hostvars follow the original: <datacenter>, <service>[servers_suffix],
<service>_<tag> (CONSUL_TAGS), <service>_available/_unavailable (availability), kv groups;
hostvars consul_datacenter, consul_nodename, consul_services, consul_<service>_tags,
ansible_ssh_port (ssh service). Host names are node names (or CONSUL_NODE_TO_IP /
CONSUL_DOMAIN as in the original).

Usage: consul_io_baseline.py --list | --host NAME
"""

import argparse
import json
import os
import re
import sys
import warnings
from urllib.parse import urlparse

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import consul
    except ImportError:
        sys.exit("failed=True msg='python-consul (python-consul2) required for this inventory script'")

OPTIONS = ("url", "token", "datacenter", "servers_suffix", "tags", "kv_metadata", "kv_groups", "availability",
           "unavailable_suffix", "available_suffix", "domain", "suffixes", "node_to_ip")


def to_safe(word):
    return re.sub(r"[^A-Za-z0-9\-\.]", "_", word)


class Config(object):
    def __init__(self, argv=None):
        for option in OPTIONS:
            setattr(self, option, os.environ.get("CONSUL_" + option.upper()) or None)
        parser = argparse.ArgumentParser(description="consul_io.py request pattern (bench baseline)")
        parser.add_argument("--list", action="store_true")
        parser.add_argument("--host")
        parser.add_argument("--datacenter")
        args = parser.parse_args(argv)
        self.list = args.list
        self.host = args.host
        if args.datacenter:
            self.datacenter = args.datacenter

    def flag(self, name):
        return (getattr(self, name) or "").lower() == "true"

    def api(self):
        host, port, scheme = "localhost", 8500, "http"
        if self.url:
            parsed = urlparse(self.url)
            host = parsed.hostname or host
            port = parsed.port or port
            scheme = parsed.scheme or scheme
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return consul.Consul(host=host, port=port, token=self.token, scheme=scheme)


class ConsulIoInventory(object):
    def __init__(self, config):
        self.config = config
        self.api = config.api()
        self.current_dc = None
        self.hostvars = {}
        self.groups = {}  # group -> list of host names

    # -- reading: one node at a time, as consul_io.py does --------------------------------
    def load(self):
        if self.config.datacenter:
            self.current_dc = self.config.datacenter
            self.load_datacenter(self.config.datacenter)
        else:
            for datacenter in self.api.catalog.datacenters():
                self.current_dc = datacenter
                self.load_datacenter(datacenter)

    def load_datacenter(self, datacenter):
        _index, nodes = self.api.catalog.nodes(dc=datacenter)
        for node in nodes:
            self.add(self.groups, datacenter, node)
            self.load_node(node["Node"], datacenter)

    def load_node(self, name, datacenter):
        _index, node_data = self.api.catalog.node(name, dc=datacenter)
        node = node_data["Node"]
        self.add(self.groups, "all", node)
        self.meta(node, "consul_datacenter", datacenter)
        self.meta(node, "consul_nodename", node["Node"])
        self.load_kv_groups(node)
        self.load_kv_metadata(node)
        if self.config.flag("suffixes"):
            self.load_availability(node_data)
        for service_id, service in (node_data.get("Services") or {}).items():
            self.load_service(service_id, service, node)

    def load_kv_groups(self, node):
        if not self.config.kv_groups:
            return
        _index, entry = self.api.kv.get("%s/%s/%s" % (self.config.kv_groups, self.current_dc, node["Node"]))
        if entry and entry.get("Value"):
            for group in entry["Value"].decode().split(","):
                self.add(self.groups, group.strip(), node)

    def load_kv_metadata(self, node):
        if not self.config.kv_metadata:
            return
        _index, entry = self.api.kv.get("%s/%s/%s" % (self.config.kv_metadata, self.current_dc, node["Node"]))
        if entry and entry.get("Value"):
            try:
                for key, value in json.loads(entry["Value"]).items():
                    self.meta(node, key, value)
            except Exception:
                pass

    def load_availability(self, node_data):
        """The original asks /v1/health/service/<name> (all instances) for every service of every node."""
        if not self.config.availability:
            return
        for service_name in (node_data.get("Services") or {}):
            for entry in self.api.health.service(service_name)[1]:
                if self.available(entry, service_name):
                    suffix = self.config.available_suffix or "_available"
                else:
                    suffix = self.config.unavailable_suffix or "_unavailable"
                self.add(self.groups, service_name + suffix, entry["Node"])

    @staticmethod
    def available(entry, service_name):
        consul_ok = service_ok = False
        for check in entry["Checks"]:
            if check["CheckID"] == "serfHealth":
                consul_ok = check["Status"] == "passing"
            elif check.get("ServiceName") == service_name:
                service_ok = check["Status"] == "passing"
        return consul_ok and service_ok

    def load_service(self, service_name, service, node):
        self.meta(node, "consul_services", service_name, is_list=True)
        if service_name.lower() == "ssh":
            self.meta(node, "ansible_ssh_port", service["Port"])
        if self.config.servers_suffix:
            service_name = service_name + self.config.servers_suffix
        self.add(self.groups, service_name, node)
        if self.config.flag("tags") and service.get("Tags"):
            self.meta(node, "consul_%s_tags" % service_name, service["Tags"])
            for tag in service["Tags"]:
                self.add(self.groups, service_name + "_" + tag, node)

    # -- building ------------------------------------------------------------------
    def name(self, node):
        if self.config.domain:
            if self.current_dc:
                return "%s.node.%s.%s" % (node["Node"], self.current_dc, self.config.domain)
            return "%s.node.%s" % (node["Node"], self.config.domain)
        if self.config.flag("node_to_ip"):
            return node["Address"]
        return node["Node"]

    def add(self, groups, group, node):
        groups.setdefault(to_safe(group), []).append(self.name(node))

    def meta(self, node, key, value, is_list=False):
        metadata = self.hostvars.setdefault(self.name(node), {})
        key = to_safe(key)
        if is_list:
            metadata.setdefault(key, []).append(value)
        else:
            metadata[key] = value

    def inventory(self):
        out = {"_meta": {"hostvars": self.hostvars}}
        for group, hosts in self.groups.items():
            out[group] = sorted(set(hosts))
        return out


def main(argv=None):
    config = Config(argv)
    inventory = ConsulIoInventory(config)
    if config.host and not config.list:
        if not config.datacenter:
            sys.exit("--host needs a datacenter (CONSUL_DATACENTER or --datacenter)")
        inventory.current_dc = config.datacenter
        inventory.load_node(config.host, config.datacenter)
        print(json.dumps(inventory.hostvars.get(config.host, {}), sort_keys=True, indent=2))
        return 0
    inventory.load()
    print(json.dumps(inventory.inventory(), sort_keys=True, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
