# aptfetch.sh — sourced by kernels/busybox.sh, tests/kvmhost/hostkernel.sh and
# tests/kvmhost/arm64-tools.sh: packages fetched with `apt-get download` and unpacked
# into the cache (never installed), the pattern all three share. The caller defines
# die() (prints its message, exits 1) and runs under `set -euo pipefail`.
#
#   apt_candidate PKG HINT      prints PKG's candidate version; dies "apt knows no PKG
#                               (HINT)" when apt has none
#   cache_lock DIR LOCK         takes LOCK (flock, created with its directory) for the
#                               rest of the script; a DIR another run finished
#                               meanwhile (DIR/.done) is printed and the script exits 0
#   apt_download PKG VER TMP    downloads PKG=VER into TMP; prints the .deb's path
#   cache_publish OUT DIR       moves OUT to DIR (replacing an unfinished one) and marks
#                               it done (DIR/.done)

apt_candidate() {
  local v
  v=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
  [ -n "$v" ] && [ "$v" != "(none)" ] || die "apt knows no $1 ($2)"
  echo "$v"
}

cache_lock() {
  mkdir -p "$(dirname "$2")"
  exec 9>"$2"
  flock 9
  if [ -f "$1/.done" ]; then echo "$1"; exit 0; fi
}

apt_download() {
  local before
  chmod 755 "$3"   # apt's sandbox user cannot read root's cache: download as root, quietly
  before=$(ls "$3"/*.deb 2>/dev/null || true)
  ( cd "$3" && apt-get download -q -o APT::Sandbox::User=root "$1=$2" >/dev/null ) ||
    die "apt-get download $1=$2 failed"
  ls "$3"/*.deb | grep -v -x -F "${before:-/}" | head -1
}

cache_publish() {
  rm -rf "$2"
  mv "$1" "$2"
  touch "$2/.done"
}
