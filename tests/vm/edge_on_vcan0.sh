# Guest script (runs inside the VM under busybox sh, see scripts/vm/run-in-vm.sh): `cellguard edge`
# guarding `cellguard sim` over a real SocketCAN interface (vcan0), with the simulated sensor board on
# a pty and the inverter on Modbus TCP over loopback (issue 4, item 10): discovery of 3 modules, then
# one trip (a cell over 4.2 V -> inverter off, contactors open, SAFE) with its latency.
# Needs: CELLGUARD_BINARY, CELLGUARD_SOURCE_DIR (data/ for the DBC, rig.toml, the example schedule).
set -u

fail() {
  echo "edge_on_vcan0: FAIL: $*"
  echo "--- cellguard edge stderr:"; tail -n 40 edge.log 2>/dev/null
  echo "--- cellguard sim stderr:"; tail -n 20 sim.log 2>/dev/null
  echo "--- events:"; tail -n 20 events.jsonl 2>/dev/null
  [ -n "${edge_pid:-}" ] && kill "$edge_pid" 2>/dev/null
  [ -n "${sim_pid:-}" ] && kill "$sim_pid" 2>/dev/null
  exit 1
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds; false after SECONDS.
wait_for() {
  tries=$(($1 * 10)); shift
  while ! "$@"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep 0.1
  done
}

cg="${CELLGUARD_BINARY:-}"
data="${CELLGUARD_SOURCE_DIR:-}/data"
[ -x "$cg" ] || fail "CELLGUARD_BINARY '$cg' is not an executable in the guest"
[ -f "$data/edge/rig.toml" ] || fail "no $data/edge/rig.toml in the guest"
work="$(pwd)"

"$cg" sim --modules 3 --initial-soc 50 --can socketcan:vcan0 --control "$work/sim.sock" \
  --board-link "$work/board" --inverter-tcp-address 127.0.0.1 --inverter-tcp-port 15020 >sim.json 2>sim.log &
sim_pid=$!
sim_ready() { grep -q '"ready":true' sim.json || { kill -0 "$sim_pid" 2>/dev/null || fail "cellguard sim exited before its ready line"; false; }; }
wait_for 30 sim_ready || fail "no ready line from cellguard sim within 30 s"

# The project's rig configuration on vcan0 with this rig's endpoints; the rig's 8-module pack limits
# scaled to 3 modules (x 3/8).
sed -e "s|^url = \"socketcan:can0\"|url = \"socketcan:vcan0\"|" \
    -e "s|^dbc = \"../cellguard-rig.dbc\"|dbc = \"$data/cellguard-rig.dbc\"|" \
    -e "s|^expected = 8|expected = 3|" \
    -e "s|^device = \"/dev/ttyACM0\"|device = \"$work/board\"|" \
    -e "s|^url = \"rtu:/dev/ttyUSB0?baud=19200&slave=2\"|url = \"tcp:127.0.0.1:15020?slave=2\"|" \
    -e "s|^file = \"schedule-current-example.csv\"|file = \"$data/edge/schedule-current-example.csv\"|" \
    -e "s|^max_voltage_v = 384|max_voltage_v = 144|" -e "s|^min_voltage_v = 264|min_voltage_v = 99|" \
    -e "s|^warning_high = 384|warning_high = 144|" -e "s|^dangerous_high = 390|dangerous_high = 146|" \
    -e "s|^warning_low = 268|warning_low = 100.5|" -e "s|^dangerous_low = 264|dangerous_low = 99|" \
    -e "s|^hysteresis = 2 |hysteresis = 0.5 |" \
    -e "s|^socket = \"\"|socket = \"$work/edge.sock\"|" \
    -e "s|^events = \"\"|events = \"$work/events.jsonl\"|" \
    -e "s|^path = \"\"|path = \"$work/edge.sqlite\"|" \
    "$data/edge/rig.toml" >edge.toml
"$cg" edge check-config edge.toml >check.log 2>&1 || { cat check.log; fail "check-config refused the guest's configuration"; }

"$cg" edge --config edge.toml >edge.json 2>edge.log &
edge_pid=$!
edge_ready() { grep -q '"ready":true' edge.json || { kill -0 "$edge_pid" 2>/dev/null || fail "cellguard edge exited before its ready line"; false; }; }
wait_for 30 edge_ready || fail "no ready line from cellguard edge within 30 s"

status() { "$cg" edge status --socket "$work/edge.sock" --json >status.json 2>/dev/null; }
three_modules() { status && grep -q '"found": 3' status.json; }
wait_for 20 three_modules || fail "the edge did not find 3 modules on vcan0: $(cat status.json 2>/dev/null)"
grep -q '"url": "socketcan:vcan0"' status.json || fail "the edge is not on socketcan:vcan0"
echo "edge_on_vcan0: 3 modules found on socketcan:vcan0"

# The interface goes down for 2 s: the edge keeps running, reports the link, sees the modules go
# stale (dangerous after 1 s of silence -> SAFE), and finds them again when the interface is back.
ip link set vcan0 down || fail "ip link set vcan0 down"
can_down() { grep '"link":"can"' events.jsonl 2>/dev/null | grep -q '"up":false'; }
wait_for 10 can_down || fail "no CAN link-down event after vcan0 went down"
sleep 2
ip link set vcan0 up || fail "ip link set vcan0 up"
can_up_again() { grep -q 'frames again' events.jsonl 2>/dev/null; }
wait_for 10 can_up_again || fail "no CAN link-up event after vcan0 came back"
kill -0 "$edge_pid" 2>/dev/null || fail "the edge died with the interface"
grep -q '"rule":"module_stale"' events.jsonl || fail "the silent modules were not reported stale"
reset_ok() { "$cg" edge reset --socket "$work/edge.sock" >reset.log 2>&1; }
wait_for 10 reset_ok || fail "reset refused after vcan0 came back: $(cat reset.log)"
wait_for 10 three_modules || fail "modules not back after vcan0 came back"
echo "edge_on_vcan0: vcan0 down and up: link reported, modules stale then back, reset accepted"

# Close the contactors (precharge through the simulated board and inverter), then the trip.
inverter_running() { status && grep -q '"phase": "running"' status.json; }
wait_for 40 inverter_running || fail "the inverter start-up did not complete"
"$cg" edge start --socket "$work/edge.sock" >start.log 2>&1 || fail "start refused: $(cat start.log)"
closed() { status && grep -q '"commanded_closed": true' status.json; }
wait_for 40 closed || fail "precharge did not close the contactors"
"$cg" sim ctl --socket "$work/sim.sock" fault cell_drift module=2 cell=5 rate_v_per_s=0.5 target_v=4.4 >/dev/null ||
  fail "cell_drift fault refused"
tripped() { grep -q '"action":"inverter_off"' events.jsonl 2>/dev/null; }
wait_for 30 tripped || fail "no inverter_off after the cell drifted over 4.2 V"
safe() { status && grep -q '"state": "safe"' status.json; }
wait_for 10 safe || fail "the edge did not reach SAFE"
grep -q '"channel":"BMU02_pdo3.Cell_5_Voltage"' events.jsonl || fail "the trip's reason does not name BMU02_pdo3.Cell_5_Voltage"
latency=$(grep '"action":"inverter_off"' events.jsonl | sed -n 's/.*"latency_us":\([0-9.]*\).*/\1/p' | head -n 1)
echo "edge_on_vcan0: trip on vcan0: inverter off ${latency} us after the offending frame arrived; state safe"
kill "$edge_pid" "$sim_pid" 2>/dev/null
wait "$edge_pid" 2>/dev/null
wait "$sim_pid" 2>/dev/null
exit 0
