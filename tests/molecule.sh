#!/usr/bin/env bash
# Every molecule scenario of the collection (extensions/molecule/<scenario>), on the test-bed's Docker engine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
export ANSIBLE_COLLECTIONS_PATH="$repo/.collections:${ANSIBLE_COLLECTIONS_PATH:-}"
export PATH="${VENV:-$repo/.venv}/bin:$PATH"
scenarios=$(find extensions/molecule -mindepth 2 -maxdepth 2 -name molecule.yml 2>/dev/null | sort || true)
if [ -z "$scenarios" ]; then
  echo "molecule: no scenarios yet (extensions/molecule/*/molecule.yml)"
  exit 0
fi
cd extensions
for scenario in $scenarios; do
  name=$(basename "$(dirname "$scenario")")
  echo "molecule: scenario $name"
  molecule test -s "$name"
done
