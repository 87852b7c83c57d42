#!/usr/bin/env bash
# Installs the Debian packages rtcpeer needs, only those missing. Safe to run repeatedly; needs root (or sudo)
# the first time on a fresh machine.
#   scripts/deps.sh [build|test]   (default: test, which includes build)
set -euo pipefail
what=${1:-test}

pkgs=(cmake ninja-build g++ pkg-config libssl-dev openssl libc-ares-dev)
# Optional: hiredis, for `rtcpeer serve --redis` (CMake RTCPEER_REDIS=AUTO builds it when found).
pkgs+=(libhiredis-dev)
if [[ $what != build ]]; then
  pkgs+=(libgtest-dev libgmock-dev googletest libbenchmark-dev clang libclang-rt-14-dev
         nlohmann-json3-dev libcli11-dev libboost-dev iproute2 coturn chromium gnutls-bin)
  # The other stacks of the interop suite (docs/INTEROP.md), real Godot (tests/godot) and a DNS server for the
  # name-resolution tests.
  pkgs+=(firefox-esr python3-aiortc golang-go golang-github-pion-webrtc.v3-dev godot3-server dnsmasq-base)
  # The Redis the signaling tests start for several `rtcpeer serve --redis` (tests/unit/signaling/redis_test.cpp).
  pkgs+=(redis-server)
  # Node.js may come from elsewhere (e.g. NodeSource, whose nodejs conflicts with Debian's npm): ask for
  # Debian's packages only when the commands are missing.
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "Installing missing Debian packages: ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
