#!/bin/sh
# Runs a command next to a TURN server, then checks that the peers' traffic really went through it. Meant to run
# inside netns.sh's loopback-only namespace (run.sh --turn does that), where port 3478 is always free.
#   turn.sh <command> [args...]
# coturn (Debian's turnserver) listens on 127.0.0.1:3478, UDP and TCP, long-term credentials user `test`,
# password `secret`, realm rtcpeer.test, relayed addresses on 127.0.0.1; loopback peers are allowed (coturn
# refuses them by default). Peers reach it with: --ice-server turn:127.0.0.1:3478 --ice-username test
# --ice-credential secret --relay-only.
# Exit status: the command's; 1 also when coturn does not come up or when it relayed less than
# RTCPEER_TURN_MIN_BYTES (default 1000000) between the peers: a test whose peers connected directly fails here.
set -u
min=${RTCPEER_TURN_MIN_BYTES:-1000000}
dir=$(mktemp -d /tmp/rtcpeer-turn-XXXXXX)
log="$dir/turnserver.log"
# -v: coturn logs each allocation's "peer usage" (bytes from and to the peers) every 2048 relayed packets and
# when the allocation ends.
turnserver -n -v --lt-cred-mech --user=test:secret --realm=rtcpeer.test --listening-ip=127.0.0.1 \
  --relay-ip=127.0.0.1 --listening-port=3478 --allow-loopback-peers --no-multicast-peers --no-cli --no-tls \
  --no-dtls --log-file=stdout --simple-log --pidfile="$dir/turnserver.pid" >"$log" 2>&1 &
coturn=$!
stop() {
  kill "$coturn" 2>/dev/null && wait "$coturn" 2>/dev/null
}
trap 'stop; rm -rf "$dir"' EXIT
trap 'exit 143' INT TERM

tries=0
until ss -Hltn 'sport = :3478' 2>/dev/null | grep -q .; do
  tries=$((tries + 1))
  if [ $tries -gt 100 ] || ! kill -0 "$coturn" 2>/dev/null; then
    echo "FAIL [turn] coturn did not come up on 127.0.0.1:3478; its log:"
    sed 's/^/  /' "$log"
    exit 1
  fi
  sleep 0.1
done

"$@"
status=$?
stop
# Bytes the relay received from peers (the other side's data and checks towards our allocations), all sessions.
relayed=$(sed -n 's/.*peer usage:.* rb=\([0-9]*\),.*/\1/p' "$log" | awk '{ n += $1 } END { print n + 0 }')
if [ "$relayed" -ge "$min" ]; then
  echo "ok   [turn] coturn relayed the peers' traffic: $relayed bytes from peers (at least $min expected)"
else
  echo "FAIL [turn] coturn relayed $relayed bytes from peers, at least $min expected: the peers did not use the relay"
  status=1
fi
exit $status
