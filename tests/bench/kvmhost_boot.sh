#!/usr/bin/env bash
# kvmhost_boot.sh — runs INSIDE the simulated KVM host (tests/bench/bench_kvmhost.sh):
# `provium boot` against `qemu-system-x86_64 -M microvm -accel kvm` booting the same
# vmlinux, initramfs, command line and memory to the same console line, alternating,
# N runs each (default 5); prints the medians, their ratio, and the KVM exits per boot
# by reason for both (this host's kvm debugfs counters, read when the line appears).
# QEMU here is a measuring stick only: Provium itself never starts QEMU.
# Usage: tests/bench/kvmhost_boot.sh BUILD_DIR [N]
set -u
build=${1:?usage: kvmhost_boot.sh BUILD_DIR [N]}
runs=${2:-5}
line="provium-init: agent started"
cmdline="console=ttyS0 panic=-1 provium.hostname=b"
mem=256
kernel=$("$build/provium" kernel path 2>/dev/null | awk '$1 == "vmlinux" { print $2 }')
initrd=$("$build/provium" kernel path 2>/dev/null | awk '$1 == "initramfs" { print $2 }')
if [ -z "$kernel" ] || [ -z "$initrd" ]; then
  kernel=${PROVIUM_CACHE_DIR:-/tmp/cache}/kernel/current/vmlinux
  initrd=${PROVIUM_CACHE_DIR:-/tmp/cache}/initramfs/current.cpio
fi
[ -r "$kernel" ] && [ -r "$initrd" ] || { echo "kvmhost_boot: no guest kernel/initramfs (make kernel)"; exit 1; }
dbg=/sys/kernel/debug/kvm
[ -r "$dbg/exits" ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
reasons="exits io_exits mmio_exits irq_exits irq_window_exits halt_exits signal_exits request_irq_exits insn_emulation hypercalls pf_taken pf_fixed"
counters() { for r in $reasons; do printf '%s ' "$(cat "$dbg/$r" 2>/dev/null || echo 0)"; done; echo; }
tmp=$(mktemp -d /tmp/kvmhost-boot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# one_boot NAME CMD...: runs CMD, waits for $line on its output; appends "ms c1 c2 ..."
# (the time and the counter deltas) to $tmp/NAME.
one_boot() {
  local name=$1; shift
  local before t0 t1
  before=$(counters)
  t0=$(date +%s%N)
  # the pipeline ends when the VM does: provium boot stops itself once grep closed its
  # output; QEMU is killed
  "$@" 2>/dev/null | { grep -m1 -q -F "$line"; date +%s%N > "$tmp/t1"; counters > "$tmp/after"
    [ -f "$tmp/qemu.pid" ] && kill -KILL "$(cat "$tmp/qemu.pid")" 2>/dev/null; }
  rm -f "$tmp/qemu.pid"
  t1=$(cat "$tmp/t1")
  sleep 0.5 # the VM is gone before the next run starts
  echo "$(( (t1 - t0) / 1000000 )) $(paste -d' ' <(echo "$before" | tr ' ' '\n') <(tr ' ' '\n' < "$tmp/after") |
    awk 'NF == 2 { printf "%d ", $2 - $1 }')" >> "$tmp/$name"
}

qemu_boot() {
  qemu-system-x86_64 -M microvm -accel kvm -cpu host -m "$mem" -nodefaults -no-user-config \
    -display none -serial stdio -pidfile "$tmp/qemu.pid" \
    -kernel "$kernel" -initrd "$initrd" -append "$cmdline" </dev/null
}

for i in $(seq "$runs"); do
  one_boot provium "$build/provium" boot --kernel "$kernel" --initrd "$initrd" --cmdline "$cmdline" --memory "$mem"
  one_boot qemu qemu_boot
done

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { awk -v c="$2" '{ print $c }' "$tmp/$1" | median; }
echo "Boot to \"$line\" (same vmlinux, initramfs, \"$cmdline\", $mem MiB), median of $runs, alternating:"
printf '%-14s %9s' "" "ms"; for r in $reasons; do printf ' %10s' "${r%_exits}"; done; echo
for n in provium qemu; do
  printf '%-14s %9s' "$n" "$(col $n 1)"
  c=2; for r in $reasons; do printf ' %10s' "$(col $n $c)"; c=$((c + 1)); done; echo
done
p=$(col provium 1) q=$(col qemu 1)
pe=$(col provium 2) qe=$(col qemu 2)
awk -v p="$p" -v q="$q" -v pe="$pe" -v qe="$qe" 'BEGIN {
  printf "provium/qemu-microvm boot time ratio: %.2f (goal <= 0.80); exits ratio: %.2f\n", p / q, pe / qe }'
echo "(qemu: -M microvm -accel kvm -cpu host -nodefaults -serial stdio; kvm exits from $dbg)"
