# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""What the collection knows of EdgeX: service keys, edgex-compose container names, default ports,
tiers, health paths, and the executors EdgeX deployments run under.

Source: edgex-compose Napa 3.1.1 / Odessa 4.0.1 and the EdgeX docs (see README).
"""

from __future__ import annotations

from collections import namedtuple

# tier orders start-up when depends_on says nothing: registry, then database and
# message bus, then config bootstrap, core, support, device/app services, UI last.
TIER_REGISTRY = 0
TIER_INFRA = 1
TIER_BOOTSTRAP = 2
TIER_CORE_METADATA = 3
TIER_CORE = 4
TIER_SUPPORT = 5
TIER_EDGE = 6
TIER_UI = 7

KnownService = namedtuple("KnownService", "key container port tier api")

# api: True when the service answers GET /api/v3/ping.
KNOWN_SERVICES = {
    s.key: s
    for s in (
        KnownService("consul", "edgex-core-consul", 8500, TIER_REGISTRY, False),
        KnownService("core-keeper", "edgex-core-keeper", 59890, TIER_REGISTRY, True),
        KnownService("database", "edgex-redis", 6379, TIER_INFRA, False),
        KnownService("redis", "edgex-redis", 6379, TIER_INFRA, False),
        KnownService("postgres", "edgex-postgres", 5432, TIER_INFRA, False),
        KnownService("mqtt-broker", "edgex-mqtt-broker", 1883, TIER_INFRA, False),
        KnownService("core-common-config-bootstrapper", "edgex-core-common-config-bootstrapper",
                     None, TIER_BOOTSTRAP, False),
        KnownService("core-metadata", "edgex-core-metadata", 59881, TIER_CORE_METADATA, True),
        KnownService("core-data", "edgex-core-data", 59880, TIER_CORE, True),
        KnownService("core-command", "edgex-core-command", 59882, TIER_CORE, True),
        KnownService("support-notifications", "edgex-support-notifications", 59860, TIER_SUPPORT, True),
        KnownService("support-scheduler", "edgex-support-scheduler", 59861, TIER_SUPPORT, True),
        KnownService("app-rules-engine", "edgex-app-rules-engine", 59701, TIER_EDGE, True),
        KnownService("device-virtual", "edgex-device-virtual", 59900, TIER_EDGE, True),
        KnownService("device-rest", "edgex-device-rest", 59986, TIER_EDGE, True),
        KnownService("rules-engine", "edgex-kuiper", 59720, TIER_EDGE, False),
        KnownService("ui", "edgex-ui-go", 4000, TIER_UI, False),
    )
}

# How EdgeX services run on a gateway: edgex-compose containers (Docker SDK or docker compose),
# systemd units, snaps.
EXECUTORS = ("docker", "compose", "systemd", "snap")
# What a dependent waits for (compose's depends_on conditions), weakest first.
DEPENDS_ON_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")

REGISTRY_SERVICES = frozenset(["consul", "core-keeper"])

PING_PATH = "/api/v3/ping"
DEFAULT_CHECK_INTERVAL = "10s"


def tier_of(service_key):
    """Start-up tier of a service key; unknown device-/app- services sort with their kind."""
    known = KNOWN_SERVICES.get(service_key)
    if known is not None:
        return known.tier
    if service_key.startswith("core-"):
        return TIER_CORE
    if service_key.startswith("support-"):
        return TIER_SUPPORT
    return TIER_EDGE


def default_container(service_key):
    """edgex-compose's container name for a service key (``edgex-<key>`` when unknown)."""
    known = KNOWN_SERVICES.get(service_key)
    return known.container if known is not None else "edgex-%s" % service_key


def default_health_path(service_key):
    """Where a service answers "am I alive": the EdgeX ping, Consul's leader route, or None."""
    if service_key == "consul":
        return "/v1/status/leader"
    known = KNOWN_SERVICES.get(service_key)
    if known is not None:
        return PING_PATH if known.api else None
    return PING_PATH


def default_port(service_key):
    known = KNOWN_SERVICES.get(service_key)
    return known.port if known is not None else None


# ---- Health probe kinds (the health/probe work; kept apart from the service table above) ----
# Service keys of EdgeX's own Go services start so (go-mod-core-contracts); an unknown key of this
# form is an EdgeX API service (device-modbus, app-mqtt-export ...) and answers the EdgeX ping.
EDGEX_SERVICE_PREFIXES = ("core-", "support-", "device-", "app-")
# Known infrastructure, probed the cheap way each one offers without credentials.
INFRASTRUCTURE_PROBES = {
    "consul": "consul-leader",
    "redis": "redis-ping",
    "postgres": "postgres-ssl-request",
    "mqtt-broker": "mqtt-connect",
    "vault": "vault-health",
    "secret-store": "vault-health",  # EdgeX 3.1+ secret store (OpenBao), same API as Vault
    "openbao": "vault-health",
}
POSTGRES_PORT = 5432


def infrastructure_probe(service_key, port=None):
    """The probe kind of a known infrastructure service, else None. ``database`` is Redis in
    EdgeX 2.x/3.x and PostgreSQL in 4.x: its port tells which."""
    if service_key == "database":
        return "postgres-ssl-request" if port == POSTGRES_PORT else "redis-ping"
    return INFRASTRUCTURE_PROBES.get(service_key)


def is_edgex_api_service(service_key):
    """Does the service answer the EdgeX common API (ping)? Known ones as the table says; unknown
    ones when their key has the form of an EdgeX service key."""
    known = KNOWN_SERVICES.get(service_key)
    if known is not None:
        return known.api
    return service_key.startswith(EDGEX_SERVICE_PREFIXES)
# == EdgeX 2.x, API versions and one-shot jobs (the compose importer's knowledge, issue 12) ==========
# Kept in one block apart from the probe settings above, so the two can change independently.
# Sources: go-mod-core-contracts v2 common/constants.go (service keys, ApiBase "/api/v2"), edgex-compose
# 2.x files (Jakarta 2.1, Levski 2.3): compose keys, container names and the ports of 2.x services.


# Services of EdgeX 2.x (and its secure mode) the 3.x/4.x table above does not have. The SMA answers
# the common API; the security services run no HTTP API of their own.
KNOWN_SERVICES.update((s.key, s) for s in (
    KnownService("sys-mgmt-agent", "edgex-sys-mgmt-agent", 58890, TIER_SUPPORT, True),
    KnownService("security-bootstrapper", "edgex-security-bootstrapper", None, TIER_REGISTRY, False),
    KnownService("security-secretstore-setup", "edgex-security-secretstore-setup", None, TIER_INFRA, False),
    KnownService("security-proxy-setup", "edgex-security-proxy-setup", None, TIER_BOOTSTRAP, False),
))

# EdgeX 2.x compose key -> (service key, container name). In 2.x files the compose key is short
# ("data", "system"); the service key is what registers, names the KV folder and answers as
# serviceName. The test-bed keeps its own copy (tests/testbed/releases.py), checked equal by a test.
V2_COMPOSE_KEYS = {
    "metadata": ("core-metadata", "edgex-core-metadata"),
    "data": ("core-data", "edgex-core-data"),
    "command": ("core-command", "edgex-core-command"),
    "notifications": ("support-notifications", "edgex-support-notifications"),
    "scheduler": ("support-scheduler", "edgex-support-scheduler"),
    "system": ("sys-mgmt-agent", "edgex-sys-mgmt-agent"),
    "app-service-rules": ("app-rules-engine", "edgex-app-rules-engine"),
    "rulesengine": ("rules-engine", "edgex-kuiper"),
    "secretstore-setup": ("security-secretstore-setup", "edgex-security-secretstore-setup"),
    "proxy-setup": ("security-proxy-setup", "edgex-security-proxy-setup"),
}

# Jobs the collection knows: they run once and exit 0 ("stopped" after success is their healthy
# state). A compose file's own `restart:` still decides (see _manifest/compose.py); this set is what
# the importer assumes when the file says nothing, and what a service the manifest does not describe
# is taken to be.
ONE_SHOT_SERVICES = frozenset(["core-common-config-bootstrapper", "security-proxy-setup"])

# The common API's base per release: 2.x /api/v2; 3.x and 4.x /api/v3 (4.0 kept v3).
API_VERSION_OF_MAJOR = {2: "v2", 3: "v3", 4: "v3"}
API_VERSIONS = ("v2", "v3")
DEFAULT_API_VERSION = "v3"
EDGEX_IMAGE_REPOSITORIES = ("edgexfoundry/", "nexus3.edgexfoundry.org:10004/", "docker.io/edgexfoundry/")


def is_edgex_image(image):
    return isinstance(image, str) and image.startswith(EDGEX_IMAGE_REPOSITORIES)


def api_version_of_image(image):
    """``edgexfoundry/core-data:2.3.0`` -> "v2"; None when the image is not EdgeX's or its tag
    names no release (``latest``, a digest, a tag left to interpolation)."""
    if not is_edgex_image(image) or "@" in image:
        return None
    name, _colon, tag = image.rpartition("/")[2].partition(":")
    major = tag.split(".", 1)[0]
    if not name or not major.isdigit():
        return None
    return API_VERSION_OF_MAJOR.get(int(major))


def api_path(api_version, route):
    """A common-API route for a release: ("v2", "config") -> "/api/v2/config"."""
    return "/api/%s/%s" % (api_version or DEFAULT_API_VERSION, route)


def api_health_path(service_key, api_version):
    """default_health_path for a service of a given API version: the ping under /api/v2 for 2.x."""
    path = default_health_path(service_key)
    return api_path(api_version, "ping") if path == PING_PATH else path


def one_shot_by_default(service_key):
    """Is this a job when nothing (no manifest entry, no compose file) says otherwise?"""
    return service_key in ONE_SHOT_SERVICES
