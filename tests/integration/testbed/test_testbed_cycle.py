"""The test-bed comes up with several gateways and goes down leaving nothing."""

import pytest

from tests.testbed import testbed as testbed_cli

pytestmark = pytest.mark.docker


def test_down_leaves_nothing_running(standin_image_tag):
    with testbed_cli.Lock():
        testbed_cli.up(gateways=2, check_interval="1s")
        assert len(testbed_cli.our_containers()) == 1 + 2 * len(testbed_cli.NAPA_SERVICES)
        testbed_cli.down()
        assert testbed_cli.our_containers() == []
        testbed_cli.down()  # idempotent
