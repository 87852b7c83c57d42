#!/bin/sh
# Conformance of `rtcpeer serve` to both Godot signaling protocols, from Godot (project/test_signaling.gd):
#   signaling.sh <build-dir> <godot3-server> <rtcpeer> [script.gd]   (inside a loopback-only network namespace)
# The script (default test_signaling.gd) gets the server's URL in RTCPEER_SIGNALING_URL.
set -eu
build=$1 godot=$2 rtcpeer=$3 script=${4:-test_signaling.gd}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
spid=""
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$dir"' EXIT
mkfifo "$dir/out"
"$rtcpeer" serve --port 0 > "$dir/out" 2>&1 &
spid=$!
# The first line names the port; the rest of the server's output is drained (and discarded) in the background.
exec 4< "$dir/out"
read -r first <&4
port=${first##*:}
cat <&4 > /dev/null 2>&1 &
exec 4<&-
st=0
RTCPEER_SIGNALING_URL="ws://127.0.0.1:$port" sh "$here/run.sh" "$build" "$godot" "$script" || st=$?
exit $st
