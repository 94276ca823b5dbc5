#!/usr/bin/env bash
# inside the simulated host: one provium boot and one qemu boot, kvm tracepoints on
set -u
build=$1
line="provium-init: agent started"
cmdline="console=ttyS0 panic=-1 provium.hostname=b"
kernel=$("$build/provium" kernel path 2>/dev/null | awk '$1 == "vmlinux" { print $2 }')
initrd=$("$build/provium" kernel path 2>/dev/null | awk '$1 == "initramfs" { print $2 }')
mount -t tracefs none /sys/kernel/tracing 2>/dev/null
T=/sys/kernel/tracing
echo 65536 > $T/buffer_size_kb
out=/tmp/out; mkdir -p $out
one() {
  name=$1; shift
  echo 0 > $T/tracing_on; echo > $T/trace
  for e in kvm_exit kvm_pio kvm_mmio kvm_msr kvm_inj_virq kvm_userspace_exit; do echo 1 > $T/events/kvm/$e/enable; done
  echo 1 > $T/tracing_on
  t0=$(date +%s%N)
  "$@" 2>/dev/null | { while IFS= read -r l; do printf '%s %s\n' "$(( ($(date +%s%N) - t0) / 1000000 ))" "$l"; case $l in *"$line"*) break;; esac; done > /tmp/$name.console
     echo 0 > $T/tracing_on; [ -f /tmp/qemu.pid ] && kill -KILL $(cat /tmp/qemu.pid); }
  rm -f /tmp/qemu.pid
  sleep 1
  cat $T/trace > /tmp/$name.trace
  echo "== $name: $(tail -1 /tmp/$name.console)"
  echo "-- exit reasons"; grep -o 'kvm_exit: reason [A-Za-z_0-9]*' /tmp/$name.trace | sort | uniq -c | sort -rn | head -12
  echo "-- pio by port/dir"; grep -o 'kvm_pio: pio_[a-z]* at 0x[0-9a-f]* size [0-9]*' /tmp/$name.trace | awk '{print $2, $4}' | sort | uniq -c | sort -rn | head -25
  echo "-- mmio"; grep -o 'kvm_mmio: mmio [a-z]* len [0-9]* gpa 0x[0-9a-f]*' /tmp/$name.trace | awk '{print $3, $7}' | sort | uniq -c | sort -rn | head -15
  echo "-- msr"; grep -o 'kvm_msr: msr_[a-z]* [0-9a-f]*' /tmp/$name.trace | sort | uniq -c | sort -rn | head -10
  echo "-- userspace exits"; grep -o 'kvm_userspace_exit: reason [A-Za-z_0-9]*' /tmp/$name.trace | sort | uniq -c | sort -rn | head
  echo "-- injected vectors"; grep -o 'kvm_inj_virq: IRQ 0x[0-9a-f]*' /tmp/$name.trace | sort | uniq -c | sort -rn | head
  echo "-- console with host ms"; cat /tmp/$name.console
  echo
}
one provium "$build/provium" boot --kernel "$kernel" --initrd "$initrd" --cmdline "$cmdline" --memory 256
one qemu qemu-system-x86_64 -M microvm -accel kvm -cpu host -m 256 -nodefaults -no-user-config \
    -display none -serial stdio -pidfile /tmp/qemu.pid -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
