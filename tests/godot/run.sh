#!/bin/sh
# Runs one GDScript test in real Godot against the *installed* addon:
#   run.sh <build-dir> <godot3-server> <script.gd> [script arguments...]
# 1. `cmake --install <build-dir> --component godot` into a temporary prefix (the addon a user would copy);
# 2. a fresh copy of tests/godot/project gets that folder as res://webrtc/ (its project.godot holds the one
#    singleton line the README asks users to add);
# 3. godot3-server runs the script headless with HOME in the temporary directory and a UTF-8 locale.
# RTCPEER_GODOT_PRELOAD (set by ctest for sanitizer builds) lists runtimes to LD_PRELOAD into Godot;
# RTCPEER_GODOT_PROJECT replaces tests/godot/project (e.g. a test of another issue with its own scripts).
set -eu
build=$1 godot=$2 script=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --component godot --prefix "$tmp/prefix" >/dev/null
# RTCPEER_GODOT_PROJECT: another Godot project to run in (it needs the same [gdnative] singletons line).
cp -R "${RTCPEER_GODOT_PROJECT:-$here/project}" "$tmp/project"
cp -R "$tmp/prefix/share/rtcpeer/godot/webrtc" "$tmp/project/webrtc"
mkdir -p "$tmp/home/data" "$tmp/home/config" "$tmp/home/cache"
# Godot takes its locale from LANG and knows no "C"; the C library gets C.UTF-8.
export HOME="$tmp/home" LANG=en_US.UTF-8 LC_ALL=C.UTF-8 XDG_DATA_HOME="$tmp/home/data" \
  XDG_CONFIG_HOME="$tmp/home/config" XDG_CACHE_HOME="$tmp/home/cache"
if [ -n "${RTCPEER_GODOT_PRELOAD:-}" ]; then
  export LD_PRELOAD="$RTCPEER_GODOT_PRELOAD"
  # Godot 3.2 itself leaks a little at exit (and is not ours to fix); rtcpeer's own objects are counted by the
  # scripts through rtcpeer_live_objects instead.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
fi
set +e
"$godot" --no-window --path "$tmp/project" -s "res://$script" "$@"
status=$?
set -e
exit $status
