"""YAML in and out (issue 11, items 5, 6 and 12): aliases refused in a manifest and bounded in a
compose file, bytes that are not UTF-8 and odd keys named with their line, and a writer whose
output reads back as what it was given."""

import os
import time

import pytest
import yaml

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ManifestError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest import yamlio
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore, dump, parse

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
NAPA = os.path.join(REPO, "tests", "unit", "data", "compose", "napa-3.1.1-no-secty.yml")


def alias_bomb(hosts, services=200):
    """The file of issue 11 item 5: one services map, anchored once, reused by every host."""
    lines = ["version: 1", "hosts:", "  gw0:", "    address: 10.0.0.1",
             "    services: &all"]
    lines += ["      svc%d: {port: %d}" % (n, 1000 + n) for n in range(services)]
    lines += ["  gw%d: {address: 10.0.0.1, services: *all}" % n for n in range(1, hosts)]
    return "\n".join(lines) + "\n"


def write(tmp_path, content, name="manifest.yml"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def manifest_error(tmp_path, content):
    path = write(tmp_path, content)
    with pytest.raises(ManifestError) as info:
        ManifestStore(path).read()
    return path, str(info.value)


# -- 5. aliases -------------------------------------------------------------------------------
def test_a_manifest_with_an_alias_is_refused_at_the_first_alias_and_quickly(tmp_path):
    started = time.monotonic()
    path, message = manifest_error(tmp_path, alias_bomb(10000))
    elapsed = time.monotonic() - started
    assert message.startswith("manifest %s, line 206: YAML aliases (*all) are not allowed in a manifest" % path)
    assert "the collection never writes them" in message
    assert elapsed < 10  # a generous bound; the expansion took minutes


def test_a_merge_key_is_refused_in_a_manifest(tmp_path):
    _path, message = manifest_error(tmp_path, "version: 1\nhosts:\n  gw1:\n    <<: {address: 10.0.0.1}\n")
    assert "line 4: merge keys (<<) are not allowed in a manifest" in message


def test_an_anchor_without_an_alias_is_harmless(tmp_path):
    path = write(tmp_path, "version: 1\nhosts: &h\n  gw1: {address: 10.0.0.1}\n")
    assert ManifestStore(path).read()["hosts"] == {"gw1": {"address": "10.0.0.1"}}


def test_the_collection_never_writes_an_alias_even_for_shared_objects():
    services = {"core-data": {"port": 59880, "tags": ["edgex"]}}
    data = {"version": 1, "hosts": {"gw%d" % n: {"address": "10.0.0.%d" % n, "services": services} for n in range(3)}}
    text = dump(data)
    assert "&" not in text and "*" not in text
    assert parse(text) == data
    data["x"] = 1.5  # a value the direct writer hands to PyYAML: no alias there either
    assert "&" not in yamlio.dump_yaml(data) and "*" not in yamlio.dump_yaml(data)


def compose_with_anchors(tmp_path, body):
    return write(tmp_path, body, "docker-compose.yml")


def test_a_compose_file_keeps_its_anchors_aliases_and_merge_keys(tmp_path):
    path = compose_with_anchors(tmp_path, (
        "x-common-env: &common\n"
        "  EDGEX_SECURITY_SECRET_STORE: \"false\"\n"
        "  SERVICE_HOST: edgex-core-data\n"
        "x-restart: &restart unless-stopped\n"
        "services:\n"
        "  core-data:\n"
        "    environment:\n"
        "      <<: *common\n"
        "      SERVICE_HOST: overridden\n"
        "    restart: *restart\n"
        "  core-metadata:\n"
        "    environment: *common\n"))
    compose = yamlio.read_yaml_file(path)
    assert compose["services"]["core-data"]["environment"] == {
        "EDGEX_SECURITY_SECRET_STORE": "false", "SERVICE_HOST": "overridden"}
    assert compose["services"]["core-data"]["restart"] == "unless-stopped"
    assert compose["services"]["core-metadata"]["environment"]["SERVICE_HOST"] == "edgex-core-data"
    assert compose == yaml.safe_load(open(path))  # what SafeLoader makes of it


def test_a_compose_file_that_expands_without_bound_is_refused(tmp_path):
    """The billion laughs: each level names the one before ten times."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += ["a%d: &a%d [%s]" % (n, n, ", ".join(["*a%d" % (n - 1)] * 10)) for n in range(1, 9)]
    path = compose_with_anchors(tmp_path, "\n".join(levels) + "\nservices: {}\n")
    started = time.monotonic()
    with pytest.raises(ManifestError, match="compose file %s, line \\d+: aliases expand the document by more than "
                                            "100000 nodes; refused" % path):
        yamlio.read_yaml_file(path)
    assert time.monotonic() - started < 10


def test_the_real_edgex_compose_file_reads_as_safeloader_reads_it():
    assert yamlio.read_yaml_file(NAPA) == yaml.safe_load(open(NAPA))


# -- 6. bytes and shapes ----------------------------------------------------------------------
def test_bytes_that_are_not_utf8_are_named_with_their_line(tmp_path):
    path, message = manifest_error(tmp_path, b"version: 1\nhosts:\n  gw1: {address: 10.0.0.\xff}\n")
    assert message == "manifest %s is not UTF-8 text: byte 0xff at line 3, column 25" % path


def test_a_compose_file_that_is_not_utf8_is_named_too(tmp_path):
    path = write(tmp_path, b"services:\n  core-data: {image: \xfe}\n", "docker-compose.yml")
    with pytest.raises(ManifestError, match="compose file %s is not UTF-8 text: byte 0xfe at line 2" % path):
        yamlio.read_yaml_file(path)


@pytest.mark.parametrize("text, line, problem", [
    ("version: 1\nhosts:\n  ? [1, 2]\n  : {address: x}\n", 3, "a mapping key must be a plain value (a name), not a sequence"),
    ("version: 1\nhosts:\n  {a: 1}: {address: x}\n", 3, "a mapping key must be a plain value (a name), not a mapping"),
    ("version: 1\nhosts: {}\nhosts: {}\n", 3, "duplicate key 'hosts'"),
    ("version: 1\nhosts: {}\n---\nversion: 1\n", 3, "more than one YAML document; expected one"),
    ("version: 1\nhosts: !!set {a}\n", 2, "the tag tag:yaml.org,2002:set is not supported here"),
])
def test_odd_shapes_are_named_with_their_line(tmp_path, text, line, problem):
    path, message = manifest_error(tmp_path, text)
    assert message == "manifest %s, line %d: %s" % (path, line, problem)


def test_a_missing_compose_file_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot read compose file .*nope.yml: it does not exist"):
        yamlio.read_yaml_file(str(tmp_path / "nope.yml"))


@pytest.mark.parametrize("text", [
    "a: 1\nb: [1, 2.5, true, null, ~, '', 0x1f, 0o17, 1_000, 12:30, .inf]\nc: {d: 2026-01-01}\n",
    "a: !!str 12\nb: !!int '7'\nc: 'yes'\nd: yes\ne: \"x\\ty\"\nf: |\n  two\n  lines\n",
    "- 1\n- - 2\n  - 3\n- {k: v}\n",
    "plain text\n",
    "",
])
def test_scalars_read_as_safeloader_reads_them(text):
    assert yamlio.load_yaml(text, "t", "test", aliases=True) == yaml.safe_load(text)


# -- the writer -------------------------------------------------------------------------------
TRICKY = ["", " ", "yes", "no", "on", "null", "~", "true", "1", "1.5", "0x1f", "12:30", "2026-01-01",
          "2026-01-01T00:00:00Z", "-", "- x", "?", ":", "a: b", "a:", "#x", "x #y", "@x", "`x", "!x", "&x",
          "*x", "%x", "|", ">", "{}", "[]", "'", '"', "it's", "a\nb", "tab\there", "\x00", "\x7f", "é",
          "日本", "\U0001F600", "\u2028", "\ufeff", "...", "---", "<<", "=", ".inf", "consul://h:8500/dc1",
          "/api/v3/ping", "edgex/core-data", "device-modbus@1", "x" * 300, "a  b", "a b ", "Health Check: x",
          "a #b", "a#b", "it's: x"]


@pytest.mark.parametrize("value", TRICKY)
def test_every_string_reads_back_as_itself(value):
    data = {"version": 1, "hosts": {"gw1": {"address": value, "meta": {value[:100] or "k": value},
                                            "services": {}}}, "list": [value, [value], {"k": value}]}
    text = yamlio.dump_yaml(data)
    assert yamlio.load_yaml(text, "t", aliases=False) == data
    assert yaml.safe_load(text) == data


def test_the_writer_lays_a_manifest_out_as_pyyaml_does():
    data = {"version": 1, "generated_from": "consul://127.0.0.1:8500/dc1", "updated_at": "2026-11-24T23:00:00Z",
            "hosts": {"gw1": {"address": "127.0.0.1", "datacenter": "dc1", "meta": {},
                              "services": {"core-data": {"port": 59880, "depends_on": ["core-metadata"], "tags": [],
                                                         "meta": {"version": "3.1.1", "k": "it's", "n": "Health Check: core-data"}},
                                           "core-metadata": {"port": None, "health": "/api/v3/ping"}}}},
            "x": [[1, 2], {"a": [3]}, []]}
    assert yamlio.dump_yaml(data) == yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)


def test_the_compose_importer_reads_through_the_safe_reader(tmp_path):
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.compose import manifest_from_compose

    path = write(tmp_path, b"services:\n  core-data: {image: \xff}\n", "docker-compose.yml")
    with pytest.raises(ManifestError, match="compose file %s is not UTF-8 text: byte 0xff at line 2" % path):
        manifest_from_compose(path)
