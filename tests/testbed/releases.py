"""EdgeX releases the test-bed stands up: service keys, containers, ports and start order, as data.

A gateway of the test-bed runs one release's service set. Each set maps the **service key** (what
registers in the registry, names the KV folder and answers as ``serviceName``) to
``(port, kind, depends_on)``: ``kind`` is the stand-in's ``--kind`` (``api`` for EdgeX services,
``redis`` for the database) and ``depends_on`` names service keys (plus ``consul``), in the shape of
the release's no-secty compose file.

Sources:
- 3.x (Napa 3.1.1): edgex-compose v3.1.1 ``docker-compose-no-secty.yml`` (a copy is in
  ``tests/unit/data/compose/`` and ``shared/reference/edgex-compose/``).
- 2.x (Levski 2.3 / Jakarta 2.1 LTS, no-secty): service keys from go-mod-core-contracts v2
  ``common/constants.go`` (CoreDataServiceKey ... SystemManagementAgentServiceKey = "sys-mgmt-agent",
  SecuritySecretStoreSetupServiceKey ...); compose keys, container names, ports and ``depends_on``
  as in edgex-compose's 2.x no-secty files (the 59xxx ports date from 2.0 Ireland; the SMA keeps
  58890). No 2.x compose file is available offline here: the compose-key -> service-key table and
  the depends_on lists follow the 2.x files' structure, which kept Geneva's (metadata after
  notifications, data/command after metadata, the SMA after all core and support services).
"""

# service key -> (port, kind, depends_on). Napa without the one-shot common-config bootstrapper
# (testbed.py runs it before the services), eKuiper and the UI (not EdgeX-API services).
NAPA_SERVICES = {
    "database": (6379, "redis", []),
    "core-metadata": (59881, "api", ["consul", "database"]),
    "core-data": (59880, "api", ["consul", "core-metadata", "database"]),
    "core-command": (59882, "api", ["consul", "core-metadata", "database"]),
    "support-notifications": (59860, "api", ["consul", "database"]),
    "support-scheduler": (59861, "api", ["consul", "database"]),
    "device-virtual": (59900, "api", ["consul", "core-data", "core-metadata"]),
    "app-rules-engine": (59701, "api", ["consul", "core-data"]),
}

# Levski 2.3 no-secty, same services plus the System Management Agent (removed in 3.0).
LEVSKI_SERVICES = {
    "database": (6379, "redis", []),
    "support-notifications": (59860, "api", ["consul", "database"]),
    "core-metadata": (59881, "api", ["consul", "database", "support-notifications"]),
    "core-data": (59880, "api", ["consul", "core-metadata", "database"]),
    "core-command": (59882, "api", ["consul", "core-metadata", "database"]),
    "support-scheduler": (59861, "api", ["consul", "database"]),
    "sys-mgmt-agent": (58890, "api", ["consul", "core-command", "core-data", "core-metadata",
                                      "support-notifications", "support-scheduler"]),
    "device-virtual": (59900, "api", ["consul", "core-data", "core-metadata"]),
    "app-rules-engine": (59701, "api", ["consul", "core-data"]),
}

# 2.x compose key -> (service key, container name). The compose key is not the service key in 2.x
# (issue 12): an importer must map these. None: not an EdgeX-API service (no service key).
LEVSKI_COMPOSE_KEYS = {
    "consul": ("consul", "edgex-core-consul"),
    "database": ("database", "edgex-redis"),
    "metadata": ("core-metadata", "edgex-core-metadata"),
    "data": ("core-data", "edgex-core-data"),
    "command": ("core-command", "edgex-core-command"),
    "notifications": ("support-notifications", "edgex-support-notifications"),
    "scheduler": ("support-scheduler", "edgex-support-scheduler"),
    "system": ("sys-mgmt-agent", "edgex-sys-mgmt-agent"),
    "app-service-rules": ("app-rules-engine", "edgex-app-rules-engine"),
    "device-virtual": ("device-virtual", "edgex-device-virtual"),
    "device-rest": ("device-rest", "edgex-device-rest"),
    "rulesengine": (None, "edgex-kuiper"),
    "ui": (None, "edgex-ui-go"),
}
# Only in the 2.x secure compose files (not started by the test-bed): compose key -> service key.
LEVSKI_SECURE_COMPOSE_KEYS = {
    "security-bootstrapper": "security-bootstrapper",
    "secretstore-setup": "security-secretstore-setup",
    "proxy-setup": "security-proxy-setup",  # a job: no restart: key
}
# Every service key go-mod-core-contracts v2 common/constants.go defines.
V2_SERVICE_KEYS = ("core-command", "core-data", "core-metadata", "support-logging", "support-notifications",
                   "sys-mgmt-agent", "support-scheduler", "security-secretstore-setup", "security-proxy-setup",
                   "security-file-token-provider", "security-bootstrapper", "security-bootstrapper-redis")

# What testbed.py stands up per --release: the stand-ins' --version, the set, and whether the
# one-shot core-common-config-bootstrapper runs first (3.x and later).
RELEASES = {
    "2": {"name": "Levski", "version": "2.3.0", "api": "v2", "services": LEVSKI_SERVICES, "common_config": False},
    "3": {"name": "Napa", "version": "3.1.1", "api": "v3", "services": NAPA_SERVICES, "common_config": True},
}
DEFAULT_RELEASE = "3"
CONTAINER_OF = {"database": "edgex-redis"}  # otherwise edgex-<service key>, as edgex-compose names them


def release(name):
    """The RELEASES entry for ``2``, ``2.3``, ``3``, ``3.1.1`` ... (the major decides)."""
    major = str(name).split(".", maxsplit=1)[0]
    if major not in RELEASES:
        raise ValueError("the test-bed stands up EdgeX %s; not %r" % (" or ".join(sorted(RELEASES)), name))
    return RELEASES[major]
