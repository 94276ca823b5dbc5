#!/usr/bin/env bash
# examples.sh — examples/ (docs/README.md "Examples"): one short, commented file per
# headline scenario of the README, each linked from docs/README.md and run by the
# linux tier on kvm (tests/linux/run.sh); here every example runs on the sandbox
# backend (`provium run -j2 examples`, as the README tells a newcomer) and each of its
# tests is reported: the ones the sandbox supports must pass, the kvm-only ones must
# skip saying they need `--backend kvm` and why. From the run's event stream: the two
# claims files held their claim one after the other, never at the same time.
. "$(dirname "$0")/lib.sh"
ex=$root/examples
# scenario: file  (the issue's list of headline scenarios, plus the first test)
scenarios="first-test:hello_test.lua
partition-and-heal:partition_test.lua
fsync-under-power-loss:fsync_crash_test.lua
ext4-on-a-failing-disk:failing_disk_test.lua
clock-jump-expires-a-lease:clock_lease_test.lua
latency-and-loss-between-services:latency_loss_test.lua
fixture-snapshot-for-twenty-tests:fixture_snapshot_test.lua
claims-across-two-files:claims/big_a_test.lua
claims-across-two-files:claims/big_b_test.lua
pcap-that-tcpdump-reads:pcap_capture_test.lua"
# the examples that need Linux microVMs (disks, clock control) and skip on the sandbox
kvm_only="fsync_crash_test.lua failing_disk_test.lua clock_lease_test.lua"

for s in $scenarios; do
  name=${s%%:*} f=${s#*:}
  if [ ! -f "$ex/$f" ]; then nok "example $f ($name) exists"; continue; fi
  lines=$(wc -l < "$ex/$f")
  head -1 "$ex/$f" | grep -q "^-- examples/$f — " && [ "$lines" -le 80 ] && [ "$(grep -c '^ *--' "$ex/$f")" -ge 4 ] \
    && ok "example $f ($name): $lines lines, starts with a comment saying what it shows" \
    || nok "example $f ($name) is short (<= 80 lines, $lines) and commented (first line '-- examples/$f — ...')"
  grep -qF "](../examples/$f)" "$root/docs/README.md" && ok "docs/README.md links examples/$f" \
    || nok "docs/README.md does not link examples/$f"
done
listed=$(cd "$ex" && find . -name '*_test.lua' | sed 's|^\./||' | sort)
for f in $listed; do
  grep -q ":$f\$" <<<"$scenarios" || nok "examples/$f is not a headline scenario this test knows (add it above)"
done
grep -q 'examples/\*' "$root/tests/linux/run.sh" && ok "the linux tier runs the examples on kvm (tests/linux/run.sh)" \
  || nok "tests/linux/run.sh does not run examples/"

# The sandbox run, from another directory (the examples find their profiles/ themselves).
cp -r "$ex" "$W/examples"
(cd "$W" && "$PROVIUM" run -j2 --backend sandbox --format tap --events "$W/ev.mp" examples) > "$W/tap" 2> "$W/err"
code=$?
[ $code = 0 ] && ok "provium run -j2 --backend sandbox examples exits 0" \
  || nok "provium run -j2 examples exits $code" "$(grep -E '^not ok|^#' "$W/tap" | head -20)" "$(tail -5 "$W/err")"
while IFS= read -r line; do
  case $line in
    "ok "*|"not ok "*) ;;
    *) continue ;;
  esac
  desc=${line#*- }                       # "examples/FILE: test # SKIP reason"
  file=${desc%%: *}; file=${file#examples/}
  if [[ " $kvm_only " == *" $file "* ]]; then
    [[ $line == "ok "*"# SKIP needs --backend kvm"*sandbox* ]] \
      && ok "sandbox: $desc" || nok "kvm-only example on the sandbox must skip saying why: $line"
  elif [[ $line == "ok "*"# SKIP"* ]] && [[ $file == pcap_capture_test.lua ]] && ! command -v tcpdump > /dev/null; then
    ok "sandbox: $desc"
  else
    [[ $line == "ok "* ]] && [[ $line != *"# SKIP"* ]] && ok "sandbox: $desc" || nok "sandbox: $line"
  fi
done < "$W/tap"
ran=$(grep -cE '^(not )?ok ' "$W/tap")
[ "$ran" -ge 30 ] && ok "every example test was reported ($ran)" || nok "only $ran example tests reported" "$(tail -5 "$W/err")"

# The claims: both files waited for and held runner-memory-mib, never both at once.
"$PROVIUM" events --format json "$W/ev.mp" > "$W/ev.jsonl" 2>/dev/null
out=$(python3 - "$W/ev.jsonl" <<'PY'
import json, sys
spans = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("ev") == "claim" and e.get("resource") == "runner-memory-mib":
        spans.setdefault(e["file"], {})[e["action"]] = e["t"]
files = sorted(spans)
if len(files) != 2 or any(set(spans[f]) < {"wait", "acquire", "release"} for f in files):
    print("claim events:", spans); sys.exit(1)
a, b = sorted(spans.values(), key=lambda s: s["acquire"])
if b["acquire"] < a["release"]:
    print("overlap:", spans); sys.exit(1)
waited = (b["acquire"] - b["wait"]) / 1e9
print("%s and %s held it one after the other (the second waited %.2f s)" % (files[0], files[1], waited))
PY
) && ok "claims: $out" || nok "the two claims files held runner-memory-mib at the same time" "$out"
done_testing
