#!/usr/bin/env bash
# selection.sh — what a run selects and how: -f substring and Lua pattern, --tags,
# --exclude-tags, --slow, --shard K/N (the union of the shards is exactly the whole
# selection, no file twice), --shuffle --seed (same seed, same order), -j (files
# really run in parallel, never more than N at once), --fail-fast, provium list,
# provium version, the default PATH.
. "$(dirname "$0")/lib.sh"
mkdir -p "$W/s/sub"
cat > "$W/s/meta_test.lua" <<'L'
test("net ping", function(t) end, { tags = { "net" } })
test("disk write", function(t) end, { tags = { "disk" } })
test("net and disk", function(t) end, { tags = { "net", "disk" } })
test("slow boot", function(t) end, { slow = true })
test("plain 42", function(t) end)
L
for i in 1 2 3 4 5 6 7; do echo "test('t$i', function(t) end)" > "$W/s/sub/f${i}_test.lua"; done

# passed PATTERN...: runs `provium run --format tap ARGS` and prints "passed skipped"
counts() { "$PROVIUM" run --format tap "$@" 2> /dev/null | awk '/^ok/ { if (/# SKIP/) s++; else p++ } END { print p+0, s+0 }'; }
want() { local d=$1 w=$2; shift 2; local got; got=$(counts "$@"); [ "$got" = "$w" ] && ok "$d" || nok "$d: passed/skipped = $got, want $w"; }
M=$W/s/meta_test.lua
want "no flags: every test but the slow one runs" "4 1" "$M"
want "--slow runs the slow test too" "5 0" --slow "$M"
want "-f substring" "2 0" -f net "$M"
want "-f Lua pattern" "1 0" -f '%d%d$' "$M"
want "--tags net" "2 0" --tags net "$M"
want "--tags net,disk" "3 0" --tags net,disk "$M"
want "--exclude-tags disk" "2 1" --exclude-tags disk "$M"
want "--tags net --exclude-tags disk" "1 0" --tags net --exclude-tags disk "$M"

# shards
all=$("$PROVIUM" list "$W/s" | grep -c '^/')
: > "$W/union"
for k in 1 2 3; do "$PROVIUM" list --shard $k/3 "$W/s" | grep '^/' >> "$W/union"; done
[ "$(wc -l < "$W/union")" = "$all" ] && [ "$(sort -u "$W/union" | wc -l)" = "$all" ] \
  && diff <(sort "$W/union") <("$PROVIUM" list "$W/s" | grep '^/' | sort) > /dev/null \
  && ok "--shard 1/3, 2/3, 3/3 together select each of the $all files exactly once" \
  || nok "shard union" "$(sort "$W/union")"
expect_code 2 "--shard 4/3 is a usage error" "$PROVIUM" run --shard 4/3 "$W/s"

# shuffle: same seed, same order; files recorded in run_start
order() { "$PROVIUM" run --format json "$@" "$W/s/sub" 2> /dev/null | python3 -c 'import json,sys; print(" ".join(json.loads(sys.stdin.readline())["files"]))'; }
a=$(order --shuffle --seed 7); b=$(order --shuffle --seed 7); c=$(order); d=$(order --shuffle --seed 8)
[ "$a" = "$b" ] && [ "$a" != "$c" ] && [ "$(tr ' ' '\n' <<< "$a" | sort)" = "$(tr ' ' '\n' <<< "$c" | sort)" ] \
  && ok "--shuffle --seed 7 twice gives the same permutation of the files" || nok "shuffle" "$a" "$b" "$c"
[ "$a" != "$d" ] && ok "another seed, another order" || nok "seed 8 gave the same order as seed 7"

# -j: 4 files that each sleep 0.4 s; from file_start/file_end seqs count how many overlap
for i in 1 2 3 4; do echo "test('s$i', function(t) provium.sleep(0.4) end)" > "$W/s/p${i}_test.lua"; done
par() {
  "$PROVIUM" run --events "$W/p.mp" "$@" "$W"/s/p?_test.lua > /dev/null 2>&1
  "$PROVIUM" events --format json "$W/p.mp" | python3 -c '
import json, sys
cur = best = 0
for e in map(json.loads, sys.stdin):
    if e["ev"] == "file_start": cur += 1; best = max(best, cur)
    elif e["ev"] == "file_end": cur -= 1
print(best)'
}
m2=$(par -j2); m1=$(par -j1); m4=$(PROVIUM_JOBS=4 par)
[ "$m2" = 2 ] && ok "-j2: two files at once, never three" || nok "-j2 ran $m2 files at once"
[ "$m1" = 1 ] && ok "-j1: one file at a time" || nok "-j1 ran $m1 files at once"
[ "$m4" = 4 ] && ok "PROVIUM_JOBS=4: four at once" || nok "PROVIUM_JOBS=4 ran $m4 at once"
m=$(PROVIUM_JOBS=4 par -j1)
[ "$m" = 1 ] && ok "-j wins over PROVIUM_JOBS" || nok "-j1 with PROVIUM_JOBS=4 ran $m at once"

# --fail-fast: with -j1 no file starts after the first failure
mkdir -p "$W/ff"
echo 'test("fails", function(t) t:ok(false) end)' > "$W/ff/a_test.lua"
echo 'test("passes", function(t) end)' > "$W/ff/b_test.lua"
"$PROVIUM" run -j1 --fail-fast --format tap "$W/ff" > "$W/out" 2>&1; code=$?
[ $code = 1 ] && ! grep -q b_test "$W/out" && ok "--fail-fast stops after the first failing file" || nok "--fail-fast" "$(cat "$W/out")"

# provium list
"$PROVIUM" list "$M" > "$W/list"; code=$?
[ $code = 0 ] && grep -q '^  net ping  {"tags":\["net"\]}' "$W/list" && grep -q '^  slow boot  {"slow":true}' "$W/list" \
  && grep -q "^5 tests in 1 file" "$W/list" && ok "provium list prints tests with their meta, runs nothing" || nok "list" "$(cat "$W/list")"
"$PROVIUM" list --format json "$M" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert len(rows) == 5 and rows[0]["test"] == "net ping" and rows[0]["meta"] == {"tags": ["net"]}, rows' \
  && ok "provium list --format json" || nok "provium list --format json"
expect_code 2 "provium list of a missing path is a usage error" "$PROVIUM" list "$W/s/nothing-here"
mkdir -p "$W/none"; expect_code 4 "provium list with no tests exits 4" "$PROVIUM" list "$W/none"

# no PATH: tests/ when it exists, else the current directory
mkdir -p "$W/proj/tests/deep" "$W/flat"
echo 'test("in tests", function(t) end)' > "$W/proj/tests/deep/a_test.lua"
echo 'test("outside tests", function(t) error("not selected") end)' > "$W/proj/top_test.lua"
echo 'test("in cwd", function(t) end)' > "$W/flat/test_here.lua"
(cd "$W/proj" && "$PROVIUM" run --format tap) > "$W/out" 2>&1
grep -q "^ok 1 - tests/deep/a_test.lua: in tests" "$W/out" && ! grep -q top_test "$W/out" \
  && ok "no PATH: tests/ is searched (recursively), not the rest" || nok "default tests/" "$(cat "$W/out")"
(cd "$W/flat" && "$PROVIUM" run --format tap) > "$W/out" 2>&1
grep -q "^ok 1 - test_here.lua: in cwd" "$W/out" && ok "no PATH and no tests/: the current directory" || nok "default cwd" "$(cat "$W/out")"

# provium version
"$PROVIUM" version > "$W/v"
grep -q '^provium [0-9]' "$W/v" && grep -q '^protocol [0-9]' "$W/v" && grep -q '^  kvm ' "$W/v" && grep -q '^  sandbox ' "$W/v" \
  && ok "provium version: version, protocol, backends" || nok "version" "$(cat "$W/v")"
done_testing
