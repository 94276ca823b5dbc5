#!/usr/bin/env bash
# merge.sh — `provium events merge` on the real outputs of a sharded run
# (docs/ci.md): a suite run as --shard 1/3, 2/3, 3/3 with --events and --junit, merged,
# must equal the same suite run whole: the same totals and exit code, every test once,
# a stream that passes check_events.py (one run_start, one run_end, seq 1..n), and a
# valid JUnit file with the same test cases as the whole run's. Bad input is refused:
# a shard given twice, a missing shard (unless --partial), a file that is not an
# event stream, another protocol version; a truncated stream counts as interrupted.
. "$(dirname "$0")/lib.sh"
S=$W/suite
mkdir -p "$S"
for i in 1 2 3 4 5 6 7; do
  case $i in
    3) body='t:eq(1, 2, "wrong")' ;;
    5) body='t:skip("not here")' ;;
    *) body='t:ok(true)' ;;
  esac
  cat > "$S/f${i}_test.lua" <<L
test("a$i", function(t) $body end)
test("b$i", function(t) t:log("log of b$i") end, { tags = { "x" } })
L
done
echo 'todo("later"); test("pending", function(t) end)' > "$S/g_test.lua"
PV=$(awk '/#define PROTOCOL_VERSION/ { print $3 }' "$root/agent/proto.h")

"$PROVIUM" run --events "$W/whole.mp" --junit "$W/whole.xml" "$S" > /dev/null 2>&1; whole=$?
codes=
for k in 1 2 3; do
  "$PROVIUM" run --shard $k/3 --events "$W/s$k.mp" --junit "$W/s$k.xml" "$S" > /dev/null 2>&1
  codes="$codes $?"
done
expect_code $whole "merging the three shards gives the whole run's exit code (shards:$codes)" \
  "$PROVIUM" events merge -o "$W/m.mp" --junit "$W/m.xml" "$W/s1.mp" "$W/s2.mp" "$W/s3.mp"
grep -q '^12 passed, 1 failed, 1 skipped, 1 todo, 0 errors' "$W/out" \
  && ok "the merged report's summary counts every shard's tests" || nok "merged summary" "$(tail -3 "$W/out")"

events "$W/whole.mp" > "$W/whole.jsonl"; events "$W/m.mp" > "$W/m.jsonl"
check "the merged stream follows RUNNER.md (check_events.py)" \
  python3 "$root/tests/runner/check_events.py" "$W/m.jsonl" "$PV" interrupted=false exit_code=$whole
cat > "$W/cmp.py" <<'PY'
import json, sys
def load(p):
    return [json.loads(l) for l in open(p)]
w, m = load(sys.argv[1]), load(sys.argv[2])
def tests(evs):
    return sorted((e["file"], e["test"], e["outcome"]) for e in evs if e["ev"] == "test_end")
def end(evs):
    e = [x for x in evs if x["ev"] == "run_end"][-1]
    return {k: e[k] for k in ("passed", "failed", "skipped", "todo", "errors", "exit_code")}
bad = []
if tests(w) != tests(m): bad.append("test_end sets differ: %s vs %s" % (tests(w), tests(m)))
if end(w) != end(m): bad.append("run_end totals differ: %s vs %s" % (end(w), end(m)))
starts = [e for e in m if e["ev"] == "run_start"]
if len(starts) != 1: bad.append("%d run_start events" % len(starts))
elif sorted(starts[0]["files"]) != sorted([e for e in w if e["ev"] == "run_start"][0]["files"]):
    bad.append("run_start files differ")
elif [s["argv"][2:4] for s in starts[0]["shards"]] != [["--shard", "%d/3" % k] for k in (1, 2, 3)]:
    bad.append("run_start shards: %s" % starts[0]["shards"])
if [e["seq"] for e in m] != list(range(1, len(m) + 1)): bad.append("seq is not 1..n")
logs = sorted(e["text"] for e in m if e["ev"] == "test_log")
if logs != sorted(e["text"] for e in w if e["ev"] == "test_log"): bad.append("test_log events differ")
print("\n".join(bad)); sys.exit(1 if bad else 0)
PY
check "the merged stream has the whole run's tests, totals, files and logs, seq 1..n, the shards named" \
  python3 "$W/cmp.py" "$W/whole.jsonl" "$W/m.jsonl"

check "the merged JUnit is valid XML (xmllint)" xmllint --noout "$W/m.xml"
cases() { xmllint --xpath '//testcase/@name' "$1" | tr ' ' '\n' | grep . | sort; }
tot() { xmllint --xpath "concat(/testsuites/@tests,'/',/testsuites/@failures,'/',/testsuites/@errors,'/',/testsuites/@skipped)" "$1"; }
[ "$(cases "$W/m.xml")" = "$(cases "$W/whole.xml")" ] && [ "$(tot "$W/m.xml")" = "$(tot "$W/whole.xml")" ] \
  && ok "the merged JUnit has the whole run's test cases and totals ($(tot "$W/m.xml"))" \
  || nok "merged JUnit differs" "merged $(tot "$W/m.xml"), whole $(tot "$W/whole.xml")"

# file i of the sorted eight is in shard i mod 3 + 1: the failing f3 is in shard 3
expect_code 0 "--format tap of shards 1 and 2 (all pass) with --partial" \
  "$PROVIUM" events merge --partial --format tap "$W/s1.mp" "$W/s2.mp"
[ "$(grep -c '^ok' "$W/out")" -gt 0 ] && grep -q '^1\.\.' "$W/out" && grep -q "shard 3/3 is missing" "$W/err" \
  && ok "--partial merges what is there and names the missing shard" || nok "--partial" "$(cat "$W/err")"
expect_code 2 "a missing shard is refused without --partial" "$PROVIUM" events merge "$W/s2.mp" "$W/s3.mp"
grep -q "shard 1/3 is missing" "$W/err" && ok "the refusal names the missing shard" || nok "missing-shard message" "$(cat "$W/err")"
expect_code 2 "a shard given twice is refused" "$PROVIUM" events merge "$W/s1.mp" "$W/s1.mp" "$W/s2.mp" "$W/s3.mp"
grep -q "both shard 1/3" "$W/err" && ok "the refusal says which shard would count twice" || nok "duplicate message" "$(cat "$W/err")"
echo "not msgpack" > "$W/junk.mp"
expect_code 2 "a file that is not an event stream is refused" "$PROVIUM" events merge --partial "$W/s1.mp" "$W/junk.mp"
expect_code 2 "a file that does not exist is refused" "$PROVIUM" events merge "$W/nope.mp"
python3 - "$W/s2.mp" "$W/v9.mp" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
i = d.index(b"\xa1v")            # the first event's "v" key; its value is a fixint
open(sys.argv[2], "wb").write(d[:i + 2] + b"\x09" + d[i + 3:])
PY
expect_code 2 "a stream of another protocol version is refused" "$PROVIUM" events merge --partial "$W/v9.mp"
grep -q "version 9" "$W/err" && ok "the refusal names the version" || nok "version message" "$(cat "$W/err")"
head -c -7 "$W/s2.mp" > "$W/trunc.mp"
expect_code 130 "a truncated shard (its run never ended) makes the merge interrupted" \
  "$PROVIUM" events merge -o "$W/t.mp" "$W/s1.mp" "$W/trunc.mp" "$W/s3.mp"
events "$W/t.mp" | tail -1 | grep -q '"interrupted":true' && ok "the merged run_end says interrupted=true" \
  || nok "merged run_end after a truncated shard" "$(events "$W/t.mp" | tail -1)"
# More shards than files: an empty shard (exit 4) does not decide the merge.
for k in 1 2 3 4 5 6 7 8 9 10; do "$PROVIUM" run -q --shard $k/10 --events "$W/e$k.mp" "$S" > /dev/null 2>&1; done
expect_code $whole "ten shards of eight files (two empty) merge to the whole run's exit code" \
  "$PROVIUM" events merge -q "$W"/e{1,2,3,4,5,6,7,8,9,10}.mp
done_testing
