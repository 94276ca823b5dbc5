#!/usr/bin/env bash
# run.sh — runs one command inside a simulated KVM host: QEMU's software emulator (TCG,
# `-cpu max`: AMD SVM with nested paging) booting Debian's own kernel, which loads
# kvm_amd, so Provium's VMM runs real Linux microVMs there. QEMU is the simulated
# machine only; Provium itself never starts QEMU. docs/linux-tests.md.
#
#   tests/kvmhost/run.sh [options] [--] COMMAND [ARG...]
#   tests/kvmhost/run.sh --shell         a shell inside, on this terminal (debugging)
#
# Options:
#   --timeout S   hard limit for the whole machine, boot included (default 900); QEMU is
#                 killed when it passes, and the command gets SIGTERM 20 s before
#   --memory MIB  RAM of the simulated host (default 6144)
#   --cpus N      its vCPUs (default 1: see below)
#   --keep-log F  also write the simulated host's console to F
#   --arch A      x86_64 (default) or arm64: an arm64 KVM host (below)
# PROVIUM_KVMHOST_KVM_AMD: kvm_amd's module options inside (e.g. npt=0 for shadow paging).
#
# One vCPU by default: with two, QEMU 7.2's emulator now and then crashed the simulated
# host's kernel in __svm_vcpu_run (a #PF on the stack right after VMRUN, then a bad GS
# base) and guests triple-faulted while booting, and two single-vCPU hosts side by side
# boot guests twice as fast as one host with two vCPUs. npt=0 avoided the crash too,
# but serialises the guests' page faults (2.5x slower). tier.sh runs one host per CPU.
#
# The command runs as root in this checkout (read-only: the whole root is shared
# read-only over 9p), with writable tmpfs on /tmp, /run and /var/tmp (a checkout or
# cache under one of them is bound back in, read-only), HOME=/tmp/home,
# and PROVIUM_CACHE_DIR=/tmp/cache holding links to this host's built guest kernels
# and initramfs images (build them first: `make kernel`; nothing is built inside, where
# everything runs under the emulator). PROVIUM_* and a few other variables of the
# caller are passed in (PROVIUM_BUILD, VERBOSE, NO_COLOR). The command's stdout is this
# script's stdout, its stderr appears on stderr (through the serial console) and its
# exit status is this script's. 124: the time limit passed; 125: the simulated host
# failed before the command ran; 123: the simulated host stopped (below).
#
# QEMU 7.2's emulator now and then loses the simulated host's timer interrupt while
# guests run in it: the one vCPU halts (HLT=1, IF=1) with the local APIC's one-shot
# timer expired and its vector 236 pending in IRR, nothing wakes it again, everything
# inside (timeouts too) waits forever and QEMU idles at 0% CPU. Seen in 2 of 3 runs
# of one linux-tier shard with the kernel's default tickless one-shot timer, in none
# with `nohz=off highres=off`: the APIC timer then runs in periodic mode, and its next
# tick delivers what was lost. So the simulated host boots with those (its guests'
# timers are then only as fine as its 4 ms tick; PROVIUM_KVMHOST_APPEND adds more).
# The safety net: the host's /init writes a heartbeat every 5 s; when it is 60 s old,
# this script prints the vCPU's registers and local APIC (QEMU's monitor), then raises
# the serial port's interrupt and injects an NMI (either woke a stopped host in our
# tries, not always). The run goes on if the heartbeat comes back within 60 s, each
# such stop said on stderr; otherwise the host is killed and the exit status is 123.
# PROVIUM_KVMHOST_STALL: those 60 s (tier.sh tests this with a few). Nothing is left behind: the QEMU process and the
# temporary directory go at exit, also on SIGINT/SIGTERM.
#
# --arch arm64 (docs/arm64.md): qemu-system-aarch64 -M virt,virtualization=on,
# gic-version=3 -cpu max (TCG, EL2 for KVM) boots Debian's linux-image-arm64 kernel
# (hostkernel.sh --arch arm64; KVM is built in there: "kvm [1]: VHE mode initialized"),
# with busybox-static:arm64 (kernels/busybox.sh) in its initramfs and the 9p shares on
# virtio-mmio. This host's root is shared the same way, so arm64 dynamic binaries find
# /lib/ld-linux-aarch64.so.1 and the :arm64 libraries installed here; but its /bin is
# x86: the command runs under the arm64 busybox's sh with its applets first in PATH
# (/run/kvmhost-bin), and x86 programs inside fail with "Exec format error". No
# stall kick there (the lost interrupt is x86 QEMU's APIC): a stopped host is killed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
timeout=900 memory=6144 shell=0 keeplog=
cpus=1 arch=x86_64
usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --timeout) timeout=$2; shift ;;
    --memory) memory=$2; shift ;;
    --cpus) cpus=$2; shift ;;
    --keep-log) keeplog=$2; shift ;;
    --arch)
      case ${2-} in
        x86_64|x86|amd64) arch=x86_64 ;;
        arm64|aarch64) arch=arm64 ;;
        *) echo "run.sh: unknown --arch ${2-} (x86_64 or arm64)" >&2; exit 2 ;;
      esac
      shift ;;
    --shell) shell=1 ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    -*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[ $shell = 1 ] || [ $# -gt 0 ] || usage
say() { printf '[kvmhost] %s\n' "$*" >&2; }
die() { printf '[kvmhost] error: %s\n' "$*" >&2; exit 125; }

bb=/bin/busybox
if [ $arch = arm64 ]; then
  qemu=$(command -v qemu-system-aarch64) || die "qemu-system-aarch64 not found (apt-get install qemu-system-arm, or make deps ARCH=arm64)"
  bbdir=$("$root/kernels/busybox.sh" arm64) || die "cannot get busybox-static:arm64"
  bb=$bbdir/busybox
  kdir=$("$here/hostkernel.sh" --arch arm64) || die "cannot get the arm64 host kernel"
  tools=$("$here/arm64-tools.sh") || die "cannot get the arm64 bash and tcpdump (arm64-tools.sh)"
  # virtio itself is built in there; the 9p shares are virtio-mmio devices
  p9mods="virtio_mmio netfs fscache 9pnet 9pnet_virtio 9p"
else
  qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86, or make deps)"
  kdir=$("$here/hostkernel.sh") || die "cannot get the host kernel"
  p9mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
fi
[ -x "$bb" ] || die "no $bb (apt-get install busybox-static)"
kver=$(cat "$kdir/version")

# ---- the initramfs: busybox, /init and the modules that mount the 9p shares ----
# Cached by the hash of its inputs (reproducible cpio: kernels/mkinitramfs.sh).
modpath() { find "$kdir/lib/modules/$kver/kernel" -name "$1.ko" | head -1; }
ihash=$( { echo "kvmhost-initramfs 1 $kver $p9mods"; cat "$here/init" "$bb" "$root/kernels/mkinitramfs.sh"; } |
         sha256sum | cut -c1-16)
initrd=$cache/kvmhost/initramfs-$ihash.cpio
if [ ! -f "$initrd" ]; then
  stage=$(mktemp -d "$cache/kvmhost/.stage.XXXXXX")
  mkdir -p "$stage/rootfs/bin" "$stage/rootfs/modules"
  cp "$bb" "$stage/rootfs/bin/busybox"
  cp "$here/init" "$stage/rootfs/init"; chmod 0755 "$stage/rootfs/init"
  for m in $p9mods; do
    f=$(modpath "$m"); [ -n "$f" ] || { rm -rf "$stage"; die "module $m not in $kdir"; }
    cp "$f" "$stage/rootfs/modules/$m.ko"
  done
  echo "$p9mods" > "$stage/rootfs/modules.list"
  "$root/kernels/mkinitramfs.sh" "$stage/rootfs" "$stage/i.cpio"
  mv "$stage/i.cpio" "$initrd"; rm -rf "$stage"
fi

# ---- the exchange directory: config, command, results ----
tmp=$(mktemp -d /tmp/provium-kvmhost.XXXXXX)
qpid= tailpid= monpid= hung=0
cleanup() {
  trap - EXIT INT TERM HUP
  # (each may be gone already: a failing kill must not stop the cleanup, set -e)
  [ -n "$qpid" ] && { kill -KILL "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; }
  [ -n "$tailpid" ] && { kill "$tailpid" 2>/dev/null || true; wait "$tailpid" 2>/dev/null || true; }
  [ -n "$monpid" ] && { kill "$monpid" 2>/dev/null || true; wait "$monpid" 2>/dev/null || true; }
  rm -rf "$tmp"
  return 0
}
trap cleanup EXIT
trap 'say "interrupted"; cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM HUP
mkdir -p "$tmp/out"
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
  echo "KVMHOST_KDIR=$(q "$kdir")"
  echo "KVMHOST_MODULES='tun bridge veth nft_masq nft_chain_nat'"
  echo "KVMHOST_KVM_AMD=$(q "${PROVIUM_KVMHOST_KVM_AMD-}")"
  echo "KVMHOST_SHELL=$shell"
  echo "KVMHOST_ARCH=$arch"
  [ $arch = arm64 ] && echo "KVMHOST_TOOLS=$(q "$tools")"
} > "$tmp/out/config"
# Inside, /tmp, /var/tmp and /run are fresh tmpfs: a checkout, working directory or
# cache of this host under one of them is bound back in over it (init, "keep").
for p in "$root" "$PWD" "$(readlink -f "$cache" 2>/dev/null || echo "$cache")"; do
  case $p in /tmp/*|/var/tmp/*|/run/*) [ -d "$p" ] && printf '%s\n' "$p" ;; esac
done | sort -u > "$tmp/out/keep"
{
  # (arm64: the arm64 busybox's applets first, the shared /bin being x86)
  echo "export PATH=$([ $arch = arm64 ] && echo /run/kvmhost-bin:)/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "export HOME=/tmp/home TMPDIR=/tmp PROVIUM_CACHE_DIR=/tmp/cache KVMHOST=1"
  # (arm64: for kernels/build.sh --paths inside, the busybox of the guests' initramfs
  # and the kernel source's version, which kernels/build.sh keys the kernel by)
  [ $arch = arm64 ] && echo "export PROVIUM_BUSYBOX_DIR=$(q "$bbdir")" \
    "PROVIUM_KERNEL_SRCVER=$(q "$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null)")"
  echo "mkdir -p /tmp/home /tmp/cache/kernel /tmp/cache/initramfs"
  # The guest kernels and initramfs images built on this host, linked into the cache.
  for sub in kernel initramfs; do
    [ -d "$cache/$sub" ] || continue
    for e in "$cache/$sub"/*; do
      [ -e "$e" ] && echo "ln -sfn $(q "$(readlink -f "$e")") $(q "/tmp/cache/$sub/${e##*/}")"
    done
  done
  for v in $(compgen -e); do
    case $v in
      PROVIUM_CACHE_DIR) ;;
      PROVIUM_*|VERBOSE|NO_COLOR|TERM|CMOCKA_MESSAGE_OUTPUT) echo "export $v=$(q "${!v}")" ;;
    esac
  done
  echo "cd $(q "$PWD") || exit 125"
  if [ $shell = 1 ]; then
    echo "echo 'kvmhost: a shell inside the simulated KVM host; exit (or Ctrl-D) powers it off'"
    if [ $arch = arm64 ]; then echo "exec sh -i"
    else echo "exec /bin/bash -i 2>/dev/null || exec /bin/sh -i"; fi
  else
    # SIGTERM 20 s before the hard limit, so whatever the command wrote is saved.
    printf 'exec timeout -k 10 %d' $((timeout > 60 ? timeout - 20 : timeout))
    for a in "$@"; do printf ' %s' "$(q "$a")"; done
    echo
  fi
} > "$tmp/out/cmd.sh"

if [ $arch = arm64 ]; then
  qargs=(-M virt,virtualization=on,gic-version=3 -accel tcg,thread=multi -cpu max
         -smp "$cpus" -m "$memory" -nodefaults -no-user-config -display none -no-reboot
         -kernel "$kdir/Image" -initrd "$initrd"
         -append "console=ttyAMA0 quiet loglevel=3 panic=-1 rw ${PROVIUM_KVMHOST_APPEND-}"
         -fsdev "local,id=host,path=/,security_model=none,readonly=on,multidevs=remap"
         -device virtio-9p-device,fsdev=host,mount_tag=host
         -fsdev "local,id=out,path=$tmp/out,security_model=none,multidevs=remap"
         -device virtio-9p-device,fsdev=out,mount_tag=out)
else
qargs=(-M q35 -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$memory"
       -nodefaults -no-user-config -display none -no-reboot
       -kernel "$kdir/vmlinux" -initrd "$initrd"
       -append "console=ttyS0 quiet loglevel=3 panic=-1 rw nohz=off highres=off ${PROVIUM_KVMHOST_APPEND-}"
       -virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"
       -virtfs "local,path=$tmp/out,mount_tag=out,security_model=none,multidevs=remap")
fi
start=$(date +%s)
if [ $shell = 1 ]; then
  # Interactive: the console on this terminal; Ctrl-A x quits QEMU.
  "$qemu" "${qargs[@]}" -serial mon:stdio || true
else
  : > "$tmp/console.log"
  mkfifo "$tmp/mon.in" "$tmp/mon.out"
  "$qemu" "${qargs[@]}" -serial "file:$tmp/console.log" \
    -chardev "pipe,id=mon,path=$tmp/mon" -mon chardev=mon,mode=readline </dev/null &
  qpid=$!
  cat "$tmp/mon.out" > "$tmp/monitor.log" 2>/dev/null &
  monpid=$!
  # The console (the command's stderr) live on our stderr, without CRs.
  tail -n +1 -F --pid="$qpid" "$tmp/console.log" 2>/dev/null | sed -u 's/\r$//' >&2 &
  tailpid=$!
  deadline=$((start + timeout))
  kicked=0 stopped=0 stall=${PROVIUM_KVMHOST_STALL:-60}
  while kill -0 "$qpid" 2>/dev/null; do
    now=$(date +%s)
    if [ "$now" -ge "$deadline" ]; then
      say "time limit of ${timeout}s passed: killing the simulated host"
      kill -KILL "$qpid" 2>/dev/null || true
      break
    fi
    beat=$(stat -c %Y "$tmp/out/heartbeat" 2>/dev/null || echo "$start")
    if [ $kicked -eq 0 ] && [ $((now - beat)) -ge "$stall" ]; then
      say "the simulated host stopped: no heartbeat for $((now - beat)) s (QEMU's lost timer interrupt?); its vCPU:"
      off=$(stat -c %s "$tmp/monitor.log")
      if [ $arch = arm64 ]; then printf 'info registers\n' > "$tmp/mon.in"
      else printf 'info registers\ninfo lapic\n' > "$tmp/mon.in"; fi
      sleep 2
      tail -c +$((off + 1)) "$tmp/monitor.log" | tr -d '\r' |
        grep -Ev '^(\(qemu\)|QEMU|[CDEFGS]S |LDT|TR |[GI]DT|DR[0-9]|EFER|FCW|FPR|XMM|YMM|ZMM|Opmask|$)' |
        head -40 | sed 's/^/[kvmhost]   /' >&2
      if [ $arch = x86_64 ]; then
        say "raising the serial port's interrupt and injecting an NMI to wake it"
        # IER = receive, transmit-empty and line-status interrupts: the 8250 driver's
        # own, plus one it clears again when it finds nothing to send
        printf 'o /b 0x3f9 0x07\nnmi\n' > "$tmp/mon.in"
      fi
      kicked=$now stopped=$((stopped + 1))
    elif [ $kicked -ne 0 ] && [ "$beat" -gt "$kicked" ]; then
      say "the simulated host came back (stop $stopped of this run)"
      kicked=0
    elif [ $kicked -ne 0 ] && [ $((now - kicked)) -ge "$stall" ]; then
      say "the simulated host is still stopped $stall s after that: killing it"
      kill -KILL "$qpid" 2>/dev/null || true
      hung=1
      break
    fi
    sleep 1
  done
  wait "$qpid" 2>/dev/null || true
  qpid=
  wait "$tailpid" 2>/dev/null || true   # tail --pid: ends once it has shown the rest
  tailpid=
  kill "$monpid" 2>/dev/null || true; wait "$monpid" 2>/dev/null || true
  monpid=
  [ -n "$keeplog" ] && cp "$tmp/console.log" "$keeplog"
fi
[ -f "$tmp/out/stdout" ] && cat "$tmp/out/stdout"
if [ ! -f "$tmp/out/rc" ]; then
  [ "$hung" = 1 ] && exit 123
  if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then exit 124; fi
  say "the simulated host ended before the command finished (no exit status); console above"
  exit 125
fi
rc=$(cat "$tmp/out/rc")
[ -f "$tmp/out/init-error" ] && say "setup failed: $(cat "$tmp/out/init-error")"
say "done in $(( $(date +%s) - start ))s, exit $rc"
exit "$rc"
