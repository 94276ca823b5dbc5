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
# PROVIUM_KVMHOST_KVM_AMD: kvm_amd's module options inside (e.g. npt=0 for shadow paging).
#
# One vCPU by default: with two, QEMU 7.2's emulator now and then crashed the simulated
# host's kernel in __svm_vcpu_run (a #PF on the stack right after VMRUN, then a bad GS
# base) and guests triple-faulted while booting, and two single-vCPU hosts side by side
# boot guests twice as fast as one host with two vCPUs. npt=0 avoided the crash too,
# but serialises the guests' page faults (2.5x slower). tier.sh runs one host per CPU.
#
# The command runs as root in this checkout (read-only: the whole root is shared
# read-only over 9p), with writable tmpfs on /tmp, /run and /var/tmp, HOME=/tmp/home,
# and PROVIUM_CACHE_DIR=/tmp/cache holding links to this host's built guest kernels
# and initramfs images (build them first: `make kernel`; nothing is built inside, where
# everything runs under the emulator). PROVIUM_* and a few other variables of the
# caller are passed in (PROVIUM_BUILD, VERBOSE, NO_COLOR). The command's stdout is this
# script's stdout, its stderr appears on stderr (through the serial console) and its
# exit status is this script's. 124: the time limit passed; 125: the simulated host
# failed before the command ran. Nothing is left behind: the QEMU process and the
# temporary directory go at exit, also on SIGINT/SIGTERM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
timeout=900 memory=6144 shell=0 keeplog=
cpus=1
usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --timeout) timeout=$2; shift ;;
    --memory) memory=$2; shift ;;
    --cpus) cpus=$2; shift ;;
    --keep-log) keeplog=$2; shift ;;
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

qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86, or make deps)"
[ -x /bin/busybox ] || die "no /bin/busybox (apt-get install busybox-static)"
kdir=$("$here/hostkernel.sh") || die "cannot get the host kernel"
kver=$(cat "$kdir/version")

# ---- the initramfs: busybox, /init and the modules that mount the 9p shares ----
# Cached by the hash of its inputs (reproducible cpio: kernels/mkinitramfs.sh).
p9mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
modpath() { find "$kdir/lib/modules/$kver/kernel" -name "$1.ko" | head -1; }
ihash=$( { echo "kvmhost-initramfs 1 $kver $p9mods"; cat "$here/init" /bin/busybox "$root/kernels/mkinitramfs.sh"; } |
         sha256sum | cut -c1-16)
initrd=$cache/kvmhost/initramfs-$ihash.cpio
if [ ! -f "$initrd" ]; then
  stage=$(mktemp -d "$cache/kvmhost/.stage.XXXXXX")
  mkdir -p "$stage/rootfs/bin" "$stage/rootfs/modules"
  cp /bin/busybox "$stage/rootfs/bin/busybox"
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
qpid= tailpid=
cleanup() {
  trap - EXIT INT TERM HUP
  [ -n "$qpid" ] && { kill -KILL "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null || true; }
  [ -n "$tailpid" ] && { kill "$tailpid" 2>/dev/null; wait "$tailpid" 2>/dev/null || true; }
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
} > "$tmp/out/config"
{
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "export HOME=/tmp/home TMPDIR=/tmp PROVIUM_CACHE_DIR=/tmp/cache KVMHOST=1"
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
    echo "exec /bin/bash -i 2>/dev/null || exec /bin/sh -i"
  else
    # SIGTERM 20 s before the hard limit, so whatever the command wrote is saved.
    printf 'exec timeout -k 10 %d' $((timeout > 60 ? timeout - 20 : timeout))
    for a in "$@"; do printf ' %s' "$(q "$a")"; done
    echo
  fi
} > "$tmp/out/cmd.sh"

qargs=(-M q35 -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$memory"
       -nodefaults -no-user-config -display none -no-reboot
       -kernel "$kdir/vmlinux" -initrd "$initrd"
       -append "console=ttyS0 quiet loglevel=3 panic=-1 rw"
       -virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"
       -virtfs "local,path=$tmp/out,mount_tag=out,security_model=none,multidevs=remap")
start=$(date +%s)
if [ $shell = 1 ]; then
  # Interactive: the console on this terminal; Ctrl-A x quits QEMU.
  "$qemu" "${qargs[@]}" -serial mon:stdio || true
else
  : > "$tmp/console.log"
  "$qemu" "${qargs[@]}" -serial "file:$tmp/console.log" </dev/null &
  qpid=$!
  # The console (the command's stderr) live on our stderr, without CRs.
  tail -n +1 -F --pid="$qpid" "$tmp/console.log" 2>/dev/null | sed -u 's/\r$//' >&2 &
  tailpid=$!
  deadline=$((start + timeout))
  while kill -0 "$qpid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "time limit of ${timeout}s passed: killing the simulated host"
      kill -KILL "$qpid" 2>/dev/null
      break
    fi
    sleep 1
  done
  wait "$qpid" 2>/dev/null || true
  qpid=
  wait "$tailpid" 2>/dev/null || true   # tail --pid: ends once it has shown the rest
  tailpid=
  [ -n "$keeplog" ] && cp "$tmp/console.log" "$keeplog"
fi
[ -f "$tmp/out/stdout" ] && cat "$tmp/out/stdout"
if [ ! -f "$tmp/out/rc" ]; then
  if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then exit 124; fi
  say "the simulated host ended before the command finished (no exit status); console above"
  exit 125
fi
rc=$(cat "$tmp/out/rc")
[ -f "$tmp/out/init-error" ] && say "setup failed: $(cat "$tmp/out/init-error")"
say "done in $(( $(date +%s) - start ))s, exit $rc"
exit "$rc"
