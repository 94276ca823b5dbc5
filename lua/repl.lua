-- repl.lua — the Lua prompt of `provium run --interactive` / `provium repl` and of
-- `--pause-on-failure` (docs/debugging.md). Lines are evaluated in the file's
-- environment: the helpers below, then the file's locals its tests captured (its
-- `local vm = provium:vm("box")`), then the globals. An expression prints its values
-- (as lua -i: "=expr", or a line that parses as one). The whole session runs in
-- S.interactive: no timeout or hang detection fires while a person types.
-- Line editing, history and the terminal are lua/repl.c's; Tab asks
-- provium._repl_complete.
local provium = provium
local S = provium._sched
local cfg = provium._config
local function inspect(v) return provium._inspect(v) end -- testlib.lua, loaded after us

local function say(...) io.stderr:write(...) end

local function show(v)
  if type(v) == "string" then return v end
  return inspect(v)
end

local function errtext(e)
  if type(e) == "table" and not (getmetatable(e) and getmetatable(e).__tostring) then
    return type(e.message) == "string" and e.message or inspect(e)
  end
  return tostring(e)
end

-- Every VM of the root lab and its sub-labs, in the order they were made.
local function all_vms()
  local r = {}
  local function walk(lab)
    for _, rec in ipairs(rawget(lab, "_vms") or {}) do r[#r + 1] = rec.vm end
    for _, l in ipairs(rawget(lab, "_labs") or {}) do walk(l) end
  end
  walk(provium)
  return r
end

local LEAVE = {}   -- raised by exit()

-- Waits until the runner handled what this worker sent so far (its report of a test
-- is out, its status line cleared), so the next prompt comes after it.
local function sync()
  if not provium._c_chan then return end
  pcall(provium._request, { k = "sync" }, S.now() + 5, "waiting for the runner")
end

-- The environment lines run in. ctx: tests (all of the file's records), run(pattern)
-- or nil (not while paused in a test), t (the failed test's context) or nil.
local function make_env(ctx)
  local h = {}
  -- locals of the file, as its test functions hold them (upvalues), read live
  local upv = {}
  for _, rec in ipairs(ctx.tests) do
    for i = 1, 255 do
      local n = debug.getupvalue(rec.fn, i)
      if not n then break end
      if n ~= "_ENV" and not upv[n] then upv[n] = { rec.fn, i } end
    end
  end
  function h.tests()
    for _, rec in ipairs(ctx.tests) do
      local tags = rec.meta.tags and #rec.meta.tags > 0 and ("  [" .. table.concat(rec.meta.tags, ",") .. "]") or ""
      say(("  %-40s %s%s\n"):format(rec.name, rec.where, tags))
    end
    say(("%d test%s\n"):format(#ctx.tests, #ctx.tests == 1 and "" or "s"))
  end
  function h.run(pattern)
    if not ctx.run then
      error("run() is not available while paused in a failed test: leave the prompt (Ctrl-D) to go on", 0)
    end
    local ok, summary = pcall(ctx.run, pattern)
    sync()
    if not ok then error(summary, 0) end
    say(summary)
  end
  function h.vms()
    local list = all_vms()
    for _, v in ipairs(list) do
      local ok, st = pcall(v.state, v)
      say(("  %-20s %-8s %s\n"):format(v.name, tostring(v.backend), ok and st or ("? " .. errtext(st))))
    end
    if #list == 0 then say("no VMs\n") end
  end
  function h.vm(name)
    local names = {}
    for _, v in ipairs(all_vms()) do
      if v.name == name then return v end
      names[#names + 1] = v.name
    end
    error(("no VM named %s (the file has: %s)"):format(tostring(name), #names > 0 and table.concat(names, ", ") or "none"), 2)
  end
  function h.shell(name) return h.vm(name):shell() end
  function h.exit() error(LEAVE, 0) end
  function h.help()
    say("tests()          the file's tests\n",
        "run(name)        run the tests whose name is or contains/matches name, now\n",
        "vms()            the VMs: name, backend, state\n",
        "vm(name)         a VM object (vm(\"box\"):succeed(\"ls /\"))\n",
        "shell(name)      a shell in a VM (Ctrl-] leaves it)\n",
        "=expr, expr      print a value; Tab completes names and methods\n",
        "exit(), Ctrl-D   leave the prompt\n")
  end
  -- print() at the prompt goes to the terminal, also while paused in a test
  function h.print(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    say(table.concat(parts, "\t"), "\n")
  end
  h.t = ctx.t
  return upv, setmetatable(h, { __index = function(_, k)
    local u = upv[k]
    if u then return select(2, debug.getupvalue(u[1], u[2])) end
    return _G[k]
  end })
end

-- Tab completion ---------------------------------------------------------------------
local cur_env, cur_upv = nil, nil

local function keys_of(v, acc, depth)
  if depth > 4 then return end
  if type(v) == "table" then
    for k in next, v do if type(k) == "string" then acc[k] = true end end
  end
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return end
  local methods = rawget(mt, "__provium_methods") -- provium._class: __index is a function
  if methods then
    local store = getmetatable(methods).__index
    keys_of(store, acc, depth + 1)
  end
  local idx = rawget(mt, "__index")
  if type(idx) == "table" then keys_of(idx, acc, depth + 1) end
end

-- provium._repl_complete(text) -> the candidates for text ("vm:su", "provium.en", "te")
function provium._repl_complete(text)
  local env = cur_env
  if not env then return {} end
  local head, sep, part = text:match("^(.-)([.:])([%w_]*)$")
  local acc = {}
  if not head then
    part = text:match("[%w_]*$")
    head, sep = text:sub(1, #text - #part), ""
    keys_of(env, acc, 0)
    for k in pairs(_G) do if type(k) == "string" then acc[k] = true end end
    for k in pairs(cur_upv or {}) do acc[k] = true end
    for _, w in ipairs({ "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
      "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }) do
      acc[w] = true
    end
  else
    -- only names and dots before it: completing never calls a function
    if not head:match("^[%a_][%w_]*$") and not head:match("^[%a_][%w_%.]*[%w_]$") then return {} end
    local ok, v = pcall(function()
      local x = env
      for name in head:gmatch("[^.]+") do x = x[name] end
      return x
    end)
    if not ok or v == nil then return {} end
    keys_of(v, acc, 0)
    head = head .. sep
  end
  local r = {}
  for k in pairs(acc) do
    if k:sub(1, #part) == part and (k:sub(1, 1) ~= "_" or part:sub(1, 1) == "_") and k:match("^[%a_][%w_]*$") then
      r[#r + 1] = head .. k
    end
  end
  table.sort(r)
  return r
end

-- The loop ---------------------------------------------------------------------------
-- Compiles a line (more lines while the statement is incomplete) -> fn, or nil at EOF.
local function read_chunk(env, tty)
  local line = provium._c_repl_read("provium> ")
  if not line then return nil end
  local src = line:gsub("^%s*=", "return ", 1)
  while true do
    local fn = load("return " .. src, "=prompt", "t", env)
    if fn then return fn end
    local err
    fn, err = load(src, "=prompt", "t", env)
    if fn then return fn end
    if not err:find("<eof>$") then return function() error(err, 0) end end
    local more = provium._c_repl_read(tty and ">> " or "")
    if not more then return function() error(err, 0) end end
    src = src .. "\n" .. more
  end
end

local function eval(fn)
  -- a call blocked at the prompt gives up after the usual test timeout
  local saved = S.test_deadline
  S.test_deadline = S.now() + (cfg.timeout and cfg.timeout > 0 and cfg.timeout or 60)
  local r = table.pack(xpcall(fn, function(e)
    if e == LEAVE then return e end
    return errtext(e)
  end))
  S.test_deadline = saved
  if not r[1] then
    if r[2] == LEAVE then return false end
    say("error: ", tostring(r[2]), "\n")
  elseif r.n > 1 then
    local parts = {}
    for i = 2, r.n do parts[#parts + 1] = show(r[i]) end
    local text = table.concat(parts, "\t")
    say(text, text:sub(-1) == "\n" and "" or "\n")
  end
  return true
end

local function history_file()
  local x, home = os.getenv("XDG_STATE_HOME"), os.getenv("HOME")
  if x and x ~= "" then return x .. "/provium/history" end
  if home and home ~= "" then return home .. "/.provium_history" end
  return nil
end

local function loop(ctx, banner)
  local upv, env = make_env(ctx)
  local prev, prev_upv = cur_env, cur_upv
  cur_env, cur_upv = env, upv
  local tty = provium._c_repl_open(history_file())
  local ok, err = pcall(function()
    sync()
    say(banner)
    while true do
      local fn = read_chunk(env, tty)
      if not fn or not eval(fn) then break end
    end
  end)
  provium._c_repl_close()
  cur_env, cur_upv = prev, prev_upv
  if not ok then error(err, 0) end
end

-- provium._repl(ctx): --interactive, after the file's top level ran (testlib.lua).
function provium._repl(ctx)
  local vms = {}
  for _, v in ipairs(all_vms()) do vms[#vms + 1] = v.name end
  S.interactive(loop, ctx, ("provium: %s loaded: %d test%s, VMs: %s\n" ..
    "  tests()  run(name)  vms()  vm(name)  shell(name)  help();  Ctrl-D or exit() ends the run\n")
    :format(cfg.file, #ctx.tests, #ctx.tests == 1 and "" or "s", #vms > 0 and table.concat(vms, ", ") or "none"))
end

-- provium._repl_pause(ctx): --pause-on-failure, a test failed; its VMs are still up.
function provium._repl_pause(ctx)
  S.interactive(loop, ctx, ("provium: test %q %s%s:\n%s\n" ..
    "provium: paused before its teardown (--pause-on-failure); `t` is the test, vms() its VMs;\n" ..
    "  Ctrl-D or exit() goes on with the run\n")
    :format(ctx.name, ctx.outcome == "fail" and "failed" or "raised an error",
      ctx.where and (" at " .. ctx.where) or "", tostring(ctx.message)))
end
