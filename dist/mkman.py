#!/usr/bin/env python3
"""mkman.py — writes the man page provium(1) from docs/cli.md (`make man`, `make install`).

Usage: dist/mkman.py VERSION docs/cli.md > build/provium.1

A small Markdown-to-roff converter for the subset docs/ uses: # headings, paragraphs,
- lists, ``` code blocks, | tables | (as .TP items: the first column is the tag),
`code`, **bold**, *emphasis* and [links](target). The page gets a NAME and SYNOPSIS
naming every subcommand, cli.md's text as DESCRIPTION, and a SEE ALSO pointing at the
other pages. Output is deterministic (no dates from the clock: SOURCE_DATE_EPOCH, else
the mtime of cli.md), so the package builds reproducibly.
"""
import os
import re
import sys
import time

SYNOPSIS = [
    ("run", "[flags] [PATH...]"),
    ("repl", "[flags] FILE"),
    ("list", "[flags] [PATH...]"),
    ("events", "[--format pretty|json] FILE|-"),
    ("events merge", "[-o FILE] [--junit FILE] [--format F] [--partial] SHARD.mp..."),
    ("doctor", ""),
    ("kernel", "build|path|hash [--pvm]"),
    ("snapshots", "[ls | rm NAME... | prune [--all]]"),
    ("version", ""),
    ("boot", "--kernel K [--initrd I] [--cmdline C] [--memory M] [--cpus N]"),
]


def esc(text):
    """Escapes roff specials in running text."""
    text = text.replace("\\", "\\e")
    return text.replace("-", "\\-")


def inline(text):
    """Markdown inline markup to roff font changes."""
    out = []
    pos = 0
    pat = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\[([^\]]+)\]\(([^)]+)\)")
    for m in pat.finditer(text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + esc(m.group(1)) + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + esc(m.group(2)) + "\\fR")
        elif m.group(3) is not None:
            out.append("\\fI" + esc(m.group(3)) + "\\fR")
        else:
            out.append(inline(m.group(4)))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def line_out(s):
    """A text line must not start with . or ' (roff requests)."""
    if s.startswith(".") or s.startswith("'"):
        return "\\&" + s
    return s


def table_cells(row):
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    cells = re.split(r"(?<!\\)\|", row)
    return [c.strip().replace("\\|", "|") for c in cells]


def convert(md):
    out = []
    lines = md.split("\n")
    i = 0
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.append(line_out(inline(" ".join(para))))
            para.clear()

    while i < len(lines):
        ln = lines[i]
        if ln.startswith("```"):
            flush()
            i += 1
            out.append(".PP")
            out.append(".RS 4")
            out.append(".nf")
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(line_out(esc(lines[i])))
                i += 1
            out.append(".fi")
            out.append(".RE")
            i += 1
            continue
        m = re.match(r"^(#+)\s+(.*)$", ln)
        if m:
            flush()
            level = len(m.group(1))
            title = m.group(2)
            if level == 1:
                pass  # the page title: NAME says it
            elif level == 2:
                out.append('.SH "' + inline(title).upper().replace('"', "") + '"')
            else:
                out.append('.SS "' + inline(title).replace('"', "") + '"')
            i += 1
            continue
        if ln.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(table_cells(lines[i]))
                i += 1
            # the header row and the |---| line go; each row is a tagged paragraph
            body = [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            for r in body:
                out.append(".TP")
                out.append(line_out(inline(r[0])))
                out.append(line_out(inline(" \u2014 ".join(c for c in r[1:] if c))))
            continue
        m = re.match(r"^(\s*)[-*]\s+(.*)$", ln)
        if m:
            flush()
            item = [m.group(2)]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip() \
                    and not re.match(r"^\s*[-*]\s+", lines[i]):
                item.append(lines[i].strip())
                i += 1
            out.append(".IP \\(bu 2")
            out.append(line_out(inline(" ".join(item))))
            continue
        if ln.startswith("    ") and not para:
            # an indented block (a command to type)
            out.append(".PP")
            out.append(".RS 4")
            out.append(".nf")
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                if not lines[i].strip() and (i + 1 >= len(lines) or not lines[i + 1].startswith("    ")):
                    break
                out.append(line_out(esc(lines[i][4:])))
                i += 1
            out.append(".fi")
            out.append(".RE")
            continue
        if not ln.strip():
            flush()
            i += 1
            continue
        if ln.lstrip().startswith("<!--"):
            i += 1
            continue
        para.append(ln.strip())
        i += 1
    flush()
    return out


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: mkman.py VERSION docs/cli.md\n")
        return 2
    version, src = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        md = f.read()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or os.stat(src).st_mtime)
    date = time.strftime("%Y-%m-%d", time.gmtime(epoch))
    out = [
        '.\\" provium(1): generated from docs/cli.md by dist/mkman.py; edit those instead.',
        '.TH PROVIUM 1 "%s" "provium %s" "Provium Manual"' % (date, version),
        ".SH NAME",
        "provium \\- KVM\\-native microVM test harness: run Lua tests against microVMs",
        ".SH SYNOPSIS",
    ]
    for cmd, args in SYNOPSIS:
        out.append(".B provium %s" % esc(cmd))
        if args:
            out.append(esc(args))
        out.append(".br")
    out.append(".SH DESCRIPTION")
    out += convert(md)
    out += [
        ".SH FILES",
        ".TP",
        ".I PREFIX/lib/provium/",
        "the guest agent and the sandbox root file system",
        ".TP",
        ".I PREFIX/share/provium/kernels/",
        "what \\fBprovium kernel build\\fR builds the guest kernel and initramfs with",
        ".TP",
        ".I $XDG_CACHE_HOME/provium/",
        "the cache: kernels, initramfs images, snapshots (\\fB\\-\\-cache\\-dir\\fR)",
        ".SH SEE ALSO",
        "The full documentation, one page per Lua type and subsystem, is in",
        ".I PREFIX/share/doc/provium/",
        "(docs/README.md lists every page); examples to copy are in",
        ".IR PREFIX/share/doc/provium/examples/ .",
    ]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
