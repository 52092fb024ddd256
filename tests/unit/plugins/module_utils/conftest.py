"""Fixtures shared by the module_utils tests."""

import pytest

from ping_servers import serve_factory


@pytest.fixture
def serve():
    """Factory: serve(behaviour, service_name="core-data", port=None) -> port of a running ping server."""
    start, stop = serve_factory()
    yield start
    stop()
