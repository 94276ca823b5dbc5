#!/usr/bin/env bash
# tests/slow/linux_boot.sh — boot-to-device-probe: boots the guest kernel (the PVM
# variant with its command-line workarounds on kvm_pvm hosts) with serial,
# virtio-blk, virtio-console, virtio-rng, virtio-net (on a socketpair, no host
# interface) and virtio-vsock attached through tests/slow/boot_devices.c, and checks
# the console shows the kernel version, the virtio-blk disk and its size, hvc0, the
# virtio_net driver probing the NIC and the vsock transport, and that the rng and the
# disk were actually used and the net and vsock drivers reached DRIVER_OK. Prints TAP.
# Called by tests/slow/run.sh with PROVIUM_BUILD, PROVIUM_VMLINUX, PROVIUM_INITRD,
# PROVIUM_CMDLINE_EXTRA, PROVIUM_PVM; runnable alone:
#   PROVIUM_VMLINUX=$(build/provium kernel path --pvm --vmlinux) \
#   PROVIUM_CMDLINE_EXTRA="$(build/provium kernel path --pvm-cmdline)" tests/slow/linux_boot.sh
# Minutes on a kvm_pvm host; PROVIUM_LINUX_BOOT_TIMEOUT (default 600 s) bounds it.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PROVIUM_BUILD:-$root/build}
vmlinux=${PROVIUM_VMLINUX:-}
extra=${PROVIUM_CMDLINE_EXTRA:-}
timeout=${PROVIUM_LINUX_BOOT_TIMEOUT:-600}
disk_mib=8
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
names=("the kernel banner 'Linux version 6.1'"
       "virtio-blk probed: [vda] with its size (${disk_mib} MiB)"
       "virtio-console probed: hvc0 registered as a console"
       "virtio-rng used by the kernel (bytes handed out)"
       "virtio-blk read by the kernel: the partition scan finds vda1"
       "virtio-blk request stats count the kernel's reads"
       "virtio-net probed: virtio_net prints the MAC it assigned"
       "virtio-net driver up: DRIVER_OK with VIRTIO_NET_F_STATUS negotiated"
       "vsock transport: PF_VSOCK registered"
       "virtio-vsock driver up: DRIVER_OK and event buffers posted")
skip_all() { for t in "${names[@]}"; do skip "$t" "$1"; done; echo "1..$n"; exit 0; }

[ -n "$vmlinux" ] && [ -r "$vmlinux" ] || skip_all "no kernel (PROVIUM_VMLINUX='$vmlinux')"
[ -w /dev/kvm ] || skip_all "/dev/kvm is not usable here"
[ -r "$build/libprovium.a" ] || skip_all "$build/libprovium.a is not built"

tmp=$(mktemp -d /tmp/provium-linux-boot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pkgs="lua5.4 msgpack jansson libnl-3.0 libnl-route-3.0 libpcap libnftables"
if ! ${CC:-cc} -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$root" \
     $(pkg-config --cflags $pkgs) -o "$tmp/boot_devices" "$root/tests/slow/boot_devices.c" \
     "$build/libprovium.a" $(pkg-config --libs $pkgs) -lpthread -lm 2> "$tmp/cc.log"; then
  fail "tests/slow/boot_devices.c builds" "$(tail -10 "$tmp/cc.log")"
  echo "1..$n"; exit 1
fi

sectors=$((disk_mib * 2048))
blk_re="\\[vda\\] $sectors 512-byte logical blocks"
hvc_re="console \\[hvc0\\] enabled"
cmdline="console=hvc0 console=ttyS0 earlycon=uart8250,io,0x3f8 $extra panic=-1"
t0=$SECONDS
"$tmp/boot_devices" --kernel "$vmlinux" --cmdline "$cmdline" --timeout "$timeout" \
  --disk-mib $disk_mib --until "Linux version 6.1" --until "[vda] $sectors 512-byte" \
  --until "console [hvc0] enabled" --until " vda: vda1" \
  --until "Assigned random MAC address" --until "NET: Registered PF_VSOCK protocol family" > "$tmp/console.txt" 2> "$tmp/err.txt"
rc=$?
took=$((SECONDS - t0))
val() { sed -n "s/^## $1=//p" "$tmp/console.txt" | tail -1; }
ctx=("cmdline: $cmdline" "boot_devices status $rc after $took s ($(val exit))"
     "$(tail -5 "$tmp/err.txt")" "--- console tail:" "$(grep -v '^##' "$tmp/console.txt" | tail -15)")
check() { # name regex
  if grep -q "$2" "$tmp/console.txt"; then ok "$1: $(grep -o "$2[^\r]*" "$tmp/console.txt" | head -1)"
  else fail "$1" "${ctx[@]}"; fi
}
check "${names[0]}" 'Linux version 6\.1'
check "${names[1]}" "$blk_re"
check "${names[2]}" "$hvc_re"
check "${names[4]}" ' vda: vda1'
rb=$(val rng_bytes); br=$(val blk_reads)
if [ "${rb:-0}" -gt 0 ]; then ok "${names[3]}: $rb bytes"; else fail "${names[3]}" "${ctx[@]}"; fi
if [ "${br:-0}" -gt 0 ]; then ok "${names[5]}: $br reads, $(val blk_read_bytes) bytes"; else fail "${names[5]}" "${ctx[@]}"; fi
check "${names[6]}" 'virtio_net virtio[0-9]*: Assigned random MAC address'
check "${names[8]}" 'NET: Registered PF_VSOCK protocol family'
nf=$(val net_features)
if [ "$(val net_driver_ok)" = 1 ] && [ $(( ${nf:-0} & (1 << 16) )) != 0 ]; then
  ok "${names[7]}: status $(val net_status), features $nf"
else fail "${names[7]}" "status $(val net_status) features $nf" "${ctx[@]}"; fi
eb=$(val vsock_event_bufs)
if [ "$(val vsock_driver_ok)" = 1 ] && [ "${eb:-0}" -gt 0 ]; then
  ok "${names[9]}: status $(val vsock_status), $eb event buffers"
else fail "${names[9]}" "status $(val vsock_status) event buffers $eb" "${ctx[@]}"; fi
echo "# linux boot with devices: $took s"
echo "1..$n"
