"""The compose importer on every edgex-compose release and compose feature, one section per failure
issue 12 reported (files in tests/unit/data/compose/, written in each release's shape)."""

import os
import textwrap

import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ManifestError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.control import plan
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.compose import import_compose, manifest_from_compose
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.edits import import_host, to_discovery
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.schema import validate
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord
from tests.testbed import releases

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data", "compose")
LEVSKI = os.path.join(DATA, "levski-2.3-no-secty.yml")
JAKARTA_SECURE = os.path.join(DATA, "jakarta-2.1-secure.yml")
NAPA = os.path.join(DATA, "napa-3.1.1-no-secty.yml")
NAPA_SECURE = os.path.join(DATA, "napa-3.1-secure.yml")
ODESSA = os.path.join(DATA, "odessa-4.0.1-no-secty.yml")
ODESSA_SECURE = os.path.join(DATA, "odessa-4.0-secure.yml")
OPENZITI = os.path.join(DATA, "odessa-4.0-openziti.yml")
ZERO_TRUST = os.path.join(DATA, "odessa-4.0-zero-trust.yml")
NETWORK_MODE = os.path.join(DATA, "network-mode.yml")
PROFILES = os.path.join(DATA, "profiles.yml")
EXTENDS = os.path.join(DATA, "extends.yml")


def services_of(path, **kwargs):
    return manifest_from_compose(path, **kwargs)["hosts"]["localhost"]["services"]


def write(tmp_path, text, name="docker-compose.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def refused(path, **kwargs):
    with pytest.raises(ManifestError) as info:
        import_compose(path, **kwargs)
    return str(info.value)


# -- 1. EdgeX 2.x service keys ---------------------------------------------------------------------


def test_levski_services_are_imported_under_their_service_keys():
    services = services_of(LEVSKI)
    assert sorted(services) == [
        "app-rules-engine", "consul", "core-command", "core-data", "core-metadata", "database", "device-rest",
        "device-virtual", "rules-engine", "support-notifications", "support-scheduler", "sys-mgmt-agent", "ui"]
    sma = services["sys-mgmt-agent"]
    assert (sma["target"], sma["port"], sma["meta"]["compose_service"]) == ("edgex-sys-mgmt-agent", 58890, "system")
    # depends_on names service keys too, never compose keys
    assert sma["depends_on"] == ["core-command", "consul", "core-data", "core-metadata", "support-notifications",
                                 "support-scheduler"]
    assert services["core-metadata"]["depends_on"] == ["consul", "database", "support-notifications"]


def test_every_2x_compose_key_of_the_test_bed_maps_to_its_service_key():
    services = services_of(LEVSKI)
    by_compose_key = {s["meta"]["compose_service"]: key for key, s in services.items()}
    for compose_key, (service_key, container) in releases.LEVSKI_COMPOSE_KEYS.items():
        if service_key is not None:
            assert by_compose_key[compose_key] == service_key
            assert services[service_key]["target"] == container
    secure = {s["meta"]["compose_service"]: key for key, s in services_of(JAKARTA_SECURE).items()}
    for compose_key, service_key in releases.LEVSKI_SECURE_COMPOSE_KEYS.items():
        assert secure[compose_key] == service_key
        assert service_key in releases.V2_SERVICE_KEYS


def test_a_consul_run_plans_the_sma_once_under_its_service_key():
    manifest = to_discovery(import_host({"version": 1, "hosts": {}}, "gw1",
                                        manifest_from_compose(LEVSKI, host="gw1")))
    live = Discovery(source="consul", nodes=[NodeRecord("gw1", "127.0.0.1")],
                     services=[ServiceRecord("sys-mgmt-agent", "gw1", address="edgex-sys-mgmt-agent", port=58890)])
    names = [p.name for p in plan(live, manifest, "gw1", ["all"])]
    assert names.count("sys-mgmt-agent") == 1 and "system" not in names
    (sma,) = plan(live, manifest, "gw1", ["sys-mgmt-agent"])
    assert (sma.target, sma.health_path) == ("edgex-sys-mgmt-agent", "/api/v2/ping")


def test_a_sync_keeps_one_entry_for_the_sma(tmp_path):
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.edits import merge_discovery

    data = import_host({"version": 1, "hosts": {}}, "gw1", manifest_from_compose(LEVSKI, host="gw1"))
    live = Discovery(source="consul", datacenter="dc1", nodes=[NodeRecord("gw1", "127.0.0.1")],
                     services=[ServiceRecord("sys-mgmt-agent", "gw1", address="127.0.0.1", port=58890)])
    services = merge_discovery(data, live, "consul")["hosts"]["gw1"]["services"]
    assert "system" not in services and services["sys-mgmt-agent"]["target"] == "edgex-sys-mgmt-agent"


# -- 2. EdgeX 2.x API ------------------------------------------------------------------------------


def test_2x_services_are_pinged_under_api_v2_and_say_so():
    services = services_of(LEVSKI)
    for key in ("core-data", "core-metadata", "sys-mgmt-agent", "app-rules-engine", "device-virtual"):
        assert (services[key]["api_version"], services[key]["health"]) == ("v2", "/api/v2/ping"), key
    assert services["consul"]["health"] == "/v1/status/leader" and "api_version" not in services["consul"]
    assert services["database"]["health"] is None and services["rules-engine"]["health"] is None


@pytest.mark.parametrize("path", [NAPA, NAPA_SECURE, ODESSA, ODESSA_SECURE])
def test_3x_and_4x_services_stay_on_api_v3(path):
    services = services_of(path)
    assert services["core-data"]["api_version"] == "v3" and services["core-data"]["health"] == "/api/v3/ping"


def test_a_gateway_in_the_middle_of_an_upgrade_pings_each_service_under_its_own_api(tmp_path):
    path = write(tmp_path, """
        services:
          core-data: {image: "edgexfoundry/core-data:3.1.1", ports: ["127.0.0.1:59880:59880"]}
          device-virtual: {image: "edgexfoundry/device-virtual:2.3.0", ports: ["127.0.0.1:59900:59900"]}
          device-modbus: {image: "edgexfoundry/device-modbus:${MODBUS_VERSION:-2.3.0}"}
          device-custom: {image: "myorg/device-custom:2.0.0", ports: ["127.0.0.1:59999:59999"]}
    """)
    services = services_of(path)
    assert services["core-data"]["health"] == "/api/v3/ping"
    assert (services["device-virtual"]["api_version"], services["device-virtual"]["health"]) == ("v2", "/api/v2/ping")
    assert services["device-modbus"]["api_version"] == "v2"  # ${VAR:-default} in the tag
    # not EdgeX's image: its tag says nothing of the EdgeX release, v3 is assumed
    assert "api_version" not in services["device-custom"] and services["device-custom"]["health"] == "/api/v3/ping"


# -- 3. One-shot jobs ------------------------------------------------------------------------------


def jobs(path, **kwargs):
    return sorted(key for key, service in services_of(path, **kwargs).items() if service["one_shot"])


@pytest.mark.parametrize("path, expected", [
    (LEVSKI, []),
    # proxy-setup has no restart key: a job; the bootstrapper and secretstore-setup run on
    (JAKARTA_SECURE, ["security-proxy-setup"]),
    (NAPA, ["core-common-config-bootstrapper"]),
    (NAPA_SECURE, ["core-common-config-bootstrapper", "security-proxy-setup"]),
    (ODESSA, ["core-common-config-bootstrapper"]),
    (ODESSA_SECURE, ["core-common-config-bootstrapper", "security-proxy-setup"]),
    (OPENZITI, ["openziti-configure", "openziti-initialize"]),
    (ZERO_TRUST, ["core-common-config-bootstrapper"]),
])
def test_jobs_of_every_release(path, expected):
    assert jobs(path) == expected


def test_a_job_has_no_health_route_and_its_dependents_wait_for_it_as_the_file_says():
    services = services_of(OPENZITI)
    assert services["openziti-initialize"]["health"] is None
    assert services["openziti-initialize"]["depends_on_conditions"] == {"ziti-controller": "service_healthy"}
    assert services["ziti-router"]["depends_on_conditions"] == {"openziti-configure": "service_completed_successfully"}
    assert "depends_on_conditions" not in services["core-keeper"]  # service_started is the default


@pytest.mark.parametrize("text, expected", [
    # restart absent in a file that gives its services restart policies: a job
    ("services:\n  a: {restart: always}\n  loader: {image: 'x/loader:1'}\n", ["loader"]),
    # a file that gives none says nothing by leaving it out
    ("services:\n  a: {}\n  loader: {image: 'x/loader:1'}\n", []),
    ("services:\n  loader: {restart: 'no'}\n", ["loader"]),
    ("services:\n  loader: {restart: no}\n", ["loader"]),
    ("services:\n  loader: {deploy: {restart_policy: {condition: none}}}\n", ["loader"]),
    ("services:\n  loader: {restart: on-failure}\n", []),
    # waited for with service_completed_successfully: a job whatever its restart key says
    ("services:\n  loader: {restart: always}\n  b:\n    restart: always\n    depends_on:\n      loader: "
     "{condition: service_completed_successfully}\n", ["loader"]),
    # the collection's long-running EdgeX services are never jobs by omission or by "no"
    ("services:\n  a: {restart: always}\n  core-data: {restart: 'no'}\n  security-bootstrapper: {}\n", []),
    # a known job that the file restarts is not one
    ("services:\n  core-common-config-bootstrapper: {restart: always}\n", []),
    ("services:\n  core-common-config-bootstrapper: {}\n", ["core-common-config-bootstrapper"]),
])
def test_what_makes_a_job(tmp_path, text, expected):
    assert jobs(write(tmp_path, text)) == expected


# -- 4. Compose features ---------------------------------------------------------------------------


def test_extends_from_this_file_and_another_keeps_what_the_base_says():
    services = services_of(EXTENDS)
    core_data = services["core-data"]
    # container_name from the other file's base, restart from a chain of bases
    assert (core_data["target"], core_data["port"], core_data["one_shot"]) == ("edgex-core-data", 59880, False)
    assert core_data["meta"]["image"] == "edgexfoundry/core-data:3.1.1"
    assert core_data["depends_on"] == ["core-metadata"]
    assert services["core-metadata"]["target"] == "edgex-core-metadata"
    assert services["core-metadata"]["port"] == 59881


def test_extends_merges_as_compose_does(tmp_path):
    write(tmp_path, """
        services:
          base:
            ports: ["127.0.0.1:59880:59880"]
            depends_on: {database: {condition: service_healthy}}
            restart: "no"
    """, "base.yml")
    path = write(tmp_path, """
        services:
          database: {restart: always}
          core-data:
            extends: {file: base.yml, service: base}
            ports: ["127.0.0.1:59880:59880", "127.0.0.1:5563:5563"]
            depends_on: [core-metadata]
            restart: always
          core-metadata: {restart: always}
    """)
    core_data = services_of(path)["core-data"]
    assert core_data["depends_on"] == ["database", "core-metadata"]  # mappings merged
    assert core_data["depends_on_conditions"] == {"database": "service_healthy"}
    assert core_data["one_shot"] is False  # scalars: the extending service's
    assert core_data["port"] == 59880


def test_profiles_import_only_what_is_active_and_say_what_was_left_out():
    imported = import_compose(PROFILES)
    assert sorted(imported.manifest["hosts"]["localhost"]["services"]) == ["consul", "core-data", "core-metadata"]
    assert imported.left_out == [
        {"service": "device-virtual", "key": "device-virtual", "profiles": ["devices"]},
        {"service": "device-rest", "key": "device-rest", "profiles": ["devices", "rest"]},
        {"service": "ui", "key": "ui", "profiles": ["ui"]},
    ]
    assert any("optional dependency ui is not imported" in note for note in imported.notes)
    assert sorted(services_of(PROFILES, profiles=["rest"])) == ["consul", "core-data", "core-metadata", "device-rest"]
    assert len(services_of(PROFILES, profiles=["*"])) == 6
    assert import_compose(PROFILES, profiles=["devices", "ui"]).left_out == []


def test_required_false_is_a_soft_dependency():
    core_data = services_of(PROFILES, profiles=["ui"])["core-data"]
    assert core_data["depends_on"] == ["core-metadata", "ui"]  # orders the start when present
    assert core_data["depends_on_optional"] == ["ui"]
    assert "ui" not in services_of(PROFILES)["core-data"]["depends_on"]  # absent: nothing to wait for


def test_a_required_dependency_on_a_service_left_out_is_refused_naming_the_profile(tmp_path):
    path = write(tmp_path, """
        services:
          core-data: {depends_on: [ui]}
          ui: {profiles: [ui]}
    """)
    message = refused(path)
    assert path in message and "service 'core-data': depends on 'ui', which the profile ui leaves out" in message


@pytest.mark.parametrize("key, target, address, port, published, depends_on", [
    # network_mode service:tunnel / container:edgex-tunnel: the sidecar's published ports
    ("core-data", "netmodes-core-data-1", "127.0.0.1", 59880, True, ["core-metadata", "tunnel"]),
    ("core-metadata", "netmodes-core-metadata-1", "127.0.0.1", 49881, True, ["tunnel"]),
    ("app-rules-engine", "netmodes-app-rules-engine-1", None, None, False, ["tunnel"]),  # nothing for 59701
    # network_mode host: its own ports: list is ignored by Docker; it listens on the host's 59900
    ("device-virtual", "netmodes-device-virtual-1", "127.0.0.1", 59900, True, []),
    ("device-rest", "netmodes-device-rest-1", None, None, False, []),  # network_mode none
    ("device-modbus", "netmodes-device-modbus-1", None, None, None, []),  # a container this file lacks
])
def test_network_modes(key, target, address, port, published, depends_on):
    service = services_of(NETWORK_MODE)[key]
    assert (service["target"], service.get("address"), service["port"], service.get("published"),
            service["depends_on"]) == (target, address, port, published, depends_on)


def test_network_mode_host_uses_the_node_address_and_unknown_containers_are_said():
    imported = import_compose(NETWORK_MODE, address="192.0.2.10")
    assert imported.manifest["hosts"]["localhost"]["services"]["device-virtual"]["address"] == "192.0.2.10"
    assert any("vpn-client" in note and "unknown" in note for note in imported.notes)
    assert any("app-rules-engine" in note and "publishes no port for 59701" in note for note in imported.notes)


def test_interpolation_with_defaults_keeps_working(tmp_path):
    path = write(tmp_path, """
        name: ${PROJECT:-edgex}
        services:
          core-data:
            container_name: ${CORE_DATA_CONTAINER:-edgex-core-data}
            image: edgexfoundry/core-data:${EDGEX_VERSION:-2.3.0}
            ports: ["${BIND:-127.0.0.1}:${CORE_DATA_PORT:-49880}:59880"]
            restart: ${RESTART:-always}
    """)
    core_data = services_of(path)["core-data"]
    assert (core_data["target"], core_data["address"], core_data["port"], core_data["health"]) == (
        "edgex-core-data", "127.0.0.1", 49880, "/api/v2/ping")


# -- 5. Ports that are not published ---------------------------------------------------------------


def test_zero_trust_services_without_published_ports_have_no_address_or_port():
    services = services_of(ZERO_TRUST, address="192.0.2.10")
    unpublished = sorted(key for key, service in services.items() if service["published"] is False)
    assert unpublished == [
        "app-rules-engine", "core-command", "core-common-config-bootstrapper", "core-data", "core-keeper",
        "core-metadata", "device-rest", "device-virtual", "rules-engine", "security-proxy-auth",
        "support-notifications", "support-scheduler"]
    for key in unpublished:
        assert "address" not in services[key] and services[key]["port"] is None, key
    assert services["core-data"]["container_port"] == 59880  # named, not reached
    assert (services["ui"]["address"], services["ui"]["port"]) == ("192.0.2.10", 4000)


def test_an_ephemeral_host_port_is_not_guessed(tmp_path):
    path = write(tmp_path, """
        services:
          device-virtual: {image: "edgexfoundry/device-virtual:3.1.1", ports: ["59900"]}
          device-rest: {image: "edgexfoundry/device-rest:3.1.1", ports: ["127.0.0.1::59986"]}
    """)
    services = services_of(path)
    assert (services["device-virtual"]["port"], services["device-virtual"]["published"],
            services["device-virtual"]["container_port"]) == (None, True, 59900)
    assert (services["device-rest"]["address"], services["device-rest"]["port"]) == ("127.0.0.1", None)


def test_host_ip_of_a_mapping_is_kept_over_the_node_address():
    services = services_of(NAPA, address="192.0.2.10")
    assert (services["core-data"]["address"], services["core-data"]["port"]) == ("127.0.0.1", 59880)
    assert services["ui"]["address"] == "192.0.2.10"  # published on every address


@pytest.mark.parametrize("ports, address", [
    (["[::1]:59880:59880"], "::1"),
    ([{"target": 59880, "published": 59880, "host_ip": "10.1.2.3"}], "10.1.2.3"),
    (["0.0.0.0:59880:59880"], "192.0.2.10"),
    ([{"target": 59880, "published": 59880, "host_ip": "::"}], "192.0.2.10"),
])
def test_host_ip_forms(tmp_path, ports, address):
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump({"services": {"core-data": {"ports": ports}}}))
    assert services_of(str(path), address="192.0.2.10")["core-data"]["address"] == address


# -- 6. Errors name the compose file and the service ------------------------------------------------


def test_bytes_that_are_not_utf8_name_the_file(tmp_path):
    path = tmp_path / "docker-compose.yml"
    path.write_bytes(b"services:\n  core-data:\n    image: \x89PNG\n")
    message = refused(str(path))
    assert str(path) in message and "not UTF-8 text: byte 0x89 at line 3, column 12" in message


def test_a_utf8_byte_order_mark_is_fine(tmp_path):
    path = tmp_path / "docker-compose.yml"
    path.write_bytes(b"\xef\xbb\xbfservices:\n  core-data: {}\n")
    assert list(services_of(str(path))) == ["core-data"]


def test_a_dependency_cycle_is_reported_against_the_compose_file_and_its_services(tmp_path):
    path = write(tmp_path, """
        services:
          data: {container_name: edgex-core-data, depends_on: [metadata]}
          metadata: {container_name: edgex-core-metadata, depends_on: [notifications]}
          notifications: {container_name: edgex-support-notifications, depends_on: [data]}
    """)
    message = refused(path)
    assert message.startswith("compose file %s: services depend on each other in a cycle: " % path)
    assert "data -> metadata -> notifications -> data" in message
    assert "invalid manifest" not in message


def test_unknown_depends_on_names_file_service_and_dependency(tmp_path):
    path = write(tmp_path, "services:\n  system:\n    depends_on: [data]\n")
    assert refused(path) == "compose file %s: service 'system': depends_on names unknown service 'data'" % path


@pytest.mark.parametrize("depends_on, cause", [
    ("{data: {condition: service_ready}}", "depends_on data: unknown condition 'service_ready'"),
    ("{data: {required: maybe}}", "depends_on data: required must be true or false, not 'maybe'"),
])
def test_bad_depends_on_options(tmp_path, depends_on, cause):
    path = write(tmp_path, "services:\n  data: {}\n  system:\n    depends_on: %s\n" % depends_on)
    assert refused(path).startswith("compose file %s: service 'system': %s" % (path, cause))


def test_extends_not_found_names_the_service(tmp_path):
    path = write(tmp_path, "services:\n  core-data:\n    extends: {service: edgex-template}\n")
    assert refused(path) == ("compose file %s: service 'core-data' extends service 'edgex-template', which it "
                             "does not define" % path)
    path = write(tmp_path, "services:\n  core-data:\n    extends: {file: common.yml, service: base}\n")
    assert refused(path) == ("compose file %s: service 'core-data' extends a service of %s, which does not exist"
                             % (path, tmp_path / "common.yml"))
    write(tmp_path, "services:\n  other: {}\n", "common.yml")
    assert refused(path) == ("compose file %s: service 'core-data' extends service 'base', which %s does not "
                             "define" % (path, tmp_path / "common.yml"))


def test_extends_in_a_circle_is_refused(tmp_path):
    path = write(tmp_path, """
        services:
          a: {extends: b}
          b: {extends: {service: a}}
    """)
    assert "service 'a': extends goes round in a circle: a -> b -> a" in refused(path)


def test_network_mode_of_an_unknown_service_is_refused(tmp_path):
    path = write(tmp_path, "services:\n  core-data: {network_mode: 'service:vpn'}\n")
    assert refused(path) == "compose file %s: service 'core-data': network_mode names unknown service 'vpn'" % path
    path = write(tmp_path, "services:\n  core-data: {network_mode: 'service:vpn'}\n  vpn: {profiles: [vpn]}\n")
    assert refused(path) == ("compose file %s: service 'core-data': depends on 'vpn', which the profile vpn leaves "
                             "out (add one to profiles)" % path)
    assert services_of(path, profiles=["vpn"])["core-data"]["depends_on"] == ["vpn"]


def test_every_imported_release_is_a_valid_manifest():
    for path in (LEVSKI, JAKARTA_SECURE, NAPA, NAPA_SECURE, ODESSA, ODESSA_SECURE, OPENZITI, ZERO_TRUST,
                 NETWORK_MODE, PROFILES, EXTENDS):
        validate(manifest_from_compose(path), path)
