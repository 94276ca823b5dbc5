#!/usr/bin/env bash
# kept.sh — the kept-VM commands (docs/debugging.md, "Kept VMs"): after `provium run
# --keep` with a failed test, `provium ps` lists the VM, `provium shell NAME` opens a
# shell in it (piped, and on a real terminal with tmux: prompt, window size, resize,
# Ctrl-] leaves and the VM stays), `provium console NAME` shows its console so far and
# live, `provium kill NAME|--all` stops it and its keeper and forgets it; a name kept
# twice must be said by pid; an entry whose VM is gone is dropped. Nothing is left.
. "$(dirname "$0")/lib.sh"
export PROVIUM_KEPT_DIR=$W/kept TMPDIR=$W   # the runs' temp dirs too: none may be left
mkdir -p "$W/fail"
cat > "$W/fail/k_test.lua" <<'L'
local vm = provium:vm("keepme")
test("writes then fails", function(t)
  vm:write_file("/root/mark", "left by the test")
  vm:run("echo console-said-this > /proc/1/fd/1")
  t:eq(1, 2)
end)
L
sock=$W/tmux.sock
T() { tmux -S "$sock" "$@"; }
trap 'tmux -S "$sock" kill-server 2>/dev/null; "$PROVIUM" kill --all >/dev/null 2>&1; rm -rf "$W"' EXIT
pane() { T capture-pane -p -J -S -200 2>/dev/null; }
wait_pane() {
  local i
  for i in $(seq $(( ${2:-10} * 10 ))); do pane | grep -Eq -- "$1" && return 0; sleep 0.1; done
  return 1
}
wait_file() { # FILE PATTERN: until FILE holds PATTERN (5 s)
  local i; for i in $(seq 50); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}

"$PROVIUM" run --keep "$W/fail" > "$W/out" 2> "$W/err"; code=$?
if [ "$code" = 1 ] && grep -q '  a shell:   provium shell keepme' "$W/err" &&
   grep -q '  stop it:   provium kill keepme' "$W/err"; then
  ok "--keep says how to reach the kept VM: provium shell / console / kill NAME"
else nok "--keep message (exit $code)" "$(tail -8 "$W/err")"; fi
pid=$(sed -n 's/.*VM keepme (sandbox) is still running as pid \([0-9]*\).*/\1/p' "$W/err")
keeper=$(pgrep -n -x provium-keep)

ps_out=$("$PROVIUM" ps)
if grep -Eq "^keepme +sandbox +$pid +[0-9]+s +.*k_test.lua$" <<<"$ps_out"; then
  ok "provium ps lists it: name, backend, pid, age, file"
else nok "provium ps" "$ps_out"; fi

out=$(printf 'cat /root/mark; echo; hostname\n' | "$PROVIUM" shell keepme 2>&1); code=$?
if [ "$code" = 0 ] && [ "$out" = "$(printf 'left by the test\nkeepme')" ]; then
  ok "provium shell NAME with a piped stdin runs it in the test's VM (its file, its hostname)"
else nok "piped provium shell (exit $code)" "$out"; fi
printf 'exit 4\n' | "$PROVIUM" shell "$pid" > /dev/null 2>&1; code=$?
if [ "$code" = 4 ]; then ok "provium shell PID works too, and its exit status is the shell's (4)"
else nok "provium shell PID: exit $code, want 4"; fi

if command -v tmux > /dev/null; then
  T new-session -d -s s -x 100 -y 30 "PROVIUM_KEPT_DIR=$W/kept $PROVIUM shell keepme; echo SHELL-EXIT=\$?; sleep 60"
  if wait_pane 'keepme:/# '; then
    T send-keys -t s 'echo out-$((6*7)); stty size' Enter
    wait_pane '^30 100' && T resize-window -t s -x 120 -y 40 && T send-keys -t s 'stty size' Enter
    wait_pane '^40 120' && T send-keys -t s C-]
  fi
  if wait_pane 'SHELL-EXIT=0' && pane | grep -q '^out-42' && pane | grep -q 'left the shell of VM keepme' &&
     [ -e "/proc/$pid" ]; then
    ok "provium shell on a terminal: prompt, output, window size and a resize, Ctrl-] leaves; the VM stays"
  else nok "provium shell on a terminal" "$(pane | tail -8)"; fi
  T kill-server 2>/dev/null
else
  ok "provium shell on a terminal # SKIP tmux is not installed (make deps installs it)"
fi

if "$PROVIUM" console -n keepme | grep -q '^console-said-this'; then
  ok "provium console -n NAME shows what the console said during the run"
else nok "provium console -n" "$("$PROVIUM" console -n keepme 2>&1 | tail -5)"; fi
"$PROVIUM" console keepme > "$W/con" 2> "$W/con.err" & cpid=$!
printf 'echo later-line > /proc/1/fd/1\n' | "$PROVIUM" shell keepme > /dev/null 2>&1
if wait_file "$W/con" '^later-line'; then ok "provium console NAME follows it live"
else nok "provium console follows" "$(tail -3 "$W/con")"; fi

# the same file kept a second time: two VMs named keepme
"$PROVIUM" run --keep "$W/fail" > /dev/null 2> "$W/err2"
pid2=$(sed -n 's/.*VM keepme (sandbox) is still running as pid \([0-9]*\).*/\1/p' "$W/err2")
out=$("$PROVIUM" shell keepme < /dev/null 2>&1); code=$?
if [ "$code" = 2 ] && grep -q "2 kept VMs are named keepme (pids $pid, $pid2): name one by its pid" <<<"$out"; then
  ok "a name kept twice is refused, naming both pids (exit 2)"
else nok "ambiguous name (exit $code)" "$out"; fi

out=$("$PROVIUM" kill "$pid" 2>&1); code=$?
if [ "$code" = 0 ] && [ "$out" = "killed VM keepme (pid $pid)" ] && gone "$pid" && { [ -z "$keeper" ] || gone "$keeper"; }; then
  ok "provium kill PID stops the VM and its keeper"
else nok "provium kill (exit $code)" "$out"; fi
if gone "$cpid" && grep -q 'VM keepme ended' "$W/con.err"; then ok "a following provium console ends with its VM"
else nok "console follower after kill" "$(cat "$W/con.err")"; kill "$cpid" 2>/dev/null; fi

# an entry whose VM is gone (a keeper killed with it, a reboot): dropped by whoever reads
printf '{"name":"ghost","backend":"sandbox","pid":999999,"keeper":0,"starttime":1,"since":1,"file":"x"}' > "$W/kept/999999.json"
if ! "$PROVIUM" ps | grep -q ghost && [ ! -e "$W/kept/999999.json" ]; then ok "provium ps drops an entry whose VM is gone"
else nok "stale entry" "$("$PROVIUM" ps)"; fi
# a kept VM that ends by itself (here: killed by hand, as --keep's message also says):
# the next reader forgets it and removes its run's temp dir
"$PROVIUM" run --keep "$W/fail" > /dev/null 2> "$W/err3"
pid3=$(sed -n 's/.*VM keepme (sandbox) is still running as pid \([0-9]*\).*/\1/p' "$W/err3")
tmp3=$(sed -n 's/.*--keep: temp dir \(.*\) kept$/\1/p' "$W/err3")
[ -n "$pid3" ] && kill -KILL "$pid3"; gone "$pid3"
if [ -n "$tmp3" ] && ! "$PROVIUM" ps | grep -q "$pid3" && [ ! -e "$W/kept/$pid3.json" ] && [ ! -e "$tmp3" ]; then
  ok "a kept VM that ended by itself is dropped with its temp dir by the next provium ps"
else nok "VM ended by itself: entry or temp dir left" "tmp: $tmp3" "$(ls -A "$W/kept")"; fi

out=$("$PROVIUM" shell nope < /dev/null 2>&1); code=$?
if [ "$code" = 2 ] && grep -q "no kept VM named nope (\`provium ps\` lists them" <<<"$out"; then
  ok "an unknown name says so and what lists them (exit 2)"
else nok "unknown name (exit $code)" "$out"; fi

out=$("$PROVIUM" kill --all 2>&1); code=$?
left=$(ls -A "$W/kept"; ls -d "$W"/provium-* 2>/dev/null)
if [ "$code" = 0 ] && [ "$out" = "killed VM keepme (pid $pid2)" ] && gone "$pid2" && [ -z "$left" ] &&
   [ "$("$PROVIUM" ps | head -1)" = "no kept VMs (in $W/kept)" ]; then
  ok "provium kill --all stops the rest; nothing is listed or left in the registry, no temp dir"
else nok "kill --all (exit $code)" "$out" "left: $left"; fi
done_testing
