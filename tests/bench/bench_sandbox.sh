#!/usr/bin/env bash
# bench_sandbox.sh — the sandbox backend's numbers (make bench): VM start to
# agent-ready (target < 50 ms) and vm:run("true") round trip (target < 2 ms), via
# tests/bench/sandbox_bench.lua run by `provium run`.
# Usage: tests/bench/bench_sandbox.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
out=$(mktemp /tmp/provium-bench-sandbox.XXXXXX)
trap 'rm -f "$out"' EXIT
if ! PROVIUM_BENCH_OUT=$out "$build/provium" run -q --backend sandbox "$root/tests/bench/sandbox_bench.lua" >/dev/null 2>"$out.err"; then
  echo "bench_sandbox: the benchmark run failed:" >&2
  cat "$out.err" >&2
  rm -f "$out.err"
  exit 1
fi
rm -f "$out.err"
cat "$out"
