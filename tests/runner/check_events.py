#!/usr/bin/env python3
"""check_events.py — checks a decoded event stream (JSON lines from `provium events
--format json FILE`) against RUNNER.md: every event has v=PROTOCOL_VERSION, seq
increasing from 1, t, a known kind with its required fields of the right types;
run_start first, run_end last; each file_start has exactly one file_end; every
vm_spawn has its vm_exit (also after SIGINT or a crash: the runner says so);
test_start only for a test that runs (docs/events.md): a pass/fail/error test_end
follows its test_start, a todo one has none, and a test_start is not followed by
another of the same file before its test_end.
Usage: check_events.py JSONL PROTOCOL_VERSION [interrupted=true|false] [exit_code=N]
Prints what is wrong and exits 1, or exits 0."""
import json, sys

S, I, B, A, M = str, int, bool, list, dict
REQ = {
    "run_start": {"argv": A, "jobs": I, "backend": S, "seed": I, "files": A},
    "run_end": {"passed": I, "failed": I, "skipped": I, "todo": I, "errors": I,
                "duration_ns": I, "interrupted": B, "exit_code": I},
    "file_start": {"file": S},
    "file_end": {"file": S, "passed": I, "failed": I, "skipped": I, "todo": I, "duration_ns": I},
    "test_start": {"file": S, "test": S, "meta": M},
    "test_end": {"file": S, "test": S, "outcome": S, "duration_ns": I, "meta": M},
    "test_log": {"file": S, "test": S, "text": S},
    "vm_spawn": {"file": S, "vm": S, "backend": S, "profile": S, "boot_ns": I},
    "vm_exit": {"file": S, "vm": S, "reason": S},
    "pool": {"profile": S, "ready": I, "in_use": I, "building": I},
    "claim": {"file": S, "resource": S, "action": S, "count": I},
    "barrier": {"file": S, "name": S, "arrived": I, "parties": I},
    "fixture": {"profile": S, "action": S, "snapshot": S},
}
OPT = {"file_end": {"error": S}, "test_end": {"message": S, "where": S}}
ENUM = {("test_end", "outcome"): {"pass", "fail", "skip", "todo", "error"},
        ("claim", "action"): {"wait", "acquire", "release"},
        ("fixture", "action"): {"build_start", "build_end", "hit"}}

def main():
    path, version = sys.argv[1], int(sys.argv[2])
    want = dict(a.split("=", 1) for a in sys.argv[3:])
    errs = []
    evs = [json.loads(l) for l in open(path) if l.strip()]
    if not evs:
        print("no events"); return 1
    files_open = {}
    vms_up = {}
    running = {}   # file -> the test whose test_start came last, until its test_end
    for i, e in enumerate(evs, 1):
        k = e.get("ev")
        where = "event %d (%s)" % (i, k)
        if e.get("v") != version: errs.append("%s: v=%r, want %d" % (where, e.get("v"), version))
        if e.get("seq") != i: errs.append("%s: seq=%r, want %d" % (where, e.get("seq"), i))
        if not isinstance(e.get("t"), int) or e["t"] <= 0: errs.append("%s: bad t" % where)
        if k not in REQ: errs.append("%s: unknown kind" % where); continue
        for f, ty in REQ[k].items():
            if f not in e: errs.append("%s: missing %s" % (where, f))
            elif not isinstance(e[f], ty) or (ty is I and isinstance(e[f], bool)):
                errs.append("%s: %s is %r" % (where, f, e[f]))
        for f, ty in OPT.get(k, {}).items():
            if f in e and not isinstance(e[f], ty): errs.append("%s: %s is %r" % (where, f, e[f]))
        for (kk, f), vals in ENUM.items():
            if k == kk and e.get(f) not in vals: errs.append("%s: %s=%r" % (where, f, e.get(f)))
        if k in ("vm_spawn", "vm_exit"):
            key = (e.get("file"), e.get("vm"))
            vms_up[key] = vms_up.get(key, 0) + (1 if k == "vm_spawn" else -1)
            if vms_up[key] < 0: errs.append("%s: vm_exit without a vm_spawn" % where)
        if k == "test_start":
            f = e.get("file")
            if running.get(f) is not None:
                errs.append("%s: test_start of %r while %r has no test_end yet" % (where, e.get("test"), running[f]))
            running[f] = e.get("test")
        if k == "test_end":
            f, started = e.get("file"), running.get(e.get("file")) == e.get("test")
            if e.get("outcome") in ("pass", "fail", "error") and not started:
                errs.append("%s: %s outcome for %r without its test_start" % (where, e.get("outcome"), e.get("test")))
            if e.get("outcome") == "todo" and started:
                errs.append("%s: a todo test %r had a test_start (it does not run)" % (where, e.get("test")))
            if started: running[f] = None
        if k == "file_start":
            files_open[e["file"]] = files_open.get(e["file"], 0) + 1
        if k == "file_end":
            if files_open.get(e["file"], 0) != 1: errs.append("%s: file_end without one file_start" % where)
            files_open[e["file"]] = 0
    if evs[0].get("ev") != "run_start": errs.append("first event is not run_start")
    if evs[-1].get("ev") != "run_end": errs.append("last event is not run_end")
    if [f for f, c in files_open.items() if c]: errs.append("files without file_end: %s" % files_open)
    if [v for v, c in vms_up.items() if c > 0]: errs.append("vm_spawn without vm_exit: %s" % [v for v, c in vms_up.items() if c > 0])
    end = evs[-1]
    for key, val in want.items():
        if str(end.get(key)).lower() != val.lower():
            errs.append("run_end %s=%r, want %s" % (key, end.get(key), val))
    for e in errs[:20]: print(e)
    return 1 if errs else 0

sys.exit(main())
