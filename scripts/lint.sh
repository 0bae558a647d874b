#!/usr/bin/env bash
# clang-tidy 14 (Debian's clang-tidy-14) with the repository's .clang-tidy over the C++ sources under
# the given folders (default: src/), using BUILD_DIR/compile_commands.json (make lint configures it).
#   scripts/lint.sh BUILD_DIR [FOLDER...]
# Prints every finding once (a header's findings are reported by each file that includes it) and a
# count per check; fails when there is any. Lock annotations (core/thread_annotations.h) are checked
# here too (-Wthread-safety), also in the files only GCC builds.
set -uo pipefail
build_dir=${1:?usage: lint.sh BUILD_DIR [FOLDER...]}
shift
folders=("$@")
[ ${#folders[@]} -eq 0 ] && folders=(src)
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$(cd "$build_dir" && pwd)
clang_tidy=${CLANG_TIDY:-clang-tidy-14}
jobs=${JOBS:-$(nproc)}
if ! command -v "$clang_tidy" >/dev/null 2>&1; then
  echo "lint: $clang_tidy not found (Debian package clang-tidy-14; scripts/install-deps.sh installs it)" >&2
  exit 2
fi
[ -f "$build_dir/compile_commands.json" ] || { echo "lint: no $build_dir/compile_commands.json" >&2; exit 2; }

# Headers are checked only under this checkout's src/: .clang-tidy's '/src/' would also match the
# generated protobuf headers in BUILD_DIR/src/ (build/ lies inside the checkout).
header_filter="^$(printf '%s' "$root" | sed 's/[][\\.*^$+?(){}|]/\\&/g')/src/"

# The compile commands are GCC's: clang ignores GCC-only warning flags. clang 14 with GCC 12's
# libstdc++ does not enable C++20 coroutines by itself (asio's detection looks for libc++'s
# <experimental/coroutine>), so they are switched on explicitly for the asio coroutine files.
extra=(--header-filter="$header_filter"
       --extra-arg=-Wno-unknown-warning-option --extra-arg=-Wno-builtin-macro-redefined
       --extra-arg=-D__cpp_impl_coroutine=201902L --extra-arg=-DASIO_HAS_CO_AWAIT=1
       --extra-arg=-DASIO_HAS_STD_COROUTINE=1 --extra-arg=-Wthread-safety)

cd "$root"
mapfile -t files < <(git ls-files -- "${folders[@]/%//*.cpp}" | while read -r f; do
  grep -q "\"file\": \"$root/$f\"" "$build_dir/compile_commands.json" && echo "$f"; done)
if [ ${#files[@]} -eq 0 ]; then echo "lint: no compiled .cpp under ${folders[*]}" >&2; exit 2; fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "lint: $clang_tidy over ${#files[@]} files in ${folders[*]} ($jobs at a time)"
export LINT_TIDY="$clang_tidy" LINT_BUILD="$build_dir" LINT_OUT="$out" LINT_EXTRA="${extra[*]}"
# shellcheck disable=SC2016  # expanded by the inner shell
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -n 1 sh -c \
  '"$LINT_TIDY" -p "$LINT_BUILD" --quiet $LINT_EXTRA "$1" >"$LINT_OUT/$(echo "$1" | tr / _).log" 2>&1' lint

# One line per finding, deduplicated; the source line and caret of each first occurrence follow it.
findings="$out/findings.txt"
cat "$out"/*.log | grep -E '^/.*:[0-9]+:[0-9]+: (warning|error): ' | sed "s|^$root/||" | sort -u >"$findings"
count=$(wc -l <"$findings")
if [ "$count" -eq 0 ]; then
  echo "lint: clean"
  exit 0
fi
cat "$findings"
echo "lint: $count findings; per check:"
grep -oE '\[[a-z0-9.,-]+\]$' "$findings" | tr -d '[]' | sed 's/,-warnings-as-errors//' | sort | uniq -c | sort -rn
exit 1
