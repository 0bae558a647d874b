#!/usr/bin/env bash
# Man pages from --help: one page per command and subcommand (cellguard.1, cellguard-edge.1,
# cellguard-edge-status.1, ...), made with help2man and compressed as Debian wants (gzip -9n).
# Usage: scripts/gen-man.sh BINARY OUTDIR
set -euo pipefail
binary=$(readlink -f "$1")
out=$2
mkdir -p "$out"
version=$("$binary" --version | awk '{print $2}')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The subcommands a --help text lists: lines "  NAME   description" after "Subcommands:".
subcommands() { awk '/^Subcommands:/{on=1; next} on && /^$/{exit} on && /^  [a-z][a-z-]*  /{print $1}' ; }
# The description of one subcommand in its parent's list (its first line), as the page's NAME.
summary() { awk -v name="$2" '/^Subcommands:/{on=1; next} on && $1 == name {sub(/^  [^ ]+ +/, ""); print; exit}' <<<"$1"; }

page() {  # page "sub words" "summary"
  local words=$1 what=$2 name help
  name=cellguard${words:+-${words// /-}}
  help=$("$binary" $words --help)
  # help2man runs "BINARY HELP-OPTION"; the words of the subcommand go before --help.
  help2man --no-info --no-discard-stderr --section 1 --name "$what" \
    --help-option "${words:+$words }--help" --version-option "--version" \
    --version-string "$version" --source "cellguard $version" -N "$binary" >"$tmp/page"
  # The title and NAME are the subcommand's, not the binary's.
  sed -e "s/^\.TH CELLGUARD /.TH ${name^^} /" -e "/^\.SH NAME/{n;s/^cellguard /${name//-/\\\\-} /}" \
    "$tmp/page" >"$tmp/$name.1"
  gzip -9n -c "$tmp/$name.1" >"$out/$name.1.gz"
  local sub
  for sub in $(subcommands <<<"$help"); do
    page "${words:+$words }$sub" "$(summary "$help" "$sub")"
  done
}

page "" "guards battery energy-storage systems and records everything they do"
