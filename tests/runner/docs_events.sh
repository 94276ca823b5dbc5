#!/usr/bin/env bash
# docs_events.sh — runs the examples of docs/events.md: the recorded-stream example
# (`provium run --events`, then `provium events | head -5`, whose lines must have the
# documented shape) and the stream-checking script, taken verbatim from the page.
. "$(dirname "$0")/lib.sh"
doc=$root/docs/events.md
python3 - "$doc" "$W" <<'P'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```\n(.*?)```", text, re.S)
ex = [b for b in blocks if b.startswith("$ provium run --events")]
chk = [b for b in blocks if b.startswith("provium events --format json run.mp | python3")]
open(sys.argv[2] + "/example.txt", "w").write(ex[0] if ex else "")
open(sys.argv[2] + "/check.sh", "w").write(chk[0] if chk else "")
P
[ -s "$W/example.txt" ] && [ -s "$W/check.sh" ] && ok "docs/events.md has its two examples" || nok "examples not found in docs/events.md"
cp "$root/tests/lua/json_test.lua" "$W/"
mkdir -p "$W/tests/lua" && cp "$root/tests/lua/json_test.lua" "$W/tests/lua/"
cd "$W" || exit 1
# the commands of the example, run as written (provium = the build's binary)
sed -n 's/^\$ provium //p' "$W/example.txt" > "$W/cmds"
[ "$(wc -l < "$W/cmds")" = 2 ] && ok "the example has two commands" || nok "example commands" "$(cat "$W/cmds")"
eval "\"\$PROVIUM\" $(sed -n 1p "$W/cmds")" > /dev/null 2>&1; code=$?
[ $code = 0 ] && ok "example: provium $(sed -n 1p "$W/cmds") (exit 0)" || nok "example run: exit $code"
eval "\"\$PROVIUM\" $(sed -n 2p "$W/cmds")" > "$W/got" 2>&1
# every shown output line and every real one: "#N    + S.SSSSSSs kind  fields"
shape='^#[0-9]+ +\+ *[0-9]+\.[0-9]{6}s [a-z_]+ +'
grep -v '^\$' "$W/example.txt" | sed -n '1,5p' > "$W/want"
kinds_want=$(awk '{print $4}' "$W/want" | tr '\n' ' ')
kinds_got=$(awk '{print $4}' "$W/got" | tr '\n' ' ')
if [ "$(grep -Ec "$shape" "$W/want")" = 4 ] && [ "$(grep -Ec "$shape" "$W/got")" = 5 ] &&
   [ "$(echo $kinds_got | cut -d' ' -f1-4)" = "$(echo $kinds_want)" ]
then ok "the real output has the documented shape and kinds ($kinds_want...)"
else nok "provium events output differs from docs/events.md" "want: $(cat "$W/want")" "got: $(cat "$W/got")"; fi
grep -q 'argv=\["provium","run","--events","run.mp","tests/lua/json_test.lua"\]' "$W/got" &&
  ok "run_start argv as documented" || nok "run_start argv" "$(head -1 "$W/got")"
out=$(PATH=$(dirname "$PROVIUM"):$PATH bash "$W/check.sh" 2>&1)
[ "$out" = 0 ] && ok "the documented checking script passes on the stream and prints exit_code 0" \
  || nok "docs/events.md checking script" "$out"
done_testing
