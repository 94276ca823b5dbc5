#!/usr/bin/env bash
# arm64-tools.sh — the arm64 programs the arm64 simulated KVM host needs besides busybox
# (run.sh --arch arm64; docs/arm64.md). Inside it the shared root's programs are x86,
# which the arm64 kernel cannot run: the tier's scripts need bash, the pcap tests
# tcpdump, the progress lines GNU grep and sed. None of these packages is Multi-Arch
# (installing bash:arm64 would remove this host's bash), so they are fetched with
# `apt-get download` and unpacked into the cache; the libraries they load (libtinfo6,
# libpcap0.8, libssl3, libpcre2-8-0, libacl1, libselinux1 :arm64) are
# Multi-Arch and installed here by `make deps ARCH=arm64`, found inside through the
# shared root. The simulated host's /init binds each over the x86 program.
#
#   tests/kvmhost/arm64-tools.sh [--cached]    prints DIR: DIR/bin/{bash,tcpdump,grep,sed}
#
# Cached in $CACHE/kvmhost/arm64-tools-HASH/ (HASH of the package versions);
# --cached fetches nothing (exit 1 if missing).
set -euo pipefail
cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
say() { printf '[kvmhost] %s\n' "$*" >&2; }
die() { printf '[kvmhost] error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/../../kernels/aptfetch.sh"   # apt_candidate, cache_lock, apt_download, cache_publish
cached=0
[ "${1-}" = --cached ] && cached=1
# package:arm64 and the program it holds (its path inside the package); GNU grep and
# sed because scripts use what busybox's lack (--line-buffered, sed -u)
tools="bash:bin/bash tcpdump:usr/bin/tcpdump grep:bin/grep sed:bin/sed"

vers=
for t in $tools; do
  p=${t%%:*}
  v=$(apt_candidate "$p:arm64" "dpkg --add-architecture arm64 && apt-get update, or make deps ARCH=arm64")
  vers="$vers $p=$v"
done
hash=$(echo "arm64-tools 1$vers" | sha256sum | cut -c1-16)
dir=$cache/kvmhost/arm64-tools-$hash
if [ -f "$dir/.done" ]; then echo "$dir"; exit 0; fi
[ $cached = 1 ] && { say "arm64 tools not fetched yet (tests/kvmhost/arm64-tools.sh)"; exit 1; }

cache_lock "$dir" "$cache/kvmhost/.arm64-tools.lock"
tmp=$(mktemp -d "$cache/kvmhost/.tools.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/out/bin"
for t in $tools; do
  p=${t%%:*} path=${t#*:}
  v=$(printf '%s\n' $vers | sed -n "s/^$p=//p")
  say "downloading $p:arm64 $v (once)"
  deb=$(apt_download "$p:arm64" "$v" "$tmp")
  dpkg-deb -x "$deb" "$tmp/root-$p"
  [ -f "$tmp/root-$p/$path" ] || die "$deb holds no $path"
  mv "$tmp/root-$p/$path" "$tmp/out/bin/${path##*/}"
done
printf '%s\n' $vers > "$tmp/out/versions"
cache_publish "$tmp/out" "$dir"
say "arm64 tools in $dir"
echo "$dir"
