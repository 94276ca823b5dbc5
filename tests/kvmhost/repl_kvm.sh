#!/usr/bin/env bash
# repl_kvm.sh — the prompt of `provium run --interactive` and `--pause-on-failure` on kvm
# (docs/debugging.md "On kvm"), run INSIDE the simulated KVM host by tests/kvmhost/tier.sh
# (`tests/kvmhost/run.sh -- bash tests/kvmhost/repl_kvm.sh`), on a real terminal (tmux):
# the file's Linux VM boots before the prompt; tests() lists the tests; a test run twice
# shows both results; the failing one is reported; the guest's state is read from the
# prompt (vm:read_file, vm:succeed, vms()); shell() gives a shell in the VM that runs a
# command and shows its output, Ctrl-] comes back to the prompt; Ctrl-D ends the run
# (exit 1: a test failed at it). Then --pause-on-failure stops at the failure with the
# VM, its TAP and the run's namespace live, a command in the VM works from the prompt,
# Ctrl-D goes on: the failure is reported, the run exits 1. After each run nothing is
# left: no provium process, namespace, TAP or temp dir. Prints TAP.
user_cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
. "$(dirname "$0")/../runner/lib.sh"
export PROVIUM_CACHE_DIR=$user_cache          # the guest kernel
export TMPDIR=$W XDG_STATE_HOME=$W/state      # the runs' temp dirs, the prompt's history
sock=$W/tmux.sock
T() { tmux -S "$sock" "$@"; }
trap 'tmux -S "$sock" kill-server 2>/dev/null; "$PROVIUM" kill --all >/dev/null 2>&1; rm -rf "$W"' EXIT
pane() { T capture-pane -p -J -S -400 -t "$s" 2>/dev/null; }
shown() { pane | grep -v '^$' | tail -"$1"; } # the pane's last N lines that are not empty
wait_pane() { # PATTERN [SECONDS]
  local i; for i in $(seq $(( ${2:-30} * 10 ))); do pane | grep -Eq -- "$1" && return 0; sleep 0.1; done; return 1
}
# after PATTERN: the pane's lines after the last line matching PATTERN
after() { pane | awk -v p="$1" '$0 ~ p { buf = ""; found = 1; next } found { buf = buf $0 "\n" } END { printf "%s", buf }'; }
say() { T send-keys -t "$s" -- "$1" Enter; }
dump() { [ -z "${VERBOSE:-}" ] || pane | grep -v '^$' | sed 's/^/#   /' >&2; } # VERBOSE=1: the session
netns() { ip netns list 2>/dev/null | grep -o '^provium-[0-9a-f-]*'; }
leftovers() { # what a run may leave: processes, namespaces, TAPs, temp dirs, kept VMs
  pgrep -x provium | sed 's/^/provium pid /'; pgrep -x provium-hold | sed 's/^/holder pid /'
  netns | sed 's/^/netns /'; ip -o link show type tun 2>/dev/null | sed 's/^/tap /'
  ls -d "$W"/provium-* 2>/dev/null | sed 's/^/temp dir /'; ls -A "$W/kept" 2>/dev/null | sed 's/^/kept /'
}

if ! command -v tmux > /dev/null; then
  ok "the prompt on kvm # SKIP tmux is not installed (make deps installs it)"; done_testing; exit 0
fi
python3 -c 'import re,sys; sys.stdout.write(re.search(r"```lua\n-- web_test.lua\n(.*?)```", open(sys.argv[1]).read(), re.S).group(1))' \
  "$root/docs/debugging.md" > "$W/web_test.lua"
run_in_tmux() { # SESSION ARGS...: provium run ARGS on a terminal; RUN-EXIT=N when it ends
  s=$1; shift
  T new-session -d -s "$s" -x 120 -y 50 \
    "TMPDIR=$W XDG_STATE_HOME=$W/state PROVIUM_KEPT_DIR=$W/kept $PROVIUM run --no-color --backend kvm --timeout 300 $* $W/web_test.lua; echo RUN-EXIT=\$?; sleep 300"
}

# ---- 1. provium run --interactive: the file's kvm VM is up at the prompt ----
start=$(date +%s)
run_in_tmux r --interactive
if wait_pane '^provium> $' 300 && pane | grep -q 'web_test.lua loaded: 2 tests, VMs: web'; then
  ok "run --interactive on kvm: the prompt opens once the VM booted ($(( $(date +%s) - start )) s)"
else nok "the prompt on kvm" "$(shown 15)"; fi

say 'tests()'
if wait_pane '^2 tests$' 30 && pane | grep -Eq '^  the kernel is Linux +.*web_test.lua:4' &&
   pane | grep -Eq '^  the service started +.*web_test.lua:7'; then
  ok "tests() lists the file's two tests and where they are"
else nok "tests()" "$(shown 6)"; fi

say 'run("Linux")'
wait_pane '^ran 1 test: 1 passed, 0 failed$' 120
say 'run("Linux")'
for _ in $(seq 1200); do [ "$(pane | grep -c '^ran 1 test: 1 passed, 0 failed$')" -ge 2 ] && break; sleep 0.1; done
if [ "$(pane | grep -Ec '^ +ok +the kernel is Linux \(')" = 2 ] &&
   [ "$(pane | grep -c '^ran 1 test: 1 passed, 0 failed$')" = 2 ]; then
  ok "run(name) twice: the kvm test runs twice, both results on the terminal"
else nok "a test run twice" "$(shown 10)"; fi

say 'run("service")'
if wait_pane '^ran 1 test: 0 passed, 1 failed$' 120 && pane | grep -Eq '^ +FAIL +the service started' &&
   pane | grep -q 'got: *"starting\\n"'; then
  ok "run() of the failing test: FAIL and what the guest said"
else nok "the failing test at the prompt" "$(shown 10)"; fi

say '=web:read_file("/tmp/state")'
wait_pane '^starting$' 60
say '=web:succeed("hostname; uname -s")'
wait_pane '^Linux$' 60
say 'vms()'
if wait_pane '^ +web +kvm +running' 30 && pane | grep -qx 'starting' && pane | grep -qx 'web'; then
  ok "the VM from the prompt: read_file sees what the test left, succeed runs in it, vms() says kvm, running"
else nok "inspecting the VM from the prompt" "$(shown 10)"; fi

say 'shell("web")'
if wait_pane 'web:/# ' 120; then
  say 'echo in-$((6*7)); cat /tmp/state; stty size'
  wait_pane '^50 120$' 60
  T send-keys -t "$s" C-]
fi
if wait_pane 'left the shell of VM web' 30 && [ "$(after 'a shell in VM web' | grep -c '^in-42$')" = 1 ] &&
   after 'a shell in VM web' | grep -qx 'starting' && after 'a shell in VM web' | grep -qx '50 120'; then
  ok "shell() in the kvm VM: a command and its output on the terminal (the test's file, the window size), Ctrl-] leaves"
else nok "shell() from the prompt" "$(shown 12)"; fi
say '=6*7'
if wait_pane '^42$' 30 && after 'left the shell of VM web' | grep -q '^provium> '; then
  ok "after the shell the prompt goes on"
else nok "the prompt after the shell" "$(shown 6)"; fi

T send-keys -t "$s" C-d
if wait_pane '^RUN-EXIT=1$' 120 && pane | grep -Eq '^[0-9]+ passed, 1 failed'; then
  ok "Ctrl-D ends the run: exit 1, a test failed at the prompt ($(( $(date +%s) - start )) s in all)"
else nok "Ctrl-D ends the run" "$(shown 8)"; fi
dump; T kill-session -t "$s"
sleep 0.5
left=$(leftovers)
if [ -z "$left" ]; then ok "after the interactive run nothing is left (process, namespace, TAP, temp dir)"
else nok "left after --interactive" "$left"; fi

# ---- 2. provium run --pause-on-failure: paused at the failure with the VM live ----
start=$(date +%s)
run_in_tmux p --pause-on-failure
if wait_pane 'paused before its teardown' 300 && pane | grep -Eq '^ +ok +the kernel is Linux' &&
   pane | grep -q 'test "the service started" failed at .*web_test.lua:9' && wait_pane '^provium> $' 10; then
  ok "--pause-on-failure on kvm: the passing test reported, then the prompt at the failure ($(( $(date +%s) - start )) s)"
else nok "the pause on kvm" "$(shown 15)"; fi
ns=$(netns)
taps=$([ -n "$ns" ] && ip netns exec "$ns" ip -o link show type tun 2>/dev/null | wc -l)
say '=vm("web"):succeed("cat /tmp/state; hostname")'
if wait_pane '^web$' 60 && after 'cat /tmp/state; hostname' | grep -qx 'starting' && [ -n "$ns" ] && [ "${taps:-0}" -ge 1 ]; then
  ok "paused: a command in the VM works from the prompt (the failed test's file); its namespace $ns and TAP are up"
else nok "a command in the paused VM" "ns=$ns taps=$taps" "$(shown 6)"; fi
say '=t.name'
wait_pane '^the service started$' 30 || nok "t is the failed test" "$(shown 4)"
T send-keys -t "$s" C-d
if wait_pane '^RUN-EXIT=1$' 120 && after 'paused before its teardown' | grep -Eq '^ +FAIL +the service started' &&
   pane | grep -Eq '^[0-9]+ passed, 1 failed'; then
  ok "Ctrl-D goes on with the run: the failure is reported after the prompt, exit 1"
else nok "the run after the pause" "$(shown 10)"; fi
dump; T kill-session -t "$s"
sleep 0.5
left=$(leftovers)
if [ -z "$left" ]; then ok "after the paused run nothing is left (process, namespace, TAP, temp dir)"
else nok "left after --pause-on-failure" "$left"; fi
done_testing
