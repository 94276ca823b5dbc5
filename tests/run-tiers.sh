#!/usr/bin/env bash
# Runs the named test tiers and prints one combined "N passed, N failed, N skipped"
# line counting all of them. Every tier speaks TAP: cmocka binaries with
# CMOCKA_MESSAGE_OUTPUT=tap, `provium run --format tap` for Lua tiers. A tier that
# cannot run on this host prints one TAP skip line with the reason.
# Usage: tests/run-tiers.sh BUILD_DIR TIER...
set -u
build=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
export CMOCKA_MESSAGE_OUTPUT=tap
export PROVIUM_BUILD="$root/$build"
log=$(mktemp -d /tmp/provium-tiers.XXXXXX)
trap 'rm -rf "$log"' EXIT
tp=0; tf=0; ts=0; crashed=0

# count FILE: adds the TAP results in FILE to the totals
count() {
  local r
  r=$(awk '/^(not )?ok [0-9]+/ { if (tolower($0) ~ /# (skip|todo)/) s++; else if ($1 == "ok") p++; else f++ }
           END { printf "%d %d %d", p, f, s }' "$1")
  set -- $r
  tp=$((tp + $1)); tf=$((tf + $2)); ts=$((ts + $3))
  res="$1 passed, $2 failed, $3 skipped"
}

# run_bin TIER BIN...: runs cmocka binaries; a binary that dies without a plan is a failure
run_bins() {
  local tier=$1; shift
  local out="$log/$tier.tap" b rc
  : > "$out"
  for b in "$@"; do
    [ -x "$b" ] || continue
    echo "# $tier: $(basename "$b")" >> "$out"
    "$b" >> "$out.one" 2>&1; rc=$?
    cat "$out.one" >> "$out"
    if [ $rc -ne 0 ] && ! grep -qE '^not ok' "$out.one"; then
      echo "not ok 0 - $(basename "$b") exited with status $rc" >> "$out"
    fi
    rm -f "$out.one"
  done
  show "$tier" "$out"
}

show() {
  local tier=$1 out=$2
  if [ -n "${VERBOSE:-}" ]; then cat "$out"; else grep -E '^not ok [0-9]+' "$out" | grep -v '# SKIP' | while read -r l; do
      echo "  $l"; grep -A8 -F "$l" "$out" | sed -n '2,9p' | grep '^#' | sed 's/^/    /'; done; fi
  # skips with their reasons (cmocka prints a guest's reason as a "# SKIP: ..." comment)
  grep -E '^(not )?ok [0-9]+.*# (SKIP|skip)|^# SKIP: ' "$out" | sed 's/^/  /' | head -20
  count "$out"
  printf '%-6s %s\n' "$tier:" "$res"
}

for tier in "$@"; do
  case $tier in
    unit)  run_bins unit "$root/$build"/tests/unit/test_* ;;
    asan)  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
             run_bins asan "$root"/build-asan/tests/unit/test_* ;;
    guest) run_bins guest "$root/$build"/tests/guest/host_* ;;
    fuzz)  # each fuzzer's line says how many executions it ran, and how fast
           "$root/tests/fuzz/run.sh" > "$log/fuzz.tap" 2>&1
           [ -n "${VERBOSE:-}" ] || grep -E '^ok [0-9]+ - ' "$log/fuzz.tap" | sed 's/^/  /'
           show fuzz "$log/fuzz.tap" ;;
    kernel|lua|linux|slow|kvmhost|kvmhost-arm64)
      driver=$root/tests/$tier/run.sh
      [ $tier = kvmhost ] && driver=$root/tests/kvmhost/tier.sh
      [ $tier = kvmhost-arm64 ] && driver=$root/tests/kvmhost/tier-arm64.sh
      if [ -x "$driver" ]; then
        # kvmhost runs for minutes: its progress (stderr) is shown as it comes
        if [ $tier = kvmhost ] || [ $tier = kvmhost-arm64 ]; then
          "$driver" > "$log/$tier.tap" 2> >(tee "$log/$tier.err" | grep --line-buffered -E '^(# kvmhost|\[kvmhost\]|\[kernel\])' >&2) || true
        else
          "$driver" > "$log/$tier.tap" 2>"$log/$tier.err" || true
        fi
        if ! grep -qE '^(not )?ok [0-9]+' "$log/$tier.tap"; then
          echo "not ok 0 - $tier tier produced no results" >> "$log/$tier.tap"
          sed 's/^/# /' "$log/$tier.err" | tail -20 >> "$log/$tier.tap"
        fi
        show "$tier" "$log/$tier.tap"
      fi ;;
    *) echo "unknown tier $tier" >&2; exit 2 ;;
  esac
done
echo "$tp passed, $tf failed, $ts skipped"
[ $tf -eq 0 ]
