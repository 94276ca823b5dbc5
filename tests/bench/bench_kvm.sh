#!/usr/bin/env bash
# bench_kvm.sh — the kvm backend's numbers from Lua (make bench): test-guest cold boot,
# snapshot, restore and fixture hit; on hardware-KVM hosts the default profile's boot
# to agent-ready. Runs tests/bench/kvm_bench.lua with `provium run`.
# Usage: tests/bench/bench_kvm.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
if [ ! -r /dev/kvm ]; then echo "bench_kvm: skipped (no /dev/kvm)"; exit 0; fi
out=$(mktemp /tmp/provium-bench-kvm.XXXXXX)
trap 'rm -f "$out" "$out.err"' EXIT
if ! PROVIUM_BENCH_OUT=$out "$build/provium" run -q -j1 "$root/tests/bench/kvm_bench.lua" >/dev/null 2>"$out.err"; then
  echo "bench_kvm: the benchmark run failed:" >&2
  cat "$out.err" >&2
  exit 1
fi
cat "$out"
