#!/bin/bash
# A mixed mesh of Godot and C++ peers in one lobby of `rtcpeer serve` (run inside a loopback-only network namespace):
#   mixed.sh <build-dir> <godot3-server> <rtcpeer> <mixed_peer> [silent]
# C++ peer "cpp-host" (mixed_peer.cpp: rtcpeer::MultiplayerPeer + SignalingClient, JSON protocol) creates a mesh
# lobby; Godot peer "godot-a" (project/test_mixed.gd: WebRTCMultiplayer through the plugin, 3.x line protocol),
# C++ peer "cpp-b" and Godot peer "godot-b" join it. Every peer sends every other one packet on the reliable and one
# on the unreliable channel and checks it heard every other peer id. Passes when all four exit 0 and agree on the
# mesh's ids. With "silent", godot-a sends no data packets: the others must fail.
# Every wait is for an event (a line in a log, a process exiting); ctest's timeout catches a hang.
set -u
build=$1 godot=$2 rtcpeer=$3 peer=$4 mode=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
declare -A pids=()  # name -> pid of its process group (setsid)
spid="" tpid=""
cleanup() {
  for name in "${!pids[@]}"; do kill -- "-${pids[$name]}" 2>/dev/null; done
  [ -n "$spid" ] && kill "$spid" 2>/dev/null
  [ -n "$tpid" ] && kill "$tpid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
total=4

# wait_line FILE REGEX: blocks until FILE has a line matching REGEX and prints it.
wait_line() {
  rm -f "$dir/tail"
  mkfifo "$dir/tail"
  tail -n +1 -f "$1" > "$dir/tail" &
  local tp=$! st=0
  grep -m1 -E -- "$2" < "$dir/tail" || st=$?
  kill "$tp" 2>/dev/null
  wait "$tp" 2>/dev/null
  return $st
}

# start NAME COMMAND...: runs the peer in its own process group, its output in $dir/NAME.log.
start() {
  local name=$1
  shift
  : > "$dir/$name.log"
  setsid "$@" > "$dir/$name.log" 2>&1 &
  pids[$name]=$!
}

"$rtcpeer" serve --port 0 > "$dir/serve.log" 2>&1 &
spid=$!
port=$(wait_line "$dir/serve.log" 'signaling server on' | sed 's/.*://')
url="ws://127.0.0.1:$port"
start cpp-host "$peer" "$url" "" $total
lobby=$(wait_line "$dir/cpp-host.log" '^(lobby|FAIL)' | sed -n -E 's/^lobby ([A-Za-z0-9]+) id.*/\1/p')
if [ -z "$lobby" ]; then
  cat "$dir/cpp-host.log"
  echo "mixed mesh: FAIL (the C++ host created no lobby)"
  exit 1
fi
echo "lobby $lobby on port $port"
silent=0
[ "$mode" = silent ] && silent=1
RTCPEER_SIGNALING_URL=$url RTCPEER_LOBBY=$lobby RTCPEER_MIXED_PEERS=$total RTCPEER_MIXED_SILENT=$silent \
  start godot-a sh "$here/run.sh" "$build" "$godot" test_mixed.gd
start cpp-b "$peer" "$url" "$lobby" $total
RTCPEER_SIGNALING_URL=$url RTCPEER_LOBBY=$lobby RTCPEER_MIXED_PEERS=$total \
  start godot-b sh "$here/run.sh" "$build" "$godot" test_mixed.gd
# Everyone's output as it comes (tail names the file before each change of source), so a hang shows where.
tail -n +1 -f "$dir"/cpp-host.log "$dir"/godot-a.log "$dir"/cpp-b.log "$dir"/godot-b.log &
tpid=$!

# Wait for the peers one by one as they exit; the first failure ends the test (and the others with it).
failed=""
while [ ${#pids[@]} -gt 0 ]; do
  st=0
  wait -n -p done_pid "${pids[@]}" || st=$?
  for name in "${!pids[@]}"; do
    [ "${pids[$name]}" = "$done_pid" ] && unset "pids[$name]" && break
  done
  if [ $st -ne 0 ]; then
    failed="$name exited with status $st"
    break
  fi
done
kill "$tpid" 2>/dev/null
wait "$tpid" 2>/dev/null
tpid=""
echo "------"

# Every peer must have printed PASS, and the four must agree on who is in the mesh.
ids="" views=""
for name in cpp-host godot-a cpp-b godot-b; do
  line=$(grep -m1 -E '^PASS id=' "$dir/$name.log" || true)
  [ -z "$line" ] && { [ -z "$failed" ] && failed="$name printed no PASS"; continue; }
  echo "$name: $line"
  id=$(sed -E 's/^PASS id=([0-9]+).*/\1/' <<< "$line")
  others=$(sed -E 's/.*peers=//' <<< "$line")
  ids="$ids $id"
  views="$views $(tr ',' '\n' <<< "$others,$id" | sort -n | paste -sd, -)"
done
if [ -z "$failed" ]; then
  [ "$(tr ' ' '\n' <<< "$ids" | sed '/^$/d' | sort -u | wc -l)" -eq $total ] || failed="the peer ids are not distinct:$ids"
  [ "$(tr ' ' '\n' <<< "$views" | sed '/^$/d' | sort -u | wc -l)" -eq 1 ] || failed="the peers disagree on the mesh:$views"
fi
if [ -n "$failed" ]; then
  reasons=$(grep -h -E '^FAIL: ' "$dir"/*.log | sed 's/^FAIL: //' | sort -u | paste -sd';' -)
  echo "mixed mesh: FAIL ($failed): ${reasons:-no peer said why}"
  exit 1
fi
echo "mixed mesh: PASS (2 Godot + 2 C++ peers, ids$ids, reliable and unreliable between every pair)"
