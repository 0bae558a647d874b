#!/usr/bin/env bash
# clang-format 14 (Debian's) over every C/C++ file git tracks, with the repository's .clang-format.
#   scripts/format.sh check   lists the files that differ and fails when there is any (make format-check)
#   scripts/format.sh fix     rewrites them in place (make format)
# One version on purpose: other clang-format versions format some constructs differently.
set -euo pipefail
mode=${1:?usage: format.sh check|fix}
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format-14}
if ! command -v "$clang_format" >/dev/null 2>&1; then
  echo "format: $clang_format not found (Debian package clang-format-14; scripts/install-deps.sh installs it)" >&2
  exit 2
fi
mapfile -t files < <(git ls-files -- '*.c' '*.cc' '*.cpp' '*.h' '*.hpp' '*.ino')
case "$mode" in
  fix)
    printf '%s\0' "${files[@]}" | xargs -0 -n 50 "$clang_format" -i --style=file
    echo "format: ${#files[@]} files formatted with $clang_format"
    ;;
  check)
    differ=()
    for f in "${files[@]}"; do
      if ! "$clang_format" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then differ+=("$f"); fi
    done
    if [ ${#differ[@]} -gt 0 ]; then
      printf 'format: %s differs from .clang-format\n' "${differ[@]}"
      echo "format: ${#differ[@]} of ${#files[@]} files differ; \`make format\` rewrites them" >&2
      exit 1
    fi
    echo "format: ${#files[@]} files match .clang-format"
    ;;
  *) echo "usage: format.sh check|fix" >&2; exit 2 ;;
esac
