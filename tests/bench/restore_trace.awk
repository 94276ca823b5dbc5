# restore_trace.awk — summarises a kvm tracepoint log of one vCPU (x86: kvm_exit,
# kvm_entry, kvm_page_fault; arm64: kvm_exit, kvm_entry, kvm_guest_fault): per exit
# reason the count and the time from the exit to the next entry (L1's handling, and
# whatever else L1 ran meanwhile), the guest's own time (entry to next exit), and the
# nested (x86) or stage-2 (arm64) page faults by distinct 4 KiB page and by write.
function ts(   i, t) {
  for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { t = $i; sub(":", "", t); return t + 0 }
}
function fault(addr, w) { pages[substr(addr, 1, length(addr) - 3)] = 1; faults++; if (w) writes++ }
function hexbit(h, bit,   v, i, p) { # is bit `bit` (< 8) of the hex number h (0x...) set?
  h = tolower(substr(h, length(h) - 1)); v = 0
  for (i = 1; i <= 2; i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
  for (p = 1; bit > 0; bit--) p *= 2
  return int(v / p) % 2
}
/kvm_exit:/ {
  t = ts(); if (!first) first = t
  if (entry) guest += t - entry
  if (match($0, /reason [A-Za-z_0-9]+/)) r = substr($0, RSTART + 7, RLENGTH - 7)
  else if ($0 ~ /kvm_exit: IRQ/) r = "IRQ"
  else if (match($0, /\([A-Za-z_0-9]+\)/)) r = substr($0, RSTART + 1, RLENGTH - 2)
  else r = "?"
  ex = t; entry = 0
}
/kvm_entry:/ {
  t = ts(); if (ex) { l1[r] += t - ex; n[r]++; ex = 0 }
  entry = t; last = t
}
/kvm_page_fault:/ { # x86: error code bit 1 = a write
  match($0, /address 0x[0-9a-f]+/); a = substr($0, RSTART + 8, RLENGTH - 8)
  match($0, /error_code 0x[0-9a-f]+/); fault(a, hexbit(substr($0, RSTART + 11, RLENGTH - 11), 1))
}
/kvm_guest_fault:/ { # arm64: ESR bit 6 (WnR) = a write
  match($0, /ipa 0x[0-9a-f]+/); a = substr($0, RSTART + 4, RLENGTH - 4)
  match($0, /sr 0x[0-9a-f]+/); fault(a, hexbit(substr($0, RSTART + 3, RLENGTH - 3), 6))
}
END {
  np = 0; for (p in pages) np++
  printf "  first exit to last entry %.1f ms; guest running %.1f ms\n", (last - first) * 1000, guest * 1000
  for (k in l1) printf "  %-18s %6d exits  %7.1f ms in L1 (%4.0f us each)\n", k, n[k], l1[k] * 1000, l1[k] * 1e6 / n[k]
  printf "  guest page faults %d: %d distinct pages, %d writes\n", faults, np, writes
}
