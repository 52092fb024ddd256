"""The core-keeper provider's configuration calls (kv_entries, kv_write, kv_delete) against the
core-keeper emulator. The Consul provider's are tests/integration/test_registry_consul_kv.py (the
Consul emulator, or $CONSUL_HTTP_ADDR, is not shipped with the collection's unit tests)."""

from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.keeper import KeeperRegistry


def test_keeper_entries_writes_and_deletes_without_versions(keeper):
    registry = KeeperRegistry(keeper.settings())
    assert registry.kv_check_and_set is False
    assert registry.kv_entries("edgex/v4/core-data") == {}
    assert registry.kv_write("edgex/v4/core-data/Writable/LogLevel", "INFO", 0) is True
    assert registry.kv_write("edgex/v4/core-data/Writable/LogLevel", "DEBUG", 0) is True  # no check-and-set
    assert registry.kv_write("edgex/v4/core-data-x/Writable/LogLevel", "INFO") is True
    assert registry.kv_entries("edgex/v4/core-data") == {
        "edgex/v4/core-data/Writable/LogLevel": ("DEBUG", None)}
    assert registry.kv_delete("edgex/v4/core-data/Writable/LogLevel") is True
    assert registry.kv_delete("edgex/v4/core-data/Writable/LogLevel") is True  # already gone
    assert registry.kv_entries("edgex/v4/core-data") == {}
    assert sorted(registry.kv_entries("edgex")) == ["edgex/v4/core-data-x/Writable/LogLevel"]
