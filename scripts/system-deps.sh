#!/usr/bin/env bash
# Install (as root) or name (otherwise) the Debian packages gis-service needs.
#   scripts/system-deps.sh run   - what the service needs: PostgreSQL 15 + PostGIS 3, npm
#   scripts/system-deps.sh test  - that, plus what the test suite drives (GDAL, Chromium)
set -euo pipefail

mode=${1:-run}
pg_major=${GIS_PG_MAJOR:-15}
packages=("postgresql-${pg_major}" "postgresql-${pg_major}-postgis-3" lz4)
# The web map's assets are installed with npm (web/package-lock.json); any node >= 18 will do.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
if [[ $mode == test ]]; then
  # The map's browser tests drive Debian's Chromium (Playwright never downloads a browser);
  # the CJK fonts make the Chinese UI render in screenshots.
  packages+=(gdal-bin chromium chromium-driver fonts-noto-cjk)
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "gis-service needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists of a fresh machine may be empty or stale: refresh once, then install.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]}" >&2
