#!/usr/bin/env bash
# `make demo` never collides (issue 15 item 6): two scripts/demo.sh started at the same moment in the
# same output folder both come up, each in its own run folder (live, live-2) with its own ports: the
# preferred dashboard port (a free port this test picks, standing in for 8080) goes to one of them,
# the other takes any free port; every printed port has exactly one listener; each dashboard's API
# sees its own edge connected. Then both are stopped with SIGTERM and must end cleanly (in a
# sanitizer build: no finding in the processes' logs).
#
#   tests/demo_test.sh --build BUILD_DIR --source SOURCE_DIR
set -euo pipefail

build=build
source_dir=.
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift ;;
    --source) source_dir=$2; shift ;;
    *) echo "demo_test: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
build="$(cd "$build" && pwd)"
source_dir="$(cd "$source_dir" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cellguard-demo-test.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAILED: $*" >&2
  for i in 1 2; do echo "--- demo $i:" >&2; tail -n 30 "$tmp/demo$i.log" >&2 || true; done
  exit 1
}

# The preferred dashboard address: a port free a moment ago (the demos' own probe decides).
preferred_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CELLGUARD_DEMO_HTTP="127.0.0.1:$preferred_port"

for i in 1 2; do
  "$source_dir/scripts/demo.sh" "$build" --out "$tmp/out" >"$tmp/demo$i.log" 2>&1 &
  pids+=($!)
done

# Both print their ports once the edge is up (sim, server, edge and module discovery: seconds).
for _ in $(seq 600); do
  n=0
  for i in 1 2; do grep -q '^demo: ports:' "$tmp/demo$i.log" && n=$((n + 1)); done
  [ "$n" -eq 2 ] && break
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a demo exited during its start-up"; done
  sleep 0.1
done
[ "$n" -eq 2 ] || fail "the demos did not both print their ports within 60 s"

ports=()
dashboards=()
runs=()
for i in 1 2; do
  line=$(grep -m 1 '^demo: ports:' "$tmp/demo$i.log")
  echo "demo $i: ${line#demo: }"
  runs+=("$(sed -n 's/^demo: files in //p' "$tmp/demo$i.log")")
  http=$(sed -n 's/.*dashboard http:\/\/\([^,]*\),.*/\1/p' <<<"$line")
  [ -n "$http" ] || fail "demo $i printed no dashboard address: $line"
  dashboards+=("$http")
  ports+=("${http##*:}")
  for field in 'edges (TLS) ' 'socketcand ' 'Modbus TCP '; do
    port=$(sed -n "s/.*${field}[0-9.]*:\([0-9]*\).*/\1/p" <<<"$line")
    [ -n "$port" ] || fail "demo $i printed no port for '$field': $line"
    ports+=("$port")
  done
done

[ "${runs[0]}" != "${runs[1]}" ] || fail "both demos use the run folder ${runs[0]}"
case "${runs[0]} ${runs[1]}" in
  "$tmp/out/live $tmp/out/live-2" | "$tmp/out/live-2 $tmp/out/live") ;;
  *) fail "run folders ${runs[*]}, expected live and live-2 in $tmp/out" ;;
esac
dupes=$(printf '%s\n' "${ports[@]}" | sort | uniq -d)
[ -z "$dupes" ] || fail "a port printed by both demos: $dupes"
case " ${dashboards[*]} " in
  *" 127.0.0.1:$preferred_port "*) ;;
  *) fail "neither dashboard took the free preferred port $preferred_port: ${dashboards[*]}" ;;
esac
for port in "${ports[@]}"; do
  listeners=$(ss -Hltn "sport = :$port" | wc -l)
  [ "$listeners" -eq 1 ] || fail "port $port has $listeners listeners (expected exactly 1)"
done
for i in 0 1; do
  # Each dashboard's server has its own edge (rig-01) connected over its own TLS port.
  ok=0
  for _ in $(seq 100); do
    if python3 -c 'import json, sys, urllib.request
edges = json.load(urllib.request.urlopen("http://" + sys.argv[1] + "/api/v1/edges", timeout=2))["edges"]
sys.exit(0 if any(e["id"] == "rig-01" and e["connected"] for e in edges) else 1)' "${dashboards[i]}" 2>/dev/null; then
      ok=1
      break
    fi
    sleep 0.1
  done
  [ "$ok" = 1 ] || fail "http://${dashboards[i]}/api/v1/edges shows no connected rig-01 within 10 s"
done
echo "both demos up: run folders ${runs[*]}, dashboards ${dashboards[*]}; every port has one listener"

for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for i in 1 2; do
  rc=0
  wait "${pids[i - 1]}" || rc=$?
  [ "$rc" -eq 143 ] || fail "demo $i ended with $rc after SIGTERM (expected 143)"
  grep -q '^demo: stopped' "$tmp/demo$i.log" || fail "demo $i did not say it stopped"
done
pids=()
# In a sanitizer build the processes' findings are in their logs (the demo waits for them quietly).
mapfile -t findings < <(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp"/out/live*/*.log || true)
[ ${#findings[@]} -eq 0 ] ||
  fail "sanitizer findings in ${findings[*]}: $(grep -h -m 3 -E 'ERROR: |runtime error:' "${findings[@]}")"
echo "both demos stopped cleanly"
