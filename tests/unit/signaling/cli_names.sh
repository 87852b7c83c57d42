#!/bin/sh
# The README's "Other networks" example with host names, for real: a loopback-only network namespace whose own
# /etc/netns/<ns>/hosts names the signaling server and whose /etc/netns/<ns>/resolv.conf points at a dnsmasq
# started inside it, which serves the STUN/TURN names (nothing is forwarded: no real DNS). send/recv reach
# `rtcpeer serve` as ws://signal.rtcpeer.test:PORT and coturn as stun:/turn:...rtcpeer.test, send relay-only; then
# an unresolvable TURN name must fail the connection with the resolver's reason.
#   cli_names.sh <rtcpeer binary>
# Skips (77) without root, ip, dnsmasq or coturn, except under CI=true, where that is a failure.
set -eu
skip() {
  if [ "${CI:-}" = true ]; then echo "FAILED: $1 (CI must run this test; scripts/deps.sh installs it)"; exit 1; fi
  echo "SKIPPED: $1"; exit 77
}
if [ -z "${RTCPEER_NAMES_NS:-}" ]; then
  [ "$(id -u)" = 0 ] || skip "not root, so no network namespace can be made"
  command -v ip > /dev/null 2>&1 || skip "ip (iproute2) is not installed"
  [ -x /usr/sbin/dnsmasq ] || skip "dnsmasq (dnsmasq-base) is not installed"
  command -v turnserver > /dev/null 2>&1 || skip "turnserver (coturn) is not installed"
  ns="rtcpeer-names-$$"
  ip netns add "$ns" || skip "cannot create a network namespace"
  trap 'ip netns del "$ns" 2>/dev/null; rm -rf "/etc/netns/$ns"' EXIT
  trap 'exit 143' INT TERM
  # What `ip netns exec` bind-mounts over /etc/hosts and /etc/resolv.conf inside the namespace.
  mkdir -p "/etc/netns/$ns"
  printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 signal.rtcpeer.test\n' > "/etc/netns/$ns/hosts"
  printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "/etc/netns/$ns/resolv.conf"
  ip netns exec "$ns" ip link set lo up
  RTCPEER_NAMES_NS="$ns" ip netns exec "$ns" sh "$0" "$@"
  exit $?
fi

. "$(dirname "$0")/cli_lib.sh" "$1"
/usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --listen-address=127.0.0.1 \
  --bind-interfaces --port=53 --user=root --pid-file="$dir/dnsmasq.pid" --log-queries --local=/invalid/ \
  --log-facility="$dir/dns.log" --host-record=stun.rtcpeer.test,127.0.0.1 --host-record=turn.rtcpeer.test,127.0.0.1 &
pids="$pids $!"
wait_for "$dir/dns.log" 'started' > /dev/null
tport=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000))
turnserver -v -n --lt-cred-mech --user=alice:s3cret --realm=rtcpeer.test --listening-ip=127.0.0.1 \
  --relay-ip=127.0.0.1 --listening-port=$tport --min-port=$((tport + 1)) --max-port=$((tport + 200)) \
  --allow-loopback-peers --no-multicast-peers --no-cli --no-tls --no-dtls --log-file=stdout --simple-log \
  --pidfile="$dir/turn.pid" > "$dir/turn.log" 2>&1 &
pids="$pids $!"
wait_for "$dir/turn.log" 'Total General servers' > /dev/null
start_server
opts="--server ws://signal.rtcpeer.test:$port --timeout 30"
head -c 300000 /dev/urandom > "$dir/a.bin"
mkdir "$dir/out"

echo "1. the README example by name: STUN and TURN/TCP for recv, relay-only TURN for send"
"$tool" recv $opts --ice-server "stun:stun.rtcpeer.test:$tport" \
  --ice-server "turn:alice:s3cret@turn.rtcpeer.test:$tport?transport=tcp" -o "$dir/out/a.bin" \
  > /dev/null 2> "$dir/recv.err" &
recv=$!
lobby=$(lobby_of "$dir/recv.err")
"$tool" send "$dir/a.bin" $opts --lobby "$lobby" --relay-only --ice-server "turn:turn.rtcpeer.test:$tport" \
  --ice-username alice --ice-credential s3cret 2> "$dir/send.err" ||
  { cat "$dir/send.err" "$dir/recv.err" "$dir/dns.log" "$dir/turn.log"; exit 1; }
wait $recv || { echo "recv failed"; cat "$dir/recv.err"; exit 1; }
cmp "$dir/a.bin" "$dir/out/a.bin"
# The names went over DNS, and the relay-only side allocated on the server it named (send's UDP allocation, and
# recv's TCP one).
for name in stun.rtcpeer.test turn.rtcpeer.test; do
  grep -q "query\[A\] $name" "$dir/dns.log" || { echo "no DNS query for $name"; cat "$dir/dns.log"; exit 1; }
done
[ "$(grep -c 'ALLOCATE processed, success' "$dir/turn.log")" -ge 2 ] || { cat "$dir/turn.log"; exit 1; }
echo "ok"

echo "2. an unresolvable TURN name fails the relay-only connection with the reason"
"$tool" recv $opts -o "$dir/out/b.bin" > /dev/null 2> "$dir/recv2.err" &
recv=$!
lobby=$(lobby_of "$dir/recv2.err")
fails_with "$dir/send2.err" "cannot resolve 'turn.invalid'" \
  "$tool" send "$dir/a.bin" $opts --lobby "$lobby" --relay-only --ice-server "turn:alice:s3cret@turn.invalid"
grep -q "connectTimeout" "$dir/send2.err" && { echo "failed at the timeout, not at the resolver's answer"; exit 1; }
cat "$dir/send2.err" >&2; kill $recv 2>/dev/null || true
echo "ok"
