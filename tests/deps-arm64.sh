#!/usr/bin/env bash
# `make deps ARCH=arm64`: what cross-building build-arm64/provium needs (issue 14,
# docs/arm64.md): the arm64 dpkg architecture, the aarch64 cross compiler and the
# :arm64 -dev libraries provium links. Idempotent.
# libfdt-dev is not Multi-Arch: installing libfdt-dev:arm64 REMOVES the host's
# libfdt-dev (test_arm64_fdt needs it), so the arm64 one is unpacked into
# build-arm64/sysroot instead of installed.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
sysroot=$root/build-arm64/sysroot
pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      liblua5.4-dev:arm64 libmsgpack-dev:arm64 libjansson-dev:arm64 libnl-3-dev:arm64
      libnl-route-3-dev:arm64 libpcap-dev:arm64 libnftables-dev:arm64 libedit-dev:arm64
      libcmocka-dev:arm64 libfdt1:arm64 qemu-system-arm
      libpcre2-8-0:arm64 libacl1:arm64 libselinux1:arm64)  # (the simulated host's GNU grep, sed: tests/kvmhost/arm64-tools.sh)
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -q
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps-arm64: installing ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ! -e "$sysroot/usr/include/libfdt.h" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"   # apt-get download: a harmless "unsandboxed" warning may remain
  (cd "$tmp" && apt-get download -q libfdt-dev:arm64)
  mkdir -p "$sysroot"
  dpkg-deb -x "$tmp"/libfdt-dev_*_arm64.deb "$sysroot"
fi
echo "deps-arm64: all ${#pkgs[@]} packages present, libfdt-dev:arm64 in ${sysroot#$root/}"
