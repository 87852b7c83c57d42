#!/bin/sh
# The README's three-terminal workflow on loopback: `serve`, `recv` (creates the lobby), `send FILE --lobby X`,
# then the other way round, then the error paths. Usage: cli_transfer.sh <rtcpeer binary>
set -eu
. "$(dirname "$0")/cli_lib.sh" "$1"
start_server
url="ws://127.0.0.1:$port"
opts="--server $url --interfaces 127.0.0.1 --timeout 30"
head -c 3000000 /dev/urandom > "$dir/a.bin"
printf 'tiny\n' > "$dir/b.txt"
mkdir "$dir/out"

echo "1. recv creates the lobby, send joins it"
(cd "$dir/out" && exec "$tool" recv $opts > "$dir/recv1.out" 2> "$dir/recv1.err") &
recv=$!
lobby=$(lobby_of "$dir/recv1.err")
"$tool" send "$dir/a.bin" $opts --lobby "$lobby" 2> "$dir/send1.err" || { cat "$dir/send1.err" "$dir/recv1.err"; exit 1; }
wait $recv || { echo "recv failed"; cat "$dir/recv1.err"; exit 1; }
cmp "$dir/a.bin" "$dir/out/a.bin"
grep -q "verified by the receiver" "$dir/send1.err"
grep -q "received a.bin: 3000000 bytes, SHA-256 $(sha256sum "$dir/a.bin" | cut -c1-64)" "$dir/recv1.out"

echo "2. send creates the lobby, recv joins it with -o"
"$tool" send "$dir/b.txt" $opts 2> "$dir/send2.err" &
send=$!
lobby=$(lobby_of "$dir/send2.err")
"$tool" recv $opts --lobby "$lobby" -o "$dir/out/copy.txt" -q > /dev/null
wait $send
cmp "$dir/b.txt" "$dir/out/copy.txt"

echo "3. clear errors"
fails_with "$dir/err" "Lobby does not exists" "$tool" send "$dir/b.txt" $opts --lobby NoSuchLobby
fails_with "$dir/err" "cannot connect" "$tool" recv --server ws://127.0.0.1:1 -q
echo "ok"
