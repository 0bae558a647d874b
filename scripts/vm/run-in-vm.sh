#!/usr/bin/env bash
# Runs guest shell scripts inside a QEMU VM that boots Debian's kernel with a virtual CAN interface
# (vcan0, CAN FD capable), so the real SocketCAN code paths run although this host's kernel has no
# CAN. The facts behind it: ../../../shared/spec/vcan-vm.md. Boots in ~2-3 s (software emulation).
#
#   scripts/vm/run-in-vm.sh [--kernel DIR] [--file PATH]... [--env NAME=VALUE]... [--timeout SECONDS]
#                           [--memory MB] [--keep DIR] GUEST_SCRIPT [GUEST_SCRIPT...]
#
#   --kernel DIR   the output of fetch-kernel.sh (vmlinux, modules/); default: fetch-kernel.sh's cache
#   --file PATH    a host file or folder to put into the guest AT THE SAME ABSOLUTE PATH; for an ELF
#                  binary, every library `ldd` lists comes along at its own path (static binaries
#                  are fine), so ASan/UBSan builds work unchanged. Repeat for each file.
#   --env N=V      exported in the guest for every guest script. ASAN_OPTIONS, UBSAN_OPTIONS and
#                  LSAN_OPTIONS are passed on from the host environment when set.
#   --timeout S    the whole VM run (boot, every script, power-off); default 60
#   --keep DIR     keep the initramfs tree and console log in DIR (for debugging)
#
# Adding a guest script (e.g. tests/vm/edge_on_vcan0.sh): write a POSIX sh script (it runs under
# busybox sh: busybox applets plus whatever you pass with --file) that exits 0 on success and prints
# a clear message on failure (tests/vm/sim_on_vcan0.sh is the model: waits on conditions, never a
# fixed sleep; start background processes with & and kill them at the end); then list it in
# tests/vm/CMakeLists.txt (CELLGUARD_VM_GUEST_SCRIPTS) so `vcan_vm_test` runs it. What the guest
# gets there comes from tests/vm/vm_test.sh: the cellguard binary ($CELLGUARD_BINARY, so
# "$CELLGUARD_BINARY" sim ... and "$CELLGUARD_BINARY" edge ... both work), socketcan_test
# ($CELLGUARD_SOCKETCAN_TEST), cansend/candump, and the source tree's data/ at its host path under
# $CELLGUARD_SOURCE_DIR; add more with --file there. Keep console output short on success: the
# emulated serial console costs ~0.1 s a line on a busy machine (write logs to $PWD, print on failure).
#
# The guest: root on an initramfs (writable, /tmp too), /dev (devtmpfs, devpts for ptys), /proc,
# /sys, loopback up, modules can, can-raw, can-dev, vcan loaded, no other networking. Each guest script
# gets a freshly created vcan0 (up, MTU 72) and runs in its own empty writable folder ($PWD,
# also $VM_WORKDIR); VM_GUEST=1 is set. The scripts run one after the other in one boot; the console
# shows "CELLGUARD-VM-GUEST NAME RC" after each and "CELLGUARD-VM-RESULT RC" at the end, RC being the
# first non-zero exit code of a script (0 if all passed). This script prints the console and exits
# with that RC; with no result line (boot failure, timeout, crash) it exits 125.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() {
  echo "run-in-vm: $*" >&2
  exit 125
}

kernel_dir=""
files=()
envs=()
timeout_s="${CELLGUARD_VM_TIMEOUT:-60}"
memory_mb=1024
keep=""
scripts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel_dir="$2"; shift 2 ;;
    --file) files+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --memory) memory_mb="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    --) shift; scripts+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) scripts+=("$1"); shift ;;
  esac
done
[ ${#scripts[@]} -gt 0 ] || die "no guest script given (see --help)"

qemu="$(command -v qemu-system-x86_64 || true)"
[ -n "$qemu" ] || die "qemu-system-x86_64 not found (scripts/install-deps.sh installs qemu-system-x86)"
busybox=/bin/busybox
[ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 ||
  die "a static $busybox is needed (scripts/install-deps.sh installs busybox-static)"
command -v cpio >/dev/null || die "cpio not found (scripts/install-deps.sh installs it)"
if [ -z "$kernel_dir" ]; then
  kernel_dir="$("$here/fetch-kernel.sh")" || die "cannot get the kernel (scripts/vm/fetch-kernel.sh failed)"
fi
for f in vmlinux modules/can.ko modules/can-raw.ko modules/can-dev.ko modules/vcan.ko; do
  [ -s "$kernel_dir/$f" ] || die "$kernel_dir/$f missing (run scripts/vm/fetch-kernel.sh)"
done
for s in "${scripts[@]}"; do [ -f "$s" ] || die "guest script $s not found"; done

work="$(mktemp -d "${TMPDIR:-/tmp}/cellguard-vm-XXXXXX")"
cleanup() {
  if [ -n "$keep" ]; then
    mkdir -p "$keep" && cp -a "$work/." "$keep/"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
root="$work/root"
mkdir -p "$root"/usr/{bin,sbin,lib,lib32,lib64,libx32}

# The host's merged-/usr symlinks (/lib -> usr/lib, ...), so paths from ldd and the binaries' own
# interpreter paths resolve as on the host.
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then
    ln -s "$(readlink "/$d")" "$root/$d"
  fi
done
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,vm/modules,vm/guest,vm/work}

add_path() {  # add_path HOSTPATH: copy to the same path in the guest (following symlinks)
  local src="$1" dst
  dst="$root/${src#/}"
  mkdir -p "$(dirname "$dst")"
  if [ -d "$src" ]; then
    mkdir -p "$dst" && cp -aL "$src/." "$dst/"
  else
    cp -L "$src" "$dst"
  fi
}

declare -A added=()
add_with_libraries() {  # add_with_libraries HOSTPATH
  local path="$1" lib
  path="$(realpath -s "$path")"
  [ -e "$path" ] || die "--file $1: no such file"
  [ -z "${added[$path]:-}" ] || return 0
  added[$path]=1
  add_path "$path"
  if [ -f "$path" ] && [ "$(head -c 4 "$path" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    # Without debug info: the sanitizer build's binary is ~300 MB with it, and the initramfs must
    # fit the guest's memory twice (packed and unpacked).
    strip --strip-debug "$root/${path#/}" 2>/dev/null || true
    # Static binaries make ldd fail: nothing to add then.
    while read -r lib; do
      [ -n "$lib" ] && [ -z "${added[$lib]:-}" ] || continue
      added[$lib]=1
      add_path "$lib"
    done < <(ldd "$path" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true)
  fi
}

for f in "${files[@]}"; do add_with_libraries "$f"; done

# busybox; /init links its applets at boot where no host file took the name (one fork per link here
# costs seconds on a busy machine).
cp "$busybox" "$root/bin/busybox"
[ -e "$root/bin/sh" ] || ln -s busybox "$root/bin/sh"

for m in can can-raw can-dev vcan; do cp "$kernel_dir/modules/$m.ko" "$root/vm/modules/"; done

i=0
for s in "${scripts[@]}"; do
  i=$((i + 1))
  cp "$s" "$root/vm/guest/$(printf '%02d' "$i")-$(basename "$s")"
done

quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "export VM_GUEST=1"
  for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
    if [ -n "${!v:-}" ]; then echo "export $v=$(quote "${!v}")"; fi
  done
  for e in "${envs[@]}"; do
    name="${e%%=*}"
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && [ "$name" != "$e" ] || die "--env $e: expected NAME=VALUE"
    echo "export $name=$(quote "${e#*=}")"
  done
} >"$root/vm/env"

cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
/bin/busybox --install -s 2>/dev/null
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# /tmp stays on the (writable) initramfs root: a tmpfs there would hide files passed from host /tmp.
chmod 1777 /tmp
mkdir -p /dev/pts /dev/shm /root
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
ip link set lo up

finish() {
  echo "CELLGUARD-VM-RESULT $1"
  # isa-debug-exit: QEMU exits at once with (RC << 1) | 1.
  printf "\\$(printf '%o' "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
  poweroff -f
}

for m in can can-raw can-dev vcan; do
  insmod /vm/modules/$m.ko || { echo "cellguard-vm: insmod $m.ko failed"; finish 125; }
done
. /vm/env

rc=0
for script in /vm/guest/*; do
  name=${script##*/}
  name=${name#??-}
  ip link del vcan0 2>/dev/null
  if ! { ip link add dev vcan0 type vcan && ip link set vcan0 mtu 72 && ip link set vcan0 up; }; then
    echo "cellguard-vm: cannot create vcan0"
    finish 125
  fi
  export VM_WORKDIR=/vm/work/${script##*/}
  mkdir -p "$VM_WORKDIR"
  echo "CELLGUARD-VM-GUEST-START $name"
  (cd "$VM_WORKDIR" && exec sh "$script")
  r=$?
  echo "CELLGUARD-VM-GUEST $name $r"
  [ "$rc" -eq 0 ] && rc=$r
done
finish "$rc"
EOF
chmod 755 "$root/init"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$work/initramfs.cpio" ||
  die "cannot pack the initramfs"

log="$work/console.log"
set +e
timeout -k 5 "$timeout_s" "$qemu" -m "$memory_mb" -smp 1 -accel tcg -display none -nodefaults -no-reboot \
  -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$kernel_dir/vmlinux" -initrd "$work/initramfs.cpio" \
  -append "console=ttyS0 quiet panic=-1 mitigations=off cryptomgr.notests" </dev/null 2>&1 |
  tr -d '\r' | tee "$log"
statuses=("${PIPESTATUS[@]}")
set -e
qemu_status="${statuses[0]}"

result="$(awk '$1 == "CELLGUARD-VM-RESULT" { print $2 }' "$log" | tail -n 1)"
if [ -z "$result" ]; then
  if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    die "no result: the VM did not finish within ${timeout_s} s (--timeout / CELLGUARD_VM_TIMEOUT)"
  fi
  die "no result: the VM stopped without the CELLGUARD-VM-RESULT line (QEMU status $qemu_status)"
fi
exit "$result"
