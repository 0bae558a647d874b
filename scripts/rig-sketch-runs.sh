#!/usr/bin/env bash
# Issue 13 "done when": the edge against the rig's own board sketch (simavr), with the rig's vendor
# DBC, closes and opens the relays exactly as commanded in N of N runs. Runs the rig-sketch
# end-to-end test N times (default 20) and prints the count and each run's trip latency.
# Usage: scripts/rig-sketch-runs.sh [N] [build-dir]   (needs CELLGUARD_SEED_DIR and arduino-mk)
set -uo pipefail
runs=${1:-20}
build=${2:-build}
test_bin="$build/tests/firmware/rig_sketch_e2e_test"
if [ ! -x "$test_bin" ]; then
  echo "rig-sketch-runs: $test_bin missing (cmake --build $build --target rig_sketch_e2e_test cellguard)" >&2
  exit 2
fi
if [ -z "${CELLGUARD_SEED_DIR:-}" ]; then
  echo "rig-sketch-runs: CELLGUARD_SEED_DIR is not set (the rig's files)" >&2
  exit 2
fi
passed=0
for i in $(seq 1 "$runs"); do
  out=$("$test_bin" --gtest_filter='RigSketchE2E.PrechargeScheduleTripAndStopSwitchExactlyTheIntendedPins' 2>&1)
  latency=$(grep -o 'relay pins applied by the sketch [0-9.]* ms' <<<"$out" | grep -o '[0-9.]* ms')
  if grep -q '\[  PASSED  \] 1 test' <<<"$out"; then
    passed=$((passed + 1))
    echo "run $i: ok (dangerous frame -> relay pins applied: ${latency:-?})"
  else
    echo "run $i: FAILED"
    grep -E 'Failure|Expected|Which is|Actual' <<<"$out" | head -20
  fi
done
echo "rig-sketch-runs: $passed of $runs runs closed and opened the relays exactly as commanded"
[ "$passed" -eq "$runs" ]
