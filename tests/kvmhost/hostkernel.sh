#!/usr/bin/env bash
# hostkernel.sh — the simulated KVM host's own kernel: Debian's kernel package (the one
# `linux-image-amd64` depends on), fetched with `apt-get download` and unpacked into the
# cache, never installed into the host's /boot or /lib/modules. docs/linux-tests.md.
#
#   tests/kvmhost/hostkernel.sh [--arch arm64]
#                        fetch + unpack + depmod what is missing; prints the directory
#                        (DIR/vmlinuz, DIR/lib/modules/VERSION)
#
# DIR/vmlinux is the ELF image extracted from the bzImage (booted through PVH). With
# --arch arm64: `linux-image-arm64`'s kernel (the :arm64 package; `dpkg
# --add-architecture arm64` first), DIR/Image its arm64 Image (docs/arm64.md).
# Cached in $CACHE/kvmhost/kernel-<package version>/, so the second run prints the path
# at once. PROVIUM_KVMHOST_KERNEL_DEB=FILE.deb uses that package instead of downloading.
set -euo pipefail
cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
say() { printf '[kvmhost] %s\n' "$*" >&2; }
die() { printf '[kvmhost] error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/../../kernels/aptfetch.sh"   # apt_candidate, cache_lock, apt_download, cache_publish

command -v depmod >/dev/null || [ -x /sbin/depmod ] || die "depmod not found (apt-get install kmod, or make deps)"
depmod=$(command -v depmod || echo /sbin/depmod)
arch=amd64
if [ "${1-}" = --arch ]; then
  case ${2-} in
    x86_64|amd64) arch=amd64 ;;
    arm64|aarch64) arch=arm64 ;;
    *) die "unknown --arch ${2-} (x86_64 or arm64)" ;;
  esac
fi

deb=${PROVIUM_KVMHOST_KERNEL_DEB:-}
if [ -n "$deb" ]; then
  [ -r "$deb" ] || die "PROVIUM_KVMHOST_KERNEL_DEB: cannot read $deb"
  pkg=$(dpkg-deb -f "$deb" Package) ver=$(dpkg-deb -f "$deb" Version)
else
  # The versioned package that the metapackage points at today, e.g. linux-image-6.1.0-57-amd64.
  meta=linux-image-amd64
  [ $arch = arm64 ] && meta=linux-image-arm64:arm64
  pkg=$(apt-cache depends "$meta" 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [ -n "$pkg" ] || die "apt-cache knows no $meta (run apt-get update$([ $arch = arm64 ] && echo "; dpkg --add-architecture arm64 first"))"
  ver=$(apt_candidate "$pkg" "run apt-get update")
fi
dir=$cache/kvmhost/kernel-${pkg%:*}-$ver
if [ -f "$dir/.done" ]; then echo "$dir"; exit 0; fi

cache_lock "$dir" "$cache/kvmhost/.kernel.lock"
tmp=$(mktemp -d "$cache/kvmhost/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ -z "$deb" ]; then
  say "downloading $pkg $ver (about 70 MB, once)"
  deb=$(apt_download "$pkg" "$ver" "$tmp")
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
if [ $arch = arm64 ]; then
  # Debian 12's arm64 vmlinuz is the Image itself (with its EFI stub header); a
  # gzip'd one (other releases) is unpacked once here.
  if [ "$(od -An -tx1 -N2 "$tmp/out/vmlinuz" | tr -d ' ')" = 1f8b ]; then
    gzip -dc "$tmp/out/vmlinuz" > "$tmp/out/Image" || die "cannot gunzip the arm64 vmlinuz"
  else
    mv "$tmp/out/vmlinuz" "$tmp/out/Image"
  fi
  [ "$(od -An -c -j56 -N4 "$tmp/out/Image" | tr -d ' ')" = 'ARMd' ] ||
    die "the unpacked vmlinuz is no arm64 Image (no ARM\x64 magic)"
  echo "$kver" > "$tmp/out/version"
  cache_publish "$tmp/out" "$dir"
  say "host kernel $kver in $dir"
  echo "$dir"; exit 0
fi
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
cache_publish "$tmp/out" "$dir"
say "host kernel $kver in $dir"
echo "$dir"
