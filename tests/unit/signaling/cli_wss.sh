#!/bin/sh
# send/recv through `rtcpeer serve --cert/--key` over wss:// with a certificate made here: trusted through --ca,
# refused without it (with a clear error), accepted with --insecure. Usage: cli_wss.sh <rtcpeer binary>
set -eu
. "$(dirname "$0")/cli_lib.sh" "$1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=rtcpeer-test \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" > /dev/null 2>&1 ||
  { echo "SKIPPED: the openssl command cannot make a certificate"; exit 77; }
start_server --cert "$dir/cert.pem" --key "$dir/key.pem"
grep -q "signaling server on wss://127.0.0.1:$port" "$dir/serve.out"
opts="--server wss://127.0.0.1:$port --interfaces 127.0.0.1 --timeout 30"
head -c 500000 /dev/urandom > "$dir/a.bin"
mkdir "$dir/out"

echo "1. recv --ca creates the lobby, send --ca joins it"
"$tool" recv $opts --ca "$dir/cert.pem" -o "$dir/out/a.bin" > /dev/null 2> "$dir/recv.err" &
recv=$!
lobby=$(lobby_of "$dir/recv.err")
"$tool" send "$dir/a.bin" $opts --ca "$dir/cert.pem" --lobby "$lobby" 2> "$dir/send.err" ||
  { cat "$dir/send.err" "$dir/recv.err"; exit 1; }
wait $recv || { echo "recv failed"; cat "$dir/recv.err"; exit 1; }
cmp "$dir/a.bin" "$dir/out/a.bin"

echo "2. without --ca the certificate is not trusted"
fails_with "$dir/err" "certificate of 127.0.0.1:$port is not trusted: self.signed certificate.*--ca FILE" \
  "$tool" recv $opts -q
cat "$dir/err"

echo "3. --insecure skips the check"
"$tool" send "$dir/a.bin" $opts --insecure 2> "$dir/send2.err" &
send=$!
lobby=$(lobby_of "$dir/send2.err")
"$tool" recv $opts --insecure --lobby "$lobby" -o "$dir/out/b.bin" -q > /dev/null
wait $send
cmp "$dir/a.bin" "$dir/out/b.bin"
echo "ok"
