#!/usr/bin/env bash
# events.sh — the msgpack event stream of a real run, decoded by `provium events`
# (msgpack-c) and checked against RUNNER.md by check_events.py: v, seq from 1, t, known
# kinds with their required fields and types, run_start first, run_end last with the
# right totals; test_log, claim and barrier events from two files run with -j2; meta
# passed through; --events - on stdout; PROVIUM_EVENTS; a truncated stream is an error.
. "$(dirname "$0")/lib.sh"
proto=$("$PROVIUM" version | awk '/^protocol/ {print $2}')
mkdir -p "$W/ev"
cat > "$W/ev/a_test.lua" <<'L'
test("passes and logs", function(t) t:log("hello", 42) end, { spec = "RUN-1", owner = "qa" })
test("fails", function(t) t:eq(1, 2, "one vs two") end)
test("skips", function(t) t:skip("why not") end)
test("skipped by meta", function(t) error("not run") end, { skip = "not today" })
test("claims and meets", function(t)
  local c = provium:claim("evres")
  c:release()
  t:ok(provium:barrier("evmeet", 2) >= 1)
end)
L
cat > "$W/ev/b_test.lua" <<'L'
todo("later")
test("todo one", function(t) error("not run") end)
L
cat > "$W/ev/c_test.lua" <<'L'
test("meets too", function(t) t:ok(provium:barrier("evmeet", 2) >= 1) end)
L
"$PROVIUM" run -j3 --events "$W/ev.mp" "$W/ev" > "$W/out" 2>&1; code=$?
[ $code = 1 ] && ok "the run exits 1 (one failure)" || nok "exit $code, want 1" "$(tail "$W/out")"
events "$W/ev.mp" > "$W/ev.jsonl"
check "the stream follows RUNNER.md (v=$proto, seq, kinds, fields, order)" \
  python3 "$root/tests/runner/check_events.py" "$W/ev.jsonl" "$proto" interrupted=false exit_code=1
# totals and per-kind content
py() { python3 - "$W/ev.jsonl" "$@"; }
check "run_end counts 3 passed, 1 failed, 2 skipped, 1 todo, 0 errors" py <<'P'
import json, sys
e = [json.loads(l) for l in open(sys.argv[1])][-1]
got = [e[k] for k in ("passed", "failed", "skipped", "todo", "errors")]
assert got == [3, 1, 2, 1, 0], got
P
check "run_start lists the three files and -j3" py <<'P'
import json, sys
e = [json.loads(l) for l in open(sys.argv[1])][0]
assert e["jobs"] == 3 and len(e["files"]) == 3 and e["backend"] in ("sandbox", "kvm"), e
assert e["argv"][:2] == ["provium", "run"], e["argv"]
P
check "test_end of the failure carries message and where (file:line)" py <<'P'
import json, sys
e = [x for x in map(json.loads, open(sys.argv[1])) if x["ev"] == "test_end" and x["test"] == "fails"][0]
assert e["outcome"] == "fail" and "one vs two" in e["message"], e
assert e["where"].endswith("a_test.lua:2"), e["where"]
P
check "meta keys pass through to test_start and test_end" py <<'P'
import json, sys
ev = [x for x in map(json.loads, open(sys.argv[1])) if x.get("test") == "passes and logs" and x["ev"] in ("test_start", "test_end")]
assert len(ev) == 2 and all(x["meta"].get("owner") == "qa" and x["meta"].get("spec") == "RUN-1" for x in ev), ev
P
check "test_log carries the logged text" py <<'P'
import json, sys
ev = [x for x in map(json.loads, open(sys.argv[1])) if x["ev"] == "test_log"]
assert any("hello" in x["text"] and "42" in x["text"] for x in ev), ev
P
check "claim events: acquire and release of evres" py <<'P'
import json, sys
acts = [x["action"] for x in map(json.loads, open(sys.argv[1])) if x["ev"] == "claim" and x["resource"] == "evres"]
assert "acquire" in acts and "release" in acts, acts
P
check "barrier events from both files, parties=2" py <<'P'
import json, sys
ev = [x for x in map(json.loads, open(sys.argv[1])) if x["ev"] == "barrier" and x["name"] == "evmeet"]
files = {x["file"].rsplit("/", 1)[-1] for x in ev}
assert files == {"a_test.lua", "c_test.lua"} and all(x["parties"] == 2 for x in ev), ev
P
check "the todo file reports its test as todo" py <<'P'
import json, sys
ev = [x for x in map(json.loads, open(sys.argv[1])) if x["ev"] == "test_end" and x["test"] == "todo one"]
assert len(ev) == 1 and ev[0]["outcome"] == "todo", ev
P
# --events - puts the stream on stdout (the report moves to stderr)
"$PROVIUM" run --events - "$W/ev/b_test.lua" > "$W/stdout.mp" 2> "$W/err"
events "$W/stdout.mp" > "$W/stdout.jsonl"
check "--events - writes a valid stream to stdout" \
  python3 "$root/tests/runner/check_events.py" "$W/stdout.jsonl" "$proto" exit_code=0
PROVIUM_EVENTS=$W/env.mp "$PROVIUM" run "$W/ev/b_test.lua" > /dev/null 2>&1
events "$W/env.mp" > "$W/env.jsonl"
check "PROVIUM_EVENTS names the stream file" \
  python3 "$root/tests/runner/check_events.py" "$W/env.jsonl" "$proto"
# provium events: one line per event, unknown fields printed, truncation detected
"$PROVIUM" events "$W/ev.mp" > "$W/pretty"
lines=$(wc -l < "$W/pretty"); count=$(wc -l < "$W/ev.jsonl")
[ "$lines" = "$count" ] && grep -q 'run_end .*exit_code=1' "$W/pretty" && ok "provium events prints one line per event" \
  || nok "provium events: $lines lines for $count events" "$(head -3 "$W/pretty")"
size=$(stat -c %s "$W/ev.mp")
head -c $((size - 3)) "$W/ev.mp" > "$W/trunc.mp"
expect_code 1 "provium events reports a truncated stream" "$PROVIUM" events "$W/trunc.mp"
python3 - "$W/unknown.mp" <<'P'
import sys
# {"v":1,"seq":1,"t":5,"ev":"new_kind","zz":true} in msgpack, by hand
def s(x): b = x.encode(); return bytes([0xa0 | len(b)]) + b
m = bytes([0x85]) + s("v") + b"\x01" + s("seq") + b"\x01" + s("t") + b"\x05" + s("ev") + s("new_kind") + s("zz") + b"\xc3"
open(sys.argv[1], "wb").write(m)
P
"$PROVIUM" events "$W/unknown.mp" > "$W/unk" 2>&1 && grep -Eq "new_kind +zz=true" "$W/unk" \
  && ok "unknown kinds and fields are shown, not rejected" || nok "unknown kind" "$(cat "$W/unk")"
# anything that is not a sequence of event maps exits 1 with the first bad item's offset
printf 'hello world\n' > "$W/plain.txt"
expect_code 1 "provium events rejects plain text" "$PROVIUM" events "$W/plain.txt"
grep -q "item 1 at byte offset 0 is an integer, not a map" "$W/err" \
  && ok "plain text: says item 1 at offset 0 is not an event map" || nok "plain text message" "$(cat "$W/err")"
cp "$W/unknown.mp" "$W/tail.mp"; printf '\x05' >> "$W/tail.mp"   # an integer after one event
good=$(stat -c %s "$W/unknown.mp")
expect_code 1 "provium events rejects an integer after a valid event" "$PROVIUM" events "$W/tail.mp"
grep -q "item 2 at byte offset $good is an integer" "$W/err" && grep -q new_kind "$W/out" \
  && ok "the good event is printed, then item 2 at offset $good is named" || nok "trailing item" "$(cat "$W/err" "$W/out")"
printf '\x81\xa1k\x01' > "$W/noev.mp"   # {k=1}: a map, but no ev
expect_code 1 "provium events rejects a map without ev" "$PROVIUM" events --format json "$W/noev.mp"
grep -q "offset 0 is a map without a string 'ev'" "$W/err" && ok "a map without ev is named as such" \
  || nok "map without ev" "$(cat "$W/err")"
grep -q "truncated last event at byte offset" <("$PROVIUM" events "$W/trunc.mp" 2>&1 >/dev/null) \
  && ok "a truncated stream names the offset of its last event" || nok "truncation offset"
# vm_spawn / vm_exit from a sandbox VM, and the live VM count they drive
mkdir -p "$W/vm"
cat > "$W/vm/vm_test.lua" <<'L'
test("boots a vm", function(t)
  local vm = provium:vm("web")
  t:eq(vm:run("echo hi").stdout, "hi\n")
end)
L
"$PROVIUM" run --events "$W/vm.mp" "$W/vm" > "$W/out" 2>&1; code=$?
if grep -q "no rootfs\|no backend available" "$W/out"; then
  ok "# SKIP no VM backend here: $(grep -m1 -o 'no rootfs.*\|no backend available.*' "$W/out")"
else
  events "$W/vm.mp" > "$W/vm.jsonl"
  check "a VM test: exit 0 and a valid stream" python3 "$root/tests/runner/check_events.py" "$W/vm.jsonl" "$proto" exit_code=0
  check "vm_spawn then vm_exit for vm web, inside the file's start/end" python3 - "$W/vm.jsonl" <<'P'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [e["ev"] for e in ev]
sp = [e for e in ev if e["ev"] == "vm_spawn"]
ex = [e for e in ev if e["ev"] == "vm_exit"]
assert len(sp) == 1 and len(ex) == 1, kinds
assert sp[0]["vm"] == "web" and sp[0]["backend"] in ("sandbox", "kvm") and sp[0]["boot_ns"] > 0, sp
assert kinds.index("file_start") < kinds.index("vm_spawn") < kinds.index("vm_exit") < kinds.index("file_end"), kinds
P
fi
done_testing
