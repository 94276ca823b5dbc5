#!/usr/bin/env bash
# mkinitramfs.sh — packs a root file system directory (kernels/rootfs.sh) into an
# uncompressed newc cpio initramfs, reproducibly: entries sorted by name, every
# mtime set to SOURCE_DATE_EPOCH (default 0), owner 0:0, inode and device numbers
# normalized (`cpio --reproducible`). The same inputs give the same bytes, so the
# image's hash is stable. Uncompressed because decompression is slow in a guest on
# a software virtualizer (shared/spec/ENVIRONMENT.md).
#
# Usage: kernels/mkinitramfs.sh ROOTFS OUT.cpio
# Adds /dev/console (c 5 1) so the kernel can open the initial console before /init
# mounts devtmpfs; the node is made in a staging copy, never in ROOTFS.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ROOTFS OUT.cpio" >&2; exit 2; }
rootfs=$1
out=$2
epoch=${SOURCE_DATE_EPOCH:-0}
[ -x "$rootfs/init" ] || { echo "mkinitramfs.sh: $rootfs has no executable /init" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/provium-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp -a "$rootfs/." "$stage/"
mkdir -p "$stage/dev"
if [ ! -e "$stage/dev/console" ]; then
  mknod -m 0600 "$stage/dev/console" c 5 1 2>/dev/null ||
    echo "mkinitramfs.sh: warning: cannot mknod /dev/console (not root); the kernel will warn about the initial console" >&2
fi
chmod 0755 "$stage"
find "$stage" -exec touch -h -d "@$epoch" {} +

( cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    cpio -o -H newc --reproducible --owner=0:0 --quiet ) > "$out.tmp"
mv "$out.tmp" "$out"
