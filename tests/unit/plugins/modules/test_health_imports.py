"""What a module run imports: a gateway's Consul health check reads its node with two plain GETs
and probes, so it must not import the Consul library (and the requests stack under it), the
executors, core-keeper's client, the manifest store or PyYAML. Each run is a fresh Python process
(edgex_health's main(), as AnsiballZ runs it) that reports its result and sys.modules."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.modules import edgex_health
from ping_servers import serve_factory
from test_registry_transport import FakeConsul

# The directory holding ansible_collections/, for the child's sys.path.
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(edgex_health.__file__), *[os.pardir] * 5))
PACKAGE = "ansible_collections.edgex.sysmgmt.plugins.module_utils."
NOT_FOR_A_HEALTH_CHECK = ("consul", "requests", "urllib3", "yaml", PACKAGE + "_executors",
                          PACKAGE + "_registry.keeper", PACKAGE + "_registry.manifest", PACKAGE + "_manifest",
                          PACKAGE + "_ordering", PACKAGE + "_fileio")

CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, %r)
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.edgex.sysmgmt.plugins.modules import edgex_health
    with patch_module_args(json.loads(sys.argv[1])):
        try:
            edgex_health.main()
        except SystemExit:
            pass
    print(json.dumps(sorted(sys.modules)))
""") % COLLECTIONS


def run_health(args):
    """(the module's result, the modules its process had imported when it exited)."""
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                           timeout=120, check=True)
    result, modules = child.stdout.strip().splitlines()[-2:]
    return json.loads(result), json.loads(modules)


def imported(modules, prefix):
    return [name for name in modules if name == prefix or name.startswith(prefix + ".")]


@pytest.fixture
def gateway():
    """A Consul that knows node gw1 with core-data, and core-data's ping server: the args of a check."""
    start, stop = serve_factory()
    port = start("ok")
    node = {"Node": "gw1", "Address": "127.0.0.1", "Datacenter": "dc1"}
    consul = FakeConsul({
        "/v1/catalog/node/gw1": (200, {"Node": node, "Services": {"core-data": {
            "ID": "core-data", "Service": "core-data", "Address": "127.0.0.1", "Port": port, "Tags": [],
            "Meta": {}}}}),
        "/v1/health/node/gw1": (200, [
            {"Node": "gw1", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
             "ServiceID": "", "Output": ""},
            {"Node": "gw1", "CheckID": "core-data", "Name": "Health Check: core-data", "Status": "passing",
             "ServiceID": "core-data", "Output": ""}]),
    })
    yield {"host": "127.0.0.1", "port": consul.server.server_address[1], "node": ["gw1"], "probe_timeout": 5}, port
    consul.close()
    stop()


def test_a_consul_health_check_imports_neither_the_library_nor_what_it_does_not_use(gateway):
    args, _port = gateway
    result, modules = run_health(args)
    assert (result["source"], result["summary"]["healthy"], result["summary"]["total"]) == ("consul", 1, 1), result
    assert not [name for prefix in NOT_FOR_A_HEALTH_CHECK for name in imported(modules, prefix)]


def test_what_a_run_uses_it_imports(gateway, tmp_path):
    # The same check with a manifest to read and the executors asked: this test sees imports.
    args, port = gateway
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(yaml.safe_dump({"version": 1, "hosts": {"gw1": {"address": "127.0.0.1", "services": {
        "core-data": {"port": port, "executor": "docker"}}}}}))
    result, modules = run_health(dict(args, manifest_path=str(manifest), check_executor=True,
                                      docker_host="unix://%s" % (tmp_path / "no-engine.sock")))
    assert result["summary"]["total"] == 1, result
    for prefix in ("yaml", PACKAGE + "_manifest.store", PACKAGE + "_executors.docker"):
        assert imported(modules, prefix), prefix
    assert not imported(modules, "consul") and not imported(modules, "requests")
