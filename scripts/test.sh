#!/usr/bin/env bash
# Builds and runs rtcpeer's whole test suite: the asan preset (AddressSanitizer + UBSan) with every unit,
# simulator, loopback and interop test, then every fuzz target for a bounded time with libFuzzer.
#   scripts/test.sh            full suite
#   scripts/test.sh --quick    unit and simulator tests only (no fuzzing, no "slow" label)
# Environment: FUZZ_SECONDS (default 20 per target), JOBS (default: nproc), CI=true adds -Werror.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[[ ${1:-} == --quick ]] && quick=1
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-20}

scripts/deps.sh test

werror=OFF
[[ ${CI:-} == true ]] && werror=ON

echo "== build (asan preset, -Werror=$werror)"
cmake --preset asan -DRTCPEER_WERROR=$werror >/dev/null
cmake --build --preset asan -j "$jobs"

echo "== tests"
# No retries: a test that fails once fails the run (a flaky test is a bug to fix, not to hide).
ctest_args=(--preset asan -j "$jobs")
[[ $quick == 1 ]] && ctest_args+=(-LE 'slow|interop')
ctest "${ctest_args[@]}"

[[ $quick == 1 ]] && exit 0

echo "== fuzz (libFuzzer, ${fuzz_seconds}s per target)"
cmake --preset fuzz -DRTCPEER_WERROR=$werror >/dev/null
cmake --build --preset fuzz -j "$jobs"
status=0
for f in build/fuzz/tests/fuzz_*; do
  [[ -x $f ]] || continue
  name=${f##*/fuzz_}
  corpus=$(mktemp -d)
  [[ -d tests/fuzz/corpus/$name ]] && cp -r tests/fuzz/corpus/$name/. "$corpus"/
  if "$f" -max_total_time="$fuzz_seconds" -print_final_stats=0 -rss_limit_mb=2048 -timeout=10 \
       -artifact_prefix="build/fuzz/crash-$name-" "$corpus" >"build/fuzz/$name.log" 2>&1; then
    echo "fuzz $name: ok ($(grep -c '' "build/fuzz/$name.log") log lines)"
  else
    echo "fuzz $name: FAILED"; tail -40 "build/fuzz/$name.log"; status=1
  fi
  rm -rf "$corpus"
done
exit $status
