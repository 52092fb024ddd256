#!/usr/bin/env bash
# Run every bench under bench/*/run.py with the repo's venv python.
#   bench/run.sh                     all benches, default sizes
#   bench/run.sh --repeat 5          extra arguments go to every bench's run.py
#   BENCHES="inventory" bench/run.sh  only some benches
# Results: bench/out/<bench>/results.json. Exit status: the worst bench status
# (0 = ran, targets not enforced unless --strict is passed).
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
    echo "bench/run.sh: $PYTHON not found (create the venv first)" >&2
    exit 2
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.collections"
export PATH="$(dirname "$PYTHON"):$PATH"

status=0
for script in "$REPO"/bench/*/run.py; do
    name="$(basename "$(dirname "$script")")"
    if [ -n "${BENCHES:-}" ] && ! [[ " $BENCHES " == *" $name "* ]]; then
        continue
    fi
    echo "=== bench: $name ($script)"
    started=$(date +%s)
    "$PYTHON" "$script" "$@"
    rc=$?
    echo "=== bench: $name finished rc=$rc in $(( $(date +%s) - started ))s"
    [ "$rc" -gt "$status" ] && status=$rc
done
exit "$status"
