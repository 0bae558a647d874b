#!/usr/bin/env bash
# "Fresh Debian" (issue 15): the dashboard builds and tests with Debian 12's own nodejs 18 and npm 9,
# even on a machine whose node is newer. scripts/debian-node.sh fetches Debian's packages once into
# the cache (~/.cache/cellguard/debian-node) and lays them over /usr in a private mount namespace;
# there, a copy of web/ gets `npm ci`, `npm run build` and `npm test` (vitest), and, with --binary,
# the browser test (tests/browser/dashboard_test.mjs: playwright-core + Debian's chromium against
# sim + edge + server) runs on that node too. Prints the versions and how long each step took.
#
#   tests/web/debian_node_test.sh --source DIR [--binary build/src/cli/cellguard] [--out DIR]
#
# Exit 77 (ctest: skipped) with the reason when CELLGUARD_SKIP_DEBIAN_NODE=1, when apt has no
# Debian nodejs and nothing is cached, when no mount namespace or overlayfs is possible, or when
# `npm ci` cannot reach the registry and npm's cache (~/.npm, filled by the main build) lacks a package.
set -euo pipefail

source_dir=.
binary=
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_dir=$2; shift ;;
    --binary) binary=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "debian_node_test: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
source_dir="$(cd "$source_dir" && pwd)"
if [ -n "$binary" ]; then binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"; fi

if [ "${CELLGUARD_SKIP_DEBIAN_NODE:-0}" = 1 ]; then
  echo "SKIPPED: CELLGUARD_SKIP_DEBIAN_NODE=1"
  exit 77
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

t0=$(now)
rc=0
root="$("$source_dir/scripts/debian-node.sh" fetch)" || rc=$?
case "$rc" in
  0) ;;
  75) echo "SKIPPED: Debian's nodejs is not cached and cannot be downloaded now (no network or no package lists; above)"; exit 77 ;;
  *) echo "FAILED: scripts/debian-node.sh fetch" >&2; exit 1 ;;
esac
echo "Debian node in $root (fetched or cached: $(since "$t0"))"

work="$(mktemp -d "${TMPDIR:-/tmp}/cellguard-debian-node.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The copy: web/ without its node_modules and dist; data/ beside it for the browser test's rig.
mkdir -p "$work/src"
tar -C "$source_dir" --exclude=web/node_modules --exclude=web/dist -cf - web | tar -C "$work/src" -xf -
ln -s "$source_dir/data" "$work/src/data"
[ -n "$out" ] || out="$work/browser"

# Runs inside the namespace, where /usr/bin/node and npm are Debian's.
cat >"$work/inside.sh" <<'EOF'
set -euo pipefail
work=$1 binary=$2 out=$3 tests=$4
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
node_version=$(node --version)
npm_version=$(npm --version)
echo "node $node_version ($(command -v node)), npm $npm_version"
case "$node_version" in v18.*) ;; *) echo "FAILED: node is $node_version, not Debian's 18" >&2; exit 1 ;; esac
case "$npm_version" in 9.*) ;; *) echo "FAILED: npm is $npm_version, not Debian's 9" >&2; exit 1 ;; esac
cd "$work/src/web"

t=$(now)
# --prefer-offline: the packages from npm's cache where the main build put them; the network only
# for what is missing. --engine-strict: a package whose "engines" excludes this node fails here (npm
# only warns otherwise), e.g. playwright-core >= 1.62 needs node 20.
if ! npm ci --prefer-offline --engine-strict --fetch-retries=1 --fetch-retry-mintimeout=2000 \
  --fetch-retry-maxtimeout=5000 --no-audit --no-fund --loglevel=error >"$work/npm-ci.log" 2>&1; then
  cat "$work/npm-ci.log" >&2
  if grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|ECONNRESET' "$work/npm-ci.log"; then
    echo "SKIPPED: npm ci needs the registry (network unavailable) for packages npm's cache lacks"
    exit 77
  fi
  echo "FAILED: npm ci with node $node_version, npm $npm_version" >&2
  exit 1
fi
echo "npm ci: $(since "$t")"

t=$(now)
npm run build --silent
[ -s dist/index.html ] || { echo "FAILED: npm run build wrote no dist/index.html" >&2; exit 1; }
echo "npm run build (vite): $(since "$t")"

t=$(now)
npm test --silent
echo "npm test (vitest): $(since "$t")"

if [ -n "$binary" ]; then
  t=$(now)
  rc=0
  node "$tests/browser/dashboard_test.mjs" --binary "$binary" --source "$work/src" --web-root "$work/src/web/dist" \
    --out "$out" || rc=$?
  case "$rc" in
    0) echo "browser test (playwright-core, chromium): $(since "$t")" ;;
    77) echo "browser test: skipped (the reason above); the build and unit tests passed" ;;
    *) exit "$rc" ;;
  esac
fi
EOF

rc=0
"$source_dir/scripts/debian-node.sh" exec "$root" bash "$work/inside.sh" "$work" "$binary" "$out" "$source_dir/tests" || rc=$?
echo "total: $(since "$t0")"
exit "$rc"
