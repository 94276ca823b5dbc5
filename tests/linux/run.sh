#!/usr/bin/env bash
# run.sh — the `linux` test tier (tests/run-tiers.sh; `make test-linux`): the Lua API
# suite on Linux microVMs (`provium run --backend kvm`) — the API files of tests/lua,
# the same ones the sandbox runs — plus the kvm-only tests in tests/linux/*_test.lua
# and examples/ (tests/runner/examples.sh runs those on the sandbox).
# Prints ONE TAP stream on stdout, everything else on stderr.
#
# Where `provium doctor` says this host cannot run Linux guests (no /dev/kvm, or PVM
# as on the project's CI machines), every file is reported as `ok N - FILE # SKIP
# <doctor's reason>`: a skip with the reason, never a pass. Where it can, the guest
# kernel + initramfs are built first if missing (`make kernel`, minutes, cached).
# docs/linux-tests.md.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
export PROVIUM_BUILD=${PROVIUM_BUILD:-$root/build}
provium=$PROVIUM_BUILD/provium
. "$root/tests/tap-lib.sh"   # emit: renumbers TAP results into $n, counts $failed

# The API test files of tests/lua that must behave the same on both backends (not the
# runner-internal ones: claims, meta, tasks, json, badinput, sandbox, profiles...;
# not clock_test, which asserts the sandbox's `unsupported` clock: the kvm clock is
# tests/linux/clock_test.lua and docs_clock_test.lua).
API_FILES="console_test file_test process_test stream_test lab_vm_test options_test
docs_vm_test docs_file_test docs_process_test docs_streams_test docs_worker_test
docs_waiting_test docs_console_test docs_clock_test docs_basics_test
net_basic_test net_faults_test net_capture_test net_nat_test"
files=()
for f in $API_FILES; do
  [ -f "tests/lua/$f.lua" ] && files+=("tests/lua/$f.lua")
done
for f in tests/linux/*_test.lua examples/*_test.lua examples/*/*_test.lua; do
  [ -f "$f" ] && files+=("$f")   # examples/: every headline scenario, on kvm
done

# PROVIUM_LINUX_FILES="F ...": only these files (the arm64 simulated host's CI subset,
# tests/kvmhost/tier-arm64.sh)
if [ -n "${PROVIUM_LINUX_FILES:-}" ]; then
  read -r -a files <<< "$PROVIUM_LINUX_FILES"
fi

echo "TAP version 13"
if [ ! -x "$provium" ]; then
  echo "not ok 1 - $provium is not built"; echo "1..1"; exit 1
fi

# doctor's verdict: "Tests can run here (backend auto = kvm)" means Linux guests run
doctor=$("$provium" doctor 2>&1)
if ! printf '%s\n' "$doctor" | grep -q 'backend auto = kvm'; then
  reason=$(printf '%s\n' "$doctor" | awk '/^KVM/{k=1;next} /^[A-Z]/{k=0} k && /^  (warn|FAIL|no) /{sub(/^  [a-zA-Z]+ +/,""); print; exit}')
  [ -n "$reason" ] || reason=$(printf '%s\n' "$doctor" | sed -n 's/^  no    kvm: //p' | head -1)
  [ -n "$reason" ] || reason="provium doctor says this host cannot run Linux guests"
  n=0
  if command -v qemu-system-x86_64 >/dev/null && [ "$(id -u)" -eq 0 ]; then
    # make test runs the kvmhost tier next: these files run there, not skipped.
    echo "ok 1 - linux tier (${#files[@]} files) # SKIP $reason; the kvmhost tier runs them inside a simulated KVM host"
    echo "1..1"
    exit 0
  fi
  for f in "${files[@]}"; do
    n=$((n + 1))
    echo "ok $n - $f # SKIP $reason"
  done
  echo "1..$n"
  exit 0
fi

# Linux guests run here: make sure the kernel + initramfs exist (built once, cached)
if ! "$provium" kernel path >/dev/null 2>&1; then
  echo "# building the guest kernel + initramfs (make kernel; a few minutes, cached)" >&2
  make -C "$root" kernel >&2 || { echo "not ok 1 - make kernel failed"; echo "1..1"; exit 1; }
fi

out=$(mktemp /tmp/provium-linuxtier.XXXXXX)
trap 'rm -f "$out"' EXIT
# PROVIUM_LINUX_SHARD=K/N: only every Nth file (provium run --shard; tests/kvmhost)
shard=()
[ -n "${PROVIUM_LINUX_SHARD:-}" ] && shard=(--shard "$PROVIUM_LINUX_SHARD")
if [ "${KVMHOST:-}" = 1 ]; then
  # inside the simulated KVM host (tests/kvmhost): a progress line per result on
  # stderr, which the host shows while the tier runs for minutes
  "$provium" run --backend kvm --format tap "${shard[@]}" "${files[@]}" | tee "$out" |
    grep --line-buffered -E '^(not )?ok ' | sed -u 's/^/# kvmhost: /' >&2
  code=${PIPESTATUS[0]}
else
  "$provium" run --backend kvm --format tap "${shard[@]}" "${files[@]}" > "$out"; code=$?
fi
n=0
failed=0
emit "- " < "$out"
if [ $code -ne 0 ] && [ $code -ne 1 ]; then
  n=$((n + 1)); failed=$((failed + 1))
  echo "not ok $n - provium run --backend kvm exited with status $code"
fi
echo "1..$n"
[ $failed -eq 0 ]
