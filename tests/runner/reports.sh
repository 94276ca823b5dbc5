#!/usr/bin/env bash
# reports.sh — the reporters: JUnit XML valid (xmllint) with escaped names/messages and
# the right counts, also next to another format with --junit; TAP v13 lines (ok/not ok,
# SKIP, TODO, plan); JSON lines; pretty output without colour when not a terminal or
# with NO_COLOR, -q hiding passes, -v showing logs.
. "$(dirname "$0")/lib.sh"
mkdir -p "$W/r"
cat > "$W/r/x_test.lua" <<'L'
test([[quotes " ' <and> & amps]], function(t) t:fail("bad <xml> & \"stuff\" \1\2 ]]> end") end)
test("passes", function(t) t:log("log <line> &") end)
test("skips", function(t) t:skip("reason & <why>") end)
test("errors", function(t) error("boom") end)
L
cat > "$W/r/y_test.lua" <<'L'
todo("not yet")
test("pending", function(t) end)
L
printf 'test("z", function(t)\n' > "$W/r/z_test.lua"

"$PROVIUM" run --format junit "$W/r" > "$W/j.xml" 2> "$W/err"
check "--format junit is valid XML (xmllint)" xmllint --noout "$W/j.xml"
attr() { xmllint --xpath "string(/testsuites/@$1)" "$W/j.xml"; }
t=$(attr tests); f=$(attr failures); e=$(attr errors); s=$(attr skipped)
[ "$t/$f/$e/$s" = "6/1/2/2" ] && ok "junit totals: 6 tests, 1 failure, 2 errors (one a file error), 2 skipped" \
  || nok "junit totals tests/failures/errors/skipped = $t/$f/$e/$s, want 6/1/2/2"
name=$(xmllint --xpath 'string(//testcase[failure]/@name)' "$W/j.xml")
[ "$name" = "quotes \" ' <and> & amps" ] && ok "special characters in names survive escaping" || nok "escaped name came back as: $name"
msg=$(xmllint --xpath 'string(//testcase[failure]/failure/@message)' "$W/j.xml")
case $msg in *'bad <xml> & "stuff"'*']]> end'*) ok "failure message escaped, control characters dropped" ;; *) nok "failure message: $msg" ;; esac
xmllint --xpath 'string(//testcase[@name="passes"]/system-out)' "$W/j.xml" | grep -q "log <line> &" \
  && ok "test logs land in system-out" || nok "system-out missing"
xmllint --xpath 'string(//testcase[@name="(file)"]/error/@message)' "$W/j.xml" | grep -q "z_test.lua" \
  && ok "a file error is an <error> testcase" || nok "file error testcase missing"

"$PROVIUM" run --format tap --junit "$W/side.xml" "$W/r" > "$W/tap" 2> /dev/null
check "--junit FILE next to --format tap is valid XML" xmllint --noout "$W/side.xml"
check "TAP starts with the version line" grep -qx "TAP version 13" "$W/tap"
check "TAP plan matches the 6 results" bash -c "tail -1 '$W/tap' | grep -qx '1..6' && [ \$(grep -cE '^(not )?ok [0-9]+ - ' '$W/tap') = 6 ]"
check "TAP: a skip" grep -q "^ok [0-9]* - .*x_test.lua: skips # SKIP reason & <why>" "$W/tap"
check "TAP: a todo" grep -q "^not ok [0-9]* - .*y_test.lua: pending # TODO not yet" "$W/tap"
check "TAP: a failure with its location as a comment" grep -q "^# at .*x_test.lua:1" "$W/tap"
mkdir -p "$W/h"; echo 'test("has # SKIP inside", function(t) t:ok(false) end)' > "$W/h/h_test.lua"
"$PROVIUM" run --format tap "$W/h" > "$W/htap" 2> /dev/null
check "TAP: '#' in a test name cannot fake a SKIP directive" grep -q "^not ok 1 - .*h_test.lua: has _ SKIP inside$" "$W/htap"

"$PROVIUM" run --format json "$W/r/y_test.lua" > "$W/json" 2> /dev/null
check "--format json is one JSON object per line, run_start to run_end" python3 - "$W/json" <<'P'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[0]["ev"] == "run_start" and ev[-1]["ev"] == "run_end", ev
assert [e["seq"] for e in ev] == list(range(1, len(ev) + 1))
P

"$PROVIUM" run "$W/r/x_test.lua" > "$W/pretty" 2>&1
if grep -q $'\033' "$W/pretty"; then nok "pretty output to a pipe has no colour"; else ok "pretty output to a pipe has no colour"; fi
grep -q "FAIL quotes" "$W/pretty" && grep -q "ok   passes" "$W/pretty" && grep -q "at .*x_test.lua:1" "$W/pretty" \
  && ok "pretty: per-test lines and failure location" || nok "pretty output" "$(cat "$W/pretty")"
grep -q "1 passed, 1 failed, 1 skipped, 0 todo, 1 errors" "$W/pretty" && ok "pretty: summary line" || nok "pretty summary" "$(tail -2 "$W/pretty")"
"$PROVIUM" run -q "$W/r/x_test.lua" > "$W/quiet" 2>&1
! grep -q "passes" "$W/quiet" && grep -q "FAIL quotes" "$W/quiet" && ok "-q hides passing tests, keeps failures" || nok "-q" "$(cat "$W/quiet")"
"$PROVIUM" run -v "$W/r/x_test.lua" > "$W/verbose" 2>&1
grep -q "log <line> &" "$W/verbose" && ok "-v shows test logs" || nok "-v" "$(cat "$W/verbose")"
# one file at a time (-j1): lines appear as tests end, not when the file ends
mkdir -p "$W/st"
cat > "$W/st/slow_test.lua" <<'L'
test("quick", function(t) end)
test("lingers", function(t) provium.sleep(3) end)
L
"$PROVIUM" run -j1 "$W/st" > "$W/stream" 2>&1 &
spid=$!
seen=no
for _ in $(seq 25); do grep -q "ok   quick" "$W/stream" && { seen=yes; break; }; sleep 0.1; done
grep -q "lingers" "$W/stream" && seen=late
wait $spid
[ $seen = yes ] && ok "pretty -j1 prints each test line when the test ends" || nok "pretty -j1 streaming: $seen" "$(cat "$W/stream")"
if command -v script > /dev/null; then
  script -qc "NO_COLOR=1 $PROVIUM run $W/r/y_test.lua" /dev/null > "$W/tty1" 2>&1
  script -qc "$PROVIUM run $W/r/y_test.lua" /dev/null > "$W/tty2" 2>&1
  if ! grep -q $'\033\[3' "$W/tty1" && grep -q $'\033\[3' "$W/tty2"; then ok "colour on a terminal, none with NO_COLOR"
  else nok "terminal colour / NO_COLOR"; fi
  script -qc "$PROVIUM run --no-color $W/r/y_test.lua" /dev/null > "$W/tty3" 2>&1
  ! grep -q $'\033\[3' "$W/tty3" && ok "--no-color" || nok "--no-color"
  grep -q "files\] .* passed, .* failed, .* VMs\? running" "$W/tty2" && ok "live status line on a terminal" || nok "no status line" "$(cat -v "$W/tty2" | head -5)"
  # the line counts a running VM and its elapsed time moves while a test waits
  mkdir -p "$W/pv"
  cat > "$W/pv/vm_test.lua" <<'L'
test("holds a vm a while", function(t)
  local vm = provium:vm("progress")
  provium.sleep(1.6)
end)
L
  script -qc "$PROVIUM run --no-color $W/pv" /dev/null > "$W/tty4" 2>&1
  if grep -q "\[0/1 files\] 0 passed, 0 failed, 1 VM running" "$W/tty4" &&
     [ "$(tr '\r' '\n' < "$W/tty4" | grep -o '1 VM running, [0-9.]* m\?s' | sort -u | wc -l)" -ge 2 ] &&
     grep -q "1 passed, 0 failed, 0 skipped, 0 todo, 0 errors" "$W/tty4"
  then ok "the status line shows files, tests, the running VM and a ticking elapsed time"
  else nok "status line with a VM" "$(tr '\r' '\n' < "$W/tty4" | cat -v | grep files | sort -u | head -8)"; fi
else
  ok "# SKIP script(1) not installed: no pseudo-terminal to test colour"
fi
done_testing
