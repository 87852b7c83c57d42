#!/bin/sh
# Runs an interop driver (driver.mjs or features.mjs, with its arguments) against the cross-stack peers, inside
# a loopback-only network namespace (netns.sh). Installs the pinned npm packages first: `npm ci` from
# package-lock.json, again only when the lock file changes.
#   run.sh [--turn] <driver.mjs|features.mjs> [driver arguments...]
# --turn: the driver runs next to a coturn on 127.0.0.1:3478 in the namespace, and fails unless the peers' traffic
# went through it (turn.sh).
# Skips (exit 77) when node, npm, Chromium, Firefox or root (for the namespace) is missing, except under CI=true, where
# that is a failure: CI must run these tests.
set -u
here=$(cd "$(dirname "$0")" && pwd)
turn=
if [ "${1:-}" = --turn ]; then
  turn="sh $here/turn.sh"
  shift
fi
missing() {
  if [ "${CI:-}" = true ]; then
    echo "run.sh: FAILED: $1; CI has to run the interop tests (scripts/deps.sh installs what they need)"
    exit 1
  fi
  echo "run.sh: skipped: $1"
  exit 77
}
command -v node >/dev/null 2>&1 || missing "node is not installed"
command -v npm >/dev/null 2>&1 || missing "npm is not installed"
case "$*" in *chromium_peer*) [ -x /usr/bin/chromium ] || missing "/usr/bin/chromium is not installed (apt-get install chromium)" ;; esac
case "$*" in *aiortc_peer*) /usr/bin/python3 -c 'import aiortc' 2>/dev/null || missing "aiortc is not installed (apt-get install python3-aiortc)" ;; esac
case "$*" in *pion_peer*) command -v go >/dev/null 2>&1 || missing "go is not installed (apt-get install golang-go)" ;; esac
[ -z "$turn" ] || command -v turnserver >/dev/null 2>&1 || missing "turnserver is not installed (apt-get install coturn)"
[ "$(id -u)" = 0 ] || missing "not root, so no network namespace can be made"
command -v ip >/dev/null 2>&1 || missing "ip (iproute2) is not installed"
case "$*" in *firefox_peer*) [ -x /usr/bin/firefox-esr ] || missing "/usr/bin/firefox-esr is not installed (apt-get install firefox-esr)" ;; esac

# flock: tests running in parallel install once. npm ci empties node_modules, stamp included, before installing.
(
  flock 9
  sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$here/node_modules/.lock-sha256" 2>/dev/null)" != "$sum" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2 || exit 1
    echo "$sum" >"$here/node_modules/.lock-sha256"
  fi
) 9>/tmp/rtcpeer-interop-npm.lock || { echo "run.sh: npm ci failed in $here"; exit 1; }

# shellcheck disable=SC2086 # $turn is a command and its argument, or nothing
exec "$here/netns.sh" $turn node "$@"
