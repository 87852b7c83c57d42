#!/bin/sh
# Builds the Pion peer (main.go) offline from Debian's golang-go and golang-github-pion-webrtc.v3-dev into
# <dir>/pion_peer, in GOPATH mode: GOPATH=<dir>/gopath:/usr/share/gocode, nothing downloaded. main.go is copied
# into <dir>/gopath/src/pion_peer next to go.mod: Go's minimal module compatibility then maps the import path
# github.com/pion/webrtc/v3 onto Debian's /usr/share/gocode/src/github.com/pion/webrtc (whose go.mod says /v3).
#   build.sh <dir>
# Exits 77 (skip) when go or the Pion sources are missing, except under CI=true, where that is a failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: build.sh <dir>}
missing() {
  if [ "${CI:-}" = true ]; then
    echo "pion_peer/build.sh: FAILED: $1; CI has to run the interop tests (scripts/deps.sh installs what they need)"
    exit 1
  fi
  echo "pion_peer/build.sh: skipped: $1"
  exit 77
}
command -v go >/dev/null 2>&1 || missing "go is not installed (apt-get install golang-go)"
[ -d /usr/share/gocode/src/github.com/pion/webrtc ] ||
  missing "Pion is not installed (apt-get install golang-github-pion-webrtc.v3-dev)"
src="$dir/gopath/src/pion_peer"
mkdir -p "$src" || exit 1
cp "$here/main.go" "$here/go.mod" "$src/" || exit 1
cd "$src" && GO111MODULE=off GOPATH="$dir/gopath:/usr/share/gocode" GOPROXY=off GOFLAGS= GOCACHE="$dir/gocache" \
  go build -o "$dir/pion_peer" .
