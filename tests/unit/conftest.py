"""What the unit tests take from the test-bed: the core-keeper emulator (fixture `keeper`).

The released collection ships tests/unit with this file and the few test-bed modules it needs
(not tests/conftest.py, which sets up Docker), so `ansible-test units` runs on the installed
tarball too. The collection root goes on sys.path for the `tests.testbed` imports, as
tests/conftest.py does in the repository.
"""

import os
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
# Test modules import their siblings by name (test_addresses: `from test_health import ...`), as
# pytest's prepend import mode allows in the repository; ansible-test imports them as modules of
# the collection instead, so their directories go on sys.path here.
for directory, _subdirs, files in os.walk(os.path.dirname(os.path.abspath(__file__))):
    if any(name.startswith("test_") and name.endswith(".py") for name in files) and directory not in sys.path:
        sys.path.append(directory)

# python-consul2 warns about its legacy ACL API on every Consul(); only that warning is muted.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="consul.base")

from tests.testbed.fixtures_keeper import keeper  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position
