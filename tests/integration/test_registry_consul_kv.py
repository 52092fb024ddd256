"""The Consul provider's configuration calls (kv_entries, kv_write, kv_delete) against the Consul
emulator (or $CONSUL_HTTP_ADDR): versions, check-and-set, deletes, ACL-filtered reads and refusals."""

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import RegistryAuthError, RegistryFilteredError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.consul import ConsulRegistry

FOLDER = "edgex/v3/core-data"


def test_consul_entries_carry_modify_index_and_leave_neighbours_out(consul):
    registry = ConsulRegistry(consul.settings())
    assert registry.kv_check_and_set is True
    assert registry.kv_entries(FOLDER) == {}
    assert registry.kv_write(FOLDER + "/Writable/LogLevel", "INFO") is True
    assert registry.kv_write(FOLDER + "-extra/Writable/LogLevel", "INFO") is True  # not below core-data/
    assert registry.kv_write(FOLDER + "/Service/Host", "") is True
    found = registry.kv_entries(FOLDER)
    assert sorted(found) == [FOLDER + "/Service/Host", FOLDER + "/Writable/LogLevel"]
    assert found[FOLDER + "/Service/Host"].value == ""
    assert isinstance(found[FOLDER + "/Writable/LogLevel"].index, int)


def test_consul_check_and_set_refuses_a_stale_index_and_a_create_over_an_existing_key(consul):
    registry = ConsulRegistry(consul.settings())
    key = FOLDER + "/Writable/LogLevel"
    assert registry.kv_write(key, "INFO", 0) is True  # created
    assert registry.kv_write(key, "DEBUG", 0) is False  # exists now: cas=0 refuses
    index = registry.kv_entries(FOLDER)[key].index
    assert registry.kv_write(key, "WARN") is True  # someone else writes
    assert registry.kv_write(key, "DEBUG", index) is False
    assert registry.kv_entries(FOLDER)[key].value == "WARN"
    fresh = registry.kv_entries(FOLDER)[key].index
    assert registry.kv_write(key, "DEBUG", fresh) is True
    assert registry.kv_delete(key, fresh) is False  # the write moved its index
    assert registry.kv_delete(key, registry.kv_entries(FOLDER)[key].index) is True
    assert registry.kv_entries(FOLDER) == {}


def test_consul_read_filtered_by_acls_is_an_error_not_a_partial_configuration(consul_acl):
    token = consul_acl.make_token({"key_prefix": {FOLDER + "/Writable/": "read"}})
    ConsulRegistry(consul_acl.settings()).kv_write(FOLDER + "/Writable/LogLevel", "INFO")
    ConsulRegistry(consul_acl.settings()).kv_write(FOLDER + "/Service/Port", "59880")
    registry = ConsulRegistry(consul_acl.settings(token=token))
    with pytest.raises(RegistryFilteredError) as failed:
        registry.kv_entries(FOLDER)
    assert "filtered its answer to GET /v1/kv/edgex/v3/core-data/?recurse by ACLs" in str(failed.value)
    assert 'key_prefix "edgex/v3/core-data/" read' in str(failed.value) and token not in str(failed.value)


def test_consul_write_without_permission_is_refused_without_the_token(consul_acl):
    token = consul_acl.make_token({"key_prefix": {"edgex/": "read"}})
    with pytest.raises(RegistryAuthError) as failed:
        ConsulRegistry(consul_acl.settings(token=token)).kv_write(FOLDER + "/Writable/LogLevel", "DEBUG", 0)
    assert "refused PUT /v1/kv/edgex/v3/core-data/Writable/LogLevel?cas=0: 403" in str(failed.value)
    assert token not in str(failed.value)
