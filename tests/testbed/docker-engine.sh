#!/usr/bin/env bash
# Make sure a Docker engine answers. Uses a running one; otherwise (root on Debian) starts
# dockerd without a bridge or iptables rules, so no private-range network is ever created.
set -euo pipefail
state_dir="${EDGEX_TESTBED_STATE:-$(cd "$(dirname "$0")/../.." && pwd)/testbed-state}"
log="$state_dir/dockerd.log"

docker info >/dev/null 2>&1 && exit 0

if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: no Docker engine answers and I cannot start one." >&2
  echo "  Start Docker yourself (e.g. 'sudo systemctl start docker'), or run as root on Debian" >&2
  echo "  where this script installs docker.io and starts dockerd." >&2
  exit 1
fi
if pgrep -x dockerd >/dev/null; then
  echo "docker-engine: dockerd runs but does not answer yet; waiting" >&2
else
  mkdir -p "$state_dir"
  start() {
    echo "docker-engine: starting dockerd (storage driver $1)"
    # Its own session: the engine must outlive the shell (or CI step) that started it.
    setsid nohup dockerd --storage-driver="$1" --bridge=none --iptables=false --ip6tables=false \
      >"$log" 2>&1 &
    echo $! > "$state_dir/dockerd.pid"
  }
  wait_up() {
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && return 0
      kill -0 "$(cat "$state_dir/dockerd.pid")" 2>/dev/null || return 1
      sleep 0.5
    done
    return 1
  }
  start overlay2
  if ! wait_up; then
    kill "$(cat "$state_dir/dockerd.pid")" 2>/dev/null || true
    sleep 1
    echo "docker-engine: overlay2 failed (see $log); falling back to vfs" >&2
    start vfs
  fi
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "docker-engine: dockerd did not answer within 30 s; see $log" >&2
exit 1
