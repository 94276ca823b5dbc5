#!/usr/bin/env bash
# tests/slow/run.sh — the slow tier (`make test-slow`, `make test SLOW=1`; TAP).
# Builds the Debian package and installs it into a throwaway root (tests/slow/deb.sh).
# Builds the guest kernel (cached after the first ~4 minutes) and, on a kvm_pvm host,
# its PVM variant; checks both resolved .configs and the INT3 self-test patch; runs
# tests/slow/linux_boot.sh (the boot-to-device-probe test of the devices work) when
# it exists; and boots the kernel + initramfs with the serial console only through
# `provium boot`, asserting the console shows "Linux version 6.1" and then that the
# kernel runs /init from the initramfs (on kvm_pvm; elsewhere that /init starts the
# agent). On a kvm_pvm host that boot takes minutes (ENVIRONMENT.md);
# PROVIUM_SLOW_BOOT_TIMEOUT (default 400 s) bounds it.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PROVIUM_BUILD:-$root/build}
boot_timeout=${PROVIUM_SLOW_BOOT_TIMEOUT:-400}
tmp=$(mktemp -d /tmp/provium-slow.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
field() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

pvm=0
[ -d /sys/module/kvm_pvm ] && pvm=1

# ---- build (cached) ----
# build_variant NAME ARGS...: runs kernels/build.sh, paths into $tmp/NAME.paths
build_variant() {
  local name=$1; shift
  local t0=$SECONDS
  if "$root/kernels/build.sh" "$@" > "$tmp/$name.paths" 2> "$tmp/$name.log"; then
    ok "kernel ($name) builds or is cached ($((SECONDS - t0)) s)"
    return 0
  fi
  fail "kernel ($name) builds or is cached" "$(tail -25 "$tmp/$name.log")"
  return 1
}
have_default=0 have_pvm=0
build_variant default && have_default=1
if [ $pvm = 1 ]; then
  build_variant pvm --pvm --no-initramfs && have_pvm=1
else
  skip "kernel (pvm) builds" "/dev/kvm is not kvm_pvm here; the PVM variant is not needed"
fi

# ---- the resolved .configs ----
if [ $have_default = 1 ]; then
  cfg=$(field config "$tmp/default.paths")
  if out=$("$root/kernels/check-config.sh" "$cfg" "$root/kernels/config" 2>&1); then ok "kernel .config: $out"
  else fail "kernel .config has every option kernels/config requires" "$out"; fi
  initrd=$(field initramfs "$tmp/default.paths")
  if [ -s "$initrd" ] && head -c 6 "$initrd" | grep -q 070701; then ok "initramfs built: $initrd"
  else fail "initramfs built" "no newc archive at '$initrd'"; fi
else
  skip "kernel .config has every option kernels/config requires" "the kernel did not build"
  skip "initramfs built" "the kernel build failed first"
fi
if [ $have_pvm = 1 ]; then
  cfg=$(field config "$tmp/pvm.paths")
  if out=$("$root/kernels/check-config.sh" "$cfg" "$root/kernels/config" "$root/kernels/config-pvm" 2>&1); then
    ok "PVM kernel .config: $out (PTP_1588_CLOCK_KVM off)"
  else fail "PVM kernel .config has config + config-pvm" "$out"; fi
fi

# An option whose dependency is off is dropped by olddefconfig: the build must fail
# and name it (here VIRTIO_PCI, which needs PCI; ~20 s, configures only).
if [ $have_default = 1 ]; then
  echo 'CONFIG_VIRTIO_PCI=y' > "$tmp/needs-pci.config"
  out=$(PROVIUM_KERNEL_FRAGMENTS=$tmp/needs-pci.config "$root/kernels/build.sh" --no-initramfs 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -q 'CONFIG_VIRTIO_PCI=y wanted, .config has it unset' <<<"$out" &&
     grep -q 'lacks required options' <<<"$out"; then
    ok "a required option olddefconfig drops fails the build, named"
  else
    fail "a required option olddefconfig drops fails the build, named" "rc=$rc" "$(tail -10 <<<"$out")"
  fi
  # and leaves nothing behind: no temporary output, no object tree for that fragment
  kcache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
  khash=$(PROVIUM_KERNEL_FRAGMENTS=$tmp/needs-pci.config "$root/kernels/build.sh" --hash)
  left=$(ls -d "$kcache/kernel/.tmp.$khash" "$kcache/obj/default-$khash" 2>/dev/null || true)
  if [ -z "$left" ]; then ok "the failed configuration leaves no temporary or object directory"
  else fail "the failed configuration leaves no temporary or object directory" "$left"; fi
fi

# The PVM vmlinux must not call int3_selftest() from alternative_instructions(); the
# normal one does (so the check can see the call at all).
calls_selftest() {
  objdump -d --no-show-raw-insn --disassemble=alternative_instructions "$1" 2>/dev/null |
    grep -qE 'call.*<int3_selftest'
}
if [ $have_pvm = 1 ] && [ $have_default = 1 ] && command -v objdump >/dev/null; then
  if calls_selftest "$(field vmlinux "$tmp/default.paths")" && ! calls_selftest "$(field vmlinux "$tmp/pvm.paths")"; then
    ok "PVM vmlinux does not run the INT3 self-test; the normal one does"
  else
    fail "PVM vmlinux does not run the INT3 self-test; the normal one does" \
      "normal: $(calls_selftest "$(field vmlinux "$tmp/default.paths")" && echo calls || echo "no call")" \
      "pvm: $(calls_selftest "$(field vmlinux "$tmp/pvm.paths")" && echo calls || echo "no call")"
  fi
elif [ $pvm = 1 ]; then
  skip "PVM vmlinux does not run the INT3 self-test" "a kernel did not build or objdump is missing"
fi

# What to boot: the PVM variant with the workarounds on kvm_pvm, else the normal one.
if [ $pvm = 1 ]; then
  vmlinux=$([ $have_pvm = 1 ] && field vmlinux "$tmp/pvm.paths")
  extra=$(grep -v '^#' "$root/kernels/pvm-cmdline" | head -1)
else
  vmlinux=$([ $have_default = 1 ] && field vmlinux "$tmp/default.paths")
  extra=
fi
initrd=$([ $have_default = 1 ] && field initramfs "$tmp/default.paths")

# sub_tap NAME RC: renumbers the TAP lines of $tmp/NAME.tap (a sub-script's) into
# this tier's sequence; a script that died or printed nothing is a failure.
sub_tap() {
  local name=$1 rc=$2 got=0 line
  while IFS= read -r line; do
    if [[ $line =~ ^(not\ )?ok\ [0-9]+(.*)$ ]]; then
      n=$((n + 1)); got=1
      echo "${BASH_REMATCH[1]}ok $n${BASH_REMATCH[2]}"
    elif [[ $line =~ ^1\.\.[0-9]+ ]]; then
      :
    else
      echo "$line"
    fi
  done < "$tmp/$name.tap"
  if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$tmp/$name.tap"; then
    fail "tests/slow/$name.sh exited with status $rc" "$(tail -15 "$tmp/$name.err")"
  elif [ $got = 0 ]; then
    fail "tests/slow/$name.sh printed no TAP results" "$(tail -15 "$tmp/$name.err")"
  fi
}

# ---- the Debian package: make deb, lintian, install into a throwaway root ----
# (about a minute on 2 cores; a no-op when the tree has not changed: tests/slow/deb.sh)
PROVIUM_BUILD=$build "$root/tests/slow/deb.sh" > "$tmp/deb.tap" 2> "$tmp/deb.err"
sub_tap deb $?

# ---- HOOK: the devices engineer's boot-to-probe test ----------------------------
# tests/slow/linux_boot.sh (when present) boots the kernel with every virtio device
# attached and prints TAP. It gets: PROVIUM_BUILD, PROVIUM_VMLINUX, PROVIUM_INITRD,
# PROVIUM_CMDLINE_EXTRA (the kvm_pvm workarounds, empty elsewhere), PROVIUM_PVM=0|1.
# Its TAP lines are renumbered into this tier's sequence.
if [ -x "$root/tests/slow/linux_boot.sh" ]; then
  if [ -n "$vmlinux" ]; then
    PROVIUM_BUILD=$build PROVIUM_VMLINUX=$vmlinux PROVIUM_INITRD=$initrd \
      PROVIUM_CMDLINE_EXTRA=$extra PROVIUM_PVM=$pvm \
      "$root/tests/slow/linux_boot.sh" > "$tmp/linux_boot.tap" 2> "$tmp/linux_boot.err"
    sub_tap linux_boot $?
  else
    skip "tests/slow/linux_boot.sh" "no kernel to boot (the build failed above)"
  fi
fi
# ---- end of hook -----------------------------------------------------------------

# ---- serial-only boot through `provium boot` ----
# One boot with the initramfs and no devices. The banner is the first thing the
# kernel prints. Later, "Run /init as init process" proves the kernel unpacked our
# cpio and found /init in it; on kvm_pvm that is as far as a Linux guest gets (its
# first system call faults, ENVIRONMENT.md), elsewhere /init must also announce the
# agent. panic=-1 turns the resulting panic into a reboot, which ends `provium boot`.
name="provium boot: the kernel banner 'Linux version 6.1' on the serial console"
if [ $pvm = 1 ]; then
  late="Run /init as init process"; late_re='Run /init as init process'
  late_name="provium boot: the kernel unpacks the initramfs and runs /init (kvm_pvm: user space cannot run beyond that)"
else
  late="provium-init: agent started"; late_re='provium-init: agent started'
  late_name="provium boot: /init runs from the initramfs and starts the agent"
fi
boot_works() {
  [ -x "$build/provium" ] || return 1
  "$build/provium" boot --help > "$tmp/boot.help" 2>&1 || return 1
  ! grep -q 'not built yet' "$tmp/boot.help"
}
why=
if [ -z "$vmlinux" ] || [ -z "$initrd" ]; then
  why="no kernel or initramfs to boot (the build failed above)"
elif ! boot_works; then
  why="\`provium boot\` is not implemented in this build yet ($(head -1 "$tmp/boot.help" 2>/dev/null))"
elif [ ! -w /dev/kvm ]; then
  why="/dev/kvm is not usable here"
fi
if [ -n "$why" ]; then
  skip "$name" "$why"
  skip "$late_name" "$why"
else
  cmdline="console=ttyS0 earlycon=uart8250,io,0x3f8 $extra panic=-1"
  t0=$SECONDS
  timeout "$boot_timeout" "$build/provium" boot --kernel "$vmlinux" --initrd "$initrd" \
    --cmdline "$cmdline" < /dev/null > "$tmp/console.txt" 2>&1 &
  bpid=$!
  seen() { grep -q "$1" "$tmp/console.txt"; }
  banner_at=
  while kill -0 $bpid 2>/dev/null && ! seen "$late_re"; do
    [ -z "$banner_at" ] && seen 'Linux version 6\.1' && banner_at=$((SECONDS - t0))
    sleep 2
  done
  late_at=$((SECONDS - t0))
  kill $bpid 2>/dev/null; wait $bpid 2>/dev/null; rc=$?
  [ -z "$banner_at" ] && seen 'Linux version 6\.1' && banner_at=$late_at
  tail_lines=("cmdline: $cmdline" "provium boot status $rc$([ $rc = 124 ] && echo ", timed out after $boot_timeout s")$([ $rc = 137 ] && echo ", SIGKILL from outside (the OOM killer?)")" "--- console tail:" "$(tail -20 "$tmp/console.txt")")
  if [ -n "$banner_at" ]; then ok "$name after ${banner_at} s ($(grep -o 'Linux version 6\.1[^ ]*' "$tmp/console.txt" | head -1))"
  else fail "$name" "${tail_lines[@]}"; fi
  if seen "$late_re"; then ok "$late_name, after ${late_at} s"
  else fail "$late_name" "no '$late' on the console" "${tail_lines[@]}"; fi
fi

echo "1..$n"
