#!/usr/bin/env bash
# tier.sh — the `kvmhost` test tier (tests/run-tiers.sh; `make test-kvmhost`): the linux
# tier (tests/linux/run.sh: Linux microVMs on Provium's VMM) run inside a simulated KVM
# host (tests/kvmhost/run.sh), for hosts whose own /dev/kvm cannot run Linux guests (PVM,
# shared/spec/ENVIRONMENT.md). Prints ONE TAP stream on stdout, progress on stderr.
#
# First the harness checks itself (exit status and output pass through; the time limit
# and SIGINT leave no QEMU process and no temporary directory behind), then the guest
# kernel + initramfs are built here on the host if missing (never inside: everything
# inside runs under the emulator), then the linux tier runs inside.
#
# Where this host runs Linux guests directly, the linux tier does that and this tier
# is one skip saying so; without qemu-system-x86_64 it is one skip naming the package.
# PROVIUM_KVMHOST_TIMEOUT (seconds, default 1200) bounds the inner run (a shard whose
# simulated host stopped for good, run.sh's 123, runs once more); PROVIUM_KVMHOST_SHARDS
# (default: this machine's CPUs, at most 4) is how many simulated hosts share the files.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
export PROVIUM_BUILD=${PROVIUM_BUILD:-$root/build}
provium=$PROVIUM_BUILD/provium
. "$root/tests/tap-lib.sh"   # emit: renumbers TAP results into $n, counts $failed
. "$here/shards.sh"          # kvmhost_shards, inner, kvmhost_leftovers
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
echo "TAP version 13"
if [ ! -x "$provium" ]; then nok "$provium is not built"; echo "1..$n"; exit 1; fi
if "$provium" doctor 2>&1 | grep -q 'backend auto = kvm'; then
  ok "kvmhost tier # SKIP this host runs Linux guests directly: the linux tier runs them"
  echo "1..$n"; exit 0
fi
if ! command -v qemu-system-x86_64 >/dev/null; then
  ok "kvmhost tier # SKIP qemu-system-x86_64 is not installed (apt-get install qemu-system-x86, or make deps)"
  echo "1..$n"; exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  ok "kvmhost tier # SKIP needs root (the simulated host shares / over 9p as root)"
  echo "1..$n"; exit 0
fi

work=$(mktemp -d /tmp/provium-kvmhost-tier.XXXXXX)
trap 'rm -rf "$work"' EXIT
leftovers() { kvmhost_leftovers qemu-system-x86_64; }
ls -d /tmp/provium-kvmhost.* > "$work/before" 2>/dev/null

# ---- the harness itself ----
"$here/hostkernel.sh" >/dev/null 2>"$work/hk.err" ||
  { nok "host kernel: $(tail -1 "$work/hk.err")"; echo "1..$n"; exit 1; }
start=$(date +%s)
out=$("$here/run.sh" --timeout 300 -- sh -c 'echo out-line; echo err-line >&2; grep -c "^flags.* svm" /proc/cpuinfo; exit 7' 2>"$work/err")
rc=$?
if [ $rc -eq 7 ] && [ "$(printf '%s\n' "$out" | head -1)" = out-line ] && grep -q '^err-line$' "$work/err" &&
   ! printf '%s\n' "$out" | grep -q err-line; then
  ok "kvmhost: a command's exit status, stdout and stderr pass through ($(( $(date +%s) - start )) s)"
else
  nok "kvmhost: a command's exit status, stdout and stderr pass through (exit $rc, stdout: $out)"
  sed 's/^/# /' "$work/err" | tail -30
fi
# a checkout or working directory under /tmp, /var/tmp or /run (tmpfs inside) is seen
mkdir -p "$work/wd" && echo seen-inside > "$work/wd/f"
out=$(cd "$work/wd" && "$here/run.sh" --timeout 300 -- sh -c 'pwd; cat f' 2>"$work/err"); rc=$?
if [ $rc -eq 0 ] && [ "$out" = "$work/wd
seen-inside" ]; then ok "kvmhost: a working directory under /tmp is seen inside (bound over the tmpfs)"
else nok "kvmhost: a working directory under /tmp is seen inside (exit $rc, stdout: $out)"; sed 's/^/# /' "$work/err" | tail -5; fi
"$here/run.sh" --timeout 4 -- sleep 600 >/dev/null 2>"$work/err"; rc=$?
left=$(leftovers)
if [ $rc -eq 124 ] && [ -z "$left" ]; then ok "kvmhost: the time limit kills the simulated host and leaves nothing behind"
else nok "kvmhost: the time limit kills the simulated host (exit $rc, want 124; left: ${left:-nothing})"; fi
# with job control: a background job of a script otherwise starts with SIGINT ignored.
# A shell that was itself started with SIGINT ignored (under `nohup cmd &`, say) cannot
# trap it, nor can run.sh under it: then the check cannot be made.
if [ $(( 0x$(awk '/^SigIgn:/ { print $2 }' /proc/self/status) & 2 )) -ne 0 ]; then
  n=$((n + 1))
  echo "ok $n - kvmhost: SIGINT ends the run # SKIP SIGINT is ignored in this process (inherited from how it was started), so no shell under it can trap it"
else
  set -m
  "$here/run.sh" --timeout 300 -- sleep 600 >/dev/null 2>"$work/err" & rpid=$!
  set +m
  sleep 3; kill -INT $rpid; wait $rpid; rc=$?
  sleep 0.5; left=$(leftovers)
  if [ $rc -eq 130 ] && [ -z "$left" ]; then ok "kvmhost: SIGINT ends the run with 130 and leaves nothing behind"
  else nok "kvmhost: SIGINT ends the run (exit $rc, want 130; left: ${left:-nothing})"; sed 's/^/# /' "$work/err" | tail -15; fi
fi

# a stopped simulated host (QEMU's lost timer interrupt, run.sh): its heartbeat is
# stopped here by hand; the harness must notice, show the vCPU, send the NMI (the
# kernel inside must see it) and go on once the heartbeat is back
out=$(PROVIUM_KVMHOST_STALL=8 "$here/run.sh" --timeout 300 -- sh -c '
  hb=$(ps -o ppid= -C sleep | head -1 | tr -d " "); kill -STOP "$hb"
  for i in $(seq 120); do dmesg | grep -q "NMI received for unknown reason" && break; sleep 0.5; done
  dmesg | grep -q "NMI received for unknown reason" && echo nmi-seen
  kill -CONT "$hb"; sleep 8; exit 5' 2>"$work/err"); rc=$?
if [ $rc -eq 5 ] && [ "$out" = nmi-seen ] && grep -q 'stopped: no heartbeat' "$work/err" &&
   grep -q '^\[kvmhost\]   RIP=' "$work/err" && grep -q 'came back (stop 1' "$work/err"; then
  ok "kvmhost: a stopped simulated host is noticed, shown, sent an NMI, and goes on"
else
  nok "kvmhost: a stopped simulated host is woken (exit $rc, want 5; stdout: $out)"; grep '\[kvmhost\]' "$work/err" | sed 's/^/# /' | tail -12
fi

# --shell (docs/linux-tests.md, debugging): a shell inside on a terminal (tmux)
if command -v tmux >/dev/null; then
  sock=$work/tmux.sock
  tmux -S "$sock" new-session -d -x 160 -y 40 "$here/run.sh --shell; echo SHELL-ENDED-\$?; sleep 30"
  for _ in $(seq 120); do tmux -S "$sock" capture-pane -p | grep -q 'a shell inside' && break; sleep 0.5; done
  tmux -S "$sock" send-keys "hostname; ls /dev/kvm; echo MARK-\$((6*7))" Enter
  for _ in $(seq 60); do tmux -S "$sock" capture-pane -p | grep -q '^MARK-42' && break; sleep 0.5; done
  tmux -S "$sock" send-keys "exit" Enter
  for _ in $(seq 60); do tmux -S "$sock" capture-pane -p | grep -q 'SHELL-ENDED-0' && break; sleep 0.5; done
  pane=$(tmux -S "$sock" capture-pane -p)
  tmux -S "$sock" kill-server 2>/dev/null
  if printf '%s\n' "$pane" | grep -qx kvmhost && printf '%s\n' "$pane" | grep -qx /dev/kvm &&
     printf '%s\n' "$pane" | grep -q '^MARK-42' && printf '%s\n' "$pane" | grep -q 'SHELL-ENDED-0' && [ -z "$(leftovers)" ]
  then ok "kvmhost: --shell gives a shell inside on the terminal; exit powers it off and leaves nothing"
  else nok "kvmhost: --shell"; printf '%s\n' "$pane" | tail -15 | sed 's/^/# /'; fi
else
  ok "kvmhost: --shell # SKIP tmux is not installed (make deps)"
fi

# ---- the guest kernel, built here (minutes once, cached) ----
if ! "$provium" kernel path >/dev/null 2>&1; then
  echo "# building the guest kernel + initramfs on this host (make kernel; a few minutes, cached)" >&2
  make -C "$root" kernel >&2 || { nok "make kernel failed"; echo "1..$n"; exit 1; }
fi

# ---- what needs this kernel's soft-dirty bits, which the host's may lack: a snapshotted
# VM's RAM handed to the next restore (vmm/snapshot_warm.c), its unit and guest tests ----
start=$(date +%s)
"$here/run.sh" --timeout 600 -- sh -c "CMOCKA_MESSAGE_OUTPUT=tap '$PROVIUM_BUILD/tests/unit/test_snapshot_warm';
  CMOCKA_MESSAGE_OUTPUT=tap '$PROVIUM_BUILD/tests/guest/host_snapshot_warm'" > "$work/warm.tap" 2> "$work/warm.err"; code=$?
inner "- inside: " "$work/warm.tap" $code "the warm-RAM unit and guest tests" "$work/warm.err" 20
echo "# kvmhost: the warm-RAM tests took $(( $(date +%s) - start )) s" >&2

# ---- vm:shell() on a kvm VM, on a real terminal (tmux) inside the simulated host ----
start=$(date +%s)
"$here/run.sh" --timeout 900 -- bash tests/runner/shell.sh > "$work/shell.tap" 2> "$work/shell.err"; code=$?
inner "- kvm: " "$work/shell.tap" $code "tests/runner/shell.sh on kvm" "$work/shell.err" 20
echo "# kvmhost: vm:shell on kvm took $(( $(date +%s) - start )) s" >&2

# ---- the prompt (run --interactive, --pause-on-failure; docs/debugging.md) on kvm inside ----
start=$(date +%s)
"$here/run.sh" --timeout 600 -- bash tests/kvmhost/repl_kvm.sh > "$work/repl.tap" 2> "$work/repl.err"; code=$?
inner "- repl kvm: " "$work/repl.tap" $code "tests/kvmhost/repl_kvm.sh" "$work/repl.err" 20
echo "# kvmhost: the prompt on kvm took $(( $(date +%s) - start )) s" >&2

# ---- kept kvm VMs (run --keep; provium ps|shell|console|kill, docs/debugging.md) inside ----
start=$(date +%s)
"$here/run.sh" --timeout 600 -- bash tests/kvmhost/kept_kvm.sh > "$work/kept.tap" 2> "$work/kept.err"; code=$?
inner "- kept kvm: " "$work/kept.tap" $code "tests/kvmhost/kept_kvm.sh" "$work/kept.err" 20
echo "# kvmhost: kept kvm VMs took $(( $(date +%s) - start )) s" >&2

# ---- the linux tier inside, one simulated host per CPU (shards.sh) ----
kvmhost_shards kvmhost linux "linux tier"
left=$(leftovers)
[ -z "$left" ] || nok "kvmhost: left behind after the run: $left"
echo "1..$n"
[ $failed -eq 0 ]
