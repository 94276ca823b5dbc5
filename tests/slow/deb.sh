#!/usr/bin/env bash
# tests/slow/deb.sh — the Debian package (docs/install.md), run by the slow tier
# (tests/slow/run.sh; `make test SLOW=1`, which CI runs): `make deb` builds it with
# dpkg-buildpackage and passes lintian (a minute on 2 cores; a no-op when the tree
# has not changed since the last build); its control fields name the runtime
# libraries (shlibs) and recommend what the kernel build needs; it installs into a
# throwaway root with `dpkg --root` (maintainer scripts run chrootless against that
# root, never the host's), where the installed provium runs `provium version`,
# `provium doctor` and the packaged examples; `dpkg --root -r` removes it all.
# Nothing is installed on the host. Prints TAP.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PROVIUM_BUILD:-$root/build}
n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
tmp=$(mktemp -d /tmp/provium-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

for t in dpkg-buildpackage dh lintian; do
  if ! command -v $t > /dev/null; then
    skip "the Debian package" "$t is missing (make deps installs dpkg-dev, debhelper, lintian)"
    echo "1..$n"; exit 0
  fi
done

t0=$SECONDS
if nice -n 5 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$root" --no-print-directory deb \
     BUILD="$build" > "$tmp/deb.log" 2>&1; then
  ok "make deb builds the package and lintian reports no error or warning ($((SECONDS - t0)) s: $(grep -m1 -oE 'up to date|built in [0-9]+ s' "$tmp/deb.log"))"
else
  fail "make deb builds the package and lintian is clean" "$(tail -30 "$tmp/deb.log")"
  echo "1..$n"; exit 0
fi
deb=$(ls "$build"/provium_*_*.deb | head -1)

field() { dpkg-deb -f "$deb" "$1"; }
missing=
for lib in liblua5.4-0 libmsgpackc2 libjansson4 libnl-3-200 libnl-route-3-200 libpcap0.8 libnftables1 libedit2 libc6; do
  grep -qE "(^|, )$lib( |,|$)" <<<"$(field Depends)" || missing="$missing $lib"
done
[ -z "$missing" ] && ok "Depends names every runtime library (from shlibs): $(field Depends)" \
  || fail "Depends lacks:$missing" "$(field Depends)"
missing=
for p in linux-source-6.1 busybox-static make gcc bc flex bison cpio; do
  grep -qE "(^|, )$p(,|$)" <<<"$(field Recommends)" || missing="$missing $p"
done
[ -z "$missing" ] && ok "Recommends what provium kernel build needs" || fail "Recommends lacks:$missing" "$(field Recommends)"
[[ "$(field Built-Using)" == *glibc*msgpack-c* || "$(field Built-Using)" == *msgpack-c*glibc* ]] \
  && ok "Built-Using names what the static agent and the rootfs carry: $(field Built-Using)" \
  || fail "Built-Using" "$(field Built-Using)"

# A throwaway root with an empty dpkg database.
R=$tmp/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
: > "$R/var/lib/dpkg/status"
dpk() { dpkg --root="$R" --force-script-chrootless --force-depends --force-not-root \
          --log=/dev/null --instdir="$R" --admindir="$R/var/lib/dpkg" "$@"; }
if dpk -i "$deb" > "$tmp/dpkg.log" 2>&1 && [ -x "$R/usr/bin/provium" ]; then
  ok "dpkg --root installs the package into a throwaway root"
else
  fail "dpkg --root installs the package into a throwaway root" "$(tail -15 "$tmp/dpkg.log")"
  echo "1..$n"; exit 0
fi
[ "$(stat -c %u "$R/usr/lib/provium/rootfs/home/test")" = 1000 ] \
  && ok "postinst gave the rootfs's /home/test to uid 1000 (inside the throwaway root)" \
  || fail "postinst: rootfs/home/test is owned by uid $(stat -c %u "$R/usr/lib/provium/rootfs/home/test")"
[ ! -e /usr/lib/provium ] || [ "$(dpkg-query -W -f='${Status}' provium 2>/dev/null)" = "install ok installed" ] \
  && ok "nothing of the package reached the host's /usr" || fail "the host has /usr/lib/provium"

# The packaged provium, from /, with nothing of the checkout in its environment.
inst() { (cd / && env -u PROVIUM_BUILD -u PROVIUM_SOURCE_DIR -u PROVIUM_AGENT -u PROVIUM_ROOTFS \
          PROVIUM_CACHE_DIR="$tmp/cache" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"); }
out=$(inst "$R/usr/bin/provium" version 2>&1); rc=$?
[ $rc = 0 ] && grep -q "^provium $(field Version)$" <<<"$out" \
  && ok "the packaged provium version says $(field Version)" || fail "provium version (exit $rc)" "$out"
out=$(inst "$R/usr/bin/provium" doctor 2>&1); rc=$?
[ $rc = 0 ] && grep -qF "guest agent: $R/usr/lib/provium/provium-agent" <<<"$out" && ! grep -q '^  FAIL' <<<"$out" \
  && ok "the packaged provium doctor passes and finds the packaged agent" || fail "provium doctor (exit $rc)" "$out"
cp -r "$R/usr/share/doc/provium/examples" "$tmp/examples"
out=$(inst "$R/usr/bin/provium" run -j2 "$tmp/examples" 2>&1); rc=$?
[ $rc = 0 ] && ok "the packaged provium runs the packaged examples: $(grep -oE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' <<<"$out")" \
  || fail "the packaged examples (exit $rc)" "$(tail -25 <<<"$out")"
man -l "$R/usr/share/man/man1/provium.1.gz" 2> /dev/null | grep -q "provium run" \
  && ok "the packaged man page renders" || fail "the packaged man page does not render"

if dpk -r provium > "$tmp/dpkg-r.log" 2>&1; then
  left=$(cd "$R" && { [ ! -d usr ] || find usr -type f -o -type l; } | head)
  [ -z "$left" ] && ok "dpkg --root -r removes every file" || fail "left after dpkg -r" "$left"
else
  fail "dpkg --root -r provium" "$(tail -10 "$tmp/dpkg-r.log")"
fi
echo "1..$n"
