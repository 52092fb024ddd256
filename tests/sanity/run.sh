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
# Of the test-bed, the modules the released tarball ships for tests/unit (galaxy.yml build_ignore
# decides which; their ignore entries must find them here too).
"$venv/bin/ansible-galaxy" collection build --force --output-path "$work/build" "$repo" >/dev/null
shipped_testbed=$(tar -tzf "$work"/build/*.tar.gz | grep -E '^tests/testbed/[^/]+\.py$' | sed 's/[.]/[.]/g; s/^/^/; s/$/$/' | paste -sd'|')
git ls-files --cached --others --exclude-standard -z |
  grep -zv -E -e '^(bench|extensions|demo)/' -e "^tests/testbed/" |
  xargs -0 cp --parents -t "$dest"
git ls-files --cached --others --exclude-standard -z | grep -zE "$shipped_testbed" |
  xargs -0 cp --parents -t "$dest"
cd "$dest"
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm sanity

"$venv/bin/ansible-test" sanity --python 3.11 --local --color no \
  "$@"
