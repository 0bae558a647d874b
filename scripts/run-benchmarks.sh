#!/usr/bin/env bash
# `make bench`: runs every benchmark and the end-to-end decode measurement; prints the figures that
# docs/benchmarks.md records. The rig's DBC comes from CELLGUARD_SEED_DBC, else ../shared/seed, else
# the project's own data/cellguard-rig.dbc (same layout).
set -euo pipefail
build_dir=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cg="$root/$build_dir/src/cli/cellguard"
if [ -z "${CELLGUARD_SEED_DBC:-}" ]; then
  if [ -f "$root/../shared/seed/Goodwood_15BMUs_IFSpecV3_Node.dbc" ]; then
    CELLGUARD_SEED_DBC="$root/../shared/seed/Goodwood_15BMUs_IFSpecV3_Node.dbc"
  else
    CELLGUARD_SEED_DBC="$root/data/cellguard-rig.dbc"
  fi
fi
export CELLGUARD_SEED_DBC
export CELLGUARD_DBC_FILE=${CELLGUARD_DBC_FILE:-$CELLGUARD_SEED_DBC}
echo "rig DBC: $CELLGUARD_SEED_DBC"

for bench in "$root/$build_dir"/bench/*_bench; do
  [ -x "$bench" ] || continue
  echo "== $(basename "$bench")"
  "$bench" --benchmark_min_time=1 --benchmark_counters_tabular=true
done

echo "== cellguard decode: 1,000,000-frame candump log of the rig's PDO traffic (15 modules, random payloads) to JSON lines"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cg" generate --dbc "$CELLGUARD_SEED_DBC" --modules 15 --random --frames 1000000 -o "$tmp/rig.log"
best=""
for run in 1 2 3; do
  start=$(date +%s%N)
  "$cg" decode --dbc "$CELLGUARD_SEED_DBC" "$tmp/rig.log" > "$tmp/out.jsonl"
  end=$(date +%s%N)
  ns=$((end - start))
  if [ -z "$best" ] || [ "$ns" -lt "$best" ]; then best=$ns; fi
done
lines=$(wc -l < "$tmp/out.jsonl")
awk -v f="$lines" -v ns="$best" 'BEGIN { printf "decode: %d frames in %.3f s (best of 3): %.2f million frames/s\n", f, ns / 1e9, f / (ns / 1e9) / 1e6 }'
