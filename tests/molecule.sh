#!/usr/bin/env bash
# Every molecule scenario of the collection (extensions/molecule/<scenario>), on the test-bed's Docker engine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
venv="${VENV:-$repo/.venv}"
export ANSIBLE_COLLECTIONS_PATH="$repo/.collections:${ANSIBLE_COLLECTIONS_PATH:-}"
export PATH="$venv/bin:$PATH"
scenarios=$(find extensions/molecule -mindepth 2 -maxdepth 2 -name molecule.yml 2>/dev/null | sort || true)
if [ -z "$scenarios" ]; then
  echo "molecule: no scenarios yet (extensions/molecule/*/molecule.yml)"
  exit 0
fi

# The gateways' image: the stand-in image (no registry can be reached, so it is built here)
# without its entrypoint, so that a gateway can idle and the stand-ins can be told what to run.
standin=$("$venv/bin/python" tests/testbed/testbed.py image)
if ! built=$(printf 'FROM %s\nLABEL edgex.testbed=1\nENTRYPOINT []\nCMD ["sleep", "infinity"]\n' "$standin" \
    | DOCKER_BUILDKIT=0 docker build -q -t edgex-molecule-gateway:latest - 2>&1); then
  echo "molecule: cannot build edgex-molecule-gateway:latest from $standin:" >&2
  echo "$built" >&2
  exit 1
fi

# The compose gateway (Debian's docker-compose 1.29.2) and the systemd gateway (systemd as PID 1,
# the stand-ins as units): built by images.py, cached by content hash, tagged for molecule.yml.
for kind in compose-gateway systemd; do
  tag=$("$venv/bin/python" tests/testbed/images.py "$kind")
  name=edgex-molecule-${kind%-gateway}-gateway:latest
  docker tag "$tag" "$name"
done

# The gateways run the collection's modules with their own python3 (Debian's 3.11) and this
# venv's libraries (docker, requests, python-consul2, PyYAML), mounted read-only.
EDGEX_MOLECULE_SITE_PACKAGES=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export EDGEX_MOLECULE_SITE_PACKAGES

# Hold the test-bed's lock: `testbed.py up/down` (pytest fixtures, make) remove every
# edgex.testbed=1 container, ours included, and they take this lock first.
exec 9>/tmp/edgex-testbed.lock
if ! flock -n 9; then
  echo "molecule: waiting for the test-bed lock (/tmp/edgex-testbed.lock)"
  flock 9
fi

cd extensions
for scenario in $scenarios; do
  name=$(basename "$(dirname "$scenario")")
  echo "molecule: scenario $name"
  molecule test -s "$name"
done
