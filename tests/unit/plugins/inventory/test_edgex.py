"""The edgex inventory plugin, loaded by its FQCN and parsed into an in-memory InventoryData.

As amazon.aws tests aws_ec2: the plugin reads a real inventory file through a DataLoader, and the
registry is faked at one seam, the plugin's ``discover`` (the registry code has its own tests), so
these tests see exactly the settings the plugin hands to module_utils and exactly what it builds.
"""

import gc
import json
import os
import sys

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.template import Templar, is_trusted_as_template, trust_as_template

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import (
    RegistryAuthError,
    RegistryUnavailableError,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.consul import ConsulRegistry
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import (
    Discovery,
    NodeRecord,
    ServiceRecord,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import (
    registry_argument_spec,
    resolve_registry_settings,
)

HOSTILE_NOTE = "{{ 6 * 7 }}"  # would render as 42 if it were ever trusted as a template
TOKEN = "s3cret-token-value"
CONSUL_ENV = ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY", "CONSUL_CACERT",
              "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY")


def consul_discovery(datacenter="dc1", nodes=("gw1", "gw2"), source="consul", warnings=()):
    """A Consul answer: core-data on every node, edgex-redis (a key starting with the prefix) on the first."""
    records = [NodeRecord(name=n, address="192.0.2.%d" % (i + 1), datacenter=datacenter, meta={"site": "plant-a"},
                          status="passing") for i, n in enumerate(nodes)]
    services = []
    for node in nodes:
        services.append(ServiceRecord(name="core-data", node=node, address="192.0.2.1", port=59880,
                                      tags=["edgex", "core"], meta={"note": HOSTILE_NOTE}, status="passing",
                                      checks=[{"id": "core-data", "status": "passing"}], datacenter=datacenter))
    services.append(ServiceRecord(name="edgex-redis", node=nodes[0], port=6379, status="critical",
                                  datacenter=datacenter))
    return Discovery(source=source, nodes=records, services=services, datacenter=datacenter,
                     manifest_age=3600.0 if source == "manifest" else None, warnings=list(warnings))


class FakeRegistry(object):
    """Stands in for module_utils discover(): records the settings, answers per datacenter."""

    def __init__(self):
        self.calls = []
        self.answers = {}  # datacenter -> Discovery or exception

    def __call__(self, settings):
        self.calls.append(dict(settings))
        answer = self.answers.get(settings.get("datacenter"), None)
        if answer is None:
            answer = consul_discovery(settings.get("datacenter") or "dc1")
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in CONSUL_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def registry(monkeypatch):
    fake = FakeRegistry()
    plugin_module = sys.modules[type(inventory_loader.get("edgex.sysmgmt.edgex")).__module__]
    monkeypatch.setattr(plugin_module, "discover", fake)
    return fake


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    plugin_module = sys.modules[type(inventory_loader.get("edgex.sysmgmt.edgex")).__module__]
    monkeypatch.setattr(plugin_module.display, "warning", lambda msg, *a, **k: seen.append(msg))
    utils_module = sys.modules["ansible_collections.edgex.sysmgmt.plugins.plugin_utils.inventory"]
    monkeypatch.setattr(utils_module.display, "warning", lambda msg, *a, **k: seen.append(msg))
    return seen


def write_config(directory, name="test.edgex.yml", **options):
    config = {"plugin": "edgex.sysmgmt.edgex"}
    config.update(options)
    os.makedirs(str(directory), exist_ok=True)
    path = os.path.join(str(directory), name)
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
    return path


def parse(path, cache=True):
    """A fresh plugin instance (as each ansible-inventory run has) parsing ``path``; then, as
    InventoryManager does after a successful parse, the cache plugin writes what changed."""
    plugin = inventory_loader.get("edgex.sysmgmt.edgex")
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), path, cache=cache)
    if plugin.get_option("cache"):
        plugin.update_cache_if_changed()
    return inventory, plugin


def hostvars(inventory, host):
    return inventory.get_host(host).get_vars()


def groups_of(inventory, host):
    return sorted(g.name for g in inventory.get_host(host).get_groups())


# -- files ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, accepted", [
    ("fleet.edgex.yml", True), ("fleet.edgex.yaml", True), ("fleet.yml", False), ("edgex.yml.bak", False),
    ("fleet.aws_ec2.yml", False),
])
def test_only_edgex_inventory_files_are_claimed(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text("plugin: edgex.sysmgmt.edgex\n")
    assert inventory_loader.get("edgex.sysmgmt.edgex").verify_file(str(path)) is accepted


# -- hosts, host variables, groups --------------------------------------------------------------
def test_hosts_and_hostvars_from_the_registry(registry, tmp_path):
    inventory, _plugin = parse(write_config(tmp_path, host="consul.example", token=TOKEN))
    assert sorted(inventory.hosts) == ["gw1", "gw2"]
    gw1 = hostvars(inventory, "gw1")
    assert gw1["ansible_host"] == "192.0.2.1"
    assert sorted(gw1["edgex_services"]) == ["core-data", "edgex-redis"]
    assert gw1["edgex_services"]["core-data"]["port"] == 59880
    assert gw1["edgex_services"]["core-data"]["checks"] == [{"id": "core-data", "status": "passing"}]
    assert gw1["edgex_services"]["edgex-redis"]["status"] == "critical"
    assert gw1["edgex_source"] == "consul" and gw1["edgex_datacenter"] == "dc1"
    assert gw1["edgex_registry"] == "consul://consul.example:8500"
    assert gw1["edgex_node_meta"] == {"site": "plant-a"} and gw1["edgex_node_status"] == "passing"
    assert "edgex_manifest_age" not in gw1
    assert sorted(hostvars(inventory, "gw2")["edgex_services"]) == ["core-data"]
    # The token went to the registry code, and nowhere into the inventory.
    assert registry.calls[0]["token"] == TOKEN
    assert TOKEN not in json.dumps({h: hostvars(inventory, h) for h in inventory.hosts}, default=str)


def test_brief_service_detail_keeps_name_port_and_status_and_the_same_groups(registry, tmp_path):
    full, _plugin = parse(write_config(tmp_path / "full"))
    brief, _plugin = parse(write_config(tmp_path / "brief", service_detail="brief"))
    assert hostvars(brief, "gw1")["edgex_services"] == {
        "core-data": {"name": "core-data", "port": 59880, "status": "passing"},
        "edgex-redis": {"name": "edgex-redis", "port": 6379, "status": "critical"}}
    assert groups_of(brief, "gw1") == groups_of(full, "gw1") and groups_of(brief, "gw2") == groups_of(full, "gw2")
    assert {k: v for k, v in hostvars(brief, "gw1").items() if k != "edgex_services"} == {
        k: v for k, v in hostvars(full, "gw1").items() if k != "edgex_services"}


@pytest.mark.parametrize("prefix, expected", [
    ("edgex", ["edgex", "edgex_core_data", "edgex_core_data_passing", "edgex_dc_dc1", "edgex_redis",
               "edgex_redis_critical", "edgex_source_consul", "edgex_tag_core", "edgex_tag_edgex"]),
    # Another prefix: the service key keeps its own "edgex-" part.
    ("fleet", ["fleet", "fleet_core_data", "fleet_core_data_passing", "fleet_dc_dc1", "fleet_edgex_redis",
               "fleet_edgex_redis_critical", "fleet_source_consul", "fleet_tag_core", "fleet_tag_edgex"]),
])
def test_groups_are_prefixed_once(registry, tmp_path, prefix, expected):
    inventory, _plugin = parse(write_config(tmp_path, group_prefix=prefix))
    assert groups_of(inventory, "gw1") == expected
    assert "edgex_edgex_redis" not in inventory.groups


def test_a_service_named_like_the_prefix_keeps_its_own_group(registry, tmp_path):
    # "edgex" alone must not collapse into the top group "edgex".
    discovery = consul_discovery(nodes=("gw1",))
    discovery.services.append(ServiceRecord(name="edgex", node="gw1", status="passing"))
    registry.answers["dc1"] = discovery
    inventory, _plugin = parse(write_config(tmp_path, datacenter="dc1"))
    assert "edgex_edgex" in groups_of(inventory, "gw1") and "edgex_edgex_passing" in groups_of(inventory, "gw1")


def test_compose_groups_and_keyed_groups(registry, tmp_path):
    path = write_config(tmp_path, compose={"core_data_port": "edgex_services['core-data'].port"},
                        groups={"has_redis": "'edgex-redis' in edgex_services"},
                        keyed_groups=[{"key": "edgex_node_meta.site", "prefix": "site"}])
    inventory, _plugin = parse(path)
    assert hostvars(inventory, "gw1")["core_data_port"] == 59880
    assert sorted(inventory.groups["has_redis"].get_hosts(), key=str)[0].name == "gw1"
    assert [h.name for h in inventory.groups["has_redis"].get_hosts()] == ["gw1"]
    assert sorted(h.name for h in inventory.groups["site_plant_a"].get_hosts()) == ["gw1", "gw2"]


def note_of(inventory):
    return hostvars(inventory, "gw1")["edgex_services"]["core-data"]["meta"]["note"]


@pytest.mark.parametrize("from_cache", [False, True])
def test_registry_values_are_never_templates(registry, tmp_path, from_cache):
    path = write_config(tmp_path, cache=True, cache_plugin="ansible.builtin.jsonfile",
                        cache_connection=str(tmp_path / "cache"))
    inventory, _plugin = parse(path)
    if from_cache:  # JSON read back from a cache file must not become trusted on the way
        inventory, _plugin = parse(path)
        assert len(registry.calls) == 1
    note = note_of(inventory)
    assert note == HOSTILE_NOTE and not is_trusted_as_template(note)
    templar = Templar(loader=DataLoader(), variables=hostvars(inventory, "gw1"))
    assert templar.template(trust_as_template("{{ edgex_services['core-data'].meta.note }}")) == HOSTILE_NOTE


# -- cache --------------------------------------------------------------------------------------
def test_cache_is_written_read_and_flushed(registry, tmp_path):
    cache_dir = tmp_path / "cache"
    path = write_config(tmp_path, token=TOKEN, cache=True, cache_plugin="ansible.builtin.jsonfile",
                        cache_connection=str(cache_dir))
    first, _plugin = parse(path)
    assert len(registry.calls) == 1
    files = list(cache_dir.iterdir())
    assert len(files) == 1 and "gw1" in files[0].read_text()
    assert TOKEN not in files[0].read_text()  # settings never reach the cache
    written = files[0].stat().st_mtime_ns

    second, _plugin = parse(path)  # a new run: answered from the cache, which is not rewritten
    assert len(registry.calls) == 1
    assert sorted(second.hosts) == sorted(first.hosts) and files[0].stat().st_mtime_ns == written

    registry.answers[None] = consul_discovery(nodes=("gw1", "gw2", "gw3"))
    flushed, _plugin = parse(path, cache=False)  # --flush-cache: asks again and writes back
    assert len(registry.calls) == 2 and "gw3" in flushed.hosts
    assert "gw3" in files[0].read_text()


def test_without_cache_every_run_asks(registry, tmp_path):
    path = write_config(tmp_path)
    parse(path)
    parse(path)
    assert len(registry.calls) == 2


# -- untrusted node names, errors, fallback -----------------------------------------------------
def test_hostile_node_names_are_skipped_with_a_warning(registry, tmp_path, warnings):
    hostile = ["-rf", "a b", "gw;reboot", "{{ evil }}", "all:!gw1", "../gw", ""]
    registry.answers["dc1"] = consul_discovery(nodes=["gw1"] + hostile)
    inventory, _plugin = parse(write_config(tmp_path, datacenter="dc1"))
    assert sorted(inventory.hosts) == ["gw1"]
    skipped = [w for w in warnings if "not a usable host name" in w]
    assert len(skipped) == len(hostile)
    assert all("consul://127.0.0.1:8500/dc1" in w for w in skipped)


@pytest.mark.parametrize("fallback_on_auth_error", [False, None])
def test_an_auth_error_is_a_parser_error_without_the_token(registry, tmp_path, fallback_on_auth_error):
    registry.answers["dc1"] = RegistryAuthError("Consul at http://127.0.0.1:8500 refused GET /v1/catalog/nodes: 403")
    options = dict(datacenter="dc1", token=TOKEN)
    if fallback_on_auth_error is not None:
        options["fallback_on_auth_error"] = fallback_on_auth_error
    with pytest.raises(AnsibleParserError) as error:
        parse(write_config(tmp_path, **options))
    message = str(error.value)
    assert "consul://127.0.0.1:8500/dc1" in message and "403" in message
    assert "fallback_on_auth_error" in message and TOKEN not in message


def test_fallback_warnings_name_the_source(registry, tmp_path, warnings):
    reason = "consul registry unreachable (Consul at http://127.0.0.1:8500 is unreachable); using the manifest"
    registry.answers["dc2"] = consul_discovery("dc2", nodes=("gw-east", "gw1"), source="manifest", warnings=[reason])
    inventory, _plugin = parse(write_config(tmp_path, datacenters=["dc1", "dc2"]))
    assert "EdgeX inventory source consul://127.0.0.1:8500/dc2: %s" % reason in warnings
    # gw1 answered live in dc1; the manifest's copy of it does not replace that.
    assert hostvars(inventory, "gw1")["edgex_source"] == "consul"
    assert hostvars(inventory, "gw-east")["edgex_source"] == "manifest"
    assert hostvars(inventory, "gw-east")["edgex_manifest_age"] == 3600.0
    assert "gw-east" in [h.name for h in inventory.groups["edgex_source_manifest"].get_hosts()]


def test_a_failed_source_is_skipped_and_all_failed_is_an_error(registry, tmp_path, warnings):
    registry.answers["dc2"] = RegistryUnavailableError("Consul at dc2 is unreachable, and no manifest_path is set")
    inventory, _plugin = parse(write_config(tmp_path, datacenters=["dc1", "dc2"]))
    assert sorted(inventory.hosts) == ["gw1", "gw2"]
    assert any(w.startswith("EdgeX inventory source skipped: consul://127.0.0.1:8500/dc2") for w in warnings)

    registry.answers["dc1"] = RegistryUnavailableError("Consul at dc1 is unreachable")
    with pytest.raises(AnsibleParserError, match="no EdgeX inventory source answered"):
        parse(write_config(tmp_path, datacenters=["dc1", "dc2"]))


def test_the_garbage_collector_is_paused_while_parsing_and_runs_again_after(registry, tmp_path, monkeypatch):
    seen = []
    plugin_module = sys.modules[type(inventory_loader.get("edgex.sysmgmt.edgex")).__module__]
    real_populate = plugin_module.InventoryModule._populate
    monkeypatch.setattr(plugin_module.InventoryModule, "_populate",
                        lambda self, results: seen.append(gc.isenabled()) or real_populate(self, results))
    assert gc.isenabled()
    parse(write_config(tmp_path))
    assert seen == [False] and gc.isenabled()
    registry.answers["dc1"] = RegistryUnavailableError("Consul at dc1 is unreachable")
    with pytest.raises(AnsibleParserError):
        parse(write_config(tmp_path, datacenter="dc1"))
    assert gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        parse(write_config(tmp_path))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_datacenter_fallback_takes_only_that_datacenter_from_the_manifest(tmp_path, monkeypatch):
    # The real discover() here: Consul on a closed port, the manifest holds two datacenters.
    manifest = {"version": 1, "updated_at": "2026-01-01T00:00:00Z", "hosts": {
        "gw1": {"address": "127.0.0.1", "datacenter": "dc1", "services": {"core-data": {"port": 59880}}},
        "gw-east": {"address": "127.0.0.20", "datacenter": "dc2", "services": {"core-data": {"port": 59880}}}}}
    (tmp_path / "manifest.yml").write_text(yaml.safe_dump(manifest))

    def unreachable(settings):
        raise RegistryUnavailableError("no Consul in a unit test")

    monkeypatch.setattr(ConsulRegistry, "discover", lambda self: unreachable(self.settings))
    inventory, _plugin = parse(write_config(tmp_path, datacenter="dc2", manifest_path="manifest.yml"))
    assert sorted(inventory.hosts) == ["gw-east"]


# -- options: the modules' names and rules --------------------------------------------------------
def test_relative_manifest_path_is_relative_to_the_inventory_file(tmp_path, monkeypatch):
    # The real discover() (registry_type none reads only the manifest), run from another directory.
    project = tmp_path / "project" / "inventories"
    project.mkdir(parents=True)
    manifest = {"version": 1, "hosts": {"gw-line1": {"address": "10.0.0.1", "services": {"core-data": {}}}}}
    (project / "manifest.yml").write_text(yaml.safe_dump(manifest))
    path = write_config(project, registry_type="none", manifest_path="manifest.yml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "manifest.yml").write_text(yaml.safe_dump({"version": 1, "hosts": {"wrong": {"address": "x"}}}))
    monkeypatch.chdir(str(elsewhere))

    inventory, _plugin = parse(path)
    assert sorted(inventory.hosts) == ["gw-line1"]
    assert hostvars(inventory, "gw-line1")["edgex_registry"] == "none:%s" % (project / "manifest.yml")


def test_every_path_option_is_relative_to_the_inventory_file(registry, tmp_path, monkeypatch):
    directory = tmp_path / "inv"
    path = write_config(directory, manifest_path="state/manifest.yml", ca_path="tls/ca.pem",
                        client_cert="/etc/edgex/client.pem", client_key="~/client.key",
                        sources=[{"datacenter": "dc1"}, {"datacenter": "dc2", "ca_path": "tls/dc2-ca.pem",
                                                         "client_cert": "../shared/dc2.pem"}])
    monkeypatch.chdir(str(tmp_path))
    parse(path)
    first, second = registry.calls
    assert first["manifest_path"] == str(directory / "state" / "manifest.yml")
    assert first["ca_path"] == str(directory / "tls" / "ca.pem")
    assert first["client_cert"] == "/etc/edgex/client.pem"  # absolute stays
    assert first["client_key"] == os.path.expanduser("~/client.key")
    assert second["ca_path"] == str(directory / "tls" / "dc2-ca.pem")
    assert second["client_cert"] == str(tmp_path / "shared" / "dc2.pem")
    assert second["manifest_path"] == first["manifest_path"]


ENVIRONMENT = {"CONSUL_HTTP_ADDR": "https://consul.example:8501", "CONSUL_HTTP_TOKEN": TOKEN,
               "CONSUL_HTTP_SSL_VERIFY": "false", "CONSUL_CACERT": "/etc/consul/ca.pem"}


@pytest.mark.parametrize("file_options", [
    {},
    {"registry_type": "keeper"},
    {"host": "10.0.0.5", "port": 8600, "token": "from-the-file"},
    {"registry_type": "keeper", "token": "keeper-token", "validate_certs": True},
    {"scheme": "http", "timeout": 2.5, "fallback_on_auth_error": True},
])
def test_settings_resolve_exactly_as_a_modules_do(registry, tmp_path, monkeypatch, file_options):
    """Same option names, same resolution: the plugin's settings are what a module given the same
    options in the same environment would use (CONSUL_HTTP_TOKEN never goes to core-keeper)."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    parse(write_config(tmp_path, **file_options))
    module_params = {name: None for name in registry_argument_spec()}
    module_params.update({name: spec["default"] for name, spec in registry_argument_spec().items()
                          if "default" in spec})
    module_params.update(file_options)
    assert registry.calls == [resolve_registry_settings(module_params)]
    if file_options.get("registry_type") == "keeper":
        assert registry.calls[0]["token"] != TOKEN


def test_datacenters_make_one_source_each(registry, tmp_path):
    parse(write_config(tmp_path, datacenters=["factory-a", "factory-b"], host="consul.example"))
    assert [(c["host"], c["datacenter"]) for c in registry.calls] == [
        ("consul.example", "factory-a"), ("consul.example", "factory-b")]


def test_sources_override_the_top_level_and_datacenters_are_ignored(registry, tmp_path, warnings):
    path = write_config(tmp_path, token=TOKEN, timeout=3, datacenters=["ignored"],
                        sources=[{"host": "a.example", "datacenter": "dc1"},
                                 {"host": "b.example", "port": "8501", "scheme": "https", "datacenter": "dc2"},
                                 {"registry_type": "keeper", "host": "k.example"}])
    parse(path)
    assert [(c["registry_type"], c["host"], c["port"], c["scheme"], c["datacenter"]) for c in registry.calls] == [
        ("consul", "a.example", 8500, "http", "dc1"), ("consul", "b.example", 8501, "https", "dc2"),
        ("keeper", "k.example", 59890, "http", None)]
    assert all(c["timeout"] == 3.0 and c["token"] == TOKEN for c in registry.calls)
    assert any("datacenters is ignored because sources is set" in w for w in warnings)


@pytest.mark.parametrize("source, message", [
    ({"manifest_path": "x.yml"}, "sources[1] has unknown option(s) manifest_path"),
    ({"hots": "typo.example"}, "sources[1] has unknown option(s) hots"),
    ({"port": "eighty"}, "sources[1]: "),
    ({"registry_type": "etcd"}, "sources[1]: "),
    ({"scheme": "ftp"}, "sources[1]: "),
    ("consul.example", "sources[1] must be a mapping"),
])
def test_bad_sources_are_errors_naming_the_item(registry, tmp_path, source, message):
    with pytest.raises(AnsibleParserError) as error:
        parse(write_config(tmp_path, sources=[{"host": "ok.example"}, source]))
    assert message in str(error.value)
    assert registry.calls == []  # nothing was asked before the file was found good


# -- core-keeper sources and hosts made twice (issue 10 item 11) -------------------------------
def test_each_keeper_source_names_its_gateway(registry, tmp_path, monkeypatch):
    def keeper(settings):
        registry.calls.append(dict(settings))
        node = settings.get("node_name") or settings["host"]
        return Discovery(source="keeper", nodes=[NodeRecord(name=node, address=settings["host"], status="passing")],
                         services=[ServiceRecord(name="core-data", node=node, port=59880, status="passing")])

    plugin_module = sys.modules[type(inventory_loader.get("edgex.sysmgmt.edgex")).__module__]
    monkeypatch.setattr(plugin_module, "discover", keeper)
    path = write_config(tmp_path, registry_type="keeper", sources=[
        {"host": "127.0.0.1", "port": 59890, "node": "gw1"}, {"host": "127.0.0.1", "port": 59891, "node": "gw2"}])
    inventory, _plugin = parse(path)
    assert sorted(inventory.hosts) == ["gw1", "gw2"]
    assert [c["node_name"] for c in registry.calls] == ["gw1", "gw2"]


def test_two_live_sources_that_make_one_host_warn_instead_of_dropping_silently(registry, tmp_path, warnings):
    path = write_config(tmp_path, sources=[{"host": "consul-a.example"}, {"host": "consul-b.example"}])
    inventory, _plugin = parse(path)  # both answer gw1 and gw2
    assert sorted(inventory.hosts) == ["gw1", "gw2"]
    assert any("node gw1 from consul://consul-b.example:8500 is also in consul://consul-a.example:8500" in w
               for w in warnings)


def test_a_registry_option_that_cannot_be_used_is_a_parse_error_without_the_value(registry, tmp_path):
    with pytest.raises(AnsibleParserError, match="host must be a host name or an IP address") as error:
        parse(write_config(tmp_path, host="127.0.0.1/?token=" + TOKEN))
    assert TOKEN not in str(error.value) and registry.calls == []
