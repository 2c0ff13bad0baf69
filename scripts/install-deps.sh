#!/usr/bin/env bash
# Install every Debian package Consonance needs to build, test and benchmark.
# Idempotent; run as root (or with sudo available) on a fresh Debian machine.
set -euo pipefail
# Tests need PostgreSQL (a throwaway cluster each), Chromium and Node.js (the
# browser tests) and libfaketime (the suite on a moved clock, clock-sweep.sh).
# --bench also installs what the benchmarks compare against: Redis from
# Debian and the npm packages in bench/peers.
BENCH=""
[ "${1:-}" = "--bench" ] && BENCH=1

PKGS=(
  build-essential cmake pkg-config git ca-certificates
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libpq-dev
  libyaml-dev tzdata
  libcmocka-dev
  clang libclang-rt-14-dev
  python3 python3-aiosmtpd openssl
  sqlite3 wrk nginx-light procps faketime
  chromium fonts-dejavu-core
  postgresql
)
# the browser tests drive Debian's Chromium with playwright-core from npm
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)
if [ -n "$BENCH" ]; then
  PKGS+=(redis-server)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  # services enabled on install; the benchmarks and tests start their own
  if command -v systemctl >/dev/null 2>&1; then
    for svc in nginx redis-server postgresql; do
      $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
    done
  fi
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
  echo "install-deps: npm packages for the browser tests (tests/browser)"
  (cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund)
fi

if [ -n "$BENCH" ]; then
  if [ ! -d "$ROOT/bench/peers/node_modules/bullmq" ] || [ ! -d "$ROOT/bench/peers/node_modules/pg-boss" ]; then
    echo "install-deps: npm packages for the benchmark peers (bench/peers)"
    (cd "$ROOT/bench/peers" && npm ci --no-audit --no-fund)
  fi
fi
