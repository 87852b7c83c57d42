#!/bin/sh
# The README's three-terminal workflow on loopback: `serve`, `recv` (creates the lobby), `send FILE --lobby X`,
# then the other way round, then the error paths. Usage: cli_transfer.sh <rtcpeer binary>
set -eu
tool=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=$(mktemp -d "${TMPDIR:-/tmp}/rtcpeer-cli.XXXXXX")
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# wait_for FILE REGEX: up to 20 s for a line matching REGEX, printed.
wait_for() {
  i=0
  while [ $i -lt 200 ]; do
    if line=$(grep -E -m1 "$2" "$1" 2>/dev/null); then echo "$line"; return 0; fi
    sleep 0.1; i=$((i + 1))
  done
  echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; return 1
}

"$tool" serve --port 0 > "$dir/serve.out" 2>&1 &
pids="$pids $!"
port=$(wait_for "$dir/serve.out" 'signaling server on' | sed 's/.*://')
url="ws://127.0.0.1:$port"
opts="--server $url --interfaces 127.0.0.1 --timeout 30"
head -c 3000000 /dev/urandom > "$dir/a.bin"
printf 'tiny\n' > "$dir/b.txt"
mkdir "$dir/out"

echo "1. recv creates the lobby, send joins it"
(cd "$dir/out" && exec "$tool" recv $opts > "$dir/recv1.out" 2> "$dir/recv1.err") &
recv=$!
lobby=$(wait_for "$dir/recv1.err" 'lobby [A-Za-z0-9]+ created' | sed -E 's/lobby ([A-Za-z0-9]+) created.*/\1/')
"$tool" send "$dir/a.bin" $opts --lobby "$lobby" 2> "$dir/send1.err" || { cat "$dir/send1.err" "$dir/recv1.err"; exit 1; }
wait $recv || { echo "recv failed"; cat "$dir/recv1.err"; exit 1; }
cmp "$dir/a.bin" "$dir/out/a.bin"
grep -q "verified by the receiver" "$dir/send1.err"
grep -q "received a.bin: 3000000 bytes, SHA-256 $(sha256sum "$dir/a.bin" | cut -c1-64)" "$dir/recv1.out"

echo "2. send creates the lobby, recv joins it with -o"
"$tool" send "$dir/b.txt" $opts 2> "$dir/send2.err" &
send=$!
lobby=$(wait_for "$dir/send2.err" 'lobby [A-Za-z0-9]+ created' | sed -E 's/lobby ([A-Za-z0-9]+) created.*/\1/')
"$tool" recv $opts --lobby "$lobby" -o "$dir/out/copy.txt" -q > /dev/null
wait $send
cmp "$dir/b.txt" "$dir/out/copy.txt"

echo "3. clear errors"
if "$tool" send "$dir/b.txt" $opts --lobby NoSuchLobby 2> "$dir/err1"; then exit 1; fi
grep -q "Lobby does not exists" "$dir/err1" || { cat "$dir/err1"; exit 1; }
if "$tool" recv --server ws://127.0.0.1:1 -q 2> "$dir/err2"; then exit 1; fi
grep -q "cannot connect" "$dir/err2" || { cat "$dir/err2"; exit 1; }
echo "ok"
