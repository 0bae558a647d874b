#!/usr/bin/env bash
# Debian 12's own Node.js and npm (packages nodejs, libnodeNNN, npm and npm's node-* modules), for
# testing the dashboard's build with them on a machine that has a newer node (e.g. from nodesource).
# The packages are only downloaded (`apt-get download`) and unpacked (`dpkg -x`), never installed.
#
#   scripts/debian-node.sh fetch [OUTDIR]    unpack into OUTDIR (default: the cache), print the root
#   scripts/debian-node.sh exec ROOT CMD...  run CMD with that node and npm as /usr/bin/node, npm
#
# fetch: the newest nodejs version that apt has from a Debian archive (not nodesource's), with the
# libnode of the same version and every node-*/libjs-* package npm and libnode need, plus the
# libraries this host lacks. Without OUTDIR the cache is used, keyed by version:
# ${XDG_CACHE_HOME:-~/.cache}/cellguard/debian-node/nodejs-VERSION/root (like the VM kernel).
# Idempotent: a complete root is left alone (no network, no apt). Exit status 75 when the packages
# cannot be had now (apt knows no Debian nodejs, a download failed: no network?).
#
# exec: Debian's nodejs has some of its builtins outside the binary at fixed paths
# (/usr/share/nodejs/acorn, cjs-module-lexer, undici), so ROOT/usr is laid over /usr (overlayfs, read
# only) in a private mount namespace (`unshare -m` as root, `unshare -rm` otherwise): inside, /usr/bin/
# node and npm are Debian's and the host's node is hidden. Exit status 77 (skipped) when that is not
# possible here (no overlayfs, no user namespaces).
set -euo pipefail

die() {
  echo "debian-node: $*" >&2
  exit 1
}
unavailable() {  # a temporary failure: no network, no package lists
  echo "debian-node: $*" >&2
  exit 75
}

complete() {  # complete ROOT: true if ROOT holds a usable unpacked node and npm
  [ -f "$1/../complete" ] && [ -x "$1/usr/bin/node" ] && [ -e "$1/usr/share/nodejs/npm/bin/npm-cli.js" ]
}

# The newest nodejs version from a Debian archive (apt-cache madison lists the newest first).
debian_nodejs_version() {
  apt-cache madison nodejs 2>/dev/null |
    awk -F'|' '$3 ~ /debian\.org|\/debian/ && $2 !~ /nodesource/ { gsub(/ /, "", $2); print $2; exit }'
}

fetch() {
  local outdir="${1:-}"
  if [ -n "$outdir" ] && complete "$outdir/root"; then
    echo "$outdir/root"
    return 0
  fi
  local version
  version="$(debian_nodejs_version)"
  if [ -z "$version" ]; then
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
    $sudo apt-get update -qq >&2 || true  # sudo -n: no password prompt in a test
    version="$(debian_nodejs_version)"
  fi
  if [ -z "$outdir" ]; then
    local cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/cellguard/debian-node"
    if [ -z "$version" ]; then
      # apt knows no Debian nodejs (offline, no lists?): an earlier download still serves.
      local newest
      newest="$(ls -d "$cache_root"/nodejs-* 2>/dev/null | sort -V | tail -n 1 || true)"
      if [ -n "$newest" ] && complete "$newest/root"; then
        echo "$newest/root"
        return 0
      fi
      unavailable "apt knows no nodejs from a Debian archive ('apt-cache madison nodejs'; no package lists or no network?)"
    fi
    outdir="$cache_root/nodejs-$version"
  fi
  [ -n "$version" ] || unavailable "apt knows no nodejs from a Debian archive ('apt-cache madison nodejs')"
  if complete "$outdir/root"; then
    echo "$outdir/root"
    return 0
  fi

  # libnode108 (= version): the library the nodejs package's binary is a front end of.
  local libnode
  libnode="$(apt-cache show "nodejs=$version" | sed -n 's/^Depends:.*\(libnode[0-9]*\) (= [^)]*).*/\1/p' | head -n 1)"
  [ -n "$libnode" ] || die "nodejs $version names no libnodeNNN (= $version) in its Depends"
  # npm's and libnode's dependencies, recursively (nodejs itself resolves to the host's candidate,
  # which may be nodesource's: it is downloaded by version instead).
  local closure
  closure="$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$libnode" npm 2>/dev/null | grep -v '^[ <]' | sort -u)"
  local packages=("nodejs=$version" "$libnode=$version") p
  while IFS= read -r p; do
    case "$p" in
      nodejs | "$libnode") ;;
      node-* | libjs-* | npm) packages+=("$p") ;;
      lib*-dev) ;;
      lib*)  # a shared library a fresh Debian would install with nodejs; only those this host lacks
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || packages+=("$p") ;;
    esac
  done <<<"$closure"

  echo "debian-node: downloading nodejs $version, $libnode, npm and ${#packages[@]} packages in all into $outdir" >&2
  rm -rf "$outdir"
  mkdir -p "$outdir/debs"
  # apt-get download warns that it runs unsandboxed when root may write the folder but _apt may not;
  # without network it names every package: the first three lines are enough.
  (cd "$outdir/debs" && apt-get download "${packages[@]}" >/dev/null 2>"$outdir/download.log") || true
  local errors
  errors="$(grep -v '^W: Download is performed unsandboxed' "$outdir/download.log" || true)"
  if [ -n "$errors" ]; then
    head -n 3 <<<"$errors" >&2
    [ "$(wc -l <<<"$errors")" -le 3 ] || echo "... and $(($(wc -l <<<"$errors") - 3)) more lines ($outdir/download.log)" >&2
  fi
  local deb n=0
  for deb in "$outdir"/debs/*.deb; do
    [ -e "$deb" ] || unavailable "apt-get download fetched nothing (no network?)"
    dpkg-deb -x "$deb" "$outdir/root"
    n=$((n + 1))
  done
  [ "$n" -eq "${#packages[@]}" ] || unavailable "downloaded $n of ${#packages[@]} packages (apt-get download failed for some; see above)"
  rm -rf "$outdir/debs" "$outdir/download.log"
  printf '%s\n' "${packages[@]}" >"$outdir/complete"
  complete "$outdir/root" || die "$outdir/root has no usr/bin/node or npm after unpacking"
  echo "$outdir/root"
}

exec_in() {
  local root="$1"
  shift
  complete "$root" || die "$root is no unpacked Debian node (scripts/debian-node.sh fetch)"
  root="$(cd "$root" && pwd)"
  local unshare_opts=(--mount)
  if [ "$(id -u)" -ne 0 ]; then unshare_opts=(--map-root-user --mount); fi
  # Inside the new mount namespace only: /usr = ROOT/usr over the host's /usr.
  if ! unshare "${unshare_opts[@]}" true 2>/dev/null; then
    echo "SKIPPED: cannot create a mount namespace here (unshare ${unshare_opts[*]} failed: user namespaces off?)"
    exit 77
  fi
  # shellcheck disable=SC2016  # expanded by the inner shell
  unshare "${unshare_opts[@]}" bash -c '
    root=$1; shift
    if ! mount -t overlay cellguard-debian-node -o "lowerdir=$root/usr:/usr" /usr 2>/tmp/debian-node-mount.$$; then
      echo "SKIPPED: cannot lay Debian node over /usr (overlayfs): $(cat /tmp/debian-node-mount.$$)"
      rm -f /tmp/debian-node-mount.$$
      exit 77
    fi
    rm -f /tmp/debian-node-mount.$$
    export PATH="/usr/bin:$PATH"
    exec "$@"' debian-node "$root" "$@"
}

case "${1:-}" in
  fetch) shift; fetch "$@" ;;
  exec)
    [ $# -ge 3 ] || die "usage: scripts/debian-node.sh exec ROOT CMD..."
    shift
    exec_in "$@"
    ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
