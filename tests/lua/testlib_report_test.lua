-- What a run reports for failing tests: outcome, message and the file:line of the
-- failing call in the test file (runs fixtures/asserts.fixture.lua in a child run).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/helpers/child.lua")

local r
local function run()
  r = r or child.run("asserts.fixture.lua")
  return r
end

local function check(t, name, outcome, line, msg_part)
  local e = run().by_test[name]
  t:ok(e and e["end"], "no test_end for " .. name)
  e = e["end"]
  t:eq(e.outcome, outcome, name)
  if line then t:eq(e.where, "asserts.fixture.lua:" .. line, name) end
  if msg_part then t:contains(e.message, msg_part, name) end
end

test("the child run fails with exit code 1", function(t)
  t:eq(run().code, 1)
  t:match(run().out, "asserts.fixture.lua")
end)

test("t:ok failure names the value and the message", function(t) check(t, "ok fails", "fail", 2, "the flag: expected a true value, got false") end)
test("t:eq failure shows both values and the first difference", function(t)
  check(t, "eq fails", "fail", 3, "first difference at [2].a: 2 vs 3")
  check(t, "eq fails", "fail", 3, "expected: {1, {a=3}}")
end)
test("t:ne failure", function(t) check(t, "ne fails", "fail", 4, 'both are "x"') end)
test("t:lt/le/gt/ge failures", function(t)
  check(t, "lt fails", "fail", 5, "expected 3 < 2")
  check(t, "le fails", "fail", 6, "expected 3 <= 2")
  check(t, "gt fails", "fail", 7, "expected 1 > 2")
  check(t, "ge fails", "fail", 8, "expected 1 >= 2")
end)
test("t:match failure", function(t) check(t, "match fails", "fail", 9, 'expected "hello" to match pattern "^w"') end)
test("t:contains failure", function(t) check(t, "contains fails", "fail", 10, "to contain the element 3") end)
test("t:error without an error", function(t) check(t, "error fails", "fail", 11, "expected an error") end)
test("t:error with the wrong error", function(t) check(t, "error pattern fails", "fail", 12, 'matching "xyz"') end)
test("t:fail", function(t) check(t, "fail", "fail", 13, "custom message") end)
test("an assertion in a helper reports the helper's line", function(t) check(t, "helper", "fail", 14) end)
test("a provium error is an error at the call's line", function(t)
  check(t, "provium error", "error", 15, "provium: lab:claim: resource must be a non-empty string, got number")
end)
test("a Lua runtime error is an error with its line", function(t) check(t, "runtime error", "error", 16, "attempt to index a nil value") end)
test("an unknown method names the method", function(t) check(t, "unknown method", "error", 17, "no method or field 'frobnicate'") end)
test("a test that never returns is stopped where it waits", function(t)
  check(t, "hangs", "error", 19, "test timed out after 0.3 s, sleeping 1000 s")
end)
test("wait_until timeout names the message and the last value", function(t)
  check(t, "wait_until times out", "error", 22, "the flag file not true after")
  check(t, "wait_until times out", "error", 22, "last value: nil")
end)
test("wait_until timeout names the last error", function(t)
  check(t, "wait_until remembers errors", "error", 25, "last error: ")
  check(t, "wait_until remembers errors", "error", 25, "not yet ready")
end)
test("t:skip", function(t) check(t, "skips", "skip", nil, "because") end)
test("a failing cleanup turns a pass into an error", function(t) check(t, "cleanup error", "error", nil, "cleanup broke") end)
test("the passing test still passes", function(t) check(t, "passes", "pass") end)
test("file_end counts every outcome", function(t)
  local fe = child.find(run(), "file_end")[1]
  t:eq({ fe.passed, fe.failed, fe.skipped, fe.todo }, { 1, 25, 2, 1 })
end)

test("t:log sends test_log events; cleanups run after failures and skips", function(t)
  local logs = child.find(run(), "test_log", { test = "cleanups run after a failure and after a skip" })
  t:eq(#logs, 1)
  t:eq(logs[1].text, 'cleanup ran\t1\t{k="v"}')
  check(t, "cleanups run after a failure and after a skip", "fail", nil, "failed before cleanup")
  logs = child.find(run(), "test_log", { test = "skip with cleanup" })
  t:eq(logs[1].text, "cleanup after skip ran")
  check(t, "skip with cleanup", "skip", nil, "skipping")
end)

test("print() inside a test becomes a test_log event", function(t)
  local logs = child.find(run(), "test_log", { test = "print goes to the log" })
  t:eq(#logs, 1)
  t:eq(logs[1].text, "printed\t42")
  t:ok(not run().out:find("printed\t42", 1, true), "not on stdout (the run is not verbose)")
end)

test("error() with a plain table reports its message", function(t)
  check(t, "plain table error", "error", 39, "a table error")
end)

test("huge logs and values are cut to fit one event, and string diffs say where", function(t)
  local logs = child.find(run(), "test_log", { test = "huge values" })
  t:eq(#logs, 1)
  t:le(#logs[1].text, 65536 + 64)
  t:match(logs[1].text, "%.%.%. %(934464 more bytes cut%)$")
  check(t, "huge values", "fail", 42, 'strings differ at byte 500001: "aaaaaaaaaaaaaaaaaaaatail" vs "aaaaaaaaaaaaaaaaaaaaTAIL"')
  t:le(#run().by_test["huge values"]["end"].message, 16384)
end)

test("todo(reason) inside a test stops it as todo", function(t)
  check(t, "todo inside a test", "todo", nil, "finish the parser")
end)

test("cleanups of a timed-out test get their own time for blocking calls", function(t)
  local logs = child.find(run(), "test_log", { test = "cleanup after a timeout can still wait" })
  t:eq(#logs, 1)
  t:eq(logs[1].text, "cleanup waited fine")
  check(t, "cleanup after a timeout can still wait", "error", 51, "test timed out after 0.2 s")
end)
