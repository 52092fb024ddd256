# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""registry_type manifest: the manifest file as the registry ("SMA as registry")."""

from __future__ import annotations

from .._errors import RegistryError
from .._names import validate_name
from .._manifest.edits import remove_service, set_service
from .._manifest.store import ManifestStore
from .model import Check, Registration, Registry


# -- the manifest as a registry ("SMA as registry") ----------------------------------
class ManifestRegistry(Registry):
    """registry_type manifest: the collection registers and deregisters services in the file."""

    type = "manifest"

    def __init__(self, settings, check_mode=False):
        self.store = ManifestStore(settings.get("manifest_path"))
        self.check_mode = check_mode

    def discover(self):
        return self.store.to_discovery()

    def registration(self, service_id, node=None):
        """The entry of ``service_id`` (its id, or its key) on host ``node``, as a Registration: the
        manifest keeps a check as its health path."""
        if node is None:
            raise RegistryError("registry_type manifest keeps registrations per host: give the node")
        validate_name(service_id, "service id")
        host = self.store.read(missing_ok=True)["hosts"].get(node) or {}
        for key, entry in sorted((host.get("services") or {}).items()):
            if (entry.get("id") or key) == service_id:
                check = Check(kind="http", path=entry["health"]) if entry.get("health") else \
                    Check(kind="none", interval="")
                return Registration(name=key, id=service_id, node=node, address=entry.get("address"),
                                    port=entry.get("port"), tags=sorted(entry.get("tags") or []),
                                    meta=dict(entry.get("meta") or {}), check=check)
        return None

    def apply_registration(self, registration):
        check = registration.check
        fields = dict(id=registration.id, address=registration.address, port=registration.port,
                      tags=registration.tags, meta=registration.meta, health=check.path if check.kind == "http" else None)

        def change(data):
            new_host = registration.node not in data["hosts"]
            set_service(data, registration.node, registration.name, fields,
                        address=(registration.address or "127.0.0.1") if new_host else None)
            if check.kind != "http":  # the manifest says "no HTTP check" by naming no health path
                data["hosts"][registration.node]["services"][registration.name].pop("health", None)
            return data

        self.store.update(change, check_mode=self.check_mode)

    def deregister(self, service_id, node=None):
        validate_name(service_id, "service id")
        removed = []

        def change(data):
            removed.extend(remove_service(data, node, service_id))
            return data

        self.store.update(change, check_mode=self.check_mode, missing_ok=False)
        return bool(removed)

    def kv_get(self, key, recurse=False):
        raise RegistryError("registry_type manifest has no configuration store; read configuration "
                            "from Consul or core-keeper")

    def kv_put(self, key, value):
        return self.kv_get(key)
