#!/usr/bin/env bash
# Debian packages the integration tests use: a real PostgreSQL and Redis for the production-shape test
# (Airflow on PostgreSQL + CeleryExecutor), Chromium for checking the HTML in a headless browser, and
# docker-compose to validate docker-compose.yml, and rsvg-convert to rasterise the printable signs
# so their QR codes can be decoded. Installed only when missing, and only when we may.
set -euo pipefail
want=()
command -v redis-server >/dev/null || want+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
command -v chromium >/dev/null || want+=(chromium)
command -v docker-compose >/dev/null || want+=(docker-compose)
command -v rsvg-convert >/dev/null || want+=(librsvg2-bin)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: ${want[*]} missing and cannot be installed here; the tests that need them will be skipped" >&2
  exit 0
fi
echo "installing Debian packages: ${want[*]}" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null \
  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null; }
# The Debian postgresql package starts a cluster service; the tests start their own.
