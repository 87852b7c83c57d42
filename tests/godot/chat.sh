#!/bin/sh
# Godot <-> `rtcpeer chat` through `rtcpeer serve` (run inside a loopback-only network namespace):
#   chat.sh <build-dir> <godot3-server> <rtcpeer>
# The CLI creates a lobby; Godot (project/test_chat.gd) joins it with the 3.x line protocol and sends a chat line as
# soon as the channel is open; once the CLI prints it, a line typed into the CLI goes back, and Godot exits 0 when it
# has it. Every wait is for an event (a line appearing in a log); ctest's timeout catches a hang.
set -eu
build=$1 godot=$2 rtcpeer=$3
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# wait_line FILE REGEX: blocks until FILE has a line matching REGEX and prints it.
wait_line() {
  rm -f "$dir/tail"
  mkfifo "$dir/tail"
  tail -n +1 -f "$1" > "$dir/tail" &
  tp=$!
  st=0
  grep -m1 -E -- "$2" < "$dir/tail" || st=$?
  kill "$tp" 2>/dev/null || true
  wait "$tp" 2>/dev/null || true
  return $st
}

"$rtcpeer" serve --port 0 > "$dir/serve.out" 2>&1 &
pids="$pids $!"
port=$(wait_line "$dir/serve.out" 'signaling server on' | sed 's/.*://')
mkfifo "$dir/in"
"$rtcpeer" chat -s "ws://127.0.0.1:$port" --interfaces 127.0.0.1 < "$dir/in" > "$dir/chat.out" 2> "$dir/chat.err" &
pids="$pids $!"
exec 3> "$dir/in"
lobby=$(wait_line "$dir/chat.err" 'lobby [A-Za-z0-9]+ created' | sed -E 's/.*lobby ([A-Za-z0-9]+) created.*/\1/')
echo "rtcpeer chat created lobby $lobby on port $port"
# Godot's output goes straight to ours, so a hang shows where it stopped.
RTCPEER_SIGNALING_URL="ws://127.0.0.1:$port" RTCPEER_LOBBY="$lobby" \
  sh "$here/run.sh" "$build" "$godot" test_chat.gd &
gpid=$!
wait_line "$dir/chat.out" 'hello from godot'
echo "hello from cli" >&3
st=0
wait "$gpid" || st=$?
echo "--- rtcpeer chat stderr:"; cat "$dir/chat.err"
exit $st
