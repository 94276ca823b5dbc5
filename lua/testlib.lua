-- testlib.lua — the test library: test(), the `t` context, todo(), wait_until(), and
-- provium._main, which loads the test file, selects and runs its tests as tasks under
-- the scheduler (prelude.lua) and emits the events of RUNNER.md.
-- Outcomes: "fail" = an assertion (t:ok, t:eq, ..., t:fail) failed; "error" = anything
-- else was raised (provium error tables, Lua runtime errors, the test timing out).
local provium = provium
local S = provium._sched
local cfg = provium._config
local emit = provium._emit

local PREFIX = "=[provium]/"

-- Locations -------------------------------------------------------------------------
local function frame_where(info)
  if not info or info.what == "C" or info.currentline <= 0 then return nil end
  local src = info.source
  if src:sub(1, #PREFIX) == PREFIX then return nil end
  if src:sub(1, 1) == "@" then src = src:sub(2) else src = info.short_src end
  return src .. ":" .. info.currentline
end

-- file:line of the innermost frame of `co` (nil: this thread) outside provium's code.
local function where_in(co, level)
  level = level or 0
  for l = level, level + 60 do
    local info
    if co then info = debug.getinfo(co, l, "Sl") else info = debug.getinfo(l, "Sl") end
    if not info then return nil end
    -- a task the busy hook stopped reports the instruction before; it recorded the line
    if co and l == 0 and S.busy_lines[co] and S.busy_lines[co] > 0 then info.currentline = S.busy_lines[co] end
    local w = frame_where(info)
    if w then return w end
  end
end
provium._where = where_in

-- Value printing and deep equality ----------------------------------------------------
local function inspect(v, depth, seen)
  depth = depth or 0
  local tv = type(v)
  if tv == "string" then
    local cut = ""
    if #v > 2048 then cut = ("...(%d bytes)"):format(#v); v = v:sub(1, 2048) end
    return (string.format("%q", v):gsub("\\\n", "\\n")) .. cut
  end
  if tv ~= "table" then return tostring(v) end
  local mt = getmetatable(v)
  if mt and mt.__tostring then return tostring(v) end
  seen = seen or {}
  if seen[v] then return "<cycle>" end
  if depth > 4 then return "{...}" end
  seen[v] = true
  local parts, n = {}, #v
  for i = 1, n do parts[#parts + 1] = inspect(v[i], depth + 1, seen) end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  for _, k in ipairs(keys) do
    local ks = (type(k) == "string" and k:match("^[%a_][%w_]*$")) and k or ("[" .. inspect(k, depth + 1, seen) .. "]")
    parts[#parts + 1] = ks .. "=" .. inspect(v[k], depth + 1, seen)
    if #parts > 40 then parts[#parts + 1] = "..."; break end
  end
  seen[v] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end
provium._inspect = inspect

local function keystr(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  return "[" .. inspect(k) .. "]"
end

-- deep_eq(a, b) -> true, or false plus the path of the first difference and both values
local function deep_eq(a, b, path, seen)
  path = path or ""
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false, path, a, b end
  local mt = getmetatable(a)
  if mt and mt.__eq then return false, path, a, b end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, va in pairs(a) do
    local ok, p, x, y = deep_eq(va, b[k], path .. keystr(k), seen)
    if not ok then return false, p, x, y end
  end
  for k, vb in pairs(b) do
    if a[k] == nil then return false, path .. keystr(k), nil, vb end
  end
  return true
end
provium._deep_eq = deep_eq

-- Markers raised to stop a test -------------------------------------------------------
local Fail = { __tostring = function(e) return e.message end }
local Skip = { __tostring = function(e) return "skip: " .. e.reason end }
local Todo = { __tostring = function(e) return "todo: " .. e.reason end }

local function fail(msg, user)
  if user then msg = user .. ": " .. msg end
  error(setmetatable({ message = msg }, Fail), 0)
end

-- The t context ------------------------------------------------------------------------
local T, T_mt = provium._class("Test", "t")
T_mt.__tostring = function(t) return "Test(" .. t.name .. ")" end

function T:ok(v, msg)
  if not v then fail("expected a true value, got " .. inspect(v), msg) end
  return v
end

function T:eq(a, b, msg)
  local ok, path, x, y = deep_eq(a, b)
  if ok then return end
  local m = "expected equal values\n  got:      " .. inspect(a) .. "\n  expected: " .. inspect(b)
  if path ~= "" then m = m .. "\n  first difference at " .. path .. ": " .. inspect(x) .. " vs " .. inspect(y) end
  if type(x) == "string" and type(y) == "string" then
    local i = 1
    while i <= #x and x:byte(i) == y:byte(i) do i = i + 1 end
    m = m .. ("\n  strings differ at byte %d: %s vs %s"):format(i, inspect(x:sub(math.max(1, i - 20), i + 40)),
      inspect(y:sub(math.max(1, i - 20), i + 40)))
  end
  fail(m, msg)
end

function T:ne(a, b, msg)
  if deep_eq(a, b) then fail("expected different values, both are " .. inspect(a), msg) end
end

local function compare(op, f)
  return function(_, a, b, msg)
    local ok, r = pcall(f, a, b)
    if not ok then fail(("cannot compare %s %s %s: %s"):format(inspect(a), op, inspect(b), tostring(r)), msg) end
    if not r then fail(("expected %s %s %s"):format(inspect(a), op, inspect(b)), msg) end
  end
end
T.lt = compare("<", function(a, b) return a < b end)
T.le = compare("<=", function(a, b) return a <= b end)
T.gt = compare(">", function(a, b) return a > b end)
T.ge = compare(">=", function(a, b) return a >= b end)

function T:match(s, pattern, msg)
  if type(s) ~= "string" then fail("t:match: expected a string, got " .. inspect(s), msg) end
  local r = table.pack(string.find(s, pattern))
  if not r[1] then fail(("expected %s to match pattern %s"):format(inspect(s), inspect(pattern)), msg) end
  return table.unpack(r, 3, r.n)
end

function T:contains(h, needle, msg)
  if type(h) == "string" then
    if type(needle) == "string" and h:find(needle, 1, true) then return end
    fail(("expected %s to contain %s"):format(inspect(h), inspect(needle)), msg)
  elseif type(h) == "table" then
    for _, v in ipairs(h) do if deep_eq(v, needle) then return end end
    fail(("expected %s to contain the element %s"):format(inspect(h), inspect(needle)), msg)
  else
    fail("t:contains: expected a string or an array, got " .. inspect(h), msg)
  end
end

function T:error(fn, pattern, msg)
  if type(fn) ~= "function" then fail("t:error: expected a function, got " .. inspect(fn), msg) end
  local ok, err = pcall(fn)
  if ok then fail("expected an error, but the function returned normally", msg) end
  if pattern then
    local text = tostring(err)
    local m = type(err) == "table" and err.message
    local function has(s) return type(s) == "string" and (s:find(pattern, 1, true) or select(2, pcall(string.find, s, pattern))) end
    if not (has(text) or has(m)) then
      fail(("expected an error matching %s, got %s"):format(inspect(pattern), inspect(text)), msg)
    end
  end
  return err
end

function T:skip(reason)
  error(setmetatable({ reason = reason and tostring(reason) or "skipped" }, Skip), 0)
end

function T:fail(msg)
  fail(msg ~= nil and tostring(msg) or "failed")
end

function T:log(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    parts[i] = type(v) == "string" and v or inspect(v)
  end
  emit({ ev = "test_log", test = self.name, text = table.concat(parts, "\t") })
end

function T:cleanup(fn)
  if type(fn) ~= "function" then
    provium._error({ code = "invalid", op = "t:cleanup", message = "expected a function, got " .. type(fn) }, 2)
  end
  local c = rawget(self, "_cleanups")
  c[#c + 1] = fn
end

-- Registration -------------------------------------------------------------------------
local tests, by_name = {}, {}
local file_todo = nil
local running = nil   -- the test record being run

local function check_arg(cond, op, msg)
  if not cond then provium._error({ code = "invalid", op = op, message = msg }, 3) end
end

function test(name, fn, meta)
  if running then
    provium._error({ code = "invalid", op = "test", message = "test() must be called at the top level of the file, not inside a test" }, 2)
  end
  check_arg(type(name) == "string" and name ~= "", "test", "test(name, fn [, meta]): name must be a non-empty string, got " .. type(name))
  check_arg(type(fn) == "function", "test", ("test(%q): fn must be a function, got %s"):format(name, type(fn)))
  check_arg(meta == nil or type(meta) == "table", "test", ("test(%q): meta must be a table, got %s"):format(name, type(meta)))
  meta = meta or {}
  check_arg(meta.timeout == nil or (type(meta.timeout) == "number" and meta.timeout > 0), "test",
    ("test(%q): meta.timeout must be a positive number of seconds"):format(name))
  local function strings(v)
    if type(v) ~= "table" then return false end
    for _, x in ipairs(v) do if type(x) ~= "string" then return false end end
    return true
  end
  check_arg(meta.tags == nil or strings(meta.tags), "test", ("test(%q): meta.tags must be an array of strings"):format(name))
  check_arg(meta.spec == nil or type(meta.spec) == "string" or strings(meta.spec), "test",
    ("test(%q): meta.spec must be a spec id or an array of them (strings), got %s"):format(name, type(meta.spec)))
  local where = where_in(nil, 2) or "?"
  if by_name[name] then
    provium._error({ code = "invalid", op = "test", message = ("duplicate test name %q (first defined at %s)"):format(name, by_name[name].where) }, 2)
  end
  local rec = { name = name, fn = fn, meta = meta, where = where }
  tests[#tests + 1] = rec
  by_name[name] = rec
end

function todo(reason)
  reason = reason ~= nil and tostring(reason) or "todo"
  if running and S.current() then
    error(setmetatable({ reason = reason }, Todo), 0)
  end
  file_todo = reason
end

-- print() goes to the test's log (a test_log event, shown with -v) while a test runs,
-- else to stderr: the worker's stdout is not the place for it (it may carry TAP).
function print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  local text = table.concat(parts, "\t")
  if running then
    emit({ ev = "test_log", test = running.name, text = text })
  else
    io.stderr:write(text, "\n")
  end
end

-- os.exit would end the worker in the middle of the file, with no report.
local real_exit = os.exit
os.exit = function()
  provium._error({ code = "invalid", op = "os.exit", message = "os.exit would end the test file's worker; use t:fail, t:skip or error()" }, 2)
end
provium._os_exit = real_exit

-- wait_until ---------------------------------------------------------------------------
function wait_until(pred, opts)
  if type(pred) ~= "function" then
    provium._error({ code = "invalid", op = "wait_until", message = "expected a function, got " .. type(pred) }, 2)
  end
  opts = provium._opts(opts, "wait_until", nil, "interval:secs message:string timeout:secs")
  local interval = opts.interval or 0.05
  local started = S.now()
  local deadline = S.deadline(opts) or (started + 60)
  local last_val, last_err, have_err
  while true do
    local r = table.pack(pcall(pred))
    if r[1] and r[2] then return table.unpack(r, 2, r.n) end
    if r[1] then last_val, have_err = r[2], false else last_err, have_err = r[2], true end
    local now = S.now()
    if now >= deadline then
      local last = have_err and ("last error: " .. tostring(last_err)) or ("last value: " .. inspect(last_val))
      provium._error({ code = "timeout", op = "wait_until",
        message = ("%s not true after %.2f s (%s)"):format(opts.message or "condition", now - started, last) }, 2)
    end
    S.sleep(math.min(interval, deadline - now), "wait_until " .. (opts.message or "condition"))
  end
end

-- Selection ------------------------------------------------------------------------------
local function name_matches(name, filter)
  if not filter or filter == "" then return true end
  if name:find(filter, 1, true) then return true end
  local ok, r = pcall(string.find, name, filter)
  return ok and r ~= nil
end

local function has_any(tags, list)
  if type(tags) == "string" then tags = { tags } end
  for _, want in ipairs(list) do
    for _, tag in ipairs(tags or {}) do
      if tag == want then return true end
    end
  end
  return false
end

local function selected(rec)
  if not name_matches(rec.name, cfg.filter) then return false end
  if cfg.tags and #cfg.tags > 0 and not has_any(rec.meta.tags, cfg.tags) then return false end
  if cfg.exclude_tags and #cfg.exclude_tags > 0 and has_any(rec.meta.tags, cfg.exclude_tags) then return false end
  return true
end

-- Running one test -----------------------------------------------------------------------
local function test_timeout(rec)
  if rec.meta.timeout then return rec.meta.timeout end
  if cfg.timeout and cfg.timeout > 0 then return cfg.timeout end
  return 60
end

-- Turns what a test task raised into outcome, message, where.
local function classify(err, co)
  local mt = getmetatable(err)
  if mt == Skip then return "skip", err.reason end
  if mt == Todo then return "todo", err.reason end
  local where = co and where_in(co, 0)
  if mt == Fail then return "fail", err.message, where end
  local msg
  if type(err) == "table" and not (mt and mt.__tostring) then
    -- error({...}) with a plain table: its message field, else its contents
    msg = type(err.message) == "string" and err.message or inspect(err)
  else
    msg = tostring(err)
  end
  if type(err) == "string" then
    -- "file:line: message" from error(): that position is the best "where"
    local w = err:match("^(.-:%d+): ")
    if w and not w:find("^%[provium%]") then where = where or w end
  end
  return "error", msg, where
end

-- Runs fns (cleanups) LIFO, each as a task bounded by `timeout`; returns the first error.
local function run_cleanups(list, timeout, group)
  local first
  for i = #list, 1, -1 do
    local task = S.spawn(list[i])
    -- a cleanup gets its own time (the test's may be used up), also for calls inside it
    S.test_deadline = S.now() + timeout
    if not S.run(task, S.test_deadline) then
      first = first or ("cleanup timed out after " .. timeout .. " s: " .. S.describe(task))
      S.abandon(group)
    elseif task.err ~= nil and not first then
      local w = where_in(task.co, 0)
      first = "cleanup failed: " .. tostring(task.err) .. (w and (" at " .. w) or "")
    end
  end
  return first
end

-- --pause-on-failure: the prompt (repl.lua) before the failed test's teardown, its
-- VMs and tasks still there.
local function pause(t, outcome, message, where)
  if not cfg.pause_on_failure or not provium._repl_pause then return end
  local ok, err = pcall(provium._repl_pause, { tests = tests, t = t, name = t.name,
    outcome = outcome, message = message, where = where })
  if not ok then io.stderr:write("provium: the prompt failed: ", tostring(err), "\n") end
end

local function run_test(rec)
  local t = setmetatable({ name = rec.name, meta = rec.meta, _cleanups = {} }, T_mt)
  local timeout = test_timeout(rec)
  emit({ ev = "test_start", test = rec.name, meta = rec.meta })
  local start = S.now_ns()
  local outcome, message, where
  local group = rec
  running = rec
  S.group = group
  S.test_deadline = S.now() + timeout
  local task = S.spawn(rec.fn, t)
  local finished = S.run(task, S.test_deadline)
  if not finished then
    outcome = "error"
    where = where_in(task.co, 0)
    local tb = {}
    for line in debug.traceback(task.co, nil, 0):gmatch("[^\n]+") do
      -- the library's own frames say nothing to the test's author
      if not line:find(PREFIX:sub(2), 1, true) and not line:find("[C]: in function 'coroutine.yield'", 1, true) then
        tb[#tb + 1] = line
      end
    end
    message = ("test timed out after %g s, %s\n%s"):format(timeout, S.describe(task), table.concat(tb, "\n"))
    for _, other in ipairs(S.tasks_of(group)) do
      if other ~= task then
        message = message .. ("\nalso running: a task at %s, %s"):format(where_in(other.co, 0) or "?", S.describe(other))
      end
    end
    pause(t, outcome, message, where)
    S.abandon(group)
    if provium._test_timed_out then pcall(provium._test_timed_out, rec) end
  elseif task.err ~= nil then
    outcome, message, where = classify(task.err, task.co)
    if outcome == "fail" or outcome == "error" then pause(t, outcome, message, where) end
  else
    outcome = "pass"
  end
  -- tasks the test started and left running end with it
  S.abandon(group)
  local cerr = run_cleanups(t._cleanups, math.max(timeout, 10), group)
  if cerr and (outcome == "pass" or outcome == "skip") then outcome, message = "error", cerr end
  S.abandon(group)
  pcall(provium._pump) -- late claim grants are given back now, not at file end
  running = nil
  S.group = "file"
  S.test_deadline = nil
  emit({ ev = "test_end", test = rec.name, outcome = outcome,
         duration_ns = S.now_ns() - start, message = message, where = where, meta = rec.meta })
  return outcome
end

-- A test that does not run (meta skip, slow without --slow, file todo, after a
-- --fail-fast failure) gets only its test_end: test_start means its body starts
-- (docs/events.md), which is what a consumer timing or counting running tests needs.
local function report(rec, outcome, message)
  emit({ ev = "test_end", test = rec.name, outcome = outcome, duration_ns = 0,
         message = message, meta = rec.meta })
end

-- run(pattern) at the --interactive prompt: the test named pattern, else every test
-- whose name contains or matches it; each runs now, reported as in a run. Returns a
-- summary line.
local function interactive_run(pattern, run_one)
  if running then
    provium._error({ code = "invalid", op = "run", message = "run() inside a running test" }, 3)
  end
  if pattern ~= nil and type(pattern) ~= "string" then
    provium._error({ code = "invalid", op = "run", message = "run(name): expected a test name or pattern, got " .. type(pattern) }, 3)
  end
  local pick = {}
  if pattern and by_name[pattern] then pick = { by_name[pattern] }
  else
    for _, rec in ipairs(tests) do if name_matches(rec.name, pattern) then pick[#pick + 1] = rec end end
  end
  if #pick == 0 then
    return ("no test matches %q (tests() lists them)\n"):format(tostring(pattern))
  end
  local n = { pass = 0, fail = 0, error = 0, skip = 0, todo = 0 }
  for _, rec in ipairs(pick) do
    local o = run_one(rec)
    n[o] = (n[o] or 0) + 1
  end
  -- the prompt prints it once the runner has reported the tests
  return ("ran %d test%s: %d passed, %d failed%s\n"):format(#pick, #pick == 1 and "" or "s", n.pass,
    n.fail + n.error, (n.skip + n.todo) > 0 and (", " .. (n.skip + n.todo) .. " skipped/todo") or "")
end

-- The file -------------------------------------------------------------------------------
local function teardown()
  if provium._teardown_root then
    local ok, err = pcall(provium._teardown_root)
    if not ok then io.stderr:write("provium: teardown: ", tostring(err), "\n") end
  end
end

local function file_error(counts, start, msg)
  local ev = { ev = "file_end", error = msg, duration_ns = S.now_ns() - start }
  for k, v in pairs(counts) do ev[k] = v end
  emit(ev)
end

function provium._main()
  local start = S.now_ns()
  local counts = { passed = 0, failed = 0, skipped = 0, todo = 0, errors = 0 }
  local fn, lerr = loadfile(cfg.file)
  if not fn then
    file_error(counts, start, lerr)
    return 1
  end
  if not cfg.list_only then emit({ ev = "file_start" }) end

  -- the file's top level runs as a task too, so it may call blocking functions
  local ftask = S.spawn(fn)
  S.file_deadline = S.now() + (cfg.timeout and cfg.timeout > 0 and cfg.timeout or 60)
  local ok = S.run(ftask, S.file_deadline)
  S.file_deadline = nil
  if not ok or ftask.err ~= nil then
    local msg
    if not ok then
      msg = (where_in(ftask.co, 0) or cfg.file) .. ": the file's top level did not finish in time, " .. S.describe(ftask)
    else
      msg = tostring(ftask.err)
      if type(ftask.err) ~= "string" or not msg:find("^.-:%d+: ") then
        local w = where_in(ftask.co, 0)
        if w then msg = w .. ": " .. msg end
      end
    end
    S.abandon("file")
    teardown()
    file_error(counts, start, msg)
    return 1
  end

  local list = {}
  for _, rec in ipairs(tests) do if selected(rec) then list[#list + 1] = rec end end
  if cfg.shuffle then
    math.randomseed(cfg.seed or 0)
    for i = #list, 2, -1 do
      local j = math.random(i)
      list[i], list[j] = list[j], list[i]
    end
  end

  if cfg.list_only then
    for _, rec in ipairs(list) do emit({ ev = "test_listed", test = rec.name, meta = rec.meta }) end
    S.abandon("file")
    teardown()
    return 0
  end

  local stop = false
  -- runs (or reports as not run) one test and counts its outcome
  local function run_one(rec)
    local outcome, message
    if stop then
      outcome, message = "skip", "not run: an earlier test failed (--fail-fast)"
    elseif file_todo then
      outcome, message = "todo", file_todo
    elseif rec.meta.skip then
      outcome, message = "skip", rec.meta.skip == true and "skipped" or tostring(rec.meta.skip)
    elseif rec.meta.slow and not cfg.slow then
      outcome, message = "skip", "slow test (use --slow)"
    end
    if outcome then
      report(rec, outcome, message)
    else
      outcome = run_test(rec)
    end
    if outcome == "pass" then counts.passed = counts.passed + 1
    elseif outcome == "fail" or outcome == "error" then
      counts.failed = counts.failed + 1
      if outcome == "error" then counts.errors = counts.errors + 1 end
      if cfg.fail_fast then stop = true end
    elseif outcome == "skip" then counts.skipped = counts.skipped + 1
    elseif outcome == "todo" then counts.todo = counts.todo + 1 end
    return outcome
  end

  if cfg.interactive and provium._repl then
    -- --interactive: no test runs by itself; run(pattern) at the prompt runs them
    local ok, err = pcall(provium._repl, { tests = tests, run = function(pattern)
      return interactive_run(pattern, run_one)
    end })
    if not ok then io.stderr:write("provium: the prompt failed: ", tostring(err), "\n") end
  else
    for _, rec in ipairs(list) do run_one(rec) end
  end

  S.abandon("file")
  -- --keep: the VMs of a file with a failed test stay up (lab.lua, VM:_keep)
  if cfg.keep and counts.failed > 0 then provium._keep_vms = cfg.file end
  teardown()
  local ev = { ev = "file_end", duration_ns = S.now_ns() - start }
  for k, v in pairs(counts) do ev[k] = v end
  emit(ev)
  -- --keep kept kvm VMs: this worker goes on as their holder (kvm.lua, lua/kvm_keep.c)
  if provium._vm and provium._vm.kvm_hold then provium._vm.kvm_hold() end
  return 0
end
