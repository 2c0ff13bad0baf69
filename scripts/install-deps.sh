#!/usr/bin/env bash
# Install every Debian package Consonance needs to build, test and benchmark.
# Idempotent; run as root (or with sudo available) on a fresh Debian machine.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git ca-certificates
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libpq-dev
  libyaml-dev tzdata
  libcmocka-dev
  clang libclang-rt-14-dev
  python3 python3-aiosmtpd openssl
  sqlite3 wrk nginx-light procps
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# nginx-light enables a service on install; the benchmarks start their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi
