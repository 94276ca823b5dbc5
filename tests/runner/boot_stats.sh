#!/usr/bin/env bash
# boot_stats.sh — `provium boot --stats`: when the VM ends, its exits by reason
# (KVM's counters) and those handled in user space by port / MMIO address. Boots
# the exit test guest, whose serial output and exit-port write are exits we know.
# Then the same numbers in a run's vm_exit event (`exits`, docs/events.md).
. "$(dirname "$0")/lib.sh"
guest=${PROVIUM_BUILD:-$root/build}/guest/exit.elf
if [ ! -e /dev/kvm ] || [ ! -r "$guest" ]; then
  echo "1..0 # SKIP no /dev/kvm or no test guest ($guest)"; exit 0
fi
expect_code 7 "boot --stats=FILE: the guest's exit code stays the exit status" \
  "$PROVIUM" boot --kernel "$guest" --cmdline "console=ttyS0 exit=7" --stats="$W/stats"
s=$(cat "$W/stats" 2>/dev/null)
# the guest wrote its exit code to port 0xf4 once, and printed through the UART
grep -Eq '^ +1  pio  write 0xf4$' <<<"$s" && ok "the one exit-port write is counted at 0xf4" || nok "exit port" "$s"
thr=$(awk '$2 == "pio" && $3 == "write" && $4 == "0x3f8" { print $1 }' <<<"$s")
[ "${thr:-0}" -ge "$(grep -c . "$W/out")" ] && ok "each byte written to the UART's THR is an exit ($thr)" || nok "THR" "$s"
tot=$(sed -n 's/^handled in user space: //p' <<<"$s")
sum=$(awk '$2 == "pio" || $2 == "mmio" || $2 == "KVM" || $2 == "elsewhere" { t += $1 } END { print t + 0 }' <<<"$s")
[ -n "$tot" ] && [ "$tot" = "$sum" ] && ok "the sites add up to the user-space total ($tot)" || nok "total" "$s"
if grep -q '^KVM exits (all vCPUs): exits [0-9]*, io_exits' <<<"$s"; then
  # every exit handled in user space is one of KVM's exits (PVM leaves io_exits 0)
  kx=$(sed -n 's/^KVM exits (all vCPUs): exits \([0-9]*\),.*/\1/p' <<<"$s")
  [ "$kx" -ge "$tot" ] && ok "KVM's exits ($kx) include the $tot handled here" || nok "exits" "$s"
else
  grep -q '^KVM exits: not available' <<<"$s" && ok "KVM's counters: said to be unavailable on this host" || nok "kvm line" "$s"
fi
expect_code 0 "boot --stats to stderr" "$PROVIUM" boot --kernel "$guest" --stats
grep -q '^handled in user space: ' "$W/err" && ok "--stats without a file prints to stderr" || nok "stderr" "$(cat "$W/err")"
# the kvm backend's vm_exit event: the same counters, for a VM of a test file
cat > "$W/exits_test.lua" <<L
test("the exit guest", function(t)
  local vm = provium:vm("ex", { backend = "kvm", kernel = "$guest", cmdline = "console=ttyS0 exit=3",
    memory = 64, agent = false })
  wait_until(function() return vm:state() ~= "running" end, { timeout = 60 })
  t:eq(vm:exit_reason(), "exit code 3")
end)
L
expect_code 0 "a run with a kvm test guest" "$PROVIUM" run --events "$W/ex.mp" "$W/exits_test.lua"
events "$W/ex.mp" > "$W/ex.jsonl" 2>&1
check "vm_exit carries exits: the exit-port write at 0xf4, the sites within the user total, KVM's exits" \
  python3 - "$W/ex.jsonl" <<'P'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
x = [e for e in ev if e["ev"] == "vm_exit" and e["vm"] == "ex"]
assert len(x) == 1, x
ex = x[0]["exits"]
sites = {s["site"]: s["count"] for s in ex["sites"]}
assert sites.get("pio write 0xf4") == 1, sites
assert sites.get("pio write 0x3f8", 0) > 10, sites
assert sum(sites.values()) <= ex["user"], ex
if "kvm" in ex:
    assert ex["kvm"]["exits"] >= ex["user"], ex
    assert set(ex["kvm"]) >= {"exits", "io_exits", "halt_exits", "pf_taken"}, ex["kvm"]
P
done_testing
