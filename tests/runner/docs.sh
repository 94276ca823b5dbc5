#!/usr/bin/env bash
# docs.sh — runs the examples of docs/cli.md: every ```lua block whose first line is
# "-- NAME.lua" is written to a scratch dir; every ```sh line "provium ... # exit N"
# runs there and must exit N.
. "$(dirname "$0")/lib.sh"
doc=$root/docs/cli.md
mkdir -p "$W/doc"
python3 - "$doc" "$W/doc" > "$W/cmds" <<'P'
import re, sys, os
doc, out = sys.argv[1], sys.argv[2]
blocks = re.findall(r"```(\w+)\n(.*?)```", open(doc).read(), re.S)
for lang, body in blocks:
    if lang == "lua":
        m = re.match(r"-- (\S+\.lua)\n", body)
        if m: open(os.path.join(out, m.group(1)), "w").write(body)
    elif lang == "sh":
        for line in body.splitlines():
            m = re.match(r"provium (.*?)\s+# exit (\d+)$", line)
            if m: print(m.group(2) + "\t" + m.group(1))
P
[ -s "$W/cmds" ] && ok "docs/cli.md has runnable examples ($(wc -l < "$W/cmds"))" || nok "no examples found in docs/cli.md"
while IFS=$'\t' read -r want args; do
  (cd "$W/doc" && eval "\"\$PROVIUM\" $args" > /dev/null 2>&1); got=$?
  [ "$got" = "$want" ] && ok "docs: provium $args (exit $got)" || nok "docs: provium $args: exit $got, want $want"
done < "$W/cmds"
done_testing
