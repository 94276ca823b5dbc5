#!/usr/bin/env bash
# docs_index.sh — docs/README.md indexes the documentation: every docs/*.md and
# docs/devices/*.md has a line there, every page it links exists, and every relative
# link in README.md and docs/ points at a file that exists.
. "$(dirname "$0")/lib.sh"
idx=$root/docs/README.md
if [ -f "$idx" ]; then ok "docs/README.md exists"; else nok "docs/README.md is missing"; done_testing; exit 0; fi
for f in "$root"/docs/*.md "$root"/docs/devices/*.md; do
  rel=${f#"$root"/docs/}
  [ "$rel" = README.md ] && continue
  if grep -qF "]($rel)" "$idx"; then ok "docs/README.md lists $rel"
  else nok "docs/README.md does not list $rel" "add a line: - [$rel]($rel) — what it covers"; fi
done
# relative links (not http, not pure #anchors) resolve
bad=
for f in "$root"/README.md "$root"/docs/*.md "$root"/docs/devices/*.md; do
  d=$(dirname "$f")
  for l in $(grep -oE '\]\([^)#[:space:]]+(#[^)]*)?\)' "$f" | sed -E 's/^\]\(([^)#]*).*/\1/' | grep -v '^[a-z]*:'); do
    [ -e "$d/$l" ] || bad="$bad ${f#"$root"/} -> $l;"
  done
done
# plain mentions of docs/NAME.md (in backticks or prose) name real pages too
for m in $(cat "$root"/README.md "$root"/docs/*.md "$root"/docs/devices/*.md | grep -oE '(^|[^a-z/])docs/[a-z0-9/_-]+\.md' | sed -E 's/^[^d]//' | sort -u); do
  [ -e "$root/$m" ] || bad="$bad mention of $m;"
done
if [ -z "$bad" ]; then ok "every relative link and docs/ mention in README.md and docs/ resolves"
else nok "broken links" "$bad"; fi
done_testing
