#!/bin/sh
# ctest entry point of the browser test: installs what is missing (playwright-core through `npm ci`, Debian's
# chromium when running as root), then runs browser_test.mjs inside a private network namespace that holds only
# `lo`, so Chromium's ICE can see and use nothing but 127.0.0.1. Without the rights to create a namespace it runs
# in the host namespace and the page filters candidates to 127.0.0.1 (?loopback=1).
#   run_browser_test.sh [--relay] <rtcpeer binary> <web dir>
# --relay: the page's ICE options (browser_test.mjs --relay) next to coturn on 127.0.0.1:3478, in the interop tests'
# loopback-only namespace (tests/interop/peers/netns.sh, turn.sh: it fails the test unless coturn relayed the
# transfers). Needs coturn and root; like the interop relay tests it fails instead of skipping under CI=true.
# Exit 77 (ctest: skipped) only when node or chromium (--relay: coturn, root) is missing and cannot be installed.
set -u
relay=
if [ "${1:-}" = --relay ]; then
  relay=1
  shift
fi
tool=$1
web=$2
here=$(cd "$(dirname "$0")" && pwd)
peers=$here/../interop/peers
skip() {
  if [ -n "$relay" ] && [ "${CI:-}" = true ]; then
    echo "FAILED: $*; CI has to run this test (scripts/deps.sh installs what it needs)"
    exit 1
  fi
  echo "SKIPPED: $*"
  exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed (scripts/deps.sh interop installs it)"
# Both browser tests may start at once on a fresh machine: install under one lock, or one `npm ci` (which begins by
# deleting node_modules) would pull playwright-core from under the other, and the second apt-get would find dpkg
# locked.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/rtcpeer-browser-install.lock"
  flock 9
fi
chromium=${RTCPEER_CHROMIUM:-$(command -v chromium || true)}
if [ -z "$chromium" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }
  chromium=$(command -v chromium || true)
fi
[ -n "$chromium" ] || skip "chromium is not installed and could not be installed (apt-get install chromium)"
if [ ! -d "$here/node_modules/playwright-core" ]; then
  command -v npm >/dev/null 2>&1 || skip "npm is missing, cannot install playwright-core"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || skip "npm ci failed (no registry access?)"
fi
exec 9>&-

cmd="node $here/browser_test.mjs --tool $tool --web $web --chromium $chromium"
if [ -n "$relay" ]; then
  command -v turnserver >/dev/null 2>&1 || skip "turnserver is not installed (apt-get install coturn)"
  [ "$(id -u)" = 0 ] || skip "not root, so no network namespace for coturn can be made"
  # turn.sh's coturn: user test, password secret.
  exec sh "$peers/netns.sh" sh "$peers/turn.sh" env HOME="${HOME:-/tmp}" $cmd --relay turn:test:secret@127.0.0.1:3478
fi
ns=rtcpeer-sig-$$
if [ "$(id -u)" = 0 ] && ip netns add "$ns" 2>/dev/null; then
  trap 'ip netns del "$ns" 2>/dev/null' EXIT
  ip netns exec "$ns" ip link set lo up
  echo "running in network namespace $ns (loopback only)"
  ip netns exec "$ns" env HOME="${HOME:-/tmp}" $cmd
else
  echo "cannot create a network namespace: running on the host, the page keeps only 127.0.0.1 candidates"
  $cmd --loopback-filter
fi
