#!/usr/bin/env bash
# The Consul tests again, with py-consul instead of python-consul2 (they share the import name
# `consul`, so they never share a venv): a small second venv, .venv-pyconsul, with ansible-core,
# py-consul and what the tests import. The modules run with its python, the inventory plugin and
# the registry code in its pytest.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
main="${VENV:-$repo/.venv}"
venv="$repo/.venv-pyconsul"
stamp="$venv/.installed"
requirements="ansible-core>=2.19,<2.20 py-consul pytest>=8 PyYAML>=6"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$requirements" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # pip.conf on these machines lists local indexes that may be empty: drop those notices only.
  "$venv/bin/pip" install -q $requirements 2>&1 | { grep -v 'is ignored: it is neither' || true; }
  echo "$requirements" > "$stamp"
fi
if "$venv/bin/python" -c 'import requests, consul, sys; sys.exit(0 if hasattr(consul, "__version__") else 1)'; then
  "$venv/bin/python" -c 'import consul; print("pyconsul: py-consul", consul.__version__)'
else
  echo "pyconsul: .venv-pyconsul does not hold py-consul" >&2
  exit 1
fi
# ansible.posix (the json callback the tests read) comes from the main venv's `ansible` package.
export EDGEX_TEST_COLLECTIONS_PATH="$("$main/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
exec "$venv/bin/python" -m pytest -p no:cacheprovider -m "not docker" \
  tests/integration/test_registry_consul.py \
  tests/unit/plugins/module_utils/test_registry_transport.py \
  tests/integration/test_inventory_plugin.py \
  tests/integration/test_edgex_health_module.py "$@"
