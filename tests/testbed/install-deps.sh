#!/usr/bin/env bash
# Debian packages the test-bed needs: docker.io (engine), debootstrap (stand-in image), iproute2,
# chromium (renders the health report in tests/integration/test_health_report.py), openssl (the
# certificates of the HTTPS tests, tests/testbed/fixtures_tls.py), docker-compose (compose v1,
# 1.29.2: the compose executor is tested on the real engine with it).
# Installs only what is missing, and only as root on Debian; elsewhere says what to install.
set -euo pipefail
missing=()
if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
  missing+=(docker.io)
fi
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: please install: ${missing[*]} (root on Debian installs them automatically)" >&2
  exit 1
fi
