# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""registry_type manifest: the manifest file as the registry ("SMA as registry")."""

from __future__ import annotations

from .._errors import RegistryError
from .._names import validate_name
from .._manifest.edits import SERVICE_FIELDS, remove_service, service_entry, set_service
from .._manifest.store import ManifestStore
from .model import Registry


# -- the manifest as a registry ("SMA as registry") ----------------------------------
class ManifestRegistry(Registry):
    """registry_type manifest: the collection registers and deregisters services in the file."""

    type = "manifest"

    def __init__(self, settings, check_mode=False):
        self.store = ManifestStore(settings.get("manifest_path"))
        self.check_mode = check_mode

    def discover(self):
        return self.store.to_discovery()

    def register(self, service):
        fields = {k: v for k, v in service_entry(service).items() if k in SERVICE_FIELDS}

        def change(data):
            return set_service(data, service.node, service.name, fields,
                               address=None if service.node in data["hosts"] else service.address or "127.0.0.1",
                               datacenter=service.datacenter)

        changed, _before, _after = self.store.update(change, check_mode=self.check_mode)
        return changed

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
