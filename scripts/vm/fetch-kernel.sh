#!/usr/bin/env bash
# Fetches Debian's kernel for the SocketCAN VM tests (see ../../../shared/spec/vcan-vm.md and
# run-in-vm.sh): the ELF vmlinux (boots directly under QEMU, no decompressor) and the CAN modules.
#
#   scripts/vm/fetch-kernel.sh [OUTDIR]
#
# Result: OUTDIR/vmlinux, OUTDIR/modules/{can,can-raw,can-dev,vcan}.ko (+ the other CAN modules),
# OUTDIR/version. Prints OUTDIR on stdout. Idempotent: an OUTDIR that already holds the result is
# left alone (no network, no apt). Without OUTDIR the cache is used, keyed by kernel version:
# ${XDG_CACHE_HOME:-~/.cache}/cellguard/vm/KERNEL-VERSION.
#
# The kernel package is only downloaded (`apt-get download`) and unpacked in part, never installed:
# installing linux-image-amd64 on the host would upgrade systemd and run initramfs hooks.
set -euo pipefail

die() {
  echo "fetch-kernel: $*" >&2
  exit 1
}

complete() {  # complete DIR: true if DIR holds a usable result
  [ -s "$1/vmlinux" ] && [ -s "$1/version" ] && [ -s "$1/modules/vcan.ko" ] && [ -s "$1/modules/can.ko" ] &&
    [ -s "$1/modules/can-raw.ko" ] && [ -s "$1/modules/can-dev.ko" ]
}

# The versioned package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }'
}

outdir="${1:-}"
if [ -n "$outdir" ] && complete "$outdir"; then
  echo "$outdir"
  exit 0
fi

package="$(kernel_package)"
if [ -z "$package" ]; then
  # No package lists yet (fresh machine, or lists cleaned): fetch them once.
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq >&2 || true
  package="$(kernel_package)"
fi

if [ -z "$outdir" ]; then
  cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/cellguard/vm"
  if [ -z "$package" ]; then
    # apt knows no kernel (offline?): an earlier download still serves.
    newest="$(ls -d "$cache_root"/linux-image-* 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$newest" ] && complete "$newest"; then
      echo "$newest"
      exit 0
    fi
    die "cannot find the kernel package: 'apt-cache depends linux-image-amd64' names no linux-image-*-amd64 (no package lists or no network?)"
  fi
  outdir="$cache_root/$package"
  if complete "$outdir"; then
    echo "$outdir"
    exit 0
  fi
fi
[ -n "$package" ] || die "cannot find the kernel package: 'apt-cache depends linux-image-amd64' names no linux-image-*-amd64"

python=/usr/bin/python3  # Debian's; a pyenv python may lack lzma
[ -x "$python" ] || die "$python is needed to extract vmlinux (apt-get install python3)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed"

mkdir -p "$(dirname "$outdir")"
work="$(mktemp -d "$(dirname "$outdir")/.fetch-XXXXXX")"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt-get download as root runs as _apt and needs to write here

echo "fetch-kernel: downloading $package" >&2
apt_opts=()
# As root, apt downloads as the _apt user, who cannot write under /root: download as root then.
if [ "$(id -u)" -eq 0 ]; then apt_opts=(-o APT::Sandbox::User=root); fi
(cd "$work" && apt-get download -qq "${apt_opts[@]}" "$package" >&2) || die "apt-get download $package failed (no network?)"
deb="$(ls "$work"/*.deb 2>/dev/null | head -n 1)"
[ -n "$deb" ] || die "apt-get download $package produced no .deb"

mkdir -p "$work/root"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/root" --wildcards \
  './boot/vmlinuz-*' '*lib/modules/*/kernel/net/can/*' '*lib/modules/*/kernel/drivers/net/can/*' ||
  die "unpacking $deb failed"

vmlinuz="$(ls "$work"/root/boot/vmlinuz-* | head -n 1)"
[ -n "$vmlinuz" ] || die "$deb holds no /boot/vmlinuz-*"

mkdir -p "$work/out/modules"
# The bzImage carries an XZ-compressed ELF: booting that ELF directly (PVH) skips the decompressor.
"$python" - "$vmlinuz" "$work/out/vmlinux" <<'EOF' || die "cannot extract vmlinux from $vmlinuz"
import lzma, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")
while start >= 0:
    try:
        elf = lzma.LZMADecompressor().decompress(data[start:])
    except lzma.LZMAError:
        elf = b""
    if elf.startswith(b"\x7fELF"):
        open(sys.argv[2], "wb").write(elf)
        sys.exit(0)
    start = data.find(b"\xfd7zXZ\x00", start + 1)
sys.exit("no XZ-compressed ELF found in " + sys.argv[1])
EOF
find "$work/root" -name '*.ko' -exec cp {} "$work/out/modules/" \;
echo "$package" >"$work/out/version"
complete "$work/out" || die "$deb lacks a CAN module (can, can-raw, can-dev, vcan)"

rm -rf "$outdir"
mv "$work/out" "$outdir"
if [ -n "${cache_root:-}" ]; then
  # Kernels of earlier Debian point releases (65 MB each) are no longer wanted.
  for old in "$cache_root"/linux-image-*; do
    if [ "$old" != "$outdir" ] && [ -d "$old" ]; then rm -rf "$old"; fi
  done
fi
echo "fetch-kernel: $package ready in $outdir" >&2
echo "$outdir"
