#!/usr/bin/env bash
# Builds the libFuzzer harness for the frame decoder and runs it for a while on the
# regression corpus (tests/fuzz/corpus). New crashers land in build/fuzz/; copy
# each one into tests/fuzz/corpus/ once fixed so test_proto replays it forever.
# Usage: tests/fuzz/run.sh [SECONDS]   (needs clang with libFuzzer: clang-14 here)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
out=$root/build/fuzz
mkdir -p "$out/work"
CC=${CC_FUZZ:-clang}
$CC -g -O1 -std=c11 -D_GNU_SOURCE -I"$root" -fsanitize=fuzzer,address,undefined \
    -o "$out/fuzz_frame" "$root/tests/fuzz/fuzz_frame.c" "$root/agent/proto.c" -lmsgpackc
cd "$out"
# work/ collects new inputs; the checked-in corpus is read-only seed + regressions
./fuzz_frame -max_total_time="$secs" -max_len=4096 -rss_limit_mb=1024 \
    -artifact_prefix="$out/" work "$root/tests/fuzz/corpus"
