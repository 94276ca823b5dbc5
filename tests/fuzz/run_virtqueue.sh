#!/usr/bin/env bash
# Builds the libFuzzer harness for the virtqueue parser and runs it for a while on
# the regression corpus (tests/fuzz/virtqueue_corpus). New crashers land in
# build/fuzz/; copy each into tests/fuzz/virtqueue_corpus/ once fixed so
# test_virtqueue replays it forever.
# Usage: tests/fuzz/run_virtqueue.sh [SECONDS]   (needs clang with libFuzzer)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
out=$root/build/fuzz
mkdir -p "$out/vq-work"
CC=${CC_FUZZ:-clang}
$CC -g -O1 -std=c11 -D_GNU_SOURCE -I"$root" -fsanitize=fuzzer,address,undefined \
    -o "$out/fuzz_virtqueue" "$root/tests/fuzz/fuzz_virtqueue.c" \
    "$root/devices/virtqueue.c" "$root/vmm/util.c"
cd "$out"
./fuzz_virtqueue -max_total_time="$secs" -max_len=$((16384 + 10)) -rss_limit_mb=1024 \
    -artifact_prefix="$out/vq-" vq-work "$root/tests/fuzz/virtqueue_corpus"
