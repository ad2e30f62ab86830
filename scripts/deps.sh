#!/bin/sh
# Installs the Debian packages the build and the tests need, or says how.
# Usage: scripts/deps.sh [build|check|fuzz]
# As root it runs apt-get (with one 'apt-get update' first, only when
# something is missing); otherwise it prints the exact command and fails.
set -eu
want="${1:-build}"
pkgs="make gcc pkg-config libev-dev libjansson-dev libssl-dev openssl"
case "$want" in
  check) pkgs="$pkgs clang libclang-rt-dev procps iproute2 perl libjson-xs-perl libcbor-xs-perl" ;;
  fuzz)  pkgs="$pkgs clang libclang-rt-dev" ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian system; make sure these are installed: $pkgs" >&2
  exit 0
fi

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages:$missing" >&2
  echo "deps: install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
