#!/usr/bin/env bash
# `make demo`: shows cellguard on the rig's CAN traffic. Generates a sample rig log (8 modules,
# SYNC at 10 Hz, the rig's PDO layout from the project's own DBC), checks the DBC, decodes the log
# to JSON lines and to text, converts it to Vector ASC and PEAK TRC and decodes those back.
set -euo pipefail
build_dir=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cg="$root/$build_dir/src/cli/cellguard"
dbc="$root/data/cellguard-rig.dbc"
out="$root/demo-out"
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The rig's CAN database (project DBC: 15 module slots, SYNC + 8 PDOs + SDO per module)"
"$cg" dbc check "$dbc"
"$cg" dbc show "$dbc" --message BMU01_pdo1

step "A sample rig log: 8 modules, 60 s, SYNC at 10 Hz -> $out/rig.log"
"$cg" generate --dbc "$dbc" --modules 8 --seconds 60 -o "$out/rig.log"
wc -l "$out/rig.log"
head -n 3 "$out/rig.log"

step "Decoded to JSON lines (first 3 module frames)"
"$cg" decode --dbc "$dbc" --known-only "$out/rig.log" | grep -m 3 BMU

step "Decoded as text, like cantools decode --single-line (first 3 module frames)"
"$cg" decode --dbc "$dbc" --format text "$out/rig.log" | grep -m 3 BMU

step "Converted to Vector ASC and PEAK TRC, and decoded back"
"$cg" convert "$out/rig.log" "$out/rig.asc"
"$cg" convert "$out/rig.log" "$out/rig.trc"
"$cg" decode --dbc "$dbc" --known-only "$out/rig.trc" | sed -n 2p

step "Decoding speed over the whole log"
frames=$(wc -l < "$out/rig.log")
start=$(date +%s%N)
"$cg" decode --dbc "$dbc" "$out/rig.log" > /dev/null
end=$(date +%s%N)
awk -v f="$frames" -v ns=$((end - start)) 'BEGIN { printf "%d frames in %.3f s: %.2f million frames/s\n", f, ns / 1e9, f / (ns / 1e9) / 1e6 }'
echo
echo "Files are in $out/. Next: cellguard --help"
