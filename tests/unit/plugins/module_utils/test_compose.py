import os
import textwrap

import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ManifestError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.compose import manifest_from_compose
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.yamlio import HAS_YAML

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data", "compose")
NAPA = os.path.join(DATA, "napa-3.1.1-no-secty.yml")
ODESSA = os.path.join(DATA, "odessa-4.0.1-no-secty.yml")
FLEET = os.path.join(DATA, "fleet-gateway.yml")


def services_of(manifest, host="localhost"):
    return manifest["hosts"][host]["services"]


def write(tmp_path, text, name="docker-compose.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_yaml_is_available():
    assert HAS_YAML is True


# --- Napa 3.1.1 (Consul, Redis) -------------------------------------------------------------


def test_napa_top_level():
    manifest = manifest_from_compose(NAPA)
    assert manifest["version"] == 1
    assert manifest["generated_from"] == "compose:" + os.path.abspath(NAPA)
    assert "updated_at" not in manifest
    assert list(manifest["hosts"]) == ["localhost"]
    assert manifest["hosts"]["localhost"]["address"] == "127.0.0.1"
    assert "datacenter" not in manifest["hosts"]["localhost"]


def test_napa_service_keys():
    assert sorted(services_of(manifest_from_compose(NAPA))) == [
        "app-rules-engine", "consul", "core-command", "core-common-config-bootstrapper",
        "core-data", "core-metadata", "database", "device-rest", "device-virtual",
        "rules-engine", "support-notifications", "support-scheduler", "ui",
    ]


def test_napa_core_data_is_exact():
    assert services_of(manifest_from_compose(NAPA))["core-data"] == {
        "executor": "docker",
        "target": "edgex-core-data",
        "address": "127.0.0.1",
        "port": 59880,
        "health": "/api/v3/ping",
        "depends_on": ["consul", "core-metadata", "database"],
        "tags": [],
        "meta": {"compose_service": "core-data", "image": "edgexfoundry/core-data:3.1.1"},
        "one_shot": False,
        "api_version": "v3",
        "published": True,
        "container_port": 59880,
    }


@pytest.mark.parametrize(
    "key, target, port, health, depends_on",
    [
        ("consul", "edgex-core-consul", 8500, "/v1/status/leader", []),
        ("database", "edgex-redis", 6379, None, []),
        ("core-metadata", "edgex-core-metadata", 59881, "/api/v3/ping", ["consul", "database"]),
        ("core-command", "edgex-core-command", 59882, "/api/v3/ping", ["consul", "core-metadata", "database"]),
        ("support-scheduler", "edgex-support-scheduler", 59861, "/api/v3/ping", ["consul", "database"]),
        ("device-virtual", "edgex-device-virtual", 59900, "/api/v3/ping", ["consul", "core-data", "core-metadata"]),
        ("app-rules-engine", "edgex-app-rules-engine", 59701, "/api/v3/ping", ["consul", "core-data"]),
        ("rules-engine", "edgex-kuiper", 59720, None, ["database"]),
        ("ui", "edgex-ui-go", 4000, None, []),
    ],
)
def test_napa_services(key, target, port, health, depends_on):
    service = services_of(manifest_from_compose(NAPA))[key]
    assert (service["target"], service["port"], service["health"], service["depends_on"]) == (
        target, port, health, depends_on,
    )


def test_napa_bootstrapper_is_one_shot_without_address_port_or_health():
    service = services_of(manifest_from_compose(NAPA))["core-common-config-bootstrapper"]
    assert (service["port"], service["health"], service["published"]) == (None, None, False)
    assert "address" not in service
    assert service["depends_on"] == ["consul"]
    assert service["one_shot"] is True and "one_shot" not in service["meta"]


def test_napa_compose_executor_uses_the_name_key_as_project():
    services = services_of(manifest_from_compose(NAPA, executor="compose"))
    assert services["core-data"]["executor"] == "compose"
    assert services["core-data"]["target"] == "edgex/core-data"
    assert services["database"]["target"] == "edgex/database"
    assert services["rules-engine"]["target"] == "edgex/rules-engine"


def test_host_address_and_datacenter_are_used_where_the_file_publishes_on_every_address():
    manifest = manifest_from_compose(NAPA, host="gw1", address="10.0.0.5", datacenter="dc1")
    node = manifest["hosts"]["gw1"]
    assert node["address"] == "10.0.0.5"
    assert node["datacenter"] == "dc1"
    # Napa publishes on 127.0.0.1 (host_ip) but the UI on every address (issue 12, failure 5)
    assert (node["services"]["core-data"]["address"], node["services"]["core-data"]["port"]) == ("127.0.0.1", 59880)
    assert (node["services"]["ui"]["address"], node["services"]["ui"]["port"]) == ("10.0.0.5", 4000)


# --- Odessa 4.0.1 (core-keeper, Postgres, MQTT) ---------------------------------------------------


def test_odessa_service_keys():
    services = services_of(manifest_from_compose(ODESSA))
    assert "consul" not in services
    assert sorted(services) == [
        "app-rules-engine", "core-command", "core-common-config-bootstrapper", "core-data",
        "core-keeper", "core-metadata", "database", "device-rest", "device-virtual",
        "mqtt-broker", "rules-engine", "support-notifications", "support-scheduler", "ui",
    ]


@pytest.mark.parametrize(
    "key, target, port, health, depends_on",
    [
        ("core-keeper", "edgex-core-keeper", 59890, "/api/v3/ping", ["database"]),
        # Postgres: the file's 5432, not the Redis port the "database" entry of the table has.
        ("database", "edgex-postgres", 5432, None, []),
        ("mqtt-broker", "edgex-mqtt-broker", 1883, None, []),
        ("core-data", "edgex-core-data", 59880, "/api/v3/ping",
         ["core-common-config-bootstrapper", "core-keeper", "database"]),
        # Odessa moved support-scheduler from 59861 to 59863.
        ("support-scheduler", "edgex-support-scheduler", 59863, "/api/v3/ping",
         ["core-common-config-bootstrapper", "core-keeper", "database"]),
        ("rules-engine", "edgex-kuiper", 59720, None, ["database", "mqtt-broker"]),
        ("core-common-config-bootstrapper", "edgex-core-common-config-bootstrapper", None, None, ["core-keeper"]),
    ],
)
def test_odessa_services(key, target, port, health, depends_on):
    service = services_of(manifest_from_compose(ODESSA))[key]
    assert (service["target"], service["port"], service["health"], service["depends_on"]) == (
        target, port, health, depends_on,
    )


def test_odessa_compose_executor_and_project_argument_override_name():
    services = services_of(manifest_from_compose(ODESSA, executor="compose", project="edgex4"))
    assert services["core-keeper"]["target"] == "edgex4/core-keeper"
    assert services["database"]["target"] == "edgex4/database"
    assert services["database"]["meta"] == {"compose_service": "database", "image": "postgres:18.1-alpine3.22"}


# --- fleet-gateway.yml (hand-written, edgex-compose layout) ---------------------------------------


def test_fleet_keeps_file_order_and_leaves_out_inactive_profiles():
    assert list(services_of(manifest_from_compose(FLEET))) == [
        "consul", "database", "core-common-config-bootstrapper", "core-metadata", "core-data",
        "core-command", "support-notifications", "device-virtual",
        "mqtt-broker", "node-red", "seed-devices",
    ]
    assert "app-rules-engine" in services_of(manifest_from_compose(FLEET, profiles=["rules"]))


@pytest.mark.parametrize(
    "key, target, port, depends_on",
    [
        ("consul", "edgex-core-consul", 8500, []),
        ("database", "edgex-redis", 6379, []),
        # depends_on list form
        ("core-common-config-bootstrapper", "edgex-core-common-config-bootstrapper", None, ["consul"]),
        ("core-data", "edgex-core-data", 59880, ["consul", "database", "core-metadata"]),
        ("core-command", "edgex-core-command", 59882, ["consul", "database", "core-metadata"]),
        # depends_on mapping form; long-syntax port (the UDP mapping on 59981 is not it)
        ("core-metadata", "edgex-core-metadata", 59881, ["consul", "database", "core-common-config-bootstrapper"]),
        # ${NOTIFICATIONS_CONTAINER:-edgex-support-notifications}
        ("support-notifications", "edgex-support-notifications", 59860, ["consul", "database"]),
        # published on another host port: 127.0.0.1:49900:59900
        ("device-virtual", "edgex-device-virtual", 49900, ["consul", "core-data", "core-metadata"]),
        # "59701": a host port Docker chooses: never guessed (issue 12, failure 5)
        ("app-rules-engine", "edgex-app-rules-engine", None, ["consul", "core-data"]),
        # no container_name: compose v2 default <project>-<service>-1, project from `name:`
        ("mqtt-broker", "fleet-gw-mqtt-broker-1", 1883, []),
        ("node-red", "fleet-gw-node-red-1", 1880, ["mqtt-broker"]),
        ("seed-devices", "fleet-gw-seed-devices-1", None, ["core-metadata"]),
    ],
)
def test_fleet_services(key, target, port, depends_on):
    service = services_of(manifest_from_compose(FLEET, profiles=["rules"]))[key]
    assert service["executor"] == "docker"
    assert (service["target"], service["port"], service["depends_on"]) == (target, port, depends_on)


def test_fleet_health_paths():
    services = services_of(manifest_from_compose(FLEET, profiles=["rules"]))
    health = {key: service["health"] for key, service in services.items()}
    assert health == {
        "consul": "/v1/status/leader",
        "database": None,
        "core-common-config-bootstrapper": None,
        "core-metadata": "/api/v3/ping",
        "core-data": "/api/v3/ping",
        "core-command": "/api/v3/ping",
        "support-notifications": "/api/v3/ping",
        "device-virtual": "/api/v3/ping",
        "app-rules-engine": "/api/v3/ping",
        "mqtt-broker": None,
        "node-red": None,  # not EdgeX: no /api/v3/ping
        "seed-devices": None,  # restart "no": a job
    }


def test_fleet_meta():
    services = services_of(manifest_from_compose(FLEET, profiles=["rules"]))
    assert services["app-rules-engine"]["meta"] == {
        "compose_service": "app-rules-engine",
        "image": "edgexfoundry/app-service-configurable:3.1.1",
        "profiles": "rules",
    }
    assert services["seed-devices"]["meta"] == {
        "compose_service": "seed-devices",
        "image": "curlimages/curl:8.5.0",
    }
    assert services["seed-devices"]["one_shot"] is True
    assert all(service["tags"] == [] for service in services.values())


def test_fleet_compose_executor():
    services = services_of(manifest_from_compose(FLEET, executor="compose"))
    assert services["core-data"]["target"] == "fleet-gw/core-data"
    assert services["node-red"]["target"] == "fleet-gw/node-red"
    assert services["core-data"]["port"] == 59880


# --- naming, projects and port syntax on small files ----------------------------------------------


def test_key_from_container_name_when_service_name_is_not_a_key(tmp_path):
    path = write(tmp_path, """
        services:
          data:
            container_name: edgex-core-data
            ports: ["127.0.0.1:59880:59880"]
            depends_on: [metadata, redis]
          metadata:
            container_name: edgex-core-metadata
          redis:
            container_name: edgex-redis
    """)
    services = services_of(manifest_from_compose(path))
    assert sorted(services) == ["core-data", "core-metadata", "redis"]
    assert services["core-data"]["depends_on"] == ["core-metadata", "redis"]
    assert services["core-data"]["meta"]["compose_service"] == "data"
    # no ports published: nothing to reach it by, its EdgeX port named as its container's
    assert (services["core-metadata"]["port"], services["core-metadata"]["published"]) == (None, False)
    assert services["core-metadata"]["container_port"] == 59881


def test_key_from_container_name_compose_target_uses_service_name(tmp_path):
    path = write(tmp_path, """
        name: legacy
        services:
          data:
            container_name: edgex-core-data
    """)
    services = services_of(manifest_from_compose(path, executor="compose"))
    assert services["core-data"]["target"] == "legacy/data"


def test_project_from_directory_name(tmp_path):
    directory = tmp_path / "My_Edge.Stack"
    directory.mkdir()
    path = write(directory, """
        services:
          core-data:
            image: edgexfoundry/core-data:3.1.1
    """)
    services = services_of(manifest_from_compose(path))
    assert services["core-data"]["target"] == "my_edgestack-core-data-1"
    services = services_of(manifest_from_compose(path, executor="compose"))
    assert services["core-data"]["target"] == "my_edgestack/core-data"


def test_project_argument_over_directory(tmp_path):
    path = write(tmp_path, """
        services:
          core-data: {}
    """)
    services = services_of(manifest_from_compose(path, project="gw"))
    assert services["core-data"]["target"] == "gw-core-data-1"


@pytest.mark.parametrize(
    "ports, expected",
    [
        # a host port Docker chooses (no host port, a range for one port): never guessed
        (["59880"], None),
        (["127.0.0.1::59880"], None),
        (["49000-49010:59880"], None),
        ([59880], None),
        ([{"target": 59880}], None),
        (["59880:59880"], 59880),
        (["127.0.0.1:49880:59880/tcp"], 49880),
        (["[::1]:49880:59880"], 49880),
        (["49000-49001:59879-59880"], 49001),
        (["127.0.0.1:${PORT:-49880}:59880"], 49880),
        (["127.0.0.1:${PORT-49880}:59880"], 49880),
        ([{"target": 59880, "published": "49880"}], 49880),
        ([{"target": 59880, "published": 49880, "host_ip": "0.0.0.0"}], 49880),
        ([{"target": 59880, "published": "${P:-49880}"}], 49880),
        # UDP mappings and unrelated ports do not hide the EdgeX port
        (["48080:8080", "127.0.0.1:49880:59880"], 49880),
        (["59880:59880/udp"], None),  # the API (TCP) is not published
        (["48080:8080/udp", "48081:8081"], 48081),
    ],
)
def test_port_syntax(tmp_path, ports, expected):
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump({"services": {"core-data": {"ports": ports}}}))
    assert services_of(manifest_from_compose(str(path)))["core-data"]["port"] == expected


def test_unknown_service_without_ports_has_no_port(tmp_path):
    path = write(tmp_path, """
        name: p
        services:
          grafana:
            image: grafana/grafana:10.2.0
          device-modbus:
            image: edgexfoundry/device-modbus:3.1.1
            ports: ["127.0.0.1:59901:59901"]
    """)
    services = services_of(manifest_from_compose(path))
    assert (services["grafana"]["port"], services["grafana"]["health"]) == (None, None)
    assert (services["device-modbus"]["port"], services["device-modbus"]["health"]) == (59901, "/api/v3/ping")


def test_unquoted_restart_no_is_a_job(tmp_path):
    path = write(tmp_path, """
        name: p
        services:
          loader:
            image: edgexfoundry/custom-loader:1.0
            restart: no
    """)
    service = services_of(manifest_from_compose(path))["loader"]
    assert (service["port"], service["health"], service["one_shot"]) == (None, None, True)


# --- errors ---------------------------------------------------------------------------------------


def raises(path, pattern, **kwargs):
    with pytest.raises(ManifestError, match=pattern) as info:
        manifest_from_compose(path, **kwargs)
    return str(info.value)


def test_without_pyyaml_the_error_says_so(monkeypatch):
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest import yamlio

    monkeypatch.setattr(yamlio, "HAS_YAML", False)
    assert NAPA in raises(NAPA, r"PyYAML is not installed")


def test_missing_file_is_named(tmp_path):
    path = str(tmp_path / "nope.yml")
    message = raises(path, r"cannot read compose file")
    assert path in message


def test_invalid_yaml(tmp_path):
    path = write(tmp_path, "services: [unclosed\n")
    assert path in raises(path, r"is not valid YAML")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_top_level_not_a_mapping(tmp_path, text):
    path = write(tmp_path, text)
    assert path in raises(path, r"the top level is not a mapping")


@pytest.mark.parametrize("text", ["name: x\n", "services: []\n", "services: {}\n", "services:\n"])
def test_no_services(tmp_path, text):
    path = write(tmp_path, text)
    assert path in raises(path, r"no `services` mapping")


def test_service_not_a_mapping(tmp_path):
    path = write(tmp_path, """
        services:
          core-data: edgexfoundry/core-data
    """)
    assert path in raises(path, r"service 'core-data' is not a mapping")


@pytest.mark.parametrize(
    "ports, cause",
    [
        ('"abc"', r"bad port syntax 'abc'"),
        ('"1:2:3:4"', r"bad port syntax '1:2:3:4'"),
        ('"127.0.0.1:70000:59880"', r"ports are 1-65535"),
        ('"0:59880"', r"ports are 1-65535"),
        ('"49000-49001:59880-59882"', r"ranges differ in length"),
        ('"[::1:49880:59880"', r"bad port syntax"),
        ('"59881-59880"', r"ranges low-high"),
        ("{published: 49880}", r"has no target"),
        ("{target: [1]}", r"bad port syntax .*: target"),
        ("true", r"bad port syntax True"),
        ("[1, 2]", r"bad port syntax \[1, 2\]"),
    ],
)
def test_bad_port_syntax(tmp_path, ports, cause):
    path = write(tmp_path, "services:\n  core-data:\n    ports:\n    - %s\n" % ports)
    message = raises(path, cause)
    assert path in message and "service 'core-data'" in message


def test_ports_not_a_list(tmp_path):
    path = write(tmp_path, "services:\n  core-data:\n    ports: '59880:59880'\n")
    assert "service 'core-data'" in raises(path, r"ports must be a list")


def test_interpolation_without_default(tmp_path):
    path = write(tmp_path, "services:\n  core-data:\n    ports: ['${PORT}:59880']\n")
    assert "service 'core-data'" in raises(path, r"uses \$PORT without a default")
    path = write(tmp_path, "services:\n  core-data:\n    container_name: $NAME\n")
    raises(path, r"service 'core-data'.*uses \$NAME without a default")


def test_escaped_dollar_stays_a_dollar(tmp_path):
    path = write(tmp_path, "services:\n  core-data:\n    container_name: 'edgex-$$x'\n")
    raises(path, r"service 'core-data': invalid container name 'edgex-\$x'")


@pytest.mark.parametrize("value", ["${NAME:?required}", "${NAME:+set}", "${A:-${B:-x}}"])
def test_unsupported_interpolation(tmp_path, value):
    path = write(tmp_path, "services:\n  core-data:\n    container_name: '%s'\n" % value)
    raises(path, r"service 'core-data'.*(unsupported|nested) interpolation")


def test_depends_on_unknown_service(tmp_path):
    path = write(tmp_path, """
        services:
          core-data:
            depends_on: [core-metadata]
    """)
    message = raises(path, r"service 'core-data': depends_on names unknown service 'core-metadata'")
    assert path in message
    path = write(tmp_path, """
        services:
          core-data:
            depends_on:
              database: {condition: service_started}
    """)
    raises(path, r"depends_on names unknown service 'database'")


def test_depends_on_wrong_type(tmp_path):
    path = write(tmp_path, "services:\n  core-data:\n    depends_on: database\n")
    raises(path, r"service 'core-data': depends_on must be a list or a mapping")


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("services:\n  Core-Data: {}\n", r"service 'Core-Data': invalid service key 'Core-Data'"),
        ("services:\n  core-data:\n    container_name: 'edgex core'\n",
         r"service 'core-data': invalid container name 'edgex core'"),
        ("services:\n  core-data:\n    container_name: 42\n", r"service 'core-data': container_name must be a string"),
        ("name: 'Bad Project'\nservices:\n  core-data: {}\n",
         r"service 'core-data': invalid compose project name 'Bad Project'"),
    ],
)
def test_invalid_names(tmp_path, text, pattern):
    path = write(tmp_path, text)
    assert path in raises(path, pattern)


def test_invalid_project_argument(tmp_path):
    path = write(tmp_path, "services:\n  core-data: {}\n")
    raises(path, r"invalid compose project name '\.\./x'", project="../x", executor="compose")


def test_two_services_for_one_key(tmp_path):
    path = write(tmp_path, """
        services:
          core-data: {}
          data:
            container_name: edgex-core-data
    """)
    raises(path, r"services 'core-data' and 'data' are both EdgeX service 'core-data'")


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"executor": "systemd"}, r"executor must be one of docker, compose, not 'systemd'"),
        ({"host": "gw 1"}, r"invalid host name 'gw 1'"),
        ({"datacenter": "DC1"}, r"invalid datacenter 'DC1'"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    raises(NAPA, pattern, **kwargs)
