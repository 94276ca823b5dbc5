#!/usr/bin/env bash
# rootfs.sh — builds the provium guest root file system as a directory: busybox-static
# with its applet links, the static agent, /init and a minimal /etc. `make` builds it
# as build/rootfs (kernels/kernels.mk); the sandbox backend uses that directory as
# the sandbox's root (overlay lower dir), and kernels/mkinitramfs.sh packs it into
# the VM initramfs.
#
# Usage: kernels/rootfs.sh OUT
#   PROVIUM_AGENT   the agent binary (default build/provium-agent)
#   PROVIUM_BUSYBOX the busybox binary (default /bin/busybox, from busybox-static)
#   PROVIUM_BUSYBOX_APPLETS  a file with its `busybox --list-full`, for a busybox of
#                   another architecture that cannot run here (kernels/busybox.sh)
#   SOURCE_DATE_EPOCH  the mtime of every entry (default 0), for reproducible images
# OUT is replaced as a whole (built next to it, then renamed into place).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "$1")  # absolute: the script cds into its temp dir
agent=${PROVIUM_AGENT:-$root/build/provium-agent}
agent=$(realpath "$agent" 2>/dev/null || echo "$agent")  # rootfs.sh cds away: make relative paths absolute
busybox=${PROVIUM_BUSYBOX:-/bin/busybox}
applets=${PROVIUM_BUSYBOX_APPLETS:-}
[ -z "$applets" ] || applets=$(realpath "$applets")
epoch=${SOURCE_DATE_EPOCH:-0}

[ -x "$agent" ] || { echo "rootfs.sh: no agent at $agent (run make build/provium-agent)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "rootfs.sh: no busybox at $busybox (apt-get install busybox-static)" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
  echo "rootfs.sh: $busybox is dynamically linked; the guest needs busybox-static" >&2; exit 1
fi

umask 022
tmp=$out.tmp.$$
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$tmp"

mkdir -p bin sbin usr/bin usr/sbin etc root home/test proc sys dev tmp run mnt var/tmp
chmod 1777 tmp var/tmp
chmod 0700 root
install -m 0755 "$busybox" bin/busybox
install -m 0755 "$agent" bin/provium-agent
install -m 0755 "$root/kernels/init" init

# One symlink per applet at the path busybox names for it (bin/sh, sbin/ip, ...).
list_applets() {
  if [ -n "$applets" ]; then cat "$applets"; else "$tmp/bin/busybox" --list-full; fi
}
list_applets | while read -r path; do
  case $path in
    */*) [ -e "$path" ] || [ -L "$path" ] || ln -s /bin/busybox "$path" ;;
  esac
done
[ -L bin/sh ] || { echo "rootfs.sh: busybox has no sh applet" >&2; exit 1; }

cat > etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
test:x:1000:1000:test:/home/test:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > etc/group <<'EOF'
root:x:0:
test:x:1000:
nogroup:x:65534:
EOF
cat > etc/shadow <<'EOF'
root:*:0:0:99999:7:::
test:*:0:0:99999:7:::
nobody:*:0:0:99999:7:::
EOF
chmod 0600 etc/shadow
echo provium > etc/hostname
cat > etc/hosts <<'EOF'
127.0.0.1	localhost
::1	localhost
EOF
: > etc/resolv.conf
ln -s /proc/self/mounts etc/mtab
chown -R 1000:1000 home/test 2>/dev/null || true

# Fixed mtimes so images built from this tree are byte-identical.
find . -exec touch -h -d "@$epoch" {} +

cd /
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "rootfs: $out ($(du -sh "$out" | cut -f1))"
