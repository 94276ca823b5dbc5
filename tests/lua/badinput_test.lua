-- Bad input gives a clear message with file:line and the exit code RUNNER.md says.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/helpers/child.lua")

local function file_error(r)
  local fe = child.find(r, "file_end")[1]
  return fe and fe.error
end

test("a syntax error is a file error at its line, exit 1", function(t)
  local r = child.run("syntax.fixture.lua")
  t:eq(r.code, 1)
  t:match(file_error(r), "^syntax.fixture.lua:4: unexpected symbol near '='")
  t:contains(r.out, "syntax.fixture.lua:4:")
end)

test("an error from a provium call at top level names the call's line", function(t)
  local r = child.run("toplevel.fixture.lua")
  t:eq(r.code, 1)
  t:eq(file_error(r), "toplevel.fixture.lua:3: provium: lab:claim: resource must be a non-empty string, got number")
  t:eq(#child.find(r, "test_start"), 0)
end)

test("a duplicate test name is an error at the second registration", function(t)
  local r = child.run("duplicate.fixture.lua")
  t:eq(r.code, 1)
  t:eq(file_error(r), 'duplicate.fixture.lua:4: provium: test: duplicate test name "twice" (first defined at duplicate.fixture.lua:2)')
end)

test("a wrong argument type to test() names the argument", function(t)
  local r = child.run("badtype.fixture.lua")
  t:eq(r.code, 1)
  t:eq(file_error(r), "badtype.fixture.lua:2: provium: test: test(name, fn [, meta]): name must be a non-empty string, got number")
end)

test("an unknown method and a never-returning test inside a run", function(t)
  local r = child.run("-f 'unknown method' -f 'hangs' asserts.fixture.lua")
  -- (the last -f wins: only "hangs" runs)
  local e = r.by_test["hangs"]["end"]
  t:eq(e.outcome, "error")
  t:eq(e.where, "asserts.fixture.lua:19")
  t:eq(r.code, 1)
  r = child.run("-f 'unknown method' asserts.fixture.lua")
  e = r.by_test["unknown method"]["end"]
  t:eq(e.message, "provium: lab.frobnicate: Lab has no method or field 'frobnicate'")
  t:eq(e.where, "asserts.fixture.lua:17")
  t:contains(r.out, "asserts.fixture.lua:17")
end)

test("a duplicate VM name is an error at the second lab:vm", function(t)
  local r = child.run("dupvm.fixture.lua")
  t:eq(r.code, 1)
  local e = r.by_test["duplicate VM name"]["end"]
  t:eq(e.outcome, "error")
  t:eq(e.where, "dupvm.fixture.lua:5")
  t:eq(e.message, "provium: lab:vm on same: duplicate VM name (already in lab root)")
  t:eq(#child.find(r, "vm_exit", { vm = "same" }), 1, "the first VM is torn down at file end")
end, { timeout = 30 })

test("a missing profile and a wrong argument type name the VM call and its line", function(t)
  local r = child.run("vmargs.fixture.lua")
  t:eq(r.code, 1)
  local e = r.by_test["missing profile"]["end"]
  t:eq(e.outcome, "error")
  t:eq(e.where, "vmargs.fixture.lua:4")
  t:match(e.message, '^provium: lab:vm on nope: no profile "no%-such%-profile"')
  t:contains(r.out, "vmargs.fixture.lua:4")
  e = r.by_test["wrong argument type"]["end"]
  t:eq(e.outcome, "error")
  t:eq(e.where, "vmargs.fixture.lua:8")
  t:match(e.message, "^provium: vm:run on argtype: .*number")
  t:eq(r.by_test["after them a test still passes"]["end"].outcome, "pass")
end, { timeout = 30 })

test("-j2: a crashing file is a file error and the other file still runs", function(t)
  local r = child.run("crash.fixture.lua passes.fixture.lua")
  t:eq(r.code, 1)
  local crash = child.find(r, "file_end", { file = "crash.fixture.lua" })[1]
  t:ok(crash, "file_end for the crashed file")
  t:match(crash.error, "^worker crashed: killed by signal 9")
  local e = r.by_test["kills its worker"]["end"]
  t:eq(e.outcome, "error")
  t:eq(rawget(r.by_test, "never reached"), nil)
  -- the parent says the crashed worker's VM is gone, before the file's end
  local vi, fi
  for i, ev in ipairs(r.events) do
    if ev.ev == "vm_exit" and ev.vm == "doomed" then vi = i; t:eq(ev.reason, "worker gone") end
    if ev.ev == "file_end" and ev.file == "crash.fixture.lua" then fi = i end
  end
  t:ok(vi, "a vm_exit for the crashed worker's VM")
  t:lt(vi, fi)
  local ok = child.find(r, "file_end", { file = "passes.fixture.lua" })[1]
  t:eq(ok.error, nil)
  t:eq(ok.passed, 2)
  t:eq(r.by_test["passes one"]["end"].outcome, "pass")
  local fin = child.find(r, "run_end")[1]
  t:eq(fin.exit_code, 1)
  t:eq(fin.passed, 2)
  t:eq(fin.interrupted, false)
end, { timeout = 30 })

test("a test that never returns nor yields is stopped at its timeout, at its line", function(t)
  local t0 = provium._c_vm.mono_ns()
  local r = child.run("busy.fixture.lua")
  t:eq(r.code, 1)
  local e = r.by_test["busy loop"]["end"]
  t:eq(e.outcome, "error")
  t:eq(e.where, "busy.fixture.lua:5")
  t:match(e.message, "^test timed out after 0%.3 s, busy in Lua without yielding")
  t:eq(r.by_test["runs after the busy loop"]["end"].outcome, "pass")
  t:eq(r.by_test["a cleanup after a busy test still runs"]["end"].outcome, "error")
  t:eq(r.by_test["a cleanup after a busy test still runs"]["end"].where, "busy.fixture.lua:10")
  e = r.by_test["busy loop inside pcall"]["end"]
  t:eq(e.outcome, "error", "a pcall in the loop does not hide the timeout")
  t:eq(e.where, "busy.fixture.lua:13")
  t:eq(#child.find(r, "test_log", { test = "a cleanup after a busy test still runs", text = "cleanup ran" }), 1)
  t:eq(child.find(r, "file_end")[1].error, nil, "the worker was not killed")
  t:lt((provium._c_vm.mono_ns() - t0) / 1e9, 20, "well before the runner's hang grace (30 s)")
end, { timeout = 40 })

test("a top level that never returns nor yields is a file error at its line", function(t)
  local r = child.run("--timeout 0.5 topbusy.fixture.lua")
  t:eq(r.code, 1)
  t:eq(child.find(r, "file_end")[1].error,
    "topbusy.fixture.lua:3: the file's top level did not finish in time, busy in Lua without yielding (a loop that never calls a blocking provium function?)")
end, { timeout = 30 })
