#!/usr/bin/env bash
# The fuzz tier: runs every libFuzzer binary `make fuzz-build` made (build-fuzz/fuzz/)
# for FUZZ_SECONDS each (default 2) on its checked-in corpus (tests/fuzz/<name>_corpus)
# and prints one TAP line per fuzzer with its executions and executions per second.
# New inputs it finds go to build-fuzz/work/<name> (not the repo); a crash, leak,
# sanitizer report, timeout or out-of-memory is `not ok` with the reproducer path
# (build-fuzz/crash/<name>-...) and the report. Fix it, then copy the reproducer into
# the corpus so the replay in tests/unit/test_fuzz_corpora.c keeps it fixed.
# Usage: tests/fuzz/run.sh [NAME...]      (docs/security.md)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/build-fuzz/fuzz
secs=${FUZZ_SECONDS:-2}
if [ ! -d "$bin" ] || [ -z "$(ls "$bin" 2>/dev/null)" ]; then
  if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
    echo "ok 1 # SKIP no clang on this host: the fuzzers need clang's libFuzzer (make deps)"
  else
    echo "not ok 1 - no fuzzers built: run make fuzz-build"
  fi
  exit 0
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for b in "$bin"/fuzz_*; do [ -x "$b" ] && names+=("${b##*/fuzz_}"); done
fi
mkdir -p "$root/build-fuzz/work" "$root/build-fuzz/crash"
n=0
for name in "${names[@]}"; do
  n=$((n + 1))
  corpus=$root/tests/fuzz/${name}_corpus
  work=$root/build-fuzz/work/$name
  log=$root/build-fuzz/work/$name.log
  mkdir -p "$work"
  case $name in virtqueue) max=16394 ;; snapshot) max=16384 ;; *) max=4096 ;; esac
  [ -d "$corpus" ] || { echo "not ok $n - fuzz $name: no corpus $corpus"; continue; }
  # cd: libFuzzer and the targets write scratch files relative to nowhere we keep
  ( cd "$root" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      nice -n 5 "$bin/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=256 -max_len=$max -print_final_stats=1 \
      -artifact_prefix="$root/build-fuzz/crash/$name-" "$work" "$corpus" ) > "$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  ncorp=$(ls "$corpus" | wc -l)
  if [ $rc -eq 0 ]; then
    echo "ok $n - fuzz $name: ${runs:-?} runs in ${secs} s, ${eps:-?} exec/s, corpus $ncorp"
  else
    echo "not ok $n - fuzz $name: exit $rc after ${runs:-?} runs"
    grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==|runtime error|#[0-9]+ 0x' "$log" |
      head -25 | sed 's/^/# /'
  fi
done
