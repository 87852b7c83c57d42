#!/bin/sh
# `rtcpeer mesh` in three "terminals" on loopback: the first creates the lobby, two join; each sees the other two
# join and reports a round-trip time to both; one leaves (end of its stdin) and the others see it go.
# Usage: cli_mesh.sh <rtcpeer binary>
set -eu
. "$(dirname "$0")/../signaling/cli_lib.sh" "$1"
start_server
opts="--server ws://127.0.0.1:$port --interfaces 127.0.0.1 --every 0.2"
for n in 1 2 3; do mkfifo "$dir/in$n"; done

"$tool" mesh $opts < "$dir/in1" > "$dir/out1" 2>&1 &
pids="$pids $!"
exec 4> "$dir/in1"
lobby=$(lobby_of "$dir/out1")
"$tool" mesh $opts --lobby "$lobby" < "$dir/in2" > "$dir/out2" 2>&1 &
pids="$pids $!"
exec 5> "$dir/in2"
"$tool" mesh $opts --lobby "$lobby" < "$dir/in3" > "$dir/out3" 2>&1 &
third=$!
pids="$pids $third"
exec 6> "$dir/in3"

for n in 1 2 3; do
  wait_for "$dir/out$n" 'rtt: [0-9]+=[0-9.]+ms [0-9]+=[0-9.]+ms$' > /dev/null
done
echo "all three measured a round trip to both others"
echo "hello mesh" >&6
wait_for "$dir/out1" '\] hello mesh' > /dev/null
exec 6>&-  # the third leaves
wait $third
wait_for "$dir/out1" 'peer [0-9]+ left' > /dev/null
wait_for "$dir/out2" 'peer [0-9]+ left' > /dev/null
exec 4>&- 5>&-
echo "ok"
