"""The Consul provider against answers as production Consul (1.16) gives them: ACL-filtered
lists (with the filtered header masked for a request without a token), and a hostile
registration among good ones (issue 10 items 1-2, issue 11 item 9).
"""

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import RegistryAuthError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.consul import ConsulRegistry


@pytest.fixture
def fleet(consul_emulator):
    """ACLs on (default deny); core-data on gw2 (container host name) and gw3."""
    handle = consul_emulator(acl=True)
    handle.register("gw2", "core-data", node_address="127.0.0.2", address="edgex-core-data", port=59880)
    handle.register("gw3", "core-data", node_address="127.0.0.3", address="127.0.0.3", port=59880)
    return handle


def test_the_management_token_sees_the_fleet(fleet):
    discovery = ConsulRegistry(fleet.settings()).discover()
    assert sorted((s.node, s.name) for s in discovery.services if s.name == "core-data") == [
        ("gw2", "core-data"), ("gw3", "core-data")]


def test_no_token_under_default_deny_is_an_auth_error_not_an_empty_fleet(fleet):
    with pytest.raises(RegistryAuthError, match="without a token, default policy deny"):
        ConsulRegistry(fleet.settings(token="")).discover()


def test_a_token_that_cannot_read_services_is_an_auth_error(fleet):
    token = fleet.make_token({"node_prefix": {"": "read"}})
    with pytest.raises(RegistryAuthError, match="the token cannot see the whole catalogue") as error:
        ConsulRegistry(fleet.settings(token=token)).discover()
    assert token not in str(error.value)


def test_a_token_that_sees_part_of_the_fleet_is_an_auth_error(fleet):
    token = fleet.read_only_token(nodes="gw2", services="")
    with pytest.raises(RegistryAuthError):
        ConsulRegistry(fleet.settings(token=token)).discover()


def test_one_hostile_registration_does_not_take_the_fleet_down(fleet):
    fleet.register("gw2", "../x", node_address="127.0.0.2", port=1)
    discovery = ConsulRegistry(fleet.settings()).discover()
    assert ("gw3", "core-data") in [(s.node, s.name) for s in discovery.services]
    assert "../x" not in [s.name for s in discovery.services] and not discovery.complete
    assert any("skipped service '../x'" in warning for warning in discovery.warnings)
