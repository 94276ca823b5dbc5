#!/usr/bin/env bash
# shell.sh — vm:shell() (docs/debugging.md "A shell in a VM") on a real terminal
# (tmux, its own server socket): a prompt with the VM's name, typed commands and their
# output, a window resize the guest sees, the shell's exit status returned to the
# test, Ctrl-] leaving while the test goes on; with a piped stdin the lines run and
# the end of input ends the shell; no timeout fires while a person types; nothing is
# left behind.
user_cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
. "$(dirname "$0")/lib.sh"

if ! command -v tmux > /dev/null; then
  echo "ok 1 - vm:shell on a terminal # SKIP tmux is not installed (make deps installs it)"
  echo "1..1"; exit 0
fi
sock=$W/tmux.sock
T() { tmux -S "$sock" "$@"; }
trap 'tmux -S "$sock" kill-server 2>/dev/null; rm -rf "$W"' EXIT
# Inside the simulated KVM host (tests/kvmhost/tier.sh runs this there, on kvm VMs):
# everything is many times slower, and a Linux VM boots inside the test, so its 2 s
# timeout becomes 120 s (the sandbox run here proves a shell is not timed).
slow=1
# (and its VMs need the guest kernel: the caller's cache, not lib.sh's empty one)
[ "${KVMHOST:-}" = 1 ] && slow=8 && export PROVIUM_CACHE_DIR=$user_cache
# wait_pane PATTERN [SECONDS]: until the pane shows PATTERN (grep -E)
wait_pane() {
  local i
  for i in $(seq $(( ${2:-10} * 10 * slow ))); do
    T capture-pane -p -J -S -200 | grep -Eq -- "$1" && return 0
    sleep 0.1
  done
  return 1
}
pane() { T capture-pane -p -J -S -200; }
# what a session showed, raw (pipe-pane), for a failure's detail: the pane can be gone
shown() { T ls 2>&1 | sed 's/^/tmux: /'; tail -c 1500 "$W/pane.log" 2>/dev/null | tr -d '\r' | tail -12; }

# the example of docs/debugging.md, as written there
python3 - "$root/docs/debugging.md" > "$W/sh_test.lua" <<'P'
import re, sys
m = re.search(r"```lua\n-- shell_test.lua\n(.*?)```", open(sys.argv[1]).read(), re.S)
sys.stdout.write(m.group(1) if m else "")
P
[ "$slow" = 1 ] || sed -i 's/{ timeout = 2 }/{ timeout = 120 }/' "$W/sh_test.lua"
[ -s "$W/sh_test.lua" ] || { nok "docs/debugging.md has the shell_test.lua example"; done_testing; exit 0; }

# 1. typing, resize, exit status (the test's timeout is 2 s: the shell is not timed)
T new-session -d -s s -x 100 -y 30 "$PROVIUM run --no-color $W/sh_test.lua; echo RUN-EXIT=\$?; sleep 60"
T pipe-pane -t s "cat >> $W/pane.log"
if wait_pane 'a shell in VM box; Ctrl-] leaves it' && wait_pane 'box:/# ' ; then
  ok "vm:shell() opens a shell in the VM with its name in the prompt"
else
  nok "vm:shell() opens a shell in the VM" "$(shown)"
fi
T send-keys -t s 'echo typed-in-shell > /tmp/mark; echo out-$((6*7)); stty size' Enter
if wait_pane '^out-42' && wait_pane '^30 100'; then
  ok "typed commands run and their output shows; the terminal is the window's size (30x100)"
else
  nok "typed commands run and show their output" "$(shown)"
fi
sleep 3   # longer than the test's 2 s timeout: a person typing is not timed
T resize-window -t s -x 120 -y 40
T send-keys -t s 'stty size' Enter
if wait_pane '^40 120'; then ok "a window resize reaches the guest (40x120)"; else
  nok "a window resize reaches the guest" "$(shown)"; fi
T send-keys -t s 'exit 3' Enter
if wait_pane 'RUN-EXIT=' 15 && pane | grep -q 'SHELL-RETURNED=3' && pane | grep -q 'RUN-EXIT=0' &&
   pane | grep -q 'left the shell of VM box'; then
  ok "the shell's exit status is vm:shell()'s result; the test then passes"
else
  nok "exit status returned, test passes" "$(shown)"
fi
T kill-session -t s

# 2. Ctrl-] leaves the shell (returns 0), the test goes on
T new-session -d -s e -x 100 -y 30 "$PROVIUM run --no-color $W/sh_test.lua; echo RUN-EXIT=\$?; sleep 60"
T pipe-pane -t e "cat >> $W/pane.log"
if wait_pane 'box:/# '; then
  T send-keys -t e 'echo typed-in-shell > /tmp/mark; sleep 600' Enter
  sleep 0.5
  T send-keys -t e C-]
fi
if wait_pane 'RUN-EXIT=' 15 && pane | grep -q 'SHELL-RETURNED=0' && pane | grep -q 'RUN-EXIT=0'; then
  ok "Ctrl-] leaves the shell (a command still running in it is ended); the test goes on"
else
  nok "Ctrl-] leaves the shell" "$(shown)"
fi
T kill-session -t e

# 3. stdin not a terminal: the lines run, the end of input ends the shell
out=$(printf 'echo typed-in-shell > /tmp/mark\necho piped-$((1+2))\n' |
  "$PROVIUM" run --no-color "$W/sh_test.lua" 2>&1); code=$?
if [ "$code" = 0 ] && grep -q '^piped-3' <<<"$out" && grep -q 'SHELL-RETURNED=0' <<<"$out"; then
  ok "with a piped stdin the lines run and its end ends the shell (exit 0)"
else
  nok "piped stdin" "exit $code" "$(tail -8 <<<"$out")"
fi

# 4. nothing left: no agent or sandbox of these runs
sleep 0.3
if pgrep -f "$W/sh_test.lua" > /dev/null; then
  nok "nothing left behind" "$(pgrep -af "$W/sh_test.lua")"
else
  ok "nothing left behind (no agent, no worker)"
fi
done_testing
