#!/bin/sh
# send/recv with --ice-server and --relay-only through Debian's coturn on 127.0.0.1 (credentials once in the URL,
# once through --ice-username/--ice-credential), and the ICE option errors. Usage: cli_turn.sh <rtcpeer binary>
set -eu
. "$(dirname "$0")/cli_lib.sh" "$1"
turnserver=$(command -v turnserver || true)
[ -n "$turnserver" ] || { echo "SKIPPED: turnserver (coturn) is not installed"; exit 77; }

echo "1. option errors"
fails_with "$dir/err" "needs a turn: or turns: --ice-server" "$tool" recv --relay-only --ice-server stun:127.0.0.1
fails_with "$dir/err" "is a TURN server: give --ice-username" "$tool" recv --ice-server turn:127.0.0.1:3478
fails_with "$dir/err" "--ice-server turn:127.0.0.1: credentials in the URL must be USER:PASSWORD@" \
  "$tool" recv --ice-server turn:nopassword@127.0.0.1
if grep -q nopassword "$dir/err"; then echo "a credential leaked into an error message" >&2; exit 1; fi
fails_with "$dir/err" "--ice-server http://x" "$tool" recv --ice-server http://x

# A port from the dynamic range that is unlikely to be taken (coturn binds UDP and TCP on it).
tport=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000))
"$turnserver" -v -n --lt-cred-mech --user=test:s@cret:x --realm=rtcpeer.test --listening-ip=127.0.0.1 \
  --relay-ip=127.0.0.1 --listening-port=$tport --min-port=$((tport + 1)) --max-port=$((tport + 200)) \
  --allow-loopback-peers --no-multicast-peers --no-cli --no-tls --no-dtls --log-file=stdout --simple-log \
  --pidfile="$dir/turn.pid" > "$dir/turn.log" 2>&1 &
pids="$pids $!"
wait_for "$dir/turn.log" 'Total General servers' > /dev/null
start_server
opts="--server ws://127.0.0.1:$port --interfaces 127.0.0.1 --timeout 30 --relay-only"
head -c 300000 /dev/urandom > "$dir/a.bin"
mkdir "$dir/out"

echo "2. a file through the TURN relay only"
"$tool" recv $opts --ice-server "turn:test:s%40cret%3Ax@127.0.0.1:$tport" -o "$dir/out/a.bin" \
  > /dev/null 2> "$dir/recv.err" &
recv=$!
lobby=$(lobby_of "$dir/recv.err")
"$tool" send "$dir/a.bin" $opts --lobby "$lobby" --ice-server "turn:127.0.0.1:$tport?transport=udp" \
  --ice-username test --ice-credential 's@cret:x' 2> "$dir/send.err" ||
  { cat "$dir/send.err" "$dir/recv.err" "$dir/turn.log"; exit 1; }
wait $recv || { echo "recv failed"; cat "$dir/recv.err"; exit 1; }
cmp "$dir/a.bin" "$dir/out/a.bin"
# Both peers allocated a relay with the right credentials and opened it to the other.
for what in ALLOCATE CREATE_PERMISSION; do
  [ "$(grep -c "$what processed, success" "$dir/turn.log")" -ge 2 ] || { cat "$dir/turn.log"; exit 1; }
done
echo "ok"
