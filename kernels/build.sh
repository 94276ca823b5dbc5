#!/usr/bin/env bash
# build.sh — builds the provium guest kernel and initramfs into the cache
# (`make kernel`, `provium kernel build`). See docs/kernels.md.
#
#   kernels/build.sh [--pvm] [--no-initramfs]   build what is missing, print the paths
#   kernels/build.sh --arch arm64 [...]         the arm64 guest kernel and initramfs
#   kernels/build.sh --initramfs                only the initramfs
#   kernels/build.sh --paths [--pvm]            print the paths if everything is built
#                                               and current; exit 1 (saying which
#                                               command to run) otherwise; builds nothing
#   kernels/build.sh --hash [--pvm]             print the kernel's cache key (<hash>
#                                               below; a CI cache key), build nothing
#
# The kernel is Debian's linux-source-6.1 + `make tinyconfig` + kernels/config
# (+ kernels/config-pvm and kernels/pvm-no-int3-selftest.patch for --pvm), cached in
#   $CACHE/kernel/<hash>/{vmlinux,bzImage,config,build.log}
# where <hash> covers the fragments, the patch and the source package version, so a
# second run is a no-op. --arch arm64 (`make kernel ARCH=arm64`) cross-builds the same
# source with aarch64-linux-gnu-gcc: tinyconfig + kernels/config + kernels/config-arm64,
# cached in $CACHE/kernel/<hash>/{Image,vmlinux,config,build.log}; its initramfs has
# busybox-static:arm64 (kernels/busybox.sh) and build-arm64/provium-agent.
# The initramfs (kernels/rootfs.sh + kernels/mkinitramfs.sh) is cached in
# $CACHE/initramfs/<hash>.cpio keyed by its inputs (init, busybox, the agent, the
# scripts). $CACHE/kernel/current[-pvm] and $CACHE/initramfs/current.cpio
# point at the latest build; runner/kernel.c reads them (arm64: current-arm64 and
# current-arm64.cpio).
# CACHE = $PROVIUM_CACHE_DIR, else $XDG_CACHE_HOME/provium, else ~/.cache/provium.
# PROVIUM_KERNEL_FRAGMENTS="a.config b.config" adds your own fragments on top;
# PROVIUM_KERNEL_JOBS=N sets make -j (default: nproc); PROVIUM_CROSS_COMPILE the arm64
# compiler prefix (default aarch64-linux-gnu-, none on an arm64 host).
set -euo pipefail
# Everything runs inside main(), parsed whole before it starts, so editing this file
# during a 4-minute build cannot break the running build.
main() {
root=$(cd "$(dirname "$0")/.." && pwd)
kdir=$root/kernels
variant=default
arch=x86_64
mode=build
initramfs=1
while [ $# -gt 0 ]; do
  case $1 in
    --pvm) variant=pvm ;;
    --arch)
      [ $# -ge 2 ] || { echo "build.sh: --arch needs x86_64 or arm64" >&2; exit 2; }
      case $2 in
        x86_64|x86|amd64) arch=x86_64 ;;
        arm64|aarch64) arch=arm64 ;;
        *) echo "build.sh: unknown --arch $2 (x86_64 or arm64)" >&2; exit 2 ;;
      esac
      shift ;;
    --paths) mode=paths ;;
    --hash) mode=hash ;;
    --initramfs) mode=initramfs ;;
    --no-initramfs) initramfs=0 ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ $arch = arm64 ] && [ $variant = pvm ]; then
  echo "build.sh: --pvm is x86-only (the PVM host kernel)" >&2; exit 2
fi

cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
src_tar=${PROVIUM_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
jobs=${PROVIUM_KERNEL_JOBS:-$(nproc)}
# The arm64 kernel's compiler prefix: none on an arm64 host, else Debian's cross gcc.
cross=aarch64-linux-gnu-
[ "$(uname -m)" = aarch64 ] && cross=
cross=${PROVIUM_CROSS_COMPILE-$cross}
# The agent: a checkout's build/provium-agent, or an install's, where this script is
# PREFIX/share/provium/kernels/build.sh and the agent PREFIX/lib/provium/provium-agent.
agent=$root/build/provium-agent
build_cmd="make kernel"
[ $variant = pvm ] && build_cmd="kernels/build.sh --pvm"
if [ $arch = arm64 ]; then
  agent=$root/build-arm64/provium-agent
  build_cmd="make kernel ARCH=arm64"
fi
if [ ! -f "$root/Makefile" ]; then
  build_cmd="provium kernel build"
  [ $variant = pvm ] && build_cmd="provium kernel build --pvm"
  [ $arch = arm64 ] && build_cmd="provium kernel build --arch arm64"
  [ $arch = x86_64 ] && [ -x "$root/../../lib/provium/provium-agent" ] && agent=$(cd "$root/../../lib/provium" && pwd)/provium-agent
fi
agent=${PROVIUM_AGENT:-$agent}
busybox=${PROVIUM_BUSYBOX:-/bin/busybox}
# A foreign busybox cannot run here to list its applets: rootfs.sh takes the list
# kernels/busybox.sh keeps next to it (fetched when the initramfs is built).
applets=
if [ $arch = arm64 ] && [ -z "${PROVIUM_BUSYBOX:-}" ]; then
  busybox=
  # PROVIUM_BUSYBOX_DIR: busybox.sh's directory, handed in by the arm64 simulated host
  # (tests/kvmhost/run.sh), where busybox.sh's x86 apt and dpkg cannot run
  if [ -n "${PROVIUM_BUSYBOX_DIR:-}" ] && [ -f "$PROVIUM_BUSYBOX_DIR/applets" ]; then
    busybox=$PROVIUM_BUSYBOX_DIR/busybox applets=$PROVIUM_BUSYBOX_DIR/applets
  elif bdir=$("$kdir/busybox.sh" --cached arm64 2>/dev/null); then
    busybox=$bdir/busybox applets=$bdir/applets
  fi
fi

say() { printf '[kernel] %s\n' "$*" >&2; }
die() { printf '[kernel] error: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum | cut -c1-16; }

# ---- hashes: what a cached output depends on ----
fragments=("$kdir/config")
patches=()
[ $arch = arm64 ] && fragments+=("$kdir/config-arm64")
if [ $variant = pvm ]; then
  fragments+=("$kdir/config-pvm")
  patches+=("$kdir/pvm-no-int3-selftest.patch")
fi
# Your own options on top (docs/kernels.md): extra fragments, applied last, checked
# like the others, hashed into a cache entry (and an object tree) of their own.
extra_tag=
for f in ${PROVIUM_KERNEL_FRAGMENTS:-}; do
  [ -r "$f" ] || die "PROVIUM_KERNEL_FRAGMENTS: cannot read $f"
  fragments+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")")
  extra_tag=-extra
done
srcver() {
  local v
  # PROVIUM_KERNEL_SRCVER: the version, handed in by the arm64 simulated host
  # (tests/kvmhost/run.sh), which shares this root but cannot run its x86 dpkg-query
  v=${PROVIUM_KERNEL_SRCVER:-$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)}
  [ -n "$v" ] || v=$(stat -c '%s-%Y' "$src_tar" 2>/dev/null) || die "no kernel source: $src_tar is missing (apt-get install linux-source-6.1, or make deps)"
  echo "$v"
}
# (x86's key line is as it was before arm64, so its cache entries stay valid)
kernel_hash() {
  local tag="$variant"
  [ $arch = arm64 ] && tag="arm64 $variant"
  { echo "provium-kernel 1 $tag $(srcver)"; cat "${fragments[@]}" "${patches[@]}"; } | sha
}
initramfs_inputs=("$kdir/init" "$kdir/rootfs.sh" "$kdir/mkinitramfs.sh")
initramfs_hash() {
  # (an arm64 busybox not fetched yet: a key no built image has)
  [ -n "$busybox" ] || { echo "none"; return 0; }
  { echo "provium-initramfs 1"; cat "${initramfs_inputs[@]}" "$busybox" "$agent"; } | sha
}

khash=$(kernel_hash)
kout=$cache/kernel/$khash
[ $mode = hash ] && { echo "$khash"; exit 0; }
current=$cache/kernel/current; [ $variant = pvm ] && current=$cache/kernel/current-pvm
icurrent=$cache/initramfs/current.cpio
# What the kernel build leaves: the image a VMM loads, per architecture.
image=bzImage label=$variant
if [ $arch = arm64 ]; then
  label="arm64 $variant"
  current=$cache/kernel/current-arm64 icurrent=$cache/initramfs/current-arm64.cpio image=Image
fi

print_paths() {
  if [ $arch = arm64 ]; then
    echo "Image     $kout/Image"
  fi
  echo "vmlinux   $kout/vmlinux"
  [ $arch = x86_64 ] && echo "bzImage   $kout/bzImage"
  echo "config    $kout/config"
  [ $initramfs = 1 ] && echo "initramfs $cache/initramfs/$(initramfs_hash).cpio"
  return 0
}

if [ $mode = paths ]; then
  [ -f "$kout/vmlinux" ] && [ -f "$kout/$image" ] || { echo "guest kernel ($label) not built: run \`$build_cmd\`" >&2; exit 1; }
  if [ $initramfs = 1 ]; then
    [ -x "$agent" ] || { echo "agent not built ($agent): run \`make\`" >&2; exit 1; }
    [ -f "$cache/initramfs/$(initramfs_hash).cpio" ] || {
      echo "initramfs not built or out of date: run \`kernels/build.sh --initramfs\` (or \`$build_cmd\`)" >&2; exit 1; }
  fi
  # Everything is current: point the cache's "current" links at it (runner/kernel.c
  # reads those), e.g. after switching between checkouts that share the cache.
  ln -sfn "$khash" "$current" 2>/dev/null || true
  [ $initramfs = 1 ] && { ln -sfn "$(initramfs_hash).cpio" "$icurrent" 2>/dev/null || true; }
  print_paths
  exit 0
fi

mkdir -p "$cache/kernel" "$cache/initramfs" "$cache/src" "$cache/obj"
# One build at a time per cache (engineers and CI jobs share ~/.cache).
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  say "another build holds $cache/.build.lock; waiting"
  flock 9
fi

# ---- initramfs ----
build_initramfs() {
  if [ ! -x "$agent" ]; then
    [ -f "$root/Makefile" ] || die "no agent at $agent (set PROVIUM_AGENT, or reinstall provium)"
    if [ $arch = arm64 ]; then
      say "agent not built; running make ARCH=arm64 build-arm64/provium-agent"
      make -C "$root" --no-print-directory ARCH=arm64 BUILD=build-arm64 CC="$cross"gcc \
        build-arm64/provium-agent >&2 || die "building the arm64 agent failed"
    else
      say "agent not built; running make build/provium-agent"
      make -C "$root" --no-print-directory build/provium-agent >&2 || die "building the agent failed"
    fi
  fi
  if [ -z "$busybox" ]; then
    bdir=$("$kdir/busybox.sh" arm64) || die "cannot get busybox-static:arm64"
    busybox=$bdir/busybox applets=$bdir/applets
  fi
  [ -x "$busybox" ] || die "no busybox at $busybox (apt-get install busybox-static)"
  local ihash out tmp
  ihash=$(initramfs_hash)
  out=$cache/initramfs/$ihash.cpio
  if [ -f "$out" ]; then
    say "initramfs cached: $out"
  else
    say "initramfs: packing busybox + agent + /init"
    tmp=$(mktemp -d "$cache/initramfs/.tmp.XXXXXX")
    PROVIUM_AGENT=$agent PROVIUM_BUSYBOX=$busybox PROVIUM_BUSYBOX_APPLETS=$applets \
      "$kdir/rootfs.sh" "$tmp/rootfs" >&2
    "$kdir/mkinitramfs.sh" "$tmp/rootfs" "$tmp/initramfs.cpio" >&2
    mv "$tmp/initramfs.cpio" "$out"
    rm -rf "$tmp"
    say "initramfs: $out ($(stat -c %s "$out") bytes)"
  fi
  ln -sfn "$ihash.cpio" "$icurrent"
}

if [ $mode = initramfs ]; then
  build_initramfs
  echo "initramfs $cache/initramfs/$(initramfs_hash).cpio"
  exit 0
fi

# ---- kernel ----
# unpack_source DIR: Debian's tarball, unpacked once into the cache.
unpack_source() {
  local dir=$1 tmp
  [ -f "$dir/Makefile" ] && return 0
  [ -r "$src_tar" ] || die "no kernel source: $src_tar is missing (apt-get install linux-source-6.1, or make deps)"
  say "unpacking $src_tar into $dir (once; about a minute)"
  tmp=$(mktemp -d "$cache/src/.tmp.XXXXXX")
  tar -xf "$src_tar" -C "$tmp"
  mv "$tmp"/linux-source-* "$dir"
  rm -rf "$tmp"
}

# pvm_source DIR: a hard-linked copy of the plain source with the PVM patch applied;
# the patched file is copied first so the plain tree is never modified.
pvm_source() {
  local plain=$1 dir=$2 tmp f
  [ -f "$dir/.provium-patched" ] && return 0
  say "preparing the PVM source copy in $dir"
  rm -rf "$dir"
  tmp=$dir.tmp; rm -rf "$tmp"
  cp -al "$plain" "$tmp"
  for p in "${patches[@]}"; do
    for f in $(sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$p"); do
      cp --remove-destination "$plain/$f" "$tmp/$f"
    done
    patch -p1 -d "$tmp" --no-backup-if-mismatch -s < "$p" || die "applying $p failed"
  done
  touch "$tmp/.provium-patched"
  mv "$tmp" "$dir"
}

# progress PID LOG EXPECTED: one status line while make runs (in place on a terminal,
# every 20 s otherwise), counting compiled files against the last build's count.
progress() {
  local pid=$1 log=$2 expect=$3 start n pct last=0 now
  start=$(date +%s)
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    n=$(grep -cE '^  (CC|AS|LD|AR|GEN|HOSTCC|OBJCOPY)' "$log" 2>/dev/null || true)
    now=$(date +%s)
    pct=$(( expect > 0 ? (n * 100 / expect > 99 ? 99 : n * 100 / expect) : 0 ))
    if [ -t 2 ]; then
      printf '\r[kernel] compiling: %d steps, ~%d%%, %ds ' "$n" "$pct" $((now - start)) >&2
    elif [ $((now - last)) -ge 20 ]; then
      printf '[kernel] compiling: %d steps, ~%d%%, %ds\n' "$n" "$pct" $((now - start)) >&2
      last=$now
    fi
  done
  [ -t 2 ] && printf '\n' >&2
  return 0
}

# A failed build keeps only its log, at one known path (the next failure replaces
# it), not its half-filled temporary directory.
fail_build() {
  local keep=$cache/kernel/last-failure.log
  mv -f "$log" "$keep"
  rm -rf "$tmp"
  die "$1; full log: $keep"
}

build_kernel() {
  local ver src obj log tmp rc
  ver=$(srcver)
  src=$cache/src/linux-$ver
  unpack_source "$src"
  if [ $variant = pvm ]; then
    pvm_source "$src" "$src-pvm"
    src=$src-pvm
  fi
  obj=$cache/obj/$variant
  [ $arch = arm64 ] && obj=$cache/obj/arm64
  [ -n "$extra_tag" ] && obj=$obj-$khash
  mkdir -p "$obj"
  tmp=$cache/kernel/.tmp.$khash
  rm -rf "$tmp"; mkdir -p "$tmp"
  log=$tmp/build.log
  local kmake=(make -C "$src" O="$obj" ARCH=x86_64 -j"$jobs") targets=(vmlinux bzImage)
  if [ $arch = arm64 ]; then
    command -v "$cross"gcc >/dev/null ||
      die "${cross}gcc not found (apt-get install gcc-aarch64-linux-gnu, or make deps ARCH=arm64)"
    kmake=(make -C "$src" O="$obj" ARCH=arm64 CROSS_COMPILE="$cross" -j"$jobs") targets=(Image)
  fi

  say "configuring: tinyconfig + ${fragments[*]##*/} ($label, source $ver)"
  if ! { "${kmake[@]}" tinyconfig &&
         cat "${fragments[@]}" >> "$obj/.config" &&
         "${kmake[@]}" olddefconfig; } >"$log" 2>&1; then
    tail -30 "$log" >&2; fail_build "configuring failed"
  fi
  if ! "$kdir/check-config.sh" "$obj/.config" "${fragments[@]}" > "$tmp/check.txt" 2>&1; then
    cat "$tmp/check.txt" >&2
    # nothing of this build is worth keeping: the temporary output and, for a
    # build with the caller's own fragments, its object tree (keyed by their hash)
    rm -rf "$tmp"
    [ -n "$extra_tag" ] && rm -rf "$obj"
    die "the resolved .config lacks required options: olddefconfig dropped them because a dependency is off (add it to the fragment)"
  fi
  say "$(tail -1 "$tmp/check.txt")"

  say "compiling ${targets[*]} with -j$jobs (about 3.5 minutes on 2 cores; log: $log)"
  local expect=0
  [ -f "$obj/.provium-steps" ] && expect=$(cat "$obj/.provium-steps")
  [ "$expect" -gt 0 ] 2>/dev/null || expect=1450
  "${kmake[@]}" "${targets[@]}" >>"$log" 2>&1 &
  local mpid=$!
  progress $mpid "$log" "$expect"
  rc=0; wait $mpid || rc=$?
  if [ $rc -ne 0 ]; then
    echo "----- last lines of $log -----" >&2
    tail -40 "$log" >&2
    fail_build "kernel build failed (exit $rc)"
  fi
  grep -cE '^  (CC|AS|LD|AR|GEN|HOSTCC|OBJCOPY)' "$log" > "$obj/.provium-steps" || true
  cp "$obj/vmlinux" "$tmp/vmlinux"
  if [ $arch = arm64 ]; then cp "$obj/arch/arm64/boot/Image" "$tmp/Image"
  else cp "$obj/arch/x86/boot/bzImage" "$tmp/bzImage"; fi
  cp "$obj/.config" "$tmp/config"
  cp "$obj/System.map" "$tmp/System.map"
  rm -rf "$kout"
  mv "$tmp" "$kout"
}

start=$(date +%s)
if [ -f "$kout/vmlinux" ] && [ -f "$kout/$image" ]; then
  say "kernel cached ($label): $kout"
else
  build_kernel
  say "kernel built in $(( $(date +%s) - start ))s: $kout"
fi
ln -sfn "$khash" "$current"
[ $initramfs = 1 ] && build_initramfs
print_paths
}
main "$@"
