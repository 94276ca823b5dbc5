#!/usr/bin/env bash
# tests/kernel/run.sh — the kernels/ tier (TAP, a few seconds, no kernel build):
# check-config.sh on fake fragments, the rootfs layout, initramfs reproducibility,
# the built kernel's .config (skipped when `make kernel` has not run), and /init run
# as PID 1 in throwaway mount+pid+net+uts namespaces (`unshare`), where it must parse
# provium.hostname / provium.net, mount the pseudo file systems, start the agent,
# reap orphans and stop when told.
# Usage: tests/kernel/run.sh   (PROVIUM_BUILD = the build dir, default build/)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PROVIUM_BUILD:-$root/build}
agent=$build/provium-agent
# provium finds kernels/build.sh here even when PROVIUM_BUILD is outside the checkout.
export PROVIUM_SOURCE_DIR=$root PROVIUM_AGENT=$agent
tmp=$(mktemp -d /tmp/provium-kernel-tests.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { # check NAME CMD...: ok when CMD succeeds, else not ok with its output
  local name=$1 out; shift
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(echo "$out" | tail -15)"; fi
}

# ---- check-config.sh ----
printf 'CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=16\n' > "$tmp/frag1"
printf '# CONFIG_B is not set\n' > "$tmp/frag2"
printf 'CONFIG_A=y\nCONFIG_B=y\nCONFIG_D=16\n' > "$tmp/good"
printf 'CONFIG_A=y\nCONFIG_C=y\nCONFIG_D=8\n' > "$tmp/bad"
check "check-config accepts a .config with every required option" \
  "$root/kernels/check-config.sh" "$tmp/good" "$tmp/frag1"
out=$("$root/kernels/check-config.sh" "$tmp/bad" "$tmp/frag1" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q 'CONFIG_B=y wanted' <<<"$out" && grep -q 'CONFIG_C is y, must be off' <<<"$out" &&
   grep -q 'CONFIG_D=16 wanted, .config has CONFIG_D=8' <<<"$out" && ! grep -q CONFIG_A <<<"$out"; then
  ok "check-config names each missing, wrong and forbidden option"
else
  fail "check-config names each missing, wrong and forbidden option" "rc=$rc" "$out"
fi
out=$("$root/kernels/check-config.sh" "$tmp/good" "$tmp/frag1" "$tmp/frag2" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q 'CONFIG_B is y, must be off' <<<"$out"; then
  ok "check-config: a later fragment (config-pvm) overrides an earlier one"
else
  fail "check-config: a later fragment (config-pvm) overrides an earlier one" "rc=$rc" "$out"
fi
check "the PVM fragment turns off CONFIG_PTP_1588_CLOCK_KVM" \
  grep -qx '# CONFIG_PTP_1588_CLOCK_KVM is not set' "$root/kernels/config-pvm"

# ---- the built kernel's .config (the slow tier builds it) ----
cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
if paths=$("$root/kernels/build.sh" --paths --no-initramfs 2>&1); then
  cfg=$(awk '$1 == "config" { print $2 }' <<<"$paths")
  check "built kernel .config has every option kernels/config requires" \
    "$root/kernels/check-config.sh" "$cfg" "$root/kernels/config"
  # Options the fragment gets through `select` rather than naming them (kvmclock comes
  # with KVM_GUEST): a Kconfig change that drops one must still fail here.
  printf 'CONFIG_X86_64=y\nCONFIG_PARAVIRT_CLOCK=y\n# CONFIG_MODULES is not set\n' > "$tmp/selected"
  check "built kernel .config: x86-64, kvmclock (PARAVIRT_CLOCK), no modules" \
    "$root/kernels/check-config.sh" "$cfg" "$tmp/selected"
else
  skip "built kernel .config has every option kernels/config requires" "kernel not built ($paths)"
fi

# ---- the arm64 kernel and initramfs (make kernel ARCH=arm64; docs/arm64.md) ----
# Skipped until built: the tier builds nothing.
if paths=$(env -u PROVIUM_AGENT "$root/kernels/build.sh" --paths --arch arm64 2>&1); then
  cfg=$(awk '$1 == "config" { print $2 }' <<<"$paths")
  img=$(awk '$1 == "Image" { print $2 }' <<<"$paths")
  cpio=$(awk '$1 == "initramfs" { print $2 }' <<<"$paths")
  check "arm64 kernel .config has every option kernels/config + config-arm64 require" \
    "$root/kernels/check-config.sh" "$cfg" "$root/kernels/config" "$root/kernels/config-arm64"
  check "arm64 Image has the arm64 boot header (ARM\\x64 at 0x38)" \
    test "$(od -An -c -j56 -N4 "$img" | tr -d ' ')" = ARMd
  mkdir -p "$tmp/a64" && (cd "$tmp/a64" && cpio -id --quiet < "$cpio")
  errs=()
  for f in bin/busybox bin/provium-agent; do
    file -b "$tmp/a64/$f" | grep -q 'ARM aarch64.*statically linked' || errs+=("$f: $(file -b "$tmp/a64/$f")")
  done
  [ -L "$tmp/a64/bin/sh" ] && [ -L "$tmp/a64/sbin/ip" ] || errs+=("no applet links bin/sh, sbin/ip")
  if [ ${#errs[@]} -eq 0 ]; then ok "arm64 initramfs: static aarch64 busybox and agent, applet links"
  else fail "arm64 initramfs: static aarch64 busybox and agent, applet links" "${errs[@]}"; fi
else
  skip "arm64 kernel and initramfs" "not built (make kernel ARCH=arm64)"
fi

# ---- a missing source package is a clear error ----
out=$(PROVIUM_CACHE_DIR=$tmp/nosrc PROVIUM_LINUX_SOURCE=/nonexistent/linux.tar.xz \
      "$root/kernels/build.sh" --no-initramfs 2>&1); rc=$?
errs=()
[ $rc -eq 1 ] || errs+=("build.sh exited $rc, want 1")
grep -q 'no kernel source: /nonexistent/linux.tar.xz is missing (apt-get install linux-source-6.1' <<<"$out" || errs+=("build.sh: $out")
if [ -x "$build/provium" ]; then
  out=$(PROVIUM_CACHE_DIR=$tmp/nosrc PROVIUM_LINUX_SOURCE=/nonexistent/linux.tar.xz "$build/provium" kernel build 2>&1); rc=$?
  [ $rc -eq 3 ] || errs+=("provium kernel build exited $rc, want 3")
  grep -q 'provium kernel build: guest kernel build failed' <<<"$out" || errs+=("provium kernel build: $(tail -3 <<<"$out")")
fi
if [ ${#errs[@]} -eq 0 ]; then ok "no kernel source: build.sh and provium kernel build fail saying what to install"
else fail "no kernel source: build.sh and provium kernel build fail saying what to install" "${errs[@]}"; fi

# ---- the cache: no-op rebuilds, stale initramfs, `provium kernel path` ----
# A private cache that borrows the built kernel (a link to its hash directory), so
# only the initramfs logic runs.
cache_tests="build.sh packs a missing initramfs, then is a no-op
build.sh --paths and provium kernel path notice an initramfs older than the agent"
if [ ! -x "$agent" ]; then
  while read -r t; do skip "$t" "no agent at $agent (run make)"; done <<<"$cache_tests"
elif ! paths=$("$root/kernels/build.sh" --paths --no-initramfs 2>&1); then
  while read -r t; do skip "$t" "kernel not built (make kernel)"; done <<<"$cache_tests"
else
  kdir=$(dirname "$(awk '$1 == "vmlinux" { print $2 }' <<<"$paths")")
  c=$tmp/cache
  mkdir -p "$c/kernel" && ln -s "$kdir" "$c/kernel/$(basename "$kdir")"
  errs=()
  export PROVIUM_CACHE_DIR=$c
  out=$(PROVIUM_AGENT=$agent "$root/kernels/build.sh" --paths 2>&1) && errs+=("--paths succeeded with no initramfs")
  grep -q 'initramfs not built or out of date: run' <<<"$out" || errs+=("--paths: $out")
  out=$(PROVIUM_AGENT=$agent "$root/kernels/build.sh" 2>&1) || errs+=("build.sh failed: $(tail -5 <<<"$out")")
  grep -q 'kernel cached (default)' <<<"$out" || errs+=("the kernel was not taken from the cache")
  grep -q 'initramfs: packing' <<<"$out" || errs+=("the initramfs was not packed")
  ird=$(awk '$1 == "initramfs" { print $2 }' <<<"$out")
  [ -s "$ird" ] || errs+=("no initramfs at '$ird'")
  t0=$(date +%s%N)
  out2=$(PROVIUM_AGENT=$agent "$root/kernels/build.sh" 2>&1) || errs+=("second build.sh failed")
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  grep -q 'initramfs cached' <<<"$out2" || errs+=("second run repacked the initramfs")
  pathlines() { grep -E '^(vmlinux|bzImage|config|initramfs) ' <<<"$1"; }
  [ "$(pathlines "$out")" = "$(pathlines "$out2")" ] && [ -n "$(pathlines "$out")" ] || errs+=("second run printed other paths")
  [ $ms -lt 10000 ] || errs+=("second run took $ms ms")
  if [ -x "$build/provium" ]; then
    pp=$("$build/provium" kernel path --initrd 2>&1) || errs+=("provium kernel path failed: $pp")
    [ "$pp" = "$ird" ] || errs+=("provium kernel path --initrd says '$pp', want '$ird'")
  fi
  if [ ${#errs[@]} -eq 0 ]; then ok "build.sh packs a missing initramfs, then is a no-op (${ms} ms)"
  else fail "build.sh packs a missing initramfs, then is a no-op" "${errs[@]}"; fi

  # A rebuilt agent makes the initramfs stale.
  errs=()
  cp "$agent" "$tmp/agent2" && printf 'x' >> "$tmp/agent2"
  out=$(PROVIUM_AGENT=$tmp/agent2 "$root/kernels/build.sh" --paths 2>&1) && errs+=("--paths accepted a stale initramfs")
  grep -q 'initramfs not built or out of date' <<<"$out" || errs+=("--paths: $out")
  if [ -x "$build/provium" ]; then
    rm -f "$c/initramfs/"*.cpio
    out=$("$build/provium" kernel path 2>&1); rc=$?
    [ $rc -eq 3 ] || errs+=("provium kernel path exited $rc without an initramfs, want 3")
    grep -qF 'run `provium kernel build`' <<<"$out" || errs+=("provium kernel path: $out")
  fi
  if [ ${#errs[@]} -eq 0 ]; then ok "build.sh --paths and provium kernel path notice an initramfs older than the agent"
  else fail "build.sh --paths and provium kernel path notice an initramfs older than the agent" "${errs[@]}"; fi
  unset PROVIUM_CACHE_DIR
fi

# ---- rootfs + initramfs ----
if [ ! -x "$agent" ]; then
  for t in "rootfs layout" "initramfs reproducible" "initramfs contents" "/init in namespaces"; do
    skip "$t" "no agent at $agent (run make)"
  done
  echo "1..$n"; exit 0
fi
export PROVIUM_AGENT_BIN=$agent
mkroot() { PROVIUM_AGENT=$agent "$root/kernels/rootfs.sh" "$1" >/dev/null; }
if mkroot "$tmp/r1"; then
  r=$tmp/r1 errs=()
  for f in init bin/busybox bin/provium-agent; do [ -x "$r/$f" ] || errs+=("$f missing or not executable"); done
  for d in proc sys dev tmp run mnt; do [ -d "$r/$d" ] && [ -z "$(ls -A "$r/$d")" ] || errs+=("/$d not an empty dir"); done
  for a in bin/sh sbin/ip bin/mount bin/hostname sbin/poweroff; do
    [ "$(readlink "$r/$a")" = /bin/busybox ] || errs+=("$a is not a busybox link")
  done
  grep -qx 'test:x:1000:1000:test:/home/test:/bin/sh' "$r/etc/passwd" || errs+=("no test user uid 1000")
  grep -q '^nobody:x:65534:' "$r/etc/passwd" || errs+=("no nobody user")
  grep -q '^root:x:0:0:' "$r/etc/passwd" || errs+=("no root user")
  cmp -s "$r/init" "$root/kernels/init" || errs+=("/init differs from kernels/init")
  cmp -s "$r/bin/provium-agent" "$agent" || errs+=("agent differs from $agent")
  if [ ${#errs[@]} -eq 0 ]; then ok "rootfs layout: busybox applets, agent, /init, /etc users, empty mount points"
  else fail "rootfs layout: busybox applets, agent, /init, /etc users, empty mount points" "${errs[@]}"; fi
else
  fail "rootfs layout" "kernels/rootfs.sh failed"
fi

# Two builds at different times from separate trees must give identical bytes.
sleep 1
if mkroot "$tmp/r2" && "$root/kernels/mkinitramfs.sh" "$tmp/r1" "$tmp/a.cpio" &&
   touch "$tmp/r2/etc/passwd" && "$root/kernels/mkinitramfs.sh" "$tmp/r2" "$tmp/b.cpio"; then
  a=$(sha256sum < "$tmp/a.cpio"); b=$(sha256sum < "$tmp/b.cpio")
  if [ "$a" = "$b" ] && [ -s "$tmp/a.cpio" ]; then ok "initramfs reproducible: two builds are byte-identical (${a%% *})"
  else fail "initramfs reproducible: two builds are byte-identical" "a=$a" "b=$b"; fi
  listing=$(cpio -itv --quiet < "$tmp/a.cpio" 2>&1)
  names=$(cpio -it --quiet < "$tmp/a.cpio" 2>&1)
  errs=()
  for f in init bin/busybox bin/provium-agent bin/sh dev/console etc/passwd proc sys tmp; do
    grep -qx "$f" <<<"$names" || errs+=("no $f in the archive")
  done
  [ "$names" = "$(LC_ALL=C sort <<<"$names")" ] || errs+=("entries are not sorted")
  awk '$3 != "root" || $4 != "root"' <<<"$listing" | grep -q . && errs+=("an entry is not owned by 0:0")
  grep -q '^c.* dev/console$' <<<"$listing" || errs+=("dev/console is not a character device")
  head -c 6 "$tmp/a.cpio" | grep -q 070701 || errs+=("not a newc archive")
  if [ ${#errs[@]} -eq 0 ]; then ok "initramfs contents: newc, sorted, 0:0, /init, busybox, agent, /dev/console"
  else fail "initramfs contents: newc, sorted, 0:0, /init, busybox, agent, /dev/console" "${errs[@]}"; fi
else
  fail "initramfs reproducible" "building the rootfs or the archive failed"
  skip "initramfs contents" "no archive"
fi

# ---- /init as PID 1 in namespaces ----
# run_init NAME CMDLINE PROBE: copies the rootfs, installs PROBE as the "agent", and
# runs /init in new mount+pid+net+uts namespaces with veth eth0/eth1 present.
# Output in $tmp/NAME.out, init's exit status in $tmp/NAME.rc.
run_init() {
  local name=$1 cmdline=$2 probe=$3 r=$tmp/root-$1
  cp -a "$tmp/r1" "$r"
  printf '#!/bin/sh\n%s\n' "$probe" > "$r/probe"; chmod 755 "$r/probe"
  PROVIUM_SANDBOX=1 PROVIUM_CMDLINE="$cmdline" PROVIUM_INIT_AGENT_CMD=/probe \
    timeout 20 unshare --mount --pid --net --uts --fork --kill-child sh -c '
      mount --make-rprivate / &&
      ip link add eth0 type veth peer name eth1 &&
      exec chroot "$1" /init' sh "$r" > "$tmp/$name.out" 2>&1
  echo $? > "$tmp/$name.rc"
}
if ! command -v unshare >/dev/null || ! unshare --mount --pid --net --uts --fork true 2>/dev/null; then
  for t in "hostname+net" "bad entry" "orphans" "stop signal"; do skip "/init in namespaces: $t" "unshare cannot create mount+pid+net+uts namespaces here"; done
  echo "1..$n"; exit 0
fi

run_init net "quiet provium.hostname=box1 provium.net=eth0,10.9.0.2/24,10.9.0.1;eth1,10.9.1.2/24 x=y" '
echo "pid=$$ ppid=$PPID"
echo "hostname=$(hostname)"
ip -o -4 addr show | awk "{print \"addr\", \$2, \$4}"
ip route | sed "s/^/route /"
ip -o link show lo | grep -q "LOWER_UP\|,UP" && echo "lo up"
[ -e /proc/self/stat ] && echo "mounted /proc"
[ -d /sys/class/net ] && echo "mounted /sys"
[ -c /dev/null ] && echo "dev null is a char device"
echo "home/test owner $(stat -c %u /home/test)"
awk "\$2 == \"/tmp\" || \$2 == \"/run\" || \$2 == \"/dev\" { print \"mount\", \$2, \$3 }" /proc/mounts
exit 7'
out=$(cat "$tmp/net.out"); rc=$(cat "$tmp/net.rc")
errs=()
[ "$rc" = 7 ] || errs+=("init exited $rc, want the agent's status 7")
grep -qx 'provium-init: agent started (pid [0-9]*: /probe)' <<<"$out" || errs+=("no 'provium-init: agent started' line")
grep -q '^pid=[0-9]* ppid=1$' <<<"$out" || errs+=("agent is not a child of PID 1")
grep -qx 'hostname=box1' <<<"$out" || errs+=("hostname not set from provium.hostname")
grep -qx 'addr eth0 10.9.0.2/24' <<<"$out" || errs+=("eth0 not 10.9.0.2/24")
grep -qx 'addr eth1 10.9.1.2/24' <<<"$out" || errs+=("eth1 not 10.9.1.2/24")
grep -q '^route default via 10.9.0.1 dev eth0' <<<"$out" || errs+=("no default route via 10.9.0.1")
grep -qx 'addr lo 127.0.0.1/8' <<<"$out" || errs+=("lo has no 127.0.0.1")
grep -E 'not found|syntax error|bad (number|substitution)' <<<"$out" && errs+=("/init printed shell errors")
for m in "mounted /proc" "mounted /sys" "mount /tmp tmpfs" "mount /run tmpfs" "mount /dev devtmpfs" "dev null is a char device" "home/test owner 1000"; do
  grep -qx "$m" <<<"$out" || errs+=("missing: $m")
done
if [ ${#errs[@]} -eq 0 ]; then ok "/init: provium.hostname and provium.net (two NICs, gateway) applied, mounts, agent started, status passed on"
else fail "/init: provium.hostname and provium.net applied" "${errs[@]}" "--- output:" "$out"; fi

run_init bad "provium.net=eth9,10.0.0.1/24 provium.net=eth0,10.0.0.2 provium.net=eth1,10.0.1.2/24" '
ip -o -4 addr show eth1 | awk "{print \"addr\", \$2, \$4}"; exit 0'
out=$(cat "$tmp/bad.out"); rc=$(cat "$tmp/bad.rc")
errs=()
[ "$rc" = 0 ] || errs+=("init exited $rc")
grep -q 'provium-init: error: provium.net: no interface eth9' <<<"$out" || errs+=("no error for missing eth9")
grep -q "provium-init: error: provium.net eth0: address '10.0.0.2' has no /PREFIX" <<<"$out" || errs+=("no error for the prefix-less address")
grep -qx 'addr eth1 10.0.1.2/24' <<<"$out" || errs+=("a valid entry after bad ones was not applied")
grep -q 'provium-init: agent started' <<<"$out" || errs+=("agent not started after bad entries")
if [ ${#errs[@]} -eq 0 ]; then ok "/init: bad provium.net entries are reported by name, the rest still applied"
else fail "/init: bad provium.net entries are reported by name" "${errs[@]}" "--- output:" "$out"; fi

# An orphan re-parented to PID 1 must be reaped by /init while the agent runs.
run_init orphans "" '
sh -c "sleep 0.3 & echo \$! > /run/orphan" ; sleep 1.5
o=$(cat /run/orphan)
if [ -e /proc/$o ]; then echo "orphan $o state $(awk "{print \$3}" /proc/$o/stat) ppid $(awk "{print \$4}" /proc/$o/stat)"; else echo "orphan $o reaped"; fi
exit 0'
out=$(cat "$tmp/orphans.out")
if grep -q '^orphan [0-9]* reaped$' <<<"$out"; then ok "/init reaps orphans re-parented to PID 1"
else fail "/init reaps orphans re-parented to PID 1" "$out"; fi

run_init stop "" 'kill -USR2 1; sleep 10; echo "still running"; exit 3'
out=$(cat "$tmp/stop.out"); rc=$(cat "$tmp/stop.rc")
if [ "$rc" = 0 ] && grep -q 'provium-init: told to poweroff; stopping the agent' <<<"$out" && ! grep -q 'still running' <<<"$out"; then
  ok "/init stops on SIGUSR2 (busybox poweroff) and exits 0 in the sandbox"
else
  fail "/init stops on SIGUSR2 (busybox poweroff)" "rc=$rc" "$out"
fi

echo "1..$n"
