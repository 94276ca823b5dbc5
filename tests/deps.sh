#!/usr/bin/env bash
# Installs every Debian package Provium needs to build, test and build its guest
# kernel. Idempotent: does nothing when all are present.
set -eu
pkgs=(build-essential pkg-config
      liblua5.4-dev libmsgpack-dev libjansson-dev libnl-3-dev libnl-route-3-dev
      libpcap-dev libfdt-dev libnftables-dev linux-libc-dev libcmocka-dev
      libedit-dev  # the prompt of provium run --interactive (BSD licence)
      busybox-static linux-source-6.1 bc flex bison libelf-dev libssl-dev cpio lz4 xz-utils
      libxml2-utils iproute2 tcpdump nftables
      python3      # tests/runner/*.sh parse docs and event streams with it
      e2fsprogs    # mkfs.ext4 for disk images (tests/linux)
      clang        # libFuzzer for tests/fuzz/run.sh
      debhelper lintian dpkg-dev  # make deb and its test (tests/slow/deb.sh)
      man-db groff-base bsdextrautils  # man -l, col: the man page test (tests/runner/install.sh)
      python3-yaml  # docs/ci.md's CI recipes parse (tests/runner/ci_recipes.sh)
      tmux          # terminal-driven tests (the simulated KVM host's --shell)
      qemu-system-x86 kmod)  # the simulated KVM host of tests/kvmhost (QEMU is a test fixture only)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "deps: all ${#pkgs[@]} packages present"; exit 0; fi
echo "deps: installing ${missing[*]}"
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
