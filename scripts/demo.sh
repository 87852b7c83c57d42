#!/usr/bin/env bash
# The main job: builds rtcpeer (release preset) and runs the peer-connection demo (`rtcpeer demo`): two peers
# in one process connect over loopback and exchange data. Until the demo exists it runs the quick test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
scripts/deps.sh test
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
if [[ -x build/release/tools/rtcpeer ]]; then
  exec build/release/tools/rtcpeer demo "$@"
fi
echo "(the demo is not built yet: running the quick test suite instead)"
ctest --preset release -j "$jobs" -LE 'slow|interop|fuzz'
