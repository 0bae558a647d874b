#!/usr/bin/env bash
# CPU cost of a running `cellguard sim` (issue 3, item 9): a 15-module rig, a python-can socketcand
# client sending SYNC at 10 Hz and reading every PDO for SECONDS; prints the simulator's CPU time
# (user+system from /proc) as a percentage of one core. Usage: scripts/sim-cpu.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
build_dir=${1:-build}
seconds=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
cg="$root/$build_dir/src/cli/cellguard"
tmp=$(mktemp -d)
"$cg" sim --modules 15 --control "$tmp/ctl.sock" >"$tmp/ready" 2>"$tmp/log" &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null; rm -rf "$tmp"' EXIT
while [ ! -s "$tmp/ready" ]; do
  kill -0 $sim_pid || { cat "$tmp/log"; exit 1; }
  read -r -t 0.1 <> <(:) || true
done
port=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['can'].rsplit(':',1)[1].split('/')[0])" "$tmp/ready")
ticks() { awk '{print $14 + $15}' "/proc/$sim_pid/stat"; }
start_ticks=$(ticks)
/usr/bin/python3 - "$port" "$seconds" <<'PY'
import sys, time, can
port, seconds = int(sys.argv[1]), float(sys.argv[2])
bus = can.Bus(interface="socketcand", host="127.0.0.1", port=port, channel="can0")
received, next_sync, end = 0, time.monotonic(), time.monotonic() + seconds
while time.monotonic() < end:
    if time.monotonic() >= next_sync:
        bus.send(can.Message(arbitration_id=0x080, is_extended_id=False, data=[0]))
        next_sync += 0.1
    msg = bus.recv(timeout=max(0.0, min(next_sync, end) - time.monotonic()))
    received += msg is not None
bus.shutdown()
print(f"peer received {received} frames in {seconds:.0f} s ({received / seconds:.0f}/s; 1200/s expected)")
PY
end_ticks=$(ticks)
hz=$(getconf CLK_TCK)
awk -v t=$((end_ticks - start_ticks)) -v hz="$hz" -v s="$seconds" \
  'BEGIN { printf "cellguard sim: %.2f s CPU in %d s = %.2f %% of one core\n", t / hz, s, 100 * t / hz / s }'
