#!/usr/bin/env bash
# ansible-lint, production profile, over the collection's roles, playbooks and molecule scenarios.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
export ANSIBLE_COLLECTIONS_PATH="$repo/.collections:${ANSIBLE_COLLECTIONS_PATH:-}"
targets=()
for path in roles playbooks extensions/molecule extensions/awx; do
  [ -n "$(find "$path" -name '*.yml' 2>/dev/null | head -n 1)" ] && targets+=("$path")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "ansible-lint: no roles or playbooks yet"
  exit 0
fi
"${VENV:-$repo/.venv}/bin/ansible-lint" --offline --profile production "${targets[@]}"
