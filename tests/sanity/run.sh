#!/usr/bin/env bash
# ansible-test sanity, offline: the collection is copied (tracked + new files) under
# ansible_collections/edgex/sysmgmt in a throw-away git repo, as ansible-test requires.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VENV:-$repo/.venv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ansible-test downloads a pip bootstrap script; seeding its cache keeps it offline.
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
for version in 24_2 25_3; do
  [ -f "$cache/get_pip_$version.py" ] ||
    echo 'import ensurepip; ensurepip.bootstrap(upgrade=True)' > "$cache/get_pip_$version.py"
done

dest="$work/ansible_collections/edgex/sysmgmt"
mkdir -p "$dest"
cd "$repo"
git ls-files --cached --others --exclude-standard -z |
  grep -zv -e '^tests/testbed/' -e '^bench/' -e '^extensions/' -e '^demo/' |
  xargs -0 cp --parents -t "$dest"
cd "$dest"
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm sanity

"$venv/bin/ansible-test" sanity --python 3.11 --local --color no \
  "$@"
