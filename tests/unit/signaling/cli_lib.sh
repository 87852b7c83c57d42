# Shared by the CLI tests (sourced): $tool, a scratch $dir removed on exit, background $pids killed on exit.
#   . cli_lib.sh <rtcpeer binary>
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

# start_server [serve options]: `rtcpeer serve` on a free port, which it sets in $port.
start_server() {
  "$tool" serve --port 0 "$@" > "$dir/serve.out" 2>&1 &
  pids="$pids $!"
  port=$(wait_for "$dir/serve.out" 'signaling server on' | sed 's/.*://')
}

# lobby_of FILE: the lobby name a command that created one printed in FILE.
lobby_of() {
  wait_for "$1" 'lobby [A-Za-z0-9]+ created' | sed -E 's/lobby ([A-Za-z0-9]+) created.*/\1/'
}

# fails_with FILE REGEX COMMAND...: COMMAND must fail and say REGEX on stderr.
fails_with() {
  out=$1 pattern=$2
  shift 2
  if "$@" 2> "$out"; then echo "expected a failure: $*" >&2; exit 1; fi
  grep -q -E -- "$pattern" "$out" || { echo "expected '$pattern' from: $*" >&2; cat "$out" >&2; exit 1; }
}
