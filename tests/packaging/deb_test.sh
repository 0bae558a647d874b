#!/usr/bin/env bash
# The Debian packages (cmake/CellguardPackaging.cmake): builds them from BUILD_DIR with CPack into a
# temporary folder, then checks
#   - lintian: no errors (warnings are printed);
#   - each package's files, conffiles, maintainer scripts and Depends (dpkg-shlibdeps found the
#     shared libraries; edge and server depend on exactly this version of cellguard);
#   - the units with `systemd-analyze verify` (when available), the binary path pointed at the
#     unpacked one;
#   - the packaged /etc/cellguard/edge.toml passes `cellguard edge check-config` with the unpacked
#     files (its DBC and schedule), and the man pages render without warnings.
# Exit 77 (ctest: skipped) with the reason when dpkg-deb, dpkg-shlibdeps or lintian is missing or
# CELLGUARD_SKIP_PACKAGING=1. Label `packaging` (ctest -LE packaging leaves it out).
set -euo pipefail
build=$(readlink -f "${1:?usage: deb_test.sh BUILD_DIR}")

if [ "${CELLGUARD_SKIP_PACKAGING:-0}" = 1 ]; then
  echo "SKIPPED: CELLGUARD_SKIP_PACKAGING=1"; exit 77
fi
for tool in dpkg-deb dpkg-shlibdeps lintian cpack; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIPPED: $tool not found (Debian packages dpkg-dev and lintian; scripts/install-deps.sh installs them)"
    exit 77
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cellguard-deb-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
[ -n "$version" ] || fail "no CPACK_PACKAGE_VERSION in $build/CPackConfig.cmake"
start=$(date +%s.%N)
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1) ||
  { cat "$tmp/cpack.log"; fail "cpack -G DEB failed"; }
arch=$(dpkg --print-architecture)
common=$tmp/out/cellguard_${version}_${arch}.deb
edge=$tmp/out/cellguard-edge_${version}_${arch}.deb
server=$tmp/out/cellguard-server_${version}_${arch}.deb
for deb in "$common" "$edge" "$server"; do [ -f "$deb" ] || { ls "$tmp/out"; fail "missing $(basename "$deb")"; }; done
echo "packages built in $(echo "$(date +%s.%N) - $start" | bc) s: $(cd "$tmp/out" && ls ./*.deb | xargs)"

# lintian: errors fail the test. (As root it says so; the packages are only read.)
if ! lintian --fail-on error --tag-display-limit 0 "$common" "$edge" "$server" >"$tmp/lintian.log" 2>&1; then
  cat "$tmp/lintian.log"; fail "lintian reports errors"
fi
grep -v '^running with root privileges' "$tmp/lintian.log" || true
echo "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.log" || true) warnings)"

# Contents.
has() {  # has DEB PATH...
  local deb=$1; shift
  dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' >"$tmp/list"
  for path in "$@"; do grep -qxF "$path" "$tmp/list" || fail "$(basename "$deb") lacks $path"; done
}
has "$common" /usr/bin/cellguard /usr/share/man/man1/cellguard.1.gz /usr/share/man/man1/cellguard-edge.1.gz \
  /usr/share/man/man1/cellguard-edge-status.1.gz /usr/share/man/man1/cellguard-server.1.gz \
  /usr/share/man/man1/cellguard-pki-issue.1.gz /usr/share/cellguard/cellguard-rig.dbc \
  /usr/share/doc/cellguard/copyright /usr/share/doc/cellguard/changelog.gz /usr/share/doc/cellguard/deploy.md
has "$edge" /etc/cellguard/edge.toml /lib/systemd/system/cellguard-edge.service /lib/udev/rules.d/60-cellguard.rules \
  /lib/systemd/network/80-cellguard-can0.network /usr/share/cellguard/examples/rig.toml /usr/share/doc/cellguard-edge/copyright
has "$server" /etc/cellguard/server.toml /lib/systemd/system/cellguard-server.service /usr/share/doc/cellguard-server/copyright
if grep -q '^CELLGUARD_WEB_BUILT:INTERNAL=ON' "$build/CMakeCache.txt" 2>/dev/null || [ -f "$build/web/dist/index.html" ]; then
  has "$server" /usr/share/cellguard/web/index.html
fi

# Control files unpacked (no `grep -q` at the end of a pipe: with pipefail its early exit fails the writer).
mkdir -p "$tmp/control"
for deb in "$common" "$edge" "$server"; do dpkg-deb -e "$deb" "$tmp/control/$(dpkg-deb -f "$deb" Package)"; done
ctl=$tmp/control
[ "$(cat "$ctl/cellguard-edge/conffiles")" = /etc/cellguard/edge.toml ] || fail "cellguard-edge conffiles"
[ "$(cat "$ctl/cellguard-server/conffiles")" = /etc/cellguard/server.toml ] || fail "cellguard-server conffiles"
depends=$(dpkg-deb -f "$common" Depends)
for lib in libc6 libssl3 libsqlite3-0 libmodbus5 libgpiod2 adduser; do
  grep -q "\b$lib\b" <<<"$depends" || fail "cellguard's Depends lacks $lib: $depends"
done
for deb in "$edge" "$server"; do
  grep -qF "cellguard (= $version)" <<<"$(dpkg-deb -f "$deb" Depends)" ||
    fail "$(basename "$deb") must depend on cellguard (= $version)"
done
for script in cellguard/postinst cellguard/postrm cellguard-edge/postinst cellguard-edge/prerm \
  cellguard-server/postinst cellguard-server/prerm; do
  [ -x "$ctl/$script" ] || fail "no executable $script"
  sh -n "$ctl/$script" || fail "$script: shell syntax"
done
grep -q 'adduser --system' "$ctl/cellguard/postinst" || fail "cellguard's postinst makes no system user"
grep -q 'kept /var/lib/cellguard' "$ctl/cellguard/postrm" || fail "cellguard's postrm must keep the data on purge"
echo "contents, conffiles, maintainer scripts, Depends: ok"

root=$tmp/root
for deb in "$common" "$edge" "$server"; do dpkg-deb -x "$deb" "$root"; done
grep -qF "$version" <<<"$("$root/usr/bin/cellguard" --version)" || fail "the packaged binary does not run"

# The packaged edge.toml, its /usr paths pointed into the unpacked tree.
sed "s|\"/usr/share/cellguard/|\"$root/usr/share/cellguard/|g" "$root/etc/cellguard/edge.toml" >"$tmp/edge.toml"
"$root/usr/bin/cellguard" edge check-config "$tmp/edge.toml" >"$tmp/check.log" 2>&1 ||
  { cat "$tmp/check.log"; fail "the packaged edge.toml does not pass check-config"; }
grep -q 'board /dev/cellguard-board' "$tmp/check.log" || { cat "$tmp/check.log"; fail "edge.toml must use /dev/cellguard-board"; }
echo "packaged edge.toml: check-config ok"

# Units.
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$tmp/units"
  for unit in cellguard-edge.service cellguard-server.service; do
    sed "s|/usr/bin/cellguard|$root/usr/bin/cellguard|g" "$root/lib/systemd/system/$unit" >"$tmp/units/$unit"
  done
  if ! systemd-analyze verify --man=no "$tmp/units/cellguard-edge.service" "$tmp/units/cellguard-server.service" \
    >"$tmp/verify.log" 2>&1; then
    cat "$tmp/verify.log"; fail "systemd-analyze verify"
  fi
  if [ -s "$tmp/verify.log" ]; then cat "$tmp/verify.log"; fail "systemd-analyze verify warns"; fi
  echo "systemd-analyze verify: ok"
else
  echo "systemd-analyze not found: units not verified"
fi
grep -qx 'Type=notify' "$root/lib/systemd/system/cellguard-edge.service" || fail "the edge unit must be Type=notify"
grep -q '^WatchdogSec=' "$root/lib/systemd/system/cellguard-edge.service" || fail "the edge unit needs WatchdogSec="

# Man pages render without warnings.
for page in "$root"/usr/share/man/man1/*.1.gz; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null || true)
  [ -z "$warnings" ] || fail "$(basename "$page"): $warnings"
done
echo "$(ls "$root"/usr/share/man/man1 | wc -l) man pages: ok"
echo "deb_test: ok in $(echo "$(date +%s.%N) - $start" | bc) s"
