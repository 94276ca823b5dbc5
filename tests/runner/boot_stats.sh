#!/usr/bin/env bash
# boot_stats.sh — `provium boot --stats`: when the VM ends, its exits by reason
# (KVM's counters) and those handled in user space by port / MMIO address. Boots
# the exit test guest, whose serial output and exit-port write are exits we know.
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
done_testing
