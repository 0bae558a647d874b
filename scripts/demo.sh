#!/usr/bin/env bash
# `make demo`: the whole system live. A CA (cellguard pki), the simulated rig (8 modules on
# socketcand, sensor board on a pty, inverter on Modbus TCP), the server (mutual TLS for the edges,
# the dashboard and HTTP API on http://127.0.0.1:8080) and the edge guarding the rig and streaming to
# the server. Then a scripted scenario: a schedule runs; after about a minute cell 5 of module 3
# drifts towards over-voltage, the edge nudges (WARNING), then trips to SAFE. Watch it in the
# browser; reset with the printed command. Ctrl-C stops everything.
#
#   scripts/demo.sh [BUILD_DIR] [--decode] [--fault-after SECONDS] [--http HOST:PORT] [--listen HOST:PORT]
#                   [--out DIR]
#
# Never collides with another demo or service: the dashboard takes 127.0.0.1:8080 when it is free
# (CELLGUARD_DEMO_HTTP names another), else any free port; the server's port for edges, the
# simulator's socketcand and Modbus TCP ports are any free ones (port 0); the sockets and the board's
# pty live in the run's folder. All are printed ("demo: ports: ..."). --http/--listen ask for a given
# address (port 0: any free port). --decode first shows the offline tools (DBC check, log generation,
# decoding, conversion). --out DIR: the files (logs, events, the CA, the server's store) go to
# DIR/live (default demo-out/; while another demo runs there, DIR/live-2, -3, ...).
set -euo pipefail
build_dir=build
decode=0
fault_after=60
http=
listen=127.0.0.1:0
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --decode) decode=1 ;;
    --fault-after) fault_after=$2; shift ;;
    --http) http=$2; shift ;;
    --listen) listen=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) build_dir=$1 ;;
  esac
  shift
done
root=$(cd "$(dirname "$0")/.." && pwd)
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
cg="$build_dir/src/cli/cellguard"
dbc="$root/data/cellguard-rig.dbc"
web_root="$build_dir/web/dist"
[ -n "$out" ] || out="$root/demo-out"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ts() { date +%H:%M:%S; }

if [ "$decode" = 1 ]; then
  step "Offline tools: the rig's DBC, a generated 60 s log of 8 modules, decoded and converted"
  "$cg" dbc check "$dbc"
  "$cg" generate --dbc "$dbc" --modules 8 --seconds 60 -o "$out/rig.log"
  "$cg" decode --dbc "$dbc" --known-only "$out/rig.log" | grep -m 2 BMU
  "$cg" convert "$out/rig.log" "$out/rig.trc"
  frames=$(wc -l < "$out/rig.log")
  start=$(date +%s%N)
  "$cg" decode --dbc "$dbc" "$out/rig.log" > /dev/null
  end=$(date +%s%N)
  awk -v f="$frames" -v ns=$((end - start)) 'BEGIN { printf "decoded %d frames in %.3f s: %.2f million frames/s\n", f, ns / 1e9, f / (ns / 1e9) / 1e6 }'
fi

# ---- processes and a clean stop ------------------------------------------------------------------
pids=()
stopping=0
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM EXIT
  echo
  echo "demo: stopping edge, server and simulator"
  for (( i=${#pids[@]}-1; i>=0; i-- )); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo: stopped. Files are in $run/ (events.jsonl, *.log, edge.toml, the CA in pki/, the store in server-data/)"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# Waits until FILE has a line (a process's JSON ready line), or fails when PID exits or after 30 s.
wait_ready() {
  local file=$1 pid=$2 log=$3 n=0
  until [ -s "$file" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "demo: $(basename "$log" .log) did not start:" >&2; tail -n 20 "$log" >&2; exit 1; fi
    n=$((n + 1)); [ $n -gt 300 ] && { echo "demo: $(basename "$log" .log) not ready after 30 s" >&2; exit 1; }
    sleep 0.1
  done
}
# Sleeps so that a signal's trap runs at once (a foreground sleep would delay it).
pause() { sleep "$1" & wait $!; }
json_field() { sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p" "$1"; }

# Sets `key = value` in [section] of a TOML file (the first such key after the header).
toml_set() {
  local file=$1 section=$2 key=$3 value=$4
  awk -v section="[$section]" -v key="$key" -v value="$value" '
    { line = $0; sub(/[ \t]*#.*/, "", line); gsub(/^[ \t]+|[ \t]+$/, "", line) }
    line ~ /^\[/ { in_section = (line == section) }
    in_section && !done && $0 ~ "^[ \t]*" key "[ \t]*=" { print key " = " value; done = 1; next }
    { print }' "$file" > "$file.tmp" && mv "$file.tmp" "$file"
}

# ---- the CA, the simulator, the server, the edge --------------------------------------------------
# The run's folder: DIR/live, or DIR/live-N while another demo holds live's lock (flock on
# live.lock, held by this shell's fd 9 until it exits).
run="$out/live"
for n in $(seq 2 50); do
  exec 9>"$run.lock"
  flock -n 9 && break
  exec 9>&-
  run="$out/live-$n"
done
flock -n 9 2>/dev/null || { echo "demo: 50 demos already run in $out" >&2; exit 1; }
rm -rf "$run"
mkdir -p "$run"
# The dashboard's address: 127.0.0.1:8080 (or CELLGUARD_DEMO_HTTP) when free, else any free port (the
# server reports it).
# The probe binds without SO_REUSEPORT, so it also sees a listener that has it: cpp-httplib sets it,
# and two servers would share 8080 without an error. Probe and start are one step for this user's
# demos (a lock until the server listens): demos started at once take 8080 one after the other.
port_free() {
  python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind((sys.argv[1], int(sys.argv[2])))
except OSError: sys.exit(1)' "${1%:*}" "${1##*:}"
}
step "A CA for this installation (cellguard pki): a server certificate for 127.0.0.1 and one for the edge"
"$cg" pki init --dir "$run/pki" >/dev/null
"$cg" pki issue --dir "$run/pki" --server server --san 127.0.0.1 --san localhost >/dev/null
"$cg" pki issue --dir "$run/pki" --edge rig-01 >/dev/null
"$cg" pki list --dir "$run/pki"

step "The simulated rig: 8 modules on socketcand, the sensor board on a pty, the inverter on Modbus TCP"
"$cg" sim --modules 8 --initial-soc 50 --control "$run/sim.sock" --board-link "$run/board" >"$run/sim.ready" 2>"$run/sim.log" &
pids+=($!)
wait_ready "$run/sim.ready" "${pids[-1]}" "$run/sim.log"
can=$(json_field "$run/sim.ready" can)
inverter=$(json_field "$run/sim.ready" inverter_tcp)
echo "sim: CAN $can, inverter Modbus TCP $inverter"

step "The server: edges over mutual TLS, the dashboard and HTTP API"
exec 8>"${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/cellguard-demo-$(id -u).lock"
flock -w 30 8 || echo "demo: another demo holds the start-up lock for 30 s; going on" >&2
if [ -z "$http" ]; then
  http=${CELLGUARD_DEMO_HTTP:-127.0.0.1:8080}
  port_free "$http" || { echo "demo: $http is in use (another demo or service?): the dashboard takes any free port"; http="${http%:*}:0"; }
fi
server_args=(server --data "$run/server-data" --listen "$listen" --pki-dir "$run/pki" --name server)
dashboard=1
if "$cg" server --help 2>/dev/null | grep -q -- '--web-root'; then
  server_args+=(--http "$http")
  if [ -f "$web_root/index.html" ]; then
    server_args+=(--web-root "$web_root")
  else
    echo "demo: the dashboard is not built ($web_root/index.html missing: needs Node.js and npm, see the line '-- cellguard: web dashboard: ...' of the CMake output); the API still runs" >&2
  fi
else
  dashboard=0
  echo "demo: this cellguard server has no HTTP API yet (--http/--web-root): no dashboard, the edge's status is printed instead" >&2
fi
"$cg" "${server_args[@]}" >"$run/server.ready" 2>"$run/server.log" 8>&- &
pids+=($!)
wait_ready "$run/server.ready" "${pids[-1]}" "$run/server.log"
flock -u 8 && exec 8>&-  # the server listens: the next demo's probe sees it
uplink=$(json_field "$run/server.ready" listen)
if [ "$dashboard" = 1 ]; then
  http=$(json_field "$run/server.ready" http)
  echo "server: edges (TLS) on $uplink, dashboard on http://$http"
else
  echo "server: edges (TLS) on $uplink"
fi

step "The edge: guards the rig (data/edge/rig.toml) and streams everything to the server over TLS"
cp "$root/data/edge/rig.toml" "$run/edge.toml"
toml_set "$run/edge.toml" edge id '"rig-01"'
toml_set "$run/edge.toml" can url "\"$can\""
toml_set "$run/edge.toml" can dbc "\"$dbc\""
toml_set "$run/edge.toml" board device "\"$run/board\""
toml_set "$run/edge.toml" inverter url "\"tcp:$inverter?slave=2\""
toml_set "$run/edge.toml" schedule file "\"$root/data/edge/schedule-current-example.csv\""
toml_set "$run/edge.toml" recording path "\"$run/edge.sqlite\""
toml_set "$run/edge.toml" uplink server "\"$uplink\""
toml_set "$run/edge.toml" uplink pki_dir "\"$run/pki\""
toml_set "$run/edge.toml" operator socket "\"$run/edge.sock\""
"$cg" edge check-config "$run/edge.toml" >/dev/null
"$cg" edge --config "$run/edge.toml" --events "$run/events.jsonl" >"$run/edge.ready" 2>"$run/edge.log" &
pids+=($!)
wait_ready "$run/edge.ready" "${pids[-1]}" "$run/edge.log"
edge_ctl() { "$cg" edge "$@" --socket "$run/edge.sock"; }
# Discovery: wait (at most 10 s) until the edge has found all 8 modules.
for _ in $(seq 100); do edge_ctl status 2>/dev/null | grep -q '^modules *8 of 8' && break; sleep 0.1; done
edge_ctl status | grep -E '^(state|modules|can|inverter|uplink)' || true

echo
echo "demo: files in $run"
echo "demo: ports: $([ "$dashboard" = 1 ] && echo "dashboard http://$http, ")edges (TLS) $uplink, socketcand ${can#socketcand://}, Modbus TCP $inverter"
echo "demo: sockets: edge $run/edge.sock, simulator $run/sim.sock; sensor board pty $run/board"
if [ "$dashboard" = 1 ]; then
  bold "Dashboard: http://$http   (open it in a browser; nothing is opened for you)"
fi
bold "Stop everything with Ctrl-C."

# ---- the scenario ----------------------------------------------------------------------------------
# Prints the edge's state changes and actions as they are written to events.jsonl.
tail -n 0 -F --pid=$$ "$run/events.jsonl" 2>/dev/null | while IFS= read -r line; do
  case "$line" in
    *'"kind":"state"'*|*'"action":"inverter_'*|*'"action":"contactors_open"'*|*'"operator":"reset_'*)
      printf '  [%s] %s\n' "$(ts)" "$(printf '%s' "$line" | cut -c1-220)" ;;
  esac
done &
pids+=($!)

step "[$(ts)] Schedule start: precharge through the board's relays, then the rig's current schedule"
edge_ctl schedule start
pause 5
edge_ctl status | grep -E '^(state|inverter|contactors|schedule)' || true

step "[$(ts)] In ${fault_after} s, cell 5 of module 3 starts to drift up (warning at 4.1 V, SAFE at 4.2 V)"
pause "$fault_after"
"$cg" sim ctl --socket "$run/sim.sock" fault cell_drift module=3 cell=5 rate_v_per_s=0.01 target_v=4.30 >/dev/null
echo "[$(ts)] cell_drift injected: watch the heat map of module 3 and the banner"

state() { edge_ctl status 2>/dev/null | sed -n 's/^state *\([a-z]*\).*/\1/p'; }
for _ in $(seq 1800); do [ "$(state)" = safe ] && break; sleep 0.2; done
edge_ctl status | grep -E '^(state|cause|inverter|contactors|schedule)' || true

step "[$(ts)] The edge is SAFE (latched). The cell is brought back (the fault cleared, cell back to normal)"
"$cg" sim ctl --socket "$run/sim.sock" fault clear >/dev/null
cat <<EOF
Reset (refused, with the cause, while one remains):
    $cg edge reset --socket $run/edge.sock
Start the schedule again after the reset:
    $cg edge schedule start --socket $run/edge.sock
Everything keeps running until Ctrl-C.
EOF
while :; do pause 3600; done
