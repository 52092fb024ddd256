#!/usr/bin/env bash
# Every molecule scenario of the collection (extensions/molecule/<scenario>), on the test-bed's Docker engine;
# or only those named: tests/molecule.sh gateway_prereqs
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
venv="${VENV:-$repo/.venv}"
export ANSIBLE_COLLECTIONS_PATH="$repo/.collections:${ANSIBLE_COLLECTIONS_PATH:-}"
export PATH="$venv/bin:$PATH"
scenarios=$(find extensions/molecule -mindepth 2 -maxdepth 2 -name molecule.yml 2>/dev/null | sort || true)
if [ $# -gt 0 ]; then
  scenarios=$(for name in "$@"; do echo "extensions/molecule/$name/molecule.yml"; done)
fi
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

# What the offline gateways of the gateway_prereqs scenario install from (a flat apt repository
# and a wheelhouse, fetched once and cached).
read -r EDGEX_MOLECULE_DEBS EDGEX_MOLECULE_WHEELS < <("$venv/bin/python" tests/gateway/offline_packages.py)
export EDGEX_MOLECULE_DEBS EDGEX_MOLECULE_WHEELS

# Hold the test-bed's lock: `testbed.py up/down` (pytest fixtures, make) remove every
# edgex.testbed=1 container, ours included, and they take this lock first.
exec 9>/tmp/edgex-testbed.lock
if ! flock -n 9; then
  echo "molecule: waiting for the test-bed lock (/tmp/edgex-testbed.lock)"
  waited=$SECONDS
  flock 9
  echo "molecule: waited $((SECONDS - waited)) s for the lock"
fi

# The example scenario is written for users (it pulls Debian and Python images and reaches Galaxy
# and Debian's mirror); here it runs offline (built under the lock: its RUN step is a labelled container): a gateway image whose Debian packages come from
# that local repository, the gateway image for its services, no network, no Galaxy.
if ! built=$(printf 'FROM edgex-molecule-gateway:latest\nCOPY . /tmp/debs\nRUN echo "deb [trusted=yes] file:/tmp/debs ./" > /etc/apt/sources.list \\\n && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y --no-install-recommends python3-consul2 python3-yaml python3-docker python3-apt >/dev/null \\\n && rm -rf /tmp/debs /var/lib/apt/lists/* && echo > /etc/apt/sources.list\n' \
    | DOCKER_BUILDKIT=0 docker build -q -t edgex-molecule-example-gw:latest -f - "$EDGEX_MOLECULE_DEBS" 2>&1); then
  echo "molecule: cannot build edgex-molecule-example-gw:latest:" >&2
  echo "$built" >&2
  exit 1
fi
export EDGEX_MOLECULE_IMAGE=edgex-molecule-example-gw:latest EDGEX_MOLECULE_SERVICE_IMAGE=edgex-molecule-gateway:latest
export EDGEX_MOLECULE_NETWORK=none EDGEX_MOLECULE_APT_UPDATE=false EDGEX_MOLECULE_GALAXY=false

cd extensions
for scenario in $scenarios; do
  name=$(basename "$(dirname "$scenario")")
  echo "molecule: scenario $name"
  started=$SECONDS
  molecule test -s "$name"
  echo "molecule: scenario $name took $((SECONDS - started)) s"
done
