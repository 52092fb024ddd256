"""edgex_manifest importing edgex-compose files, in-process: profiles and what the import reports."""

import os

import yaml

from ansible_collections.edgex.sysmgmt.plugins.modules import edgex_manifest

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data", "compose")


def written(args):
    """The services of gw1 in the manifest the module wrote (its result is a summary, not the manifest)."""
    with open(args["manifest_path"]) as handle:
        return yaml.safe_load(handle)["hosts"]["gw1"]["services"]


def test_profiles_choose_the_services_and_the_result_says_what_was_left_out(run_module, tmp_path):
    args = {"manifest_path": str(tmp_path / "manifest.yml"), "state": "present", "node": "gw1",
            "address": "127.0.0.1", "src": os.path.join(DATA, "profiles.yml")}
    result = run_module(edgex_manifest.main, args)
    assert result["changed"] is True and result["source"] == "compose"
    assert sorted(written(args)) == ["consul", "core-data", "core-metadata"]
    assert result["compose"]["profiles"] == []
    assert [entry["service"] for entry in result["compose"]["left_out"]] == ["device-virtual", "device-rest", "ui"]
    assert result["compose"]["file"] == os.path.join(DATA, "profiles.yml")

    result = run_module(edgex_manifest.main, dict(args, profiles=["devices"]))
    assert sorted(written(args)) == [
        "consul", "core-data", "core-metadata", "device-rest", "device-virtual"]
    assert result["compose"]["left_out"] == [{"service": "ui", "key": "ui", "profiles": ["ui"]}]


def test_a_2x_file_is_imported_under_service_keys(run_module, tmp_path):
    args = {"manifest_path": str(tmp_path / "manifest.yml"), "state": "present", "node": "gw1",
            "address": "127.0.0.1", "src": os.path.join(DATA, "jakarta-2.1-secure.yml")}
    assert run_module(edgex_manifest.main, args)["changed"] is True
    services = written(args)
    assert "system" not in services and services["sys-mgmt-agent"]["health"] == "/api/v2/ping"
    assert services["security-proxy-setup"]["one_shot"] is True


def test_an_unreadable_compose_file_fails_naming_it(run_module, tmp_path):
    src = tmp_path / "docker-compose.yml"
    src.write_bytes(b"services:\n  core-data: {image: \xff}\n")
    result = run_module(edgex_manifest.main, {"manifest_path": str(tmp_path / "manifest.yml"), "state": "present",
                                              "node": "gw1", "address": "127.0.0.1", "src": str(src)})
    assert result["failed"] is True
    assert result["msg"].startswith("compose file %s is not UTF-8 text: byte 0xff" % src)
    assert not (tmp_path / "manifest.yml").exists()
