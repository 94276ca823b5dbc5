#!/usr/bin/env bash
# bench_kvmhost.sh — the Linux-guest numbers, measured inside the simulated KVM host
# (tests/kvmhost; make bench): Linux boot -> agent ready and restore -> first command
# done (tests/bench/kvm_bench.lua), and `provium boot` side by side with QEMU's microvm
# booting the same kernel to the same console line (tests/bench/kvmhost_boot.sh).
# Absolute times there mean little (everything runs under an emulator); the ratios of
# two programs on the same simulated host do. Skipped without qemu-system-x86_64 or
# root, and where Linux guests run directly (bench_kvm.sh has the rows there).
# Usage: tests/bench/bench_kvmhost.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
if "$build/provium" doctor 2>&1 | grep -q 'backend auto = kvm'; then
  echo "bench_kvmhost: skipped (Linux guests run directly here: bench_kvm has the Linux rows)"; exit 0
fi
command -v qemu-system-x86_64 >/dev/null || { echo "bench_kvmhost: skipped (no qemu-system-x86_64: make deps)"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "bench_kvmhost: skipped (needs root for the simulated host)"; exit 0; }
"$build/provium" kernel path >/dev/null 2>&1 || make -C "$root" kernel >&2 || exit 1
"$root/tests/kvmhost/run.sh" --timeout 1500 -- sh -c "
  tests/bench/kvmhost_boot.sh '$build' 5 || exit 1
  echo
  PROVIUM_BENCH_LINUX_RUNS=5 tests/bench/bench_kvm.sh '$build'" 2>/dev/null
