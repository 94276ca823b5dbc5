#!/usr/bin/env bash
# tier-arm64.sh — the `kvmhost-arm64` test tier (tests/run-tiers.sh): the linux tier
# (tests/linux/run.sh) with arm64 Linux guests on Provium's arm64 VMM, inside the arm64
# simulated KVM host (tests/kvmhost/run.sh --arch arm64: QEMU's emulator with EL2,
# Debian's arm64 kernel, KVM built in). docs/arm64.md. Prints ONE TAP stream on stdout,
# progress on stderr.
#
# Before the linux tier, tests/kvmhost/arm64_halt.sh checks halt detection on arm64
# (provium boot of hand-made Images). `make test` runs the CI subset (ARM64_SUBSET
# below: 84 tests in about 5 minutes on 2 CPUs, the whole tier 137 in 8);
# `make test-kvmhost ARCH=arm64` (PROVIUM_KVMHOST_ARM64=all) runs every file of the
# linux tier. It needs the arm64 cross build and guest kernel (make deps ARCH=arm64 &&
# make ARCH=arm64 && make kernel ARCH=arm64; .ci/run builds them): without them, or
# without qemu-system-aarch64 or root, it is one skip saying which. On an arm64 host
# whose own KVM runs Linux guests, the linux tier does that and this tier is one skip.
# PROVIUM_KVMHOST_TIMEOUT, _SHARDS and _MEMORY: as in tier.sh (tests/kvmhost/shards.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
abuild=${PROVIUM_ARM64_BUILD:-$root/build-arm64}
. "$root/tests/tap-lib.sh"   # emit: renumbers TAP results into $n, counts $failed
. "$here/shards.sh"          # kvmhost_shards, inner, kvmhost_leftovers
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip_all() { ok "kvmhost-arm64 tier # SKIP $*"; echo "1..$n"; exit 0; }

# The CI subset: every example (the headline scenarios, `provium run examples/`), the
# API files of the core operations and the kvm-only disk, network, clock and snapshot
# tests.
ARM64_SUBSET="examples/*_test.lua examples/*/*_test.lua tests/lua/process_test.lua
tests/lua/file_test.lua tests/lua/net_basic_test.lua tests/lua/net_faults_test.lua
tests/linux/disk_test.lua tests/linux/clock_test.lua tests/linux/snapshot_test.lua"

echo "TAP version 13"
if [ "$(uname -m)" = aarch64 ] && [ -x "$abuild/provium" ] &&
   "$abuild/provium" doctor 2>&1 | grep -q 'backend auto = kvm'; then
  skip_all "this arm64 host runs Linux guests directly: the linux tier runs them"
fi
command -v qemu-system-aarch64 >/dev/null ||
  skip_all "qemu-system-aarch64 is not installed (make deps ARCH=arm64)"
[ "$(id -u)" -eq 0 ] || skip_all "needs root (the simulated host shares / over 9p as root)"
[ -x "$abuild/provium" ] && [ -x "$abuild/provium-agent" ] ||
  skip_all "the arm64 build is not there ($abuild/provium: make deps ARCH=arm64 && make ARCH=arm64)"
kernels/build.sh --paths --arch arm64 >/dev/null 2>&1 ||
  skip_all "the arm64 guest kernel is not built (make kernel ARCH=arm64)"

work=$(mktemp -d /tmp/provium-kvmhost-arm64.XXXXXX)
trap 'rm -rf "$work"' EXIT
leftovers() { kvmhost_leftovers qemu-system-aarch64; }
ls -d /tmp/provium-kvmhost.* > "$work/before" 2>/dev/null

# ---- the arm64 host itself: an arm64 kernel with KVM, the command's status and output ----
start=$(date +%s)
out=$("$here/run.sh" --arch arm64 --timeout 300 -- sh -c '
  uname -m; [ -c /dev/kvm ] && echo kvm; bash -c "echo \${BASH_VERSINFO[0]}-bash"
  /bin/sh -c "echo sh"; bash -c "echo gnu | grep --line-buffered gnu | sed -u s/\\\$/-sed/"
  echo err-line >&2; exit 7' 2>"$work/err")
rc=$?
want=$(printf 'aarch64\nkvm\n%s-bash\nsh\ngnu-sed' "$(bash -c 'echo ${BASH_VERSINFO[0]}')")
if [ $rc -eq 7 ] && [ "$out" = "$want" ] && grep -q '^err-line$' "$work/err"; then
  ok "kvmhost arm64: an aarch64 host with /dev/kvm; bash, /bin/sh, GNU grep and sed; exit status and stderr pass through ($(( $(date +%s) - start )) s)"
else
  nok "kvmhost arm64: the simulated host (exit $rc, want 7; stdout: $out)"
  sed 's/^/# /' "$work/err" | tail -30
fi

# ---- halt detection on arm64 (provium boot of hand-made Images) ----
start=$(date +%s)
PROVIUM_BUILD=$abuild "$here/run.sh" --arch arm64 --timeout 400 -- bash tests/kvmhost/arm64_halt.sh \
  > "$work/halt.tap" 2> "$work/halt.err"; code=$?
inner "- arm64 halt: " "$work/halt.tap" $code "tests/kvmhost/arm64_halt.sh" "$work/halt.err" 20
echo "# kvmhost arm64: halt detection took $(( $(date +%s) - start )) s" >&2

# ---- the linux tier inside, one simulated host per CPU ----
files=()
if [ "${PROVIUM_KVMHOST_ARM64:-}" = all ]; then
  echo "# kvmhost arm64: the whole linux tier" >&2
else
  for f in $ARM64_SUBSET; do [ -f "$f" ] && files+=("$f"); done
  echo "# kvmhost arm64: the CI subset of the linux tier (${#files[@]} files; all: make test-kvmhost ARCH=arm64)" >&2
fi
export PROVIUM_BUILD=$abuild PROVIUM_LINUX_FILES="${files[*]}"
kvmhost_shards "kvmhost arm64" arm64 "arm64 linux tier" --arch arm64
left=$(leftovers)
[ -z "$left" ] || nok "kvmhost arm64: left behind after the run: $left"
echo "1..$n"
[ $failed -eq 0 ]
