# Guest script (runs inside the VM under busybox sh, see scripts/vm/run-in-vm.sh): `cellguard sim`
# on a real SocketCAN interface answers a SYNC sent by can-utils with the 8 PDOs of each module,
# as candump (can-utils, an independent reader of the kernel's CAN_RAW socket) sees them.
# Needs: CELLGUARD_BINARY; cansend and candump in the guest.
set -u

fail() {
  echo "sim_on_vcan0: FAIL: $*"
  echo "--- cellguard sim stderr:"; cat sim.log 2>/dev/null
  echo "--- candump -L vcan0:"; cat dump.log 2>/dev/null
  [ -n "${sim_pid:-}" ] && kill "$sim_pid" 2>/dev/null
  [ -n "${dump_pid:-}" ] && kill "$dump_pid" 2>/dev/null
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

[ -x "${CELLGUARD_BINARY:-}" ] || fail "CELLGUARD_BINARY '${CELLGUARD_BINARY:-}' is not an executable in the guest"

candump -L vcan0 >dump.log 2>&1 &
dump_pid=$!
# candump is listening once it shows a frame sent after its start (0x7FF: no module's COB-ID).
probe() {
  cansend vcan0 7FF#C6 && grep -q ' 7FF#C6$' dump.log
}
wait_for 10 probe || fail "candump never showed a probe frame on vcan0"

"$CELLGUARD_BINARY" sim --modules 3 --no-board --no-inverter --can socketcan:vcan0 >ready.json 2>sim.log &
sim_pid=$!
ready() { grep -q '"ready":true' ready.json || { kill -0 "$sim_pid" 2>/dev/null || fail "cellguard sim exited before its ready line"; false; }; }
wait_for 20 ready || fail "no ready line from cellguard sim within 20 s"
grep -q '"can":"socketcan:vcan0"' ready.json || fail "ready line does not name socketcan:vcan0: $(cat ready.json)"
echo "sim_on_vcan0: ready: $(cat ready.json)"

cansend vcan0 080#00 || fail "cansend of the SYNC failed"

# COB-IDs of the 8 TPDOs of node N: 0x180/0x280/0x380/0x480 + N and 0x190/0x290/0x390/0x490 + N.
expected=""
for node in 1 2 3; do
  for base in 18 28 38 48 19 29 39 49; do
    expected="$expected ${base}${node}"
  done
done
# The PDOs seen after the SYNC, each with 8 data bytes, one line per COB-ID.
pdos_after_sync() {
  awk '$3 == "080#00" { after = 1; next } after { split($3, f, "#"); if (length(f[2]) == 16) print f[1] }' dump.log |
    sort -u
}
all_pdos() {
  seen="$(pdos_after_sync)"
  for id in $expected; do
    echo "$seen" | grep -qx "$id" || return 1
  done
}
wait_for 10 all_pdos || {
  seen="$(pdos_after_sync | tr '\n' ' ')"
  missing=""
  for id in $expected; do echo "$seen" | grep -qw "$id" || missing="$missing $id"; done
  fail "after SYNC 080#00 expected 24 PDOs of 8 bytes (3 modules x 8); missing:$missing; seen: $seen"
}
count=$(awk '$3 == "080#00" { after = 1; next } after' dump.log | grep -c .)
echo "sim_on_vcan0: SYNC answered with all 24 PDOs ($count frames after the SYNC)"

kill "$sim_pid"
wait "$sim_pid"
sim_rc=$?
sim_pid=""
[ "$sim_rc" -eq 0 ] || fail "cellguard sim exited with $sim_rc on SIGTERM"
kill "$dump_pid"
dump_pid=""
echo "sim_on_vcan0: PASS"
