#!/usr/bin/env bash
# Runs every benchmark (`make bench`): each tests/bench/bench_*.c is compiled
# against BUILD/libprovium.a and run with BUILD as its argument; each
# tests/bench/bench_*.sh is run the same way. Every benchmark prints its own table.
# Usage: tests/bench/run.sh [BUILD_DIR]
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
pkgs="lua5.4 msgpack jansson libnl-3.0 libnl-route-3.0 libpcap libnftables"
mkdir -p "$build/bench"
status=0
for src in "$root"/tests/bench/bench_*.c; do
  [ -e "$src" ] || continue
  bin="$build/bench/$(basename "${src%.c}")"
  if ! ${CC:-cc} -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$root" \
       $(pkg-config --cflags $pkgs) -o "$bin" "$src" "$build/libprovium.a" \
       $(pkg-config --libs $pkgs) -lpthread -lm; then
    echo "bench: $(basename "$src") does not build" >&2; status=1; continue
  fi
  echo "== $(basename "${src%.c}")"
  "$bin" "$build" || status=1
  echo
done
for s in "$root"/tests/bench/bench_*.sh; do
  [ -e "$s" ] || continue
  echo "== $(basename "${s%.sh}")"
  bash "$s" "$build" || status=1
  echo
done
exit $status
