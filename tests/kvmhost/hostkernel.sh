#!/usr/bin/env bash
# hostkernel.sh — the simulated KVM host's own kernel: Debian's kernel package (the one
# `linux-image-amd64` depends on), fetched with `apt-get download` and unpacked into the
# cache, never installed into the host's /boot or /lib/modules. docs/linux-tests.md.
#
#   tests/kvmhost/hostkernel.sh      fetch + unpack + depmod what is missing; prints the
#                                    directory (DIR/vmlinuz, DIR/lib/modules/VERSION)
#
# DIR/vmlinux is the ELF image extracted from the bzImage (booted through PVH).
# Cached in $CACHE/kvmhost/kernel-<package version>/, so the second run prints the path
# at once. PROVIUM_KVMHOST_KERNEL_DEB=FILE.deb uses that package instead of downloading.
set -euo pipefail
cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
say() { printf '[kvmhost] %s\n' "$*" >&2; }
die() { printf '[kvmhost] error: %s\n' "$*" >&2; exit 1; }

command -v depmod >/dev/null || [ -x /sbin/depmod ] || die "depmod not found (apt-get install kmod, or make deps)"
depmod=$(command -v depmod || echo /sbin/depmod)

deb=${PROVIUM_KVMHOST_KERNEL_DEB:-}
if [ -n "$deb" ]; then
  [ -r "$deb" ] || die "PROVIUM_KVMHOST_KERNEL_DEB: cannot read $deb"
  pkg=$(dpkg-deb -f "$deb" Package) ver=$(dpkg-deb -f "$deb" Version)
else
  # The versioned package that the metapackage points at today, e.g. linux-image-6.1.0-57-amd64.
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [ -n "$pkg" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"
  ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2; exit }')
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no candidate version of $pkg (run apt-get update)"
fi
dir=$cache/kvmhost/kernel-$pkg-$ver
if [ -f "$dir/.done" ]; then echo "$dir"; exit 0; fi

mkdir -p "$cache/kvmhost"
exec 9>"$cache/kvmhost/.kernel.lock"
flock 9
if [ -f "$dir/.done" ]; then echo "$dir"; exit 0; fi
tmp=$(mktemp -d "$cache/kvmhost/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ -z "$deb" ]; then
  say "downloading $pkg $ver (about 70 MB, once)"
  # apt's sandbox user cannot write into root's cache: download as root quietly.
  ( cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null ) ||
    die "apt-get download $pkg=$ver failed"
  deb=$(ls "$tmp"/*.deb)
fi
say "unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$tmp/root"
kver=$(ls "$tmp/root/lib/modules")
[ -n "$kver" ] && [ -f "$tmp/root/boot/vmlinuz-$kver" ] || die "$deb holds no kernel image"
"$depmod" -b "$tmp/root" "$kver"
mkdir -p "$tmp/out"
mv "$tmp/root/boot/vmlinuz-$kver" "$tmp/out/vmlinuz"
mv "$tmp/root/boot/config-$kver" "$tmp/out/config"
mv "$tmp/root/lib" "$tmp/out/lib"
# The ELF inside the XZ-compressed bzImage: QEMU boots it through its PVH entry
# (CONFIG_PVH), which skips the firmware's bzImage load and the decompressor, about 8 s
# under the emulator.
python3 - "$tmp/out/vmlinuz" "$tmp/out/vmlinux" <<'PY' || die "cannot extract vmlinux from the bzImage"
import lzma, sys
data = open(sys.argv[1], "rb").read()
at = data.find(b"\xfd7zXZ\x00")
if at < 0:
    sys.exit("no XZ payload in " + sys.argv[1])
elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
if elf[:4] != b"\x7fELF":
    sys.exit("the XZ payload is not an ELF image")
open(sys.argv[2], "wb").write(elf)
PY
echo "$kver" > "$tmp/out/version"
rm -rf "$dir"
mv "$tmp/out" "$dir"
touch "$dir/.done"
say "host kernel $kver in $dir"
echo "$dir"
