#!/usr/bin/env bash
# The edge under the full rig load (issue 4, item 11): `cellguard sim` with 15 modules (8 PDOs each
# per 100 ms SYNC = 1200 frames/s), its sensor board and its inverter (Modbus TCP), and
# `cellguard edge` guarding it with recording on, for SECONDS. Prints the edge's CPU time (user+system
# from /proc) as a percentage of one core, its peak and final RSS, and its frame-handling latency
# (frame received -> supervisor evaluated and every action issued) from its status.
# Then a trip: a cell is driven over its dangerous limit and the inverter-off latency is read from
# the event. Usage: scripts/edge-bench.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
build_dir=${1:-build}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
cg="$root/$build_dir/src/cli/cellguard"
py=/usr/bin/python3
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT

wait_ready() {  # FILE PID
  while [ ! -s "$1" ]; do
    kill -0 "$2" 2>/dev/null || { echo "process $2 died:"; cat "$tmp"/*.log; exit 1; }
    sleep 0.05
  done
}

"$cg" sim --modules 15 --initial-soc 50 --control "$tmp/sim.sock" --board-link "$tmp/board" >"$tmp/sim.ready" 2>"$tmp/sim.log" &
pids+=($!)
wait_ready "$tmp/sim.ready" "${pids[0]}"

# The project's rig configuration with this simulator's endpoints, 15 modules, recording on.
"$py" - "$root" "$tmp" <<'PY'
import json, sys
root, tmp = sys.argv[1], sys.argv[2]
ready = json.load(open(f"{tmp}/sim.ready"))
text = open(f"{root}/data/edge/rig.toml").read()
def put(old, new):
    global text
    assert old in text, old
    text = text.replace(old, new, 1)
put('url = "socketcan:can0"', f'url = "{ready["can"]}"')
put('dbc = "../cellguard-rig.dbc"', f'dbc = "{root}/data/cellguard-rig.dbc"')
put('expected = 8', 'expected = 15')
put('device = "/dev/ttyACM0"', f'device = "{tmp}/board"')
put('url = "rtu:/dev/ttyUSB0?baud=19200&slave=2"', f'url = "tcp:{ready["inverter_tcp"]}?slave=2"')
put('file = "schedule-current-example.csv"', f'file = "{root}/data/edge/schedule-current-example.csv"')
# 15 modules of 12 cells: the rig's 8-module pack limits scaled by 15/8.
for old, new in [("warning_high = 384", "warning_high = 720"), ("dangerous_high = 390", "dangerous_high = 731"),
                 ("warning_low = 268", "warning_low = 502"), ("dangerous_low = 264", "dangerous_low = 495"),
                 ("max_voltage_v = 384", "max_voltage_v = 720"), ("min_voltage_v = 264", "min_voltage_v = 495")]:
    put(old, new)
text = text.replace('path = ""', f'path = "{tmp}/edge.sqlite"', 1)
text = text.replace('socket = ""', f'socket = "{tmp}/edge.sock"', 1)
text = text.replace('events = ""', f'events = "{tmp}/events.jsonl"', 1)
open(f"{tmp}/edge.toml", "w").write(text)
PY

"$cg" edge --config "$tmp/edge.toml" >"$tmp/edge.ready" 2>"$tmp/edge.log" &
edge_pid=$!
pids+=($edge_pid)
wait_ready "$tmp/edge.ready" "$edge_pid"
sleep 3  # discovery and the inverter's start-up, before measuring

ticks() { awk '{print $14 + $15}' "/proc/$edge_pid/stat"; }
start_ticks=$(ticks)
peak_kb=0
for _ in $(seq 1 "$seconds"); do
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$edge_pid/status")
  [ "$rss" -gt "$peak_kb" ] && peak_kb=$rss
done
end_ticks=$(ticks)
hz=$(getconf CLK_TCK)
"$cg" edge status --socket "$tmp/edge.sock" --json >"$tmp/status.json"
"$py" - "$tmp/status.json" "$((end_ticks - start_ticks))" "$hz" "$seconds" "$peak_kb" "$edge_pid" <<'PY'
import json, sys
status = json.load(open(sys.argv[1]))
ticks, hz, seconds, peak_kb, pid = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rss_kb = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
can, lat = status["can"], status["latency"]["frame_handling"]
print(f"modules {status['modules']['found']}/{status['modules']['expected']}, state {status['state']}, "
      f"{can['frames']} frames ({can['module_frames']} module PDOs, {can['unknown']} unknown, {can['malformed']} malformed, {can['dropped']} dropped)")
print(f"cellguard edge: {ticks / hz:.2f} s CPU in {seconds:.0f} s = {100 * ticks / hz / seconds:.2f} % of one core")
print(f"cellguard edge: RSS {rss_kb / 1024:.1f} MiB at the end, peak {peak_kb / 1024:.1f} MiB")
print(f"frame handling over {lat['count']} frames: p50 {lat['p50_us']} us, p99 {lat['p99_us']} us, "
      f"p99.9 {lat['p999_us']} us, max {lat['max_us']:.0f} us")
rec = status.get("recording", {})
print(f"recording: {rec.get('records_committed')} records, {rec.get('records_dropped')} dropped, {rec.get('file_bytes')} bytes")
PY

# One trip under the full load: cell 5 of module 9 over 4.2 V.
"$cg" edge start --socket "$tmp/edge.sock" >/dev/null || true
sleep 8
"$cg" sim ctl --socket "$tmp/sim.sock" fault cell_drift module=9 cell=5 rate_v_per_s=0.5 target_v=4.4 >/dev/null
for _ in $(seq 1 100); do
  grep -q '"inverter_off"' "$tmp/events.jsonl" 2>/dev/null && break
  sleep 0.1
done
"$py" - "$tmp/events.jsonl" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
for e in events:
    if e.get("action") in ("inverter_off", "contactors_open"):
        print(f"trip: {e['action']} {e.get('latency_us', float('nan')):.1f} us after the offending frame arrived "
              f"(frame {e.get('frame_age_us', float('nan')):.0f} us old on the bus clock), reason: {e['reason']['text']}")
PY
