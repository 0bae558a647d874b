#!/bin/sh
# A small filesystem for "server disk full" tests (issue 5): mount a size-limited tmpfs (or a loop-mounted
# ext4 image) on DIR, fill it, unmount it. Needs root. The C++ tests use tests/support/small_fs.h instead.
#
#   scripts/disk-full.sh mount DIR [SIZE] [--ext4]   SIZE as for tmpfs/truncate: 4m (default), 512k, 1g
#   scripts/disk-full.sh fill DIR                    writes DIR/fill until the disk is full (exit 0 on ENOSPC)
#   scripts/disk-full.sh free DIR                    removes DIR/fill
#   scripts/disk-full.sh umount DIR                  unmounts (and removes the ext4 image)
#
# SQLite in WAL mode works on tmpfs; --ext4 is for behaviour of a block filesystem (journal, no
# reserved blocks: made with -m 0 so root hits ENOSPC at the same size).
set -eu

usage() { sed -n '2,12p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
command=$1
dir=$2
image="$dir.img"

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "disk-full.sh: needs root to mount (run with sudo or in CI's container)" >&2
    exit 77  # the automake "skipped" exit code
  fi
}

case "$command" in
  mount)
    need_root
    size=${3:-4m}
    kind=${4:-}
    mkdir -p "$dir"
    if [ "$kind" = "--ext4" ]; then
      rm -f "$image"
      truncate -s "$size" "$image"
      mkfs.ext4 -q -F -m 0 "$image"
      mount -o loop "$image" "$dir"
    else
      mount -t tmpfs -o "size=$size,mode=0755,nosuid,nodev" tmpfs "$dir"
    fi
    df -h "$dir" | tail -n 1
    ;;
  fill)
    # dd stops at ENOSPC with an error; that is the point.
    if dd if=/dev/zero of="$dir/fill" bs=64k 2>/tmp/disk-full-dd.$$; then
      echo "disk-full.sh: $dir did not fill up" >&2
      rm -f /tmp/disk-full-dd.$$
      exit 1
    fi
    if grep -q "No space left on device" /tmp/disk-full-dd.$$; then
      rm -f /tmp/disk-full-dd.$$
      echo "disk-full.sh: $dir is full ($(stat -c %s "$dir/fill") bytes in $dir/fill)"
    else
      cat /tmp/disk-full-dd.$$ >&2
      rm -f /tmp/disk-full-dd.$$
      exit 1
    fi
    ;;
  free)
    rm -f "$dir/fill"
    ;;
  umount)
    need_root
    umount "$dir" || umount -l "$dir"
    rmdir "$dir" 2>/dev/null || true
    rm -f "$image"
    ;;
  *)
    usage
    ;;
esac
