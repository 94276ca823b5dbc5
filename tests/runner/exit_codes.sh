#!/usr/bin/env bash
# exit_codes.sh — `provium run` exit codes of RUNNER.md: 0 all passed (skips and todos
# allowed), 1 a failure / a file error (Lua syntax error), 2 usage, 3 infrastructure
# before any test ran, 4 nothing matched, 130 interrupted (SIGINT tears down the
# worker's processes and temp dir; run_end says interrupted=true).
. "$(dirname "$0")/lib.sh"
proto=$("$PROVIUM" version | awk '/^protocol/ {print $2}')

mkdir -p "$W/pass" "$W/fail" "$W/syntax" "$W/empty"
cat > "$W/pass/ok_test.lua" <<'L'
test("passes", function(t) t:eq(2 + 2, 4) end)
test("skips", function(t) t:skip("not here") end)
test("is skipped by meta", function(t) error("must not run") end, { skip = "meta skip" })
L
cat > "$W/fail/bad_test.lua" <<'L'
test("passes", function(t) t:ok(true) end)
test("fails", function(t) t:eq(1, 2) end)
L
printf 'test("x", function(t)\n  t:ok(true)\n' > "$W/syntax/broken_test.lua"
cp "$W/pass/ok_test.lua" "$W/syntax/fine_test.lua"

expect_code 0 "all passed, with skips" "$PROVIUM" run "$W/pass"
expect_code 1 "a failing test" "$PROVIUM" run "$W/fail"
expect_code 1 "a Lua syntax error is a file error" "$PROVIUM" run --format tap "$W/syntax"
if grep -q "^not ok .*broken_test.lua (file error)" "$W/out" && grep -q "^ok .*fine_test.lua: passes" "$W/out"
then ok "the syntax error is reported as a file error and the other file still ran"
else nok "syntax error report" "$(cat "$W/out")"; fi
if grep -q "broken_test.lua:" "$W/out"; then ok "the file error names file:line"; else nok "file:line in syntax error" "$(cat "$W/out")"; fi
expect_code 2 "an unknown flag" "$PROVIUM" run --no-such-flag "$W/pass"
expect_code 2 "a bad flag value" "$PROVIUM" run -j many "$W/pass"
expect_code 2 "a PATH that does not exist" "$PROVIUM" run "$W/does/not/exist"
expect_code 3 "an unwritable cache dir" "$PROVIUM" run --cache-dir /proc/provium-cache "$W/pass"
if "$PROVIUM" version | grep -q "kvm *unavailable"; then
  expect_code 3 "--backend kvm where KVM cannot run Linux guests" "$PROVIUM" run --backend kvm "$W/pass"
  PROVIUM_BACKEND=kvm expect_code 3 "PROVIUM_BACKEND=kvm likewise" "$PROVIUM" run "$W/pass"
  expect_code 1 "the --backend flag wins over PROVIUM_BACKEND" env PROVIUM_BACKEND=kvm "$PROVIUM" run --backend sandbox "$W/fail"
else
  ok "# SKIP kvm can run Linux guests here: no kvm infrastructure error to provoke"
fi
TMPDIR=/nonexistent/provium expect_code 3 "a TMPDIR where no temp dir can be made" "$PROVIUM" run "$W/pass"
expect_code 4 "a filter that matches nothing" "$PROVIUM" run -f no-such-test-name "$W/pass"
expect_code 4 "a directory without test files" "$PROVIUM" run "$W/empty"
expect_code 0 "the filter selects a test" "$PROVIUM" run -f passes "$W/pass"

# 130: SIGINT in the middle of a test that started a background process
mkdir -p "$W/int" "$W/tmp"
cat > "$W/int/sleepy_test.lua" <<L
test("sleeps", function(t)
  local f = io.open("$W/tmpdir.txt", "w"); f:write(provium.tmpdir()); f:close()
  os.execute("sleep 987.65 >/dev/null 2>&1 & echo \$! > $W/sleeper.pid")
  provium.sleep(60)
end)
L
TMPDIR=$W/tmp "$PROVIUM" run --events "$W/int.mp" "$W/int" > "$W/out" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$W/sleeper.pid" ] && [ -s "$W/tmpdir.txt" ] && break; sleep 0.1; done
kill -INT $pid
wait $pid; code=$?
if [ $code = 130 ]; then ok "SIGINT mid-run exits 130"; else nok "SIGINT: exit $code, want 130" "$(tail -5 "$W/out")"; fi
spid=$(cat "$W/sleeper.pid" 2>/dev/null)
if [ -n "$spid" ] && gone "$spid"; then ok "the test's background process is gone"
else nok "background process $spid still alive after SIGINT"; kill "$spid" 2>/dev/null; fi
td=$(cat "$W/tmpdir.txt" 2>/dev/null)
if [ -n "$td" ] && [ ! -e "$td" ] && [ -z "$(ls -A "$W/tmp")" ]; then ok "the per-file temp dir $(basename "$td") was removed"
else nok "temp dir left after SIGINT" "$(ls -la "$W/tmp")"; fi
events "$W/int.mp" > "$W/int.jsonl"
check "the interrupted stream ends with run_end interrupted=true exit_code=130" \
  python3 "$root/tests/runner/check_events.py" "$W/int.jsonl" "$proto" interrupted=true exit_code=130
# SIGTERM is handled like SIGINT
rm -f "$W/sleeper.pid" "$W/tmpdir.txt"
TMPDIR=$W/tmp "$PROVIUM" run "$W/int" > "$W/out" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$W/sleeper.pid" ] && break; sleep 0.1; done
kill -TERM $pid
wait $pid; code=$?
[ $code = 130 ] && gone "$(cat "$W/sleeper.pid")" && [ -z "$(ls -A "$W/tmp")" ] \
  && ok "SIGTERM: exit 130, processes and temp dir gone" || nok "SIGTERM: exit $code" "$(tail -3 "$W/out")"
# the parent killed outright (SIGKILL): its workers do not outlive it
mkdir -p "$W/orphan"
cat > "$W/orphan/o_test.lua" <<L
test("waits", function(t)
  local f = io.open("/proc/self/stat"); local pid = f:read("a"):match("^(%d+)"); f:close()
  f = io.open("$W/worker.pid", "w"); f:write(pid); f:close()
  provium.sleep(60)
end)
L
# (its own TMPDIR: nobody is left to remove the per-file temp dir of a SIGKILLed parent)
mkdir -p "$W/tmp-orphan"
TMPDIR=$W/tmp-orphan "$PROVIUM" run "$W/orphan" > "$W/out" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$W/worker.pid" ] && break; sleep 0.1; done
wpid=$(cat "$W/worker.pid" 2>/dev/null)
kill -KILL $pid; wait $pid 2>/dev/null
[ -n "$wpid" ] && gone "$wpid" && ok "a SIGKILLed parent takes its workers with it" || nok "worker $wpid outlived its SIGKILLed parent"
[ -n "$wpid" ] && kill -KILL "$wpid" 2>/dev/null

# SIGINT while a sandbox VM runs: the VM's processes go too
mkdir -p "$W/vmint"
cat > "$W/vmint/vm_test.lua" <<'L'
test("holds a vm", function(t)
  local vm = provium:vm("held")
  provium.sleep(60)
end)
L
TMPDIR=$W/tmp "$PROVIUM" run --events "$W/vmint.mp" "$W/vmint" > "$W/out" 2>&1 &
pid=$!
vpid=
for _ in $(seq 100); do
  vpid=$("$PROVIUM" events --format json "$W/vmint.mp" 2>/dev/null | python3 -c '
import json, sys
for e in map(json.loads, sys.stdin):
    if e["ev"] == "vm_spawn": print(e.get("pid", ""))' 2>/dev/null)
  [ -n "$vpid" ] && break
  grep -q "no rootfs\|no backend" "$W/out" && break
  sleep 0.1
done
if [ -z "$vpid" ]; then
  kill -INT $pid; wait $pid
  ok "# SKIP no VM started here: $(tail -1 "$W/out")"
else
  alive=no; [ -e "/proc/$vpid" ] && alive=yes
  kill -INT $pid; wait $pid; code=$?
  [ $code = 130 ] && [ $alive = yes ] && gone "$vpid" && [ -z "$(ls -A "$W/tmp")" ] \
    && ! grep -qF "$W" /proc/mounts \
    && ok "SIGINT with a VM running: exit 130, the VM (pid $vpid), temp dir and mounts gone" \
    || nok "SIGINT with a VM: exit $code, vm pid $vpid" "$(tail -3 "$W/out")"
  if events "$W/vmint.mp" | grep -q '"ev": *"vm_exit".*"vm": *"held".*"reason": *"interrupted"\|"ev": *"vm_exit".*"reason": *"interrupted".*"vm": *"held"'
  then ok "the interrupted run's stream has vm_exit reason=interrupted for the VM"
  else nok "vm_exit after SIGINT" "$(events "$W/vmint.mp" | grep vm_)"; fi
  events "$W/vmint.mp" > "$W/vmint.jsonl"
  check "the interrupted VM run's stream is valid, every vm_spawn with its vm_exit" \
    python3 "$root/tests/runner/check_events.py" "$W/vmint.jsonl" "$proto" interrupted=true exit_code=130
fi
done_testing
