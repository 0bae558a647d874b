# Guest script (runs inside the VM under busybox sh, see scripts/vm/run-in-vm.sh): the SocketCAN
# bus's GoogleTest cases (src/can/socketcan_test.cpp) against the real kernel, which they skip on
# hosts without CAN. Here a skip is a failure (CELLGUARD_REQUIRE_SOCKETCAN=1).
# Needs: CELLGUARD_SOCKETCAN_TEST (the socketcan_test binary).
set -u
[ -x "${CELLGUARD_SOCKETCAN_TEST:-}" ] ||
  { echo "socketcan_on_vcan0: FAIL: CELLGUARD_SOCKETCAN_TEST '${CELLGUARD_SOCKETCAN_TEST:-}' is not in the guest"; exit 1; }

# vcan0 (CAN FD MTU) exists; the tests also want a classic-only interface and one they may remove.
ip link add dev vcan1 type vcan && ip link set vcan1 mtu 16 && ip link set vcan1 up &&
  ip link add dev vcan2 type vcan && ip link set vcan2 up ||
  { echo "socketcan_on_vcan0: FAIL: cannot create vcan1/vcan2"; exit 1; }

CELLGUARD_REQUIRE_SOCKETCAN=1 "$CELLGUARD_SOCKETCAN_TEST" --gtest_color=no >gtest.log 2>&1
rc=$?
# The VM's serial console is slow (~0.1 s a line under load): the whole log only on failure.
fail() {
  cat gtest.log
  echo "socketcan_on_vcan0: FAIL: $*"
  exit 1
}
grep -q '^\[  SKIPPED \]' gtest.log && fail "tests skipped inside the VM"
[ "$rc" -eq 0 ] || fail "socketcan_test exited with $rc"
grep -q '^\[  PASSED  \]' gtest.log || fail "no test passed"
echo "socketcan_on_vcan0: PASS: $(grep '^\[  PASSED  \]' gtest.log | cut -c14-)" \
  "$(awk '$1 == "[" && $2 == "OK" { printf "%s%s", sep, $4; sep = ", " }' gtest.log)"
