#!/usr/bin/env bash
# repl.sh — the prompt of `provium run --interactive` / `provium repl` and of
# `--pause-on-failure` (docs/debugging.md): driven with a piped stdin (tests(), a test
# run twice, an expression, vms() with the VM running, the file's locals) and on a
# real terminal (tmux, its own server socket: the prompt, Tab completion of a VM
# method, history recall with Up, Ctrl-D ending the run); a failed test pausing with
# its VM still up, then the run going on and failing; nothing left behind.
. "$(dirname "$0")/lib.sh"

sock=$W/tmux.sock
trap 'tmux -S "$sock" kill-server 2>/dev/null; rm -rf "$W"' EXIT
export XDG_STATE_HOME=$W/state   # the prompt's history goes here, not in ~

# the example of docs/debugging.md, as written there
python3 - "$root/docs/debugging.md" > "$W/repl_test.lua" <<'P'
import re, sys
m = re.search(r"```lua\n-- repl_test.lua\n(.*?)```", open(sys.argv[1]).read(), re.S)
sys.stdout.write(m.group(1) if m else "")
P
[ -s "$W/repl_test.lua" ] || { nok "docs/debugging.md has the repl_test.lua example"; done_testing; exit 0; }

# 1. --interactive with a piped stdin: lines are read as they come, no prompt shown
printf '%s\n' 'tests()' 'run("echo works")' 'run("echo works")' '=6*7' 'vms()' \
  'box:succeed("echo from-" .. "prompt")' 'x = vm("box"); return x.name' 'nosuch()' 'exit()' 'error("not read")' |
  "$PROVIUM" run --interactive --format tap "$W/repl_test.lua" > "$W/out" 2> "$W/err"; code=$?
if [ "$code" = 0 ] && grep -q 'echo works.*repl_test.lua:' "$W/err" && grep -q 'finds the marker' "$W/err"; then
  ok "tests() lists the file's tests (exit 0: no test failed)"
else
  nok "tests() lists the tests" "exit $code" "$(tail -8 "$W/err")"
fi
if [ "$(grep -c '^ok .* echo works' "$W/out")" = 2 ] && ! grep -q 'finds the marker' "$W/out" &&
   [ "$(grep -c '^ran 1 test: 1 passed, 0 failed' "$W/err")" = 2 ]; then
  ok "run(name) runs the test now, reported as in a run; again: a second result; other tests do not run"
else
  nok "run() twice gives two results" "$(cat "$W/out")" "$(tail -8 "$W/err")"
fi
if grep -qx '42' "$W/err" && grep -qx 'from-prompt' "$W/err" && grep -qx 'box' "$W/err"; then
  ok "expressions print their values; the file's locals (box) and vm(name) are there"
else
  nok "expressions print their values" "$(tail -8 "$W/err")"
fi
if grep -Eq '^ +box +sandbox +running' "$W/err"; then ok "vms() shows the VM, its backend and that it is running"; else
  nok "vms() shows the VM running" "$(tail -8 "$W/err")"; fi
if grep -q "^error: .*nosuch" "$W/err" && ! grep -q 'not read' "$W/err"; then
  ok "an error is printed and the prompt goes on; exit() leaves it"
else
  nok "errors at the prompt; exit()" "$(tail -8 "$W/err")"
fi

# 2. --pause-on-failure, piped: the failed test pauses with its VM up (longer than its
# 2 s timeout: nobody is timed at the prompt), leaving goes on, the run fails
(sleep 3; printf '%s\n' '=vm("box"):read_file("/tmp/marker")' '=t.name') |
  "$PROVIUM" run --pause-on-failure --format tap "$W/repl_test.lua" > "$W/out" 2> "$W/err"; code=$?
if grep -q 'paused before its teardown' "$W/err" && grep -q 'expected equal values' "$W/err" &&
   grep -qx 'left by the test' "$W/err" && grep -qx 'finds the marker' "$W/err"; then
  ok "--pause-on-failure: the failure is printed, the VM is still up (vm:read_file), t is the test"
else
  nok "--pause-on-failure opens the prompt" "$(tail -12 "$W/err")"
fi
if [ "$code" = 1 ] && grep -q '^ok .* echo works' "$W/out" && grep -q '^not ok .* finds the marker' "$W/out" &&
   ! grep -q 'timed out' "$W/out" "$W/err"; then
  ok "leaving the prompt goes on: the run reports the failure (exit 1), no timeout fired"
else
  nok "the run goes on after the pause" "exit $code" "$(cat "$W/out")" "$(tail -5 "$W/err")"
fi
expect_code 2 "--interactive takes one file" "$PROVIUM" run --interactive "$W/repl_test.lua" "$root/tests/lua"

# 3. on a terminal: provium repl
if ! command -v tmux > /dev/null; then
  echo "ok $((n + 1)) - the prompt on a terminal # SKIP tmux is not installed (make deps installs it)"; n=$((n + 1))
else
  T() { tmux -S "$sock" "$@"; }
  wait_pane() {
    local i
    for i in $(seq $(( ${2:-10} * 10 ))); do
      T capture-pane -p -J -S -200 -t r | grep -Eq -- "$1" && return 0
      sleep 0.1
    done
    return 1
  }
  pane() { T capture-pane -p -J -S -200 -t r; }
  T new-session -d -s r -x 100 -y 30 \
    "XDG_STATE_HOME=$W/state $PROVIUM repl --no-color $W/repl_test.lua; echo RUN-EXIT=\$?; sleep 60"
  if wait_pane '^provium> $' 15; then ok "provium repl: the prompt appears on the terminal"; else
    nok "the prompt appears" "$(pane | tail -8)"; fi
  T send-keys -t r 'box:wait_re' Tab
  if wait_pane '^provium> box:wait_ready$' 5; then ok "Tab completes a VM method (box:wait_re -> box:wait_ready)"; else
    nok "Tab completion of a VM method" "$(pane | tail -5)"; fi
  T send-keys -t r '()' Enter
  wait_pane '^true$' 5
  T send-keys -t r 'provium.en' Tab
  T send-keys -t r '("HOME") ~= nil' Enter
  T send-keys -t r '=6*7' Enter
  wait_pane '^42$' 5
  T send-keys -t r Up
  sleep 0.3
  T send-keys -t r Enter
  sleep 0.5
  if [ "$(pane | grep -c '^42$')" = 2 ] && pane | grep -q 'provium.env("HOME") ~= nil' &&
     [ "$(pane | grep -c '^true$')" -ge 2 ]; then
    ok "Up recalls the previous line and Enter runs it again (42 twice); provium.en completes too"
  else
    nok "history recall with Up" "$(pane | tail -10)"
  fi
  T send-keys -t r 'half a line'
  sleep 0.3
  T send-keys -t r C-c
  T send-keys -t r '=1+1' Enter
  if wait_pane '^provium> half a line\^C$' 5 && wait_pane '^2$' 5; then
    ok "Ctrl-C drops the line being typed; the prompt goes on"
  else
    nok "Ctrl-C at the prompt" "$(pane | tail -5)"
  fi
  T send-keys -t r C-d
  if wait_pane 'RUN-EXIT=0' 15; then ok "Ctrl-D leaves the prompt and the run ends (exit 0)"; else
    nok "Ctrl-D ends the run" "$(pane | tail -8)"; fi
  if grep -q '6\*7' "$W/state/provium/history" 2>/dev/null; then
    ok "the history is saved in \$XDG_STATE_HOME/provium/history"
  else
    nok "history saved" "$(ls -la "$W/state" "$W/state/provium" 2>&1)"
  fi
  T kill-session -t r
fi

# 4. nothing left: no worker, agent or sandbox of these runs
sleep 0.3
if pgrep -f "$W/repl_test.lua" > /dev/null; then nok "nothing left behind" "$(pgrep -af "$W/repl_test.lua")"; else
  ok "nothing left behind (no worker, no agent, no sandbox)"; fi
done_testing
