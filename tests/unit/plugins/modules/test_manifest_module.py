"""edgex_manifest in-process, with a fake registry: what state=synced returns and warns about an
incomplete answer (issue 10 items 1 and 10), and what works in a read-only directory (issue 11
item 11)."""

import os
import sys

import pytest
import yaml
from ansible.module_utils import basic

from ansible_collections.edgex.sysmgmt.plugins.module_utils import _module
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord
from ansible_collections.edgex.sysmgmt.plugins.modules import edgex_manifest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils"))
from fs_powers import read_only  # noqa: E402

FILTERED = "Consul filtered the answer by ACLs (X-Consul-Results-Filtered-By-ACLs: true)"
MANIFEST = {"version": 1, "generated_from": "consul://127.0.0.1:8500/dc1", "updated_at": "2026-01-01T00:00:00Z",
            "hosts": {"gw%d" % n: {"address": "10.0.0.%d" % n, "datacenter": "dc1", "services": {
                "core-data": {"id": "core-data", "address": "10.0.0.%d" % n, "port": 59880, "tags": [], "meta": {},
                              "depends_on": [], "executor": "docker", "target": "edgex-core-data"}}}
                      for n in (1, 2, 3)}}


class FakeRegistry(object):
    def __init__(self, discovery):
        self.answer = discovery

    def discover(self):
        return self.answer


@pytest.fixture
def registry_answers(monkeypatch):
    def answer(discovery):
        monkeypatch.setattr(_module, "open_registry", lambda settings, check_mode=False: FakeRegistry(discovery))
    return answer


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, message: seen.append(message))
    return seen


@pytest.fixture
def manifest(tmp_path):
    directory = tmp_path / "state"
    directory.mkdir()
    path = directory / "manifest.yml"
    path.write_text(yaml.safe_dump(MANIFEST))
    return str(path)


def view(nodes=(1, 2, 3), gaps=(), port=59880):
    return Discovery(source="consul", datacenter="dc1", gaps=list(gaps),
                     nodes=[NodeRecord("gw%d" % n, "10.0.0.%d" % n, "dc1") for n in nodes],
                     services=[ServiceRecord("core-data", "gw%d" % n, address="10.0.0.%d" % n, port=port,
                                             datacenter="dc1") for n in nodes])


def synced(run_module, path, **extra):
    return run_module(edgex_manifest.main, dict({"manifest_path": path, "state": "synced"}, **extra.pop("args", {})),
                      **extra)


def test_an_incomplete_answer_is_said_in_the_result_and_a_warning(run_module, registry_answers, warnings, manifest):
    registry_answers(view(nodes=(1,), gaps=[FILTERED], port=59999))
    result = synced(run_module, manifest)
    assert result["hosts"] == 3 and sorted(yaml.safe_load(open(manifest))["hosts"]) == ["gw1", "gw2", "gw3"]
    assert result["changed"] is True and result["complete"] is False and result["gaps"] == [FILTERED]
    assert result["summary"]["hosts_not_removed"] == 2 and result["changes"]["hosts_not_removed"] == ["gw2", "gw3"]
    assert result["summary"]["hosts_removed"] == 0 and result["changes"]["services_updated"] == ["gw1/core-data"]
    assert "manifest" not in result and result["services"] == 3
    assert result["backup_path"] == manifest + ".bak"
    assert len(warnings) == 1 and warnings[0].startswith("the consul answer was incomplete (%s): 2 hosts and "
                                                         "0 services it did not list were kept, not removed "
                                                         "(gw2, gw3)" % FILTERED)


def test_a_complete_answer_says_what_it_removed(run_module, registry_answers, warnings, manifest):
    registry_answers(view(nodes=(1, 2)))
    result = synced(run_module, manifest)
    assert result["changed"] is True and result["complete"] is True and warnings == []
    assert result["summary"]["hosts_removed"] == 1 and result["changes"]["hosts_removed"] == ["gw3"]
    assert result["changes"]["services_removed"] == ["gw3/core-data"]


def test_the_same_answer_twice_is_no_change_and_keeps_generated_from(run_module, registry_answers, manifest):
    registry_answers(view())
    result = synced(run_module, manifest)
    assert result["changed"] is False and "backup_path" not in result
    assert yaml.safe_load(open(manifest))["generated_from"] == "consul://127.0.0.1:8500/dc1"
    assert result["confirmed_at"] > "2026-01-01T00:00:00Z"


# -- issue 11 item 11: a read-only directory ---------------------------------------------------
def test_check_mode_and_nothing_to_do_work_in_a_read_only_directory(
        run_module, registry_answers, warnings, manifest):
    directory = os.path.dirname(manifest)
    text = open(manifest).read()
    registry_answers(view())
    with read_only(directory):
        check = run_module(edgex_manifest.main, {"manifest_path": manifest, "state": "present", "node": "gw1",
                                                 "name": "device-rest", "service_port": 59986}, check_mode=True)
        assert check.get("failed") is not True and check["changed"] is True, check
        nothing = synced(run_module, manifest)
        assert nothing.get("failed") is not True and nothing["changed"] is False, nothing
        assert any("could not be recorded" in w and "Read-only file system" in w for w in warnings)
        absent = run_module(edgex_manifest.main, {"manifest_path": manifest, "state": "absent", "node": "gw9"})
        assert absent.get("failed") is not True and absent["changed"] is False, absent
        write = run_module(edgex_manifest.main, {"manifest_path": manifest, "state": "present", "node": "gw1",
                                                 "name": "device-rest", "service_port": 59986})
        assert write["failed"] is True and "Read-only file system (EROFS)" in write["msg"]
    assert open(manifest).read() == text
