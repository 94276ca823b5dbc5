#!/usr/bin/env bash
# run.sh — the `lua` test tier (tests/run-tiers.sh): runs every Lua test file under
# tests/lua with `provium run --format tap`, then the runner's end-to-end scripts
# tests/runner/*.sh, and prints them as ONE TAP stream on stdout: results renumbered,
# sub-plans and version lines dropped, one plan at the end. Everything else goes to
# stderr. Exit status 1 when anything failed.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
export PROVIUM_BUILD=${PROVIUM_BUILD:-$root/build}
provium=$PROVIUM_BUILD/provium
n=0
failed=0
out=$(mktemp /tmp/provium-luatier.XXXXXX)
trap 'rm -f "$out"' EXIT

echo "TAP version 13"
# emit PREFIX < TAP (tests/tap-lib.sh): renumbers results into $n, counts $failed
. "$root/tests/tap-lib.sh"
# results always read "- description": emit adds "- " back via the prefix
if [ ! -x "$provium" ]; then
  echo "not ok 1 - $provium is not built"; echo "1..1"; exit 1
fi

# examples/ (what the README tells a newcomer to run) is run, test by test, by
# tests/runner/examples.sh below.
"$provium" run --format tap tests/lua > "$out"; code=$?
emit "- " < "$out"
if [ $code -ne 0 ] && [ $code -ne 1 ]; then
  n=$((n + 1)); failed=$((failed + 1))
  echo "not ok $n - provium run tests/lua exited with status $code"
fi

for s in tests/runner/*.sh; do
  [ "$(basename "$s")" = lib.sh ] && continue
  name=runner/$(basename "${s%.sh}")
  bash "$s" > "$out"; code=$?
  before=$n
  emit "- $name: " < "$out"
  if [ $n -eq $before ] || ! tail -1 "$out" | grep -q '^1\.\.'; then
    n=$((n + 1)); failed=$((failed + 1))
    echo "not ok $n - $name did not finish (status $code, no plan)"
  fi
done
echo "1..$n"
[ $failed -eq 0 ]
