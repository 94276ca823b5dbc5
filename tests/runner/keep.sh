#!/usr/bin/env bash
# keep.sh — `provium run --keep` (RUNNER.md): the VMs of a file with a failed test are
# left running after the run, and the run says how to reach them (nsenter) and stop
# them; the kept sandbox really is the test's (its files are there); killing it ends
# its keeper too. Without a failure, or without --keep, nothing is left. A worker that
# crashes under --keep still takes its sandboxes with it.
. "$(dirname "$0")/lib.sh"

mkdir -p "$W/fail" "$W/pass" "$W/crash"
cat > "$W/fail/k_test.lua" <<'L'
local vm = provium:vm("keepme")
test("writes then fails", function(t)
  vm:write_file("/root/mark", "left by the test")
  t:eq(1, 2)
end)
L
cat > "$W/pass/p_test.lua" <<'L'
local vm = provium:vm("passing")
test("passes", function(t) vm:succeed("true") end)
L
cat > "$W/crash/c_test.lua" <<'L'
local vm = provium:vm("crashing")
test("fails, then the worker dies", function(t)
  local f = io.open("/proc/self/stat"); local pid = f:read("a"):match("^(%d+)"); f:close()
  io.open(provium.env("PIDFILE"), "w"):write(vm:info().pid):close()
  os.execute("kill -9 " .. pid)
end)
L

# vm_pids FILE: the pid of every vm_spawn in a recorded stream
vm_pids() { events "$1" | python3 -c '
import json, sys
for e in map(json.loads, sys.stdin):
    if e["ev"] == "vm_spawn": print(e.get("pid", ""))'; }

TMPDIR=$W "$PROVIUM" run --keep --events "$W/k.mp" "$W/fail" > "$W/out" 2> "$W/err"; code=$?
pid=$(vm_pids "$W/k.mp")
if [ "$code" = 1 ]; then ok "--keep: a failed test still exits 1"; else nok "--keep exit $code" "$(tail -5 "$W/err")"; fi
if [ -n "$pid" ] && grep -q "provium: --keep: VM keepme (sandbox) is still running as pid $pid" "$W/err" &&
   grep -q "nsenter -t $pid -a -r -w /bin/sh" "$W/err" && grep -q "kill -KILL $pid" "$W/err"
then ok "--keep names the kept VM, its pid, how to enter and stop it"
else nok "--keep message" "$(cat "$W/err")"; fi
if [ -n "$pid" ] && [ -e "/proc/$pid" ] && ! gone "$pid"; then ok "the VM of the failed test is still running after the run"
else nok "kept VM $pid is not running"; fi
got=$(nsenter -t "$pid" -a -r -w /bin/sh -c 'hostname; cat /root/mark' 2>&1)
if [ "$got" = "$(printf 'keepme\nleft by the test')" ]; then ok "the printed nsenter command reaches the test's sandbox (hostname, its file)"
else nok "nsenter into the kept VM" "$got"; fi
if events "$W/k.mp" | grep -q '"ev": *"vm_exit".*"reason": *"kept"'; then ok "its vm_exit says reason=kept"
else nok "vm_exit reason kept" "$(events "$W/k.mp" | grep vm_exit)"; fi
keeper=$(pgrep -n -x provium-keep)
kill -KILL "$pid"
if gone "$pid"; then ok "kill -KILL as printed ends the kept VM"; else nok "kept VM $pid survives kill"; fi
if [ -n "$keeper" ] && gone "$keeper"
then ok "its keeper process ends with it"; else nok "keeper left" "$(pgrep -a -x provium-keep)"; fi

"$PROVIUM" run --keep --events "$W/p.mp" "$W/pass" > "$W/out" 2> "$W/err"; code=$?
pid=$(vm_pids "$W/p.mp")
if [ "$code" = 0 ] && [ -n "$pid" ] && gone "$pid" && ! grep -q -- "--keep: VM" "$W/err"
then ok "--keep without a failure keeps nothing"; else nok "--keep, passing run: exit $code, pid $pid" "$(cat "$W/err")"; fi

"$PROVIUM" run --events "$W/f.mp" "$W/fail" > "$W/out" 2> "$W/err"; code=$?
pid=$(vm_pids "$W/f.mp")
if [ "$code" = 1 ] && [ -n "$pid" ] && gone "$pid" && ! grep -q -- "--keep" "$W/err"
then ok "a failure without --keep leaves no VM"; else nok "no --keep: exit $code, pid $pid" "$(cat "$W/err")"; fi

PIDFILE=$W/crash.pid "$PROVIUM" run --keep "$W/crash" > "$W/out" 2> "$W/err"; code=$?
pid=$(cat "$W/crash.pid" 2>/dev/null)
if [ "$code" = 1 ] && [ -n "$pid" ] && gone "$pid"
then ok "--keep and a crashed worker: its sandbox (pid $pid) goes with it"
else nok "crash under --keep: exit $code, sandbox $pid" "$(tail -3 "$W/err")"; [ -n "$pid" ] && kill -KILL "$pid"; fi
done_testing
