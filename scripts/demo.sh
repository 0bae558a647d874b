#!/usr/bin/env bash
# `make demo`: shows cellguard on the rig's CAN traffic. Generates a sample rig log (8 modules,
# SYNC at 10 Hz, the rig's PDO layout from the project's own DBC), checks the DBC, decodes the log
# to JSON lines and to text, converts it to Vector ASC and PEAK TRC and decodes those back; then runs
# the simulated rig with the edge guarding it: discovery, a schedule with precharge, a cell fault and
# the trip with its reasons.
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
step "The simulated rig guarded by the edge (sim: 8 modules on socketcand, board on a pty, inverter on Modbus TCP)"
"$cg" sim --modules 8 --initial-soc 50 --control "$out/sim.sock" --board-link "$out/board" >"$out/sim.ready" 2>"$out/sim.log" &
sim_pid=$!
edge_pid=""
trap 'kill $sim_pid $edge_pid 2>/dev/null || true' EXIT
until [ -s "$out/sim.ready" ]; do kill -0 $sim_pid || { cat "$out/sim.log"; exit 1; }; sleep 0.1; done
can=$(sed -n 's/.*"can":"\([^"]*\)".*/\1/p' "$out/sim.ready")
inverter=$(sed -n 's/.*"inverter_tcp":"\([^"]*\)".*/\1/p' "$out/sim.ready")
rm -f "$out/events.jsonl"
"$cg" edge --config "$root/data/edge/rig.toml" --can "$can" --board "$out/board" --inverter "tcp:$inverter?slave=2" \
  --events "$out/events.jsonl" --socket "$out/edge.sock" >"$out/edge.ready" 2>"$out/edge.log" &
edge_pid=$!
until [ -s "$out/edge.ready" ]; do kill -0 $edge_pid || { cat "$out/edge.log"; exit 1; }; sleep 0.1; done
sleep 3
"$cg" edge status --socket "$out/edge.sock"

step "Schedule start: precharge through the board's relays, then the rig's current schedule"
"$cg" edge schedule start --socket "$out/edge.sock"
sleep 8
"$cg" edge status --socket "$out/edge.sock" | grep -E '^(state|inverter|contactors|schedule)'

step "A fault: cell 5 of module 3 drifts up past 4.2 V"
"$cg" sim ctl --socket "$out/sim.sock" fault cell_drift module=3 cell=5 rate_v_per_s=0.5 target_v=4.4 >/dev/null
sleep 4
grep -E '"(inverter_off|contactors_open)"' "$out/events.jsonl" | cut -c1-200
"$cg" edge status --socket "$out/edge.sock" | grep -E '^(state|cause|contactors|schedule)'
kill $edge_pid $sim_pid 2>/dev/null || true
wait 2>/dev/null || true

echo
echo "Files are in $out/ (events.jsonl: every event of the edge). Next: cellguard --help"
