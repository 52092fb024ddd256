"""Shared pytest set-up: make the collection importable as ansible_collections.edgex.sysmgmt
through Ansible's own collection loader (as ansible-test units does, so plugins load by their
FQCN in unit tests too) and load the test-bed fixtures (tests/testbed/fixtures*.py)."""

import os
import sys
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, ".collections")
_link = os.path.join(COLLECTIONS, "ansible_collections", "edgex", "sysmgmt")
if not os.path.exists(_link):
    os.makedirs(os.path.dirname(_link), exist_ok=True)
    os.symlink(REPO, _link)
for path in (COLLECTIONS, REPO):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)

# Before anything imports ansible_collections: once a collection was imported as a plain
# namespace package, the plugin loader can no longer load its plugins.
from ansible.plugins.loader import init_plugin_loader  # noqa: E402

init_plugin_loader([COLLECTIONS])

# python-consul2 warns about its legacy ACL API on every Consul(); only that warning is muted.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="consul.base")

pytest_plugins = [
    "tests.testbed.fixtures_consul",
    "tests.testbed.fixtures_docker",
    "tests.testbed.fixtures_keeper",
    "tests.testbed.fixtures_systemd",
    "tests.testbed.fixtures_tls",
]
