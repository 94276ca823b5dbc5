#!/bin/sh
# tests/lua/run.sh — the `lua` tier (tests/run-tiers.sh): every tests/lua/*_test.lua run
# by `provium run` on the sandbox-capable backend, TAP on stdout. Fixtures that only
# child runs use live in tests/lua/fixtures/*.fixture.lua (discovery skips them).
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PROVIUM_BUILD:-$root/build}
export PROVIUM_BUILD="$build"
cd "$root/tests/lua" && exec "$build/provium" run --no-color --format tap -j 2 .
