#!/usr/bin/env bash
# bench_runner.sh — runner overhead: 1000 trivial tests in one file, the same 1000
# spread over 50 files run with -j2, and 50 empty-ish files (per-file fork/teardown
# cost). Wall time of the whole `provium run` (best of 3), so it includes process
# start, the Lua state per file, the event stream to a file and the TAP reporter.
# Target (issue 4): 1000 trivial tests under 1 s.
# Usage: tests/bench/bench_runner.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
provium=$build/provium
w=$(mktemp -d /tmp/provium-bench.XXXXXX)
trap 'rm -rf "$w"' EXIT
export PROVIUM_CACHE_DIR=$w/cache

mkdir -p "$w/one" "$w/fifty" "$w/files"
{ for i in $(seq 1000); do echo "test('t$i', function(t) t:ok(true) end)"; done; } > "$w/one/one_test.lua"
for f in $(seq 50); do
  { for i in $(seq 20); do echo "test('t$i', function(t) t:ok(true) end)"; done; } > "$w/fifty/f${f}_test.lua"
  echo "test('only', function(t) end)" > "$w/files/f${f}_test.lua"
done

# best_ms ARGS...: best wall time of 3 runs in ms; checks the run passed
best_ms() {
  local best= i t0 t1 ms
  for i in 1 2 3; do
    t0=$(date +%s%N)
    "$provium" run --format tap --events "$w/ev.mp" "$@" > "$w/out" 2> "$w/err" || {
      echo "run failed: $*" >&2; tail -3 "$w/err" >&2; echo "-"; return; }
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    [ -z "$best" ] || [ "$ms" -lt "$best" ] && best=$ms
  done
  echo "$best"
}
tests() { grep -c '^ok' "$w/out"; }

a=$(best_ms -j1 "$w/one"); na=$(tests)
b=$(best_ms -j2 "$w/fifty"); nb=$(tests)
c=$(best_ms -j2 "$w/files"); nc=$(tests)
printf '%-44s %8s %8s %12s\n' "case" "tests" "ms" "us/test"
per() { [ "$1" = - ] && echo - || echo $(( $1 * 1000 / $2 )); }
printf '%-44s %8s %8s %12s\n' "1000 trivial tests, 1 file" "$na" "$a" "$(per "$a" "$na")"
printf '%-44s %8s %8s %12s\n' "1000 trivial tests, 50 files, -j2" "$nb" "$b" "$(per "$b" "$nb")"
printf '%-44s %8s %8s %12s\n' "50 files of 1 test, -j2 (per-file cost)" "$nc" "$c" "$(per "$c" "$nc")"
[ "$a" != - ] && [ "$a" -lt 1000 ] && echo "target 1000 tests < 1 s: met ($a ms)" || echo "target 1000 tests < 1 s: NOT met ($a ms)"
