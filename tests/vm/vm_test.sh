#!/usr/bin/env bash
# The CTest side of the VM tests (tests/vm/CMakeLists.txt): the real SocketCAN code paths inside a
# QEMU VM with Debian's kernel and vcan0 (scripts/vm/run-in-vm.sh says how it works and how to add a
# guest script).
#
#   vm_test.sh fetch                                   fixture: downloads the kernel once (cached)
#   vm_test.sh run CELLGUARD SOCKETCAN_TEST GUEST...   boots once and runs every guest script
#
# A missing QEMU or kernel is a failure with its reason, never a silent pass. CELLGUARD_SKIP_VM=1
# skips (exit 77, the tests' SKIP_RETURN_CODE).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$here/../.." && pwd)"
vm="$source_dir/scripts/vm"

if [ "${CELLGUARD_SKIP_VM:-}" = 1 ]; then
  echo "vm_test: skipped (CELLGUARD_SKIP_VM=1)"
  exit 77
fi

mode="${1:-}"
shift || true
case "$mode" in
  fetch)
    if ! kernel="$("$vm/fetch-kernel.sh")"; then
      echo "vm_test: FAIL: cannot get Debian's kernel for the VM tests (scripts/vm/fetch-kernel.sh, see above);" \
        "set CELLGUARD_SKIP_VM=1 to skip them where no package registry is reachable" >&2
      exit 1
    fi
    echo "vm_test: kernel ready in $kernel"
    # For `run` (same working folder, the build's tests/vm): spares it apt-cache's seconds.
    echo "$kernel" >vm-kernel.path
    ;;
  run)
    [ $# -ge 3 ] || { echo "usage: vm_test.sh run CELLGUARD SOCKETCAN_TEST GUEST..." >&2; exit 2; }
    cellguard="$1"
    socketcan_test="$2"
    shift 2
    for tool in qemu-system-x86_64 cpio cansend candump; do
      command -v "$tool" >/dev/null ||
        { echo "vm_test: FAIL: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
    done
    # Every guest gets the cellguard binary, the SocketCAN test binary, can-utils and the project's
    # data/ (DBC, edge configuration) at their host paths; variables tell the guest scripts where.
    kernel_args=()
    if [ -s vm-kernel.path ] && [ -s "$(cat vm-kernel.path)/vmlinux" ]; then kernel_args=(--kernel "$(cat vm-kernel.path)"); fi
    start=$(date +%s.%N)
    set +e
    "$vm/run-in-vm.sh" "${kernel_args[@]}" --timeout "${CELLGUARD_VM_TIMEOUT:-120}" \
      --file "$cellguard" --file "$socketcan_test" \
      --file "$(command -v cansend)" --file "$(command -v candump)" --file "$source_dir/data" \
      --env "CELLGUARD_BINARY=$cellguard" --env "CELLGUARD_SOCKETCAN_TEST=$socketcan_test" \
      --env "CELLGUARD_SOURCE_DIR=$source_dir" \
      "$@"
    rc=$?
    set -e
    end=$(date +%s.%N)
    echo "vm_test: VM run took $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s, result $rc"
    if [ "$rc" -eq 77 ]; then rc=1; fi  # a guest's 77 is no skip of the whole test
    exit "$rc"
    ;;
  *)
    echo "usage: vm_test.sh fetch | run CELLGUARD SOCKETCAN_TEST GUEST..." >&2
    exit 2
    ;;
esac
