#!/usr/bin/env bash
# busybox.sh — busybox-static for a guest architecture other than this host's (the
# arm64 initramfs, the arm64 simulated KVM host: docs/arm64.md). busybox-static is not
# Multi-Arch, so installing busybox-static:arm64 would remove this host's: the package
# is fetched with `apt-get download` and unpacked into the cache instead.
#
#   kernels/busybox.sh [--cached] ARCH    prints DIR: DIR/busybox, DIR/applets
#
# ARCH is a Debian architecture (arm64); this host's own architecture prints a
# directory linking /bin/busybox. DIR/applets is `busybox --list-full` (the applet
# paths rootfs.sh links): a foreign binary cannot run here, so it is the host's
# busybox-static's list, which holds only when both come from the same source version
# (Debian builds busybox-static with one configuration on every architecture).
# Cached in $CACHE/busybox/ARCH-VERSION/; --cached fetches nothing (exit 1 if missing).
set -euo pipefail
cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
say() { printf '[busybox] %s\n' "$*" >&2; }
die() { printf '[busybox] error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/aptfetch.sh"   # apt_candidate, cache_lock, apt_download, cache_publish
cached=0
[ "${1-}" = --cached ] && { cached=1; shift; }
[ $# -eq 1 ] || { echo "usage: $0 [--cached] ARCH" >&2; exit 2; }
arch=$1
case $arch in aarch64) arch=arm64 ;; x86_64) arch=amd64 ;; esac

[ -x /bin/busybox ] || die "no /bin/busybox (apt-get install busybox-static, or make deps)"
hostver=$(dpkg-query -W -f='${source:Version}' busybox-static 2>/dev/null) ||
  die "busybox-static is not installed (apt-get install busybox-static)"
if [ "$arch" = "$(dpkg --print-architecture)" ]; then
  dir=$cache/busybox/$arch-host
  if [ ! -f "$dir/applets" ]; then
    mkdir -p "$dir"; ln -sfn /bin/busybox "$dir/busybox"
    /bin/busybox --list-full > "$dir/applets.tmp" && mv "$dir/applets.tmp" "$dir/applets"
  fi
  echo "$dir"; exit 0
fi

ver=$(apt_candidate "busybox-static:$arch" "dpkg --add-architecture $arch && apt-get update, or make deps ARCH=$arch")
dir=$cache/busybox/$arch-${ver//:/_}   # (no epoch colon in a path)
if [ -f "$dir/.done" ]; then echo "$dir"; exit 0; fi
[ $cached = 1 ] && { say "busybox-static:$arch $ver not fetched yet (kernels/busybox.sh $arch)"; exit 1; }

cache_lock "$dir" "$cache/busybox/.lock"
tmp=$(mktemp -d "$cache/busybox/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say "downloading busybox-static:$arch $ver (about 1 MB, once)"
deb=$(apt_download "busybox-static:$arch" "$ver" "$tmp")
src=$(dpkg-deb -f "$deb" Source | sed -n 's/.*(\(.*\)).*/\1/p')
[ -n "$src" ] || src=$(dpkg-deb -f "$deb" Version)
[ "$src" = "$hostver" ] ||
  die "busybox-static:$arch is built from busybox $src, this host's busybox-static from $hostver: its applet list would not match (install the same version here)"
dpkg-deb -x "$deb" "$tmp/root"
[ -f "$tmp/root/bin/busybox" ] || die "$deb holds no bin/busybox"
mkdir -p "$tmp/out"
mv "$tmp/root/bin/busybox" "$tmp/out/busybox"
/bin/busybox --list-full > "$tmp/out/applets"
echo "$ver" > "$tmp/out/version"
cache_publish "$tmp/out" "$dir"
say "busybox-static:$arch $ver in $dir"
echo "$dir"
