#!/bin/sh
# Runs a command inside a fresh network namespace that has only the loopback interface, so nothing any peer
# gathers or sends can leave the machine; the namespace is removed afterwards.
#   netns.sh <command> [args...]
# Exits 77 (ctest's skip code for the interop tests) when no namespace can be made (not root, no `ip netns`):
# the interop peers never run outside one.
set -u
if ! command -v ip >/dev/null 2>&1; then
  echo "netns.sh: skipped: the ip command (iproute2) is missing, so no isolated network namespace can be made" >&2
  exit 77
fi
# Namespaces left by runs that were killed (ctest's timeout sends SIGKILL, so no trap ran) are removed first.
for old in $(ip netns list 2>/dev/null | sed -n 's/^\(rtcpeer-interop-[0-9]*\).*/\1/p'); do
  kill -0 "${old##*-}" 2>/dev/null || ip netns del "$old" 2>/dev/null
done
ns="rtcpeer-interop-$$"
if ! ip netns add "$ns" 2>/dev/null; then
  echo "netns.sh: skipped: cannot create a network namespace (needs root / CAP_SYS_ADMIN)" >&2
  exit 77
fi
trap 'ip netns del "$ns" 2>/dev/null' EXIT
trap 'exit 143' INT TERM
ip netns exec "$ns" ip link set lo up || exit 1
ip netns exec "$ns" "$@"
