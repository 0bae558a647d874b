#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR/fuzz for SECONDS each.
# Seeds: fuzz/seeds/<target>/ in the repository, plus the DBC corpus for DBC targets when
# CELLGUARD_DBC_CORPUS is set. Any crash, leak or input slower than 1 s fails the run.
set -uo pipefail
build_dir=${1:?usage: run-fuzzers.sh BUILD_DIR SECONDS}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/fuzz-work"
mkdir -p "$work"

passed=0
failed=0
for bin in "$build_dir"/fuzz/*_fuzz; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus="$work/$name/corpus"
  mkdir -p "$corpus" "$work/$name/artifacts"
  seeds=()
  [ -d "$root/fuzz/seeds/$name" ] && seeds+=("$root/fuzz/seeds/$name")
  if [[ "$name" == dbc* ]] && [ -n "${CELLGUARD_DBC_CORPUS:-}" ]; then
    mkdir -p "$work/$name/dbc-seeds"
    cp -f "$CELLGUARD_DBC_CORPUS"/*.dbc "$work/$name/dbc-seeds/" 2>/dev/null || true
    seeds+=("$work/$name/dbc-seeds")
  fi
  # The documented edge configurations are seeds of the configuration loader.
  [ "$name" = edge_config_fuzz ] && seeds+=("$root/data/edge")
  echo "fuzz: $name for ${seconds}s (seeds: ${seeds[*]:-none})"
  if ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 \
      -max_len=262144 -print_final_stats=1 -artifact_prefix="$work/$name/artifacts/" \
      "$corpus" "${seeds[@]}" >"$work/$name/log.txt" 2>&1; then
    echo "fuzz: $name ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name/log.txt" | grep -o '[0-9]*$') runs)"
    passed=$((passed + 1))
  else
    echo "fuzz: $name FAILED; last lines of its log:"
    tail -n 40 "$work/$name/log.txt"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
