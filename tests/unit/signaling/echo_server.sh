#!/bin/sh
# examples/echo_server.cpp with several clients: `rtcpeer serve`, the echo server (creates a client/server lobby,
# on one UDP port for all clients), then CLIENTS `rtcpeer chat` processes join the lobby; each sends one line once
# connected to peer 1 and must get exactly that line back from peer 1, none may connect to another client, and the
# echo server must hold one UDP socket only. Run inside netns.sh.
#   echo_server.sh <rtcpeer binary> <echo server command: the example's binary, or the rtcpeer binary echo-server>
set -eu
. "$(dirname "$0")/cli_lib.sh" "$1"
shift
clients=${CLIENTS:-8}
start_server --max-lobby-size 64
url="ws://127.0.0.1:$port"

udp_port=40123  # the namespace is fresh: nothing else has it
"$@" --server "$url" --interfaces 127.0.0.1 --port $udp_port > "$dir/echo.out" 2> "$dir/echo.err" &
echo_pid=$!
pids="$pids $echo_pid"
lobby=$(wait_for "$dir/echo.out" '^lobby ' | cut -d' ' -f2)
echo "echo server lobby: $lobby"

k=1
while [ $k -le $clients ]; do
  # The line goes out only once the channel to the server is open (chat drops lines typed before that), and
  # stdin stays open until the echo is back (chat exits once stdin is closed and its channels are flushed).
  {
    wait_for "$dir/chat$k.err" 'connected to peer 1' > /dev/null
    echo "hello from client $k"
    wait_for "$dir/chat$k.out" "^\[1\] hello from client $k\$" > /dev/null
    wait_for "$dir/release" . > /dev/null  # connected until the socket check below
  } | "$tool" chat --server "$url" --lobby "$lobby" --interfaces 127.0.0.1 > "$dir/chat$k.out" 2> "$dir/chat$k.err" &
  eval "chat$k=\$!"
  pids="$pids $!"
  k=$((k + 1))
done

# Every client connected and echoed: the echo server holds a single UDP socket, on its port.
k=1
while [ $k -le $clients ]; do
  wait_for "$dir/chat$k.out" "^\[1\] hello from client $k\$" > /dev/null
  k=$((k + 1))
done
if command -v ss > /dev/null; then
  sockets=$(ss -uanp | grep "pid=$echo_pid," || true)
  [ "$(echo "$sockets" | grep -c .)" -eq 1 ] && echo "$sockets" | grep -q "127.0.0.1:$udp_port " ||
    { echo "the echo server's UDP sockets:"; echo "$sockets"; ss -uanp; exit 1; }
  echo "the echo server serves $clients clients from one UDP socket: $(echo "$sockets" | awk '{print $4}')"
fi
echo release > "$dir/release"

k=1
while [ $k -le $clients ]; do
  eval "pid=\$chat$k"
  wait "$pid" || { echo "client $k failed:"; cat "$dir/chat$k.err" "$dir/echo.err"; exit 1; }
  grep -q -x "\[1\] hello from client $k" "$dir/chat$k.out" || { echo "client $k: no echo"; cat "$dir/chat$k.out"; exit 1; }
  if grep -v -q '^\[1\] ' "$dir/chat$k.out"; then echo "client $k heard from another peer"; cat "$dir/chat$k.out"; exit 1; fi
  if grep -q -E 'connected to peer ([0-9]{2,}|[02-9]);' "$dir/chat$k.err"; then echo "client $k connected to a client"; exit 1; fi
  k=$((k + 1))
done
kill -0 "$echo_pid" || { echo "the echo server exited"; cat "$dir/echo.err"; exit 1; }
[ "$(grep -c 'joined' "$dir/echo.err")" -eq "$clients" ] || { echo "echo server saw:"; cat "$dir/echo.err"; exit 1; }
echo "every client got its echo ($clients clients)"
