"""systemd units of the test-bed's systemd gateway: EdgeX stand-ins as ``edgex-<service>.service``.

The shape follows what runs EdgeX under systemd for real: snapd's generated units for the
``edgexfoundry`` snap (``Type=simple``, ``Restart=on-failure``, ``TimeoutStopSec=30``,
``Wants=network.target``, ``After=`` for the apps' ``after:`` lists, ``WantedBy=multi-user.target``)
and edgex-compose's ``depends_on`` for which service comes after which.

Dependencies are ``After=`` + ``Wants=``: starting a unit pulls in what it needs, as
``docker compose up <service>`` does, but stopping or restarting a dependency leaves its
dependents alone, as EdgeX services keep serving without their registry. The one
``Requires=`` (on the database, which the core services cannot work without) makes systemd
stop a unit that needs the database when the database is stopped alone. The collection's
ordering already stops dependents first, so this changes nothing for a run over "all"; the
tests show what it does for a run over one service.

Every unit reads ``/etc/default/edgex`` (node name, check interval), so one image serves any
gateway name. Standard library only: images.py bakes these files into the image.
"""

UNIT_DIR = "/etc/systemd/system"
ENVIRONMENT_FILE = "/etc/default/edgex"
PAYLOAD_DIR = "/opt/edgex-testbed"
REGISTRY_PORT = 8500

# service key -> (unit, port, kind, wants, requires). Napa 3.1 core subset, as in the molecule scenario.
SERVICES = {
    "consul": ("edgex-consul.service", REGISTRY_PORT, "registry", [], []),
    "database": ("edgex-redis.service", 6379, "redis", [], []),
    "core-metadata": ("edgex-core-metadata.service", 59881, "api", ["consul"], ["database"]),
    "core-data": ("edgex-core-data.service", 59880, "api", ["consul", "core-metadata"], ["database"]),
    "core-command": ("edgex-core-command.service", 59882, "api", ["consul", "core-metadata"], ["database"]),
    "device-virtual": ("edgex-device-virtual.service", 59900, "api", ["consul", "core-data", "core-metadata"], []),
}


def unit_name(service):
    return SERVICES[service][0]


def depends_on(service):
    """The manifest's depends_on for a service: everything its unit orders itself after."""
    _unit, _port, _kind, wants, requires = SERVICES[service]
    return list(wants) + list(requires)


def health_path(service):
    kind = SERVICES[service][2]
    return {"registry": "/v1/status/leader", "api": "/api/v3/ping"}.get(kind)


def _exec_start(service):
    _unit, port, kind, _wants, _requires = SERVICES[service]
    if kind == "registry":
        # The registry keeps what agents registered across a restart, as Consul's data dir does.
        return ("/usr/bin/python3 %s/consul_emulator.py --port %d --node ${EDGEX_NODE}=127.0.0.1 "
                "--data-file /var/lib/edgex-consul/data.json" % (PAYLOAD_DIR, port))
    return ("/usr/bin/python3 %s/edgex_standin.py --service %s --host 127.0.0.1 --port %d --kind %s "
            "--registry consul --registry-host 127.0.0.1 --registry-port %d --check-interval ${EDGEX_CHECK_INTERVAL}"
            % (PAYLOAD_DIR, service, port, kind, REGISTRY_PORT))


def unit_text(service):
    unit, _port, kind, wants, requires = SERVICES[service]
    after = ["network.target"] + [unit_name(s) for s in wants + requires]
    lines = [
        "[Unit]",
        "Description=EdgeX %s (test-bed stand-in)" % service,
        "Wants=network.target" + "".join(" " + unit_name(s) for s in wants),
    ]
    if requires:
        lines.append("Requires=" + " ".join(unit_name(s) for s in requires))
    lines += [
        "After=" + " ".join(after),
        # systemd's default start limit (5 starts in 10 s) is reached or not depending on how fast
        # a crashing service dies on a busy machine; over 60 s it is reached whatever the load.
        "StartLimitIntervalSec=60",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=simple",
        "EnvironmentFile=-%s" % ENVIRONMENT_FILE,
        "ExecStart=%s" % _exec_start(service),
        "SyslogIdentifier=%s" % unit[:-len(".service")],
        "Restart=on-failure",
        # A crash-looping unit is visible (NRestarts, activating/auto-restart) for a few seconds
        # before the start limit marks it failed.
        "RestartSec=1",
        "TimeoutStopSec=30",
        "CPUAccounting=yes",
        "MemoryAccounting=yes",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    if kind == "registry":
        lines.insert(lines.index("[Service]") + 1, "StateDirectory=edgex-consul")
    return "\n".join(lines)


# A service run by the user's own manager (scope user): not part of the system deployment.
USER_SERVICE = ("app-rules-engine", "edgex-app-rules-engine.service", 59701)


def user_unit_text():
    service, unit, port = USER_SERVICE
    return "\n".join([
        "[Unit]",
        "Description=EdgeX %s (test-bed stand-in, user manager)" % service,
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=/usr/bin/python3 %s/edgex_standin.py --service %s --host 127.0.0.1 --port %d --registry none"
        % (PAYLOAD_DIR, service, port),
        "SyslogIdentifier=%s" % unit[:-len(".service")],
        "Restart=on-failure",
        "RestartSec=1",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ])


def user_unit_files(user):
    return {"/home/%s/.config/systemd/user/%s" % (user, USER_SERVICE[1]): user_unit_text()}


def environment_text(node, check_interval="1s"):
    return "EDGEX_NODE=%s\nEDGEX_CHECK_INTERVAL=%s\n" % (node, check_interval)


def unit_files():
    """{path in the image: text} for every unit."""
    return {"%s/%s" % (UNIT_DIR, unit_name(s)): unit_text(s) for s in SERVICES}


def manifest(node, executor="systemd"):
    """The gateway's deployment in the collection's manifest format (docs/manifest.md)."""
    services = {}
    for service, (unit, port, kind, _wants, _requires) in SERVICES.items():
        services[service] = {"executor": executor, "target": unit, "address": "127.0.0.1", "port": port,
                             "health": health_path(service), "depends_on": depends_on(service),
                             "tags": [], "meta": {}}
    return {"version": 1, "generated_from": "manual", "updated_at": "2026-01-01T00:00:00Z",
            "hosts": {node: {"address": "127.0.0.1", "datacenter": "dc1", "meta": {}, "services": services}}}
