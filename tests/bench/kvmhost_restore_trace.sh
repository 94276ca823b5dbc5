#!/usr/bin/env bash
# kvmhost_restore_trace.sh — where a Linux restore's time goes, inside the simulated
# KVM host (tests/kvmhost/run.sh): tests/bench/restore_trace.lua restores one snapshot
# N times with the host kernel's kvm tracepoints on and prints, per restore, the exits
# by reason with L1's time on each, the guest's run time and its page faults
# (docs/vmm.md and docs/arm64.md, "What a restore costs"). A diagnostic, not part of
# `make bench`.
# Usage: tests/bench/kvmhost_restore_trace.sh [--arch arm64] [N]
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
arch=x86_64 build=$root/build
if [ "${1-}" = --arch ]; then
  [ "${2-}" = arm64 ] || { echo "usage: $0 [--arch arm64] [N]" >&2; exit 2; }
  arch=arm64 build=$root/build-arm64; shift 2
fi
[ "$(id -u)" -eq 0 ] || { echo "kvmhost_restore_trace: needs root (the simulated host)" >&2; exit 2; }
if [ $arch = arm64 ]; then
  "$root/kernels/build.sh" --paths --arch arm64 >/dev/null 2>&1 || make -C "$root" kernel ARCH=arm64 >&2 || exit 1
else
  "$build/provium" kernel path >/dev/null 2>&1 || make -C "$root" kernel >&2 || exit 1
fi
cd "$root" && PROVIUM_TRACE_RUNS=${1:-3} "$root/tests/kvmhost/run.sh" --arch $arch --timeout 900 -- \
  sh -c "PROVIUM_BUILD='$build' PROVIUM_TIMEOUT=300 '$build/provium' run -q tests/bench/restore_trace.lua 2>&1"
