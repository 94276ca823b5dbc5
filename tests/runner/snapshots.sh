#!/usr/bin/env bash
# snapshots.sh — `provium snapshots ls|rm|prune` over $PROVIUM_CACHE_DIR/snapshots,
# on snapshot directories written by tests/runner/mksnap.py (the documented format,
# without KVM): listing, a lab snapshot, a corrupt and an unfinished one, rm, prune.
. "$(dirname "$0")/lib.sh"
S=$PROVIUM_CACHE_DIR/snapshots
mk() { python3 "$root/tests/runner/mksnap.py" "$@" > /dev/null; }

expect_code 0 "ls with no cache says so" "$PROVIUM" snapshots ls
if grep -q "no snapshots in $S" "$W/out"; then ok "ls names the empty cache dir"; else nok "ls names the empty cache dir" "$(cat "$W/out")"; fi

mk "$S/web-ready" web 256 1700000000
mk "$S/pair/a" a 128
mk "$S/pair/b" b 64
mk "$S/broken" db 128
printf 'X' | dd of="$S/broken/vm.state" bs=1 seek=40 conv=notrunc status=none
mk "$S/half.tmp-123" x 16

expect_code 0 "ls lists the cache" "$PROVIUM" snapshots ls
out=$(cat "$W/out")
line() { grep -E "^$1 " "$W/out"; }
if line web-ready | grep -q " vm .*web .*256 MiB .*2023-11-14T22:13:20Z"; then ok "ls: a VM snapshot with its VM, memory and creation time"
else nok "ls: a VM snapshot with its VM, memory and creation time" "$out"; fi
if line pair | grep -q " lab .*a,b .*192 MiB"; then ok "ls: a lab snapshot with its VMs"
else nok "ls: a lab snapshot with its VMs" "$out"; fi
if line broken | grep -q " broken " && grep -q "CRC mismatch" "$W/out"; then ok "ls: a corrupt snapshot shows as broken with the reason"
else nok "ls: a corrupt snapshot shows as broken with the reason" "$out"; fi
if line half.tmp-123 | grep -q " unfinished "; then ok "ls: an unfinished save"
else nok "ls: an unfinished save" "$out"; fi
# the memory file is sparse: 256 MiB of RAM, a few KiB on disk
if line web-ready | grep -qE " [0-9.]+ KiB "; then ok "ls: size is bytes on disk (sparse memory)"
else nok "ls: size is bytes on disk (sparse memory)" "$(line web-ready)"; fi

expect_code 1 "rm of a missing snapshot fails" "$PROVIUM" snapshots rm nosuch
if grep -q 'no snapshot "nosuch"' "$W/err"; then ok "rm names the missing snapshot"; else nok "rm names the missing snapshot" "$(cat "$W/err")"; fi
expect_code 2 "rm refuses a path" "$PROVIUM" snapshots rm ../etc
expect_code 0 "rm removes a snapshot" "$PROVIUM" snapshots rm web-ready
if [ ! -e "$S/web-ready" ] && [ -d "$S/pair" ]; then ok "rm removed only that one"; else nok "rm removed only that one" "$(ls "$S")"; fi

expect_code 0 "prune" "$PROVIUM" snapshots prune
if [ ! -e "$S/broken" ] && [ ! -e "$S/half.tmp-123" ] && [ -d "$S/pair" ]; then ok "prune removes broken and unfinished, keeps good ones"
else nok "prune removes broken and unfinished, keeps good ones" "$(ls "$S")"; fi
if grep -q "pruned 2 snapshots" "$W/out"; then ok "prune counts what it removed"; else nok "prune counts what it removed" "$(cat "$W/out")"; fi
expect_code 0 "prune --all" "$PROVIUM" snapshots prune --all
if [ -z "$(ls -A "$S")" ]; then ok "prune --all empties the cache"; else nok "prune --all empties the cache" "$(ls "$S")"; fi
expect_code 2 "unknown subcommand is a usage error" "$PROVIUM" snapshots frobnicate
done_testing
