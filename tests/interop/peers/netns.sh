#!/bin/sh
# Runs a command inside a fresh network namespace that has only the loopback interface, so nothing any peer
# gathers or sends can leave the machine; the namespace is removed afterwards.
#   netns.sh <command> [args...]
# Exits 77 (ctest's skip code here) when namespaces cannot be made (not root, no `ip netns`), unless
# RTCPEER_INTEROP_NO_NETNS=1 says to run the command directly.
set -u
if [ "${RTCPEER_INTEROP_NO_NETNS:-0}" = 1 ]; then exec "$@"; fi
if ! command -v ip >/dev/null 2>&1; then
  echo "netns.sh: skipped: the ip command (iproute2) is missing, so no isolated network namespace can be made" >&2
  exit 77
fi
ns="rtcpeer-interop-$$"
if ! ip netns add "$ns" 2>/dev/null; then
  echo "netns.sh: skipped: cannot create a network namespace (needs root / CAP_SYS_ADMIN)" >&2
  exit 77
fi
trap 'ip netns del "$ns" 2>/dev/null' EXIT
trap 'exit 143' INT TERM
ip netns exec "$ns" ip link set lo up || exit 1
ip netns exec "$ns" "$@"
