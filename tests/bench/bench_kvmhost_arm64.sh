#!/usr/bin/env bash
# bench_kvmhost_arm64.sh — the arm64 Linux-guest numbers (make bench; docs/arm64.md),
# measured inside the arm64 simulated KVM host (tests/kvmhost/run.sh --arch arm64):
# Linux boot -> agent ready, restore -> first command done, lab:vm from a fixture and
# from a pool (tests/bench/kvm_bench.lua run by the arm64 provium; its x86 test-guest
# rows skip there). Everything inside runs under QEMU's emulator: the absolute times
# mean little, the ratio of a restore to a boot does. Skipped without the arm64 build
# and guest kernel, qemu-system-aarch64 or root.
# Usage: tests/bench/bench_kvmhost_arm64.sh [BUILD_DIR]   (the arm64 build: build-arm64)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
abuild=${PROVIUM_ARM64_BUILD:-$root/build-arm64}
[ "$(uname -m)" = aarch64 ] && { echo "bench_kvmhost_arm64: skipped (an arm64 host: bench_kvm has its rows)"; exit 0; }
command -v qemu-system-aarch64 >/dev/null || { echo "bench_kvmhost_arm64: skipped (no qemu-system-aarch64: make deps ARCH=arm64)"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "bench_kvmhost_arm64: skipped (needs root for the simulated host)"; exit 0; }
[ -x "$abuild/provium" ] || { echo "bench_kvmhost_arm64: skipped (no $abuild/provium: make ARCH=arm64)"; exit 0; }
"$root/kernels/build.sh" --paths --arch arm64 >/dev/null 2>&1 ||
  { echo "bench_kvmhost_arm64: skipped (no arm64 guest kernel: make kernel ARCH=arm64)"; exit 0; }
"$root/tests/kvmhost/run.sh" --arch arm64 --timeout 1500 -- sh -c "
  PROVIUM_BENCH_LINUX_RUNS=5 tests/bench/bench_kvm.sh '$abuild'" 2>/dev/null
