#!/usr/bin/env bash
# bench_lua_runner.sh — runner + worker overhead: one file with 1000 trivial tests
# (target: under 1 s), and the same 1000 tests spread over 50 files at -j2.
# Usage: bench_lua_runner.sh BUILD_DIR
set -u
build=${1:-build}
bin="$build/provium"
dir=$(mktemp -d /tmp/provium-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT

mkdir -p "$dir/one" "$dir/many"
{
  for i in $(seq 1 1000); do echo "test(\"trivial $i\", function(t) t:ok(true) end)"; done
} > "$dir/one/trivial_test.lua"
for f in $(seq 1 50); do
  for i in $(seq 1 20); do echo "test(\"trivial $i\", function(t) t:eq($i, $i) end)"; done > "$dir/many/f${f}_test.lua"
done

# best of 3 wall-clock seconds for a command
best() {
  local b="" s e d
  for _ in 1 2 3; do
    s=$(date +%s%N)
    "$@" > /dev/null 2>&1 || { echo "FAILED: $*" >&2; return 1; }
    e=$(date +%s%N)
    d=$(( (e - s) / 1000 ))
    if [ -z "$b" ] || [ "$d" -lt "$b" ]; then b=$d; fi
  done
  printf '%d.%06d' $((b / 1000000)) $((b % 1000000))
}

one=$(best "$bin" run -q -j1 --events "$dir/ev" "$dir/one") || exit 1
many=$(best "$bin" run -q -j2 "$dir/many") || exit 1
printf '%-46s %10s s   (target < 1 s)\n' "1000 trivial tests, 1 file, with --events" "$one"
printf '%-46s %10s s\n' "1000 trivial tests in 50 files, -j2" "$many"
awk -v v="$one" 'BEGIN { exit !(v < 1.0) }' || { echo "over target"; exit 1; }
