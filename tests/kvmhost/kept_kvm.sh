#!/usr/bin/env bash
# kept_kvm.sh — kept kvm VMs (docs/debugging.md "Kept VMs"), run INSIDE the simulated KVM
# host by tests/kvmhost/tier.sh (`tests/kvmhost/run.sh -- bash tests/kvmhost/kept_kvm.sh`):
# `provium run --keep` with a failed kvm test leaves its Linux VM running in its worker,
# now the VM's holder, and says how to reach it; `provium ps` lists it as kvm; a piped
# `provium shell NAME` runs in the guest and returns the shell's status; `provium console
# -n` shows its console; a shell on a terminal (tmux) works while the first one is gone;
# its bridge with NAT still carries traffic after the run; `provium kill NAME` ends the
# holder and leaves no process, socket, namespace or temp dir; a holder killed outright
# is cleaned up by the next reader; Ctrl-C on the run's terminal right after the kept
# message leaves the holder; a guest powering off ends it, leaving nothing; a file's two
# VMs share a holder that outlives the run's terminal, and are killed one by one; a
# passing file keeps nothing. Prints TAP.
user_cache=${PROVIUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provium}
. "$(dirname "$0")/../runner/lib.sh"
export PROVIUM_CACHE_DIR=$user_cache          # the guest kernel
export PROVIUM_KEPT_DIR=$W/kept TMPDIR=$W     # the runs' temp dirs too: none may be left
busybox=$root/build/rootfs/bin/busybox
sock=$W/tmux.sock
T() { tmux -S "$sock" "$@"; }
trap 'tmux -S "$sock" kill-server 2>/dev/null; "$PROVIUM" kill --all >/dev/null 2>&1; rm -rf "$W"' EXIT
pane() { T capture-pane -p -J -S -200 2>/dev/null; }
wait_pane() { # PATTERN [SECONDS]
  local i; for i in $(seq $(( ${2:-30} * 10 ))); do pane | grep -Eq -- "$1" && return 0; sleep 0.1; done; return 1
}
netns() { ip netns list 2>/dev/null | grep -o '^provium-[0-9a-f-]*'; }
holders() { pgrep -x provium-hold; }
run_keep() { # DIR: provium run --keep DIR (stderr in $W/err), exit status in $code
  "$PROVIUM" run --keep --backend kvm --timeout 300 "$1" > "$W/out" 2> "$W/err"; code=$?
}

mkdir -p "$W/fail" "$W/pass"
# the failing file is docs/debugging.md's example ("Kept kvm VMs")
python3 -c 'import re,sys; sys.stdout.write(re.search(r"```lua\n-- k_test.lua\n(.*?)```", open(sys.argv[1]).read(), re.S).group(1))' \
  "$root/docs/debugging.md" > "$W/fail/k_test.lua"
cat > "$W/pass/p_test.lua" <<'L'
local vm = provium:vm("passes")
test("passes", function(t) t:eq(vm:succeed("echo hi"), "hi\n") end)
L

start=$(date +%s)
run_keep "$W/fail"
pid=$(sed -n 's/.*VM keepme (kvm) is still running, held by pid \([0-9]*\),.*/\1/p' "$W/err")
nat_ip=$(sed -n 's/^NAT-IP=//p' "$W/err")
tmp=$(sed -n 's/.*--keep: temp dir \(.*\) kept$/\1/p' "$W/err")
ns=$(netns)
if [ "$code" = 1 ] && [ -n "$pid" ] && grep -q '  a shell:   provium shell keepme' "$W/err" &&
   grep -q '  console:   provium console keepme' "$W/err" && grep -q '  stop it:   provium kill keepme' "$W/err"; then
  ok "--keep on kvm: the run fails (1) and says the VM is held by pid $pid, how to reach and stop it ($(( $(date +%s) - start )) s)"
else nok "--keep on kvm: message (exit $code)" "$(tail -12 "$W/err")"; fi
if [ -n "$pid" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = provium-hold ] && [ -d "$tmp" ] && [ -n "$ns" ]; then
  ok "after the run: its worker holds the VM (provium-hold), its temp dir and the run's namespace $ns stay"
else nok "the holder after the run" "pid=$pid comm=$(cat /proc/$pid/comm 2>/dev/null) tmp=$tmp ns=$ns"; fi

ps_out=$("$PROVIUM" ps)
if grep -Eq "^keepme +kvm +$pid +[0-9]+s +.*k_test.lua$" <<<"$ps_out"; then
  ok "provium ps lists it: name, backend kvm, the holder's pid, age, file"
else nok "provium ps" "$ps_out"; fi

out=$(printf 'cat /root/mark; echo; hostname; exit 3\n' | "$PROVIUM" shell keepme 2>&1); code=$?
if [ "$code" = 3 ] && [ "$out" = "$(printf 'left by the test\nkeepme')" ]; then
  ok "provium shell NAME with a piped stdin runs in the guest (the test's file, its hostname); exit status 3 is the shell's"
else nok "piped provium shell (exit $code, want 3)" "$out"; fi

if "$PROVIUM" console -n keepme > "$W/con" 2>&1 && grep -q 'provium-init: agent started' "$W/con" &&
   grep -q '^console-said-this' "$W/con"; then
  ok "provium console -n NAME shows the VM's console from its boot (the agent starting, the test's line)"
else nok "provium console -n" "$(tail -5 "$W/con")"; fi
"$PROVIUM" console keepme > "$W/con2" 2> "$W/con2.err" & cpid=$!
printf 'echo later-line > /dev/console\n' | "$PROVIUM" shell keepme > /dev/null 2>&1
for _ in $(seq 50); do grep -q '^later-line' "$W/con2" && break; sleep 0.1; done
if grep -q '^later-line' "$W/con2"; then ok "provium console NAME follows it live"
else nok "provium console follows" "$(tail -3 "$W/con2")"; fi

# its network after the run: the NAT bridge, its relay and the host end of the veth
port=$(( 20000 + RANDOM % 20000 ))
timeout 30 "$busybox" nc -l -p "$port" > "$W/nc.out" 2>&1 & ncpid=$!
for _ in $(seq 50); do grep -q ":$(printf '%04X' $port) .* 0A " /proc/net/tcp && break; sleep 0.1; done
out=$(printf 'echo hello-after-the-run | nc -w 3 %s %d; echo nc=$?\n' "$nat_ip" "$port" | "$PROVIUM" shell keepme 2>&1)
for _ in $(seq 50); do grep -q hello-after-the-run "$W/nc.out" && break; sleep 0.1; done
if [ -n "$nat_ip" ] && grep -q hello-after-the-run "$W/nc.out"; then
  ok "its bridge with NAT still works: the kept VM reaches a host listener on $nat_ip"
else nok "kept VM's network" "nat_ip=$nat_ip $out" "$(cat "$W/nc.out")"; fi
kill "$ncpid" 2>/dev/null; wait "$ncpid" 2>/dev/null

if command -v tmux > /dev/null; then
  T new-session -d -s s -x 100 -y 30 "PROVIUM_KEPT_DIR=$W/kept $PROVIUM shell keepme; echo SHELL-EXIT=\$?; sleep 60"
  if wait_pane 'keepme:/# ' 60; then
    T send-keys -t s 'echo out-$((6*7)); stty size' Enter
    wait_pane '^30 100' && T send-keys -t s C-]
  fi
  if wait_pane 'SHELL-EXIT=0' && pane | grep -q '^out-42' && pane | grep -q 'left the shell of VM keepme' &&
     [ -e "/proc/$pid" ]; then
    ok "provium shell on a terminal (tmux): prompt, output, window size, Ctrl-] leaves; the VM stays"
  else nok "provium shell on a terminal" "$(pane | tail -8)"; fi
  T kill-server 2>/dev/null
else
  ok "provium shell on a terminal # SKIP tmux is not installed (make deps installs it)"
fi

out=$("$PROVIUM" kill keepme 2>&1); code=$?
left=$(ls -A "$W/kept"; [ -e "$tmp" ] && echo "$tmp"; netns)
if [ "$code" = 0 ] && [ "$out" = "killed VM keepme (pid $pid)" ] && gone "$pid" && [ -z "$left" ]; then
  ok "provium kill NAME ends the holder; no entry, socket, console file, temp dir or namespace is left"
else nok "provium kill (exit $code)" "$out" "left: $left" "holder: $(holders)"; fi
if gone "$cpid" && grep -q 'VM keepme ended' "$W/con2.err"; then ok "a following provium console ends with its VM"
else nok "console follower after kill" "$(cat "$W/con2.err")"; kill "$cpid" 2>/dev/null; fi

# a holder killed outright: the next reader of the registry cleans up after it
run_keep "$W/fail"
pid=$(sed -n 's/.*VM keepme (kvm) is still running, held by pid \([0-9]*\),.*/\1/p' "$W/err")
tmp=$(sed -n 's/.*--keep: temp dir \(.*\) kept$/\1/p' "$W/err")
[ -n "$pid" ] && kill -KILL "$pid"; gone "$pid"
"$PROVIUM" ps > "$W/ps" 2>&1
left=$(ls -A "$W/kept"; [ -e "$tmp" ] && echo "$tmp"; netns)
if [ -n "$pid" ] && [ "$(head -1 "$W/ps")" = "no kept VMs (in $W/kept)" ] && [ -z "$left" ]; then
  ok "a holder killed with SIGKILL: provium ps forgets its VM, removes its socket, temp dir and namespace"
else nok "stale holder (pid $pid)" "$(cat "$W/ps")" "left: $left"; fi

# Ctrl-C on the run's terminal right after the message, while the run goes on with a
# slower file: the run is interrupted (130), but the holder, out of the run in a process
# group of its own, stays with its VM; then the guest powers off by itself: the holder
# forgets it and ends, and nothing of the run is left
mkdir -p "$W/ctrlc"
cp "$W/fail/k_test.lua" "$W/ctrlc/k_test.lua"
printf 'test("slow", function() provium.sleep(120) end, { timeout = 200 })\n' > "$W/ctrlc/z_test.lua"
if command -v tmux > /dev/null; then
  T new-session -d -s c -x 100 -y 30 "PROVIUM_KEPT_DIR=$W/kept TMPDIR=$W $PROVIUM run -j1 --keep --backend kvm --timeout 300 $W/ctrlc; echo RUN-EXIT=\$?; sleep 60"
  T set-option -t c remain-on-exit on
  wait_pane 'VM keepme \(kvm\) is still running, held by pid' 180 && T send-keys -t c C-c
  pid=$(pane | sed -n 's/.*VM keepme (kvm) is still running, held by pid \([0-9]*\),.*/\1/p')
  wait_pane 'RUN-EXIT=' 30
  tmp=$(pane | sed -n 's/.*k_test.lua: --keep: temp dir \(.*\) kept$/\1/p')
  sleep 1
  # (the terminal's echo of the Ctrl-C, "^C", may land at the start of that line)
  if [ -n "$pid" ] && pane | grep -Eq '^(\^C)?RUN-EXIT=130$' && [ "$(cat /proc/$pid/comm 2>/dev/null)" = provium-hold ] &&
     ! pgrep -x provium > /dev/null && "$PROVIUM" ps | grep -Eq "^keepme +kvm +$pid " &&
     [ "$(printf 'hostname\n' | "$PROVIUM" shell keepme 2>&1)" = keepme ]; then
    ok "Ctrl-C on the run's terminal right after the kept message: the run ends interrupted (130), the holder and its VM stay"
  else nok "Ctrl-C after the kept message (pid $pid)" "$(pane | grep -v '^$' | tail -8)" "$("$PROVIUM" ps 2>&1)" "$(pgrep -ax provium)"; fi
  T kill-server 2>/dev/null
  printf 'poweroff -f\n' | "$PROVIUM" shell keepme > /dev/null 2>&1
  for _ in $(seq 300); do gone "$pid" && break; done
  "$PROVIUM" ps > "$W/ps" 2>&1
  left=$(ls -A "$W/kept"; [ -n "$tmp" ] && [ -e "$tmp" ] && echo "$tmp"; netns; holders)
  if [ -n "$pid" ] && gone "$pid" && [ "$(head -1 "$W/ps")" = "no kept VMs (in $W/kept)" ] && [ -n "$tmp" ] && [ -z "$left" ]; then
    ok "the kept guest powers off: its holder forgets the VM and ends; ps lists nothing; no entry, socket, temp dir or namespace"
  else nok "a kept guest powering off (pid $pid, tmp $tmp)" "$(cat "$W/ps")" "left: $left"; fi
else
  ok "Ctrl-C after the kept message, a kept guest powering off # SKIP tmux is not installed (make deps installs it)"
fi

# two VMs of one file, kept from a run on a terminal that then goes away: one holder
# for both; a pid is then not enough; kill one, the other stays; kill --all
mkdir -p "$W/two"
cat > "$W/two/two_test.lua" <<'L'
local a, b = provium:vm("vma"), provium:vm("vmb")
test("fails with two VMs", function(t) t:eq(a:succeed("hostname") .. b:succeed("hostname"), "") end)
L
if command -v tmux > /dev/null; then
  T new-session -d -s r -x 100 -y 30 "PROVIUM_KEPT_DIR=$W/kept TMPDIR=$W $PROVIUM run --keep --backend kvm --timeout 300 $W/two; echo RUN-EXIT=\$?; sleep 60"
  wait_pane 'RUN-EXIT=1' 120
  pid=$(pane | sed -n 's/.*VM vma (kvm) is still running, held by pid \([0-9]*\),.*/\1/p')
  T kill-server 2>/dev/null; sleep 0.5
  out=$("$PROVIUM" shell "$pid" < /dev/null 2>&1); code=$?
  if [ -n "$pid" ] && [ "$code" = 2 ] && grep -q "pid $pid holds 2 kept VMs: name one" <<<"$out" &&
     [ "$(printf 'hostname\n' | "$PROVIUM" shell vmb 2>&1)" = vmb ]; then
    ok "a file's two kvm VMs share one holder, which outlives the terminal of the run; a pid is refused, naming says which"
  else nok "two VMs in one holder (pid $pid, exit $code)" "$out" "$(ls -A "$W/kept")"; fi
  out=$("$PROVIUM" kill vma 2>&1)
  if [ "$out" = "killed VM vma (pid $pid)" ] && [ -e "/proc/$pid" ] && ! "$PROVIUM" ps | grep -q '^vma ' &&
     [ "$(printf 'hostname\n' | "$PROVIUM" shell vmb 2>&1)" = vmb ]; then
    ok "provium kill of one of them: the holder goes on with the other"
  else nok "kill one of two" "$out" "$("$PROVIUM" ps)"; fi
  out=$("$PROVIUM" kill --all 2>&1)
  left=$(ls -A "$W/kept"; ls -d "$W"/provium-* 2>/dev/null; holders)
  if [ "$out" = "killed VM vmb (pid $pid)" ] && gone "$pid" && [ -z "$left" ]; then
    ok "provium kill --all ends the holder with its last VM; nothing is left"
  else nok "kill --all" "$out" "left: $left"; fi
else
  ok "two kvm VMs in one holder # SKIP tmux is not installed (make deps installs it)"
fi

run_keep "$W/pass"
left=$(ls -A "$W/kept"; ls -d "$W"/provium-* 2>/dev/null; holders; netns)
if [ "$code" = 0 ] && ! grep -q -- '--keep' "$W/err" && [ -z "$left" ]; then
  ok "a passing file keeps nothing (no holder, entry, temp dir or namespace)"
else nok "passing file with --keep (exit $code)" "$(tail -5 "$W/err")" "left: $left"; fi
done_testing
