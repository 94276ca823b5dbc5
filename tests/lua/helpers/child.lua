-- helpers/child.lua — for tests that check what a whole run reports: runs a child
-- `provium run` on fixture files (tests/lua/fixtures/*.fixture.lua, which discovery
-- skips) and returns its exit code, its output and its decoded event stream.
-- Usage: local child = dofile(provium._helper_dir .. "/child.lua")  -- see below
local H = {}

local src = debug.getinfo(1, "S").source:gsub("^@", "")
H.helpers = src:match("^(.*)/[^/]*$") or "."
H.lua_dir = H.helpers:match("^(.*)/[^/]*$") or "."
H.fixtures = H.lua_dir .. "/fixtures"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
H.quote = sh_quote

local function capture(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

-- the provium binary: $PROVIUM_BUILD/provium (set by make test), else the binary that
-- runs this worker (the shell's parent)
function H.binary()
  local b = provium.env("PROVIUM_BUILD")
  if b and b ~= "" then return b .. "/provium" end
  -- " (deleted)": the binary was rebuilt while this run goes on; use the new one
  local exe = capture("readlink /proc/$PPID/exe"):gsub("%s+$", ""):gsub(" %(deleted%)$", "")
  -- only ever a provium binary: under a test harness (test_runfile) the running exe
  -- would re-run itself for every child run, recursively (a fork bomb)
  if not exe:match("/provium$") then
    error("helpers/child.lua: the running binary is " .. exe .. ", not provium; set PROVIUM_BUILD", 2)
  end
  return exe
end

local n = 0
local run_once
-- H.run(args, env) -> {code=, out=, events={...}, by_test={name={start=, ["end"]=}}}
-- args: a string of flags and fixture names (relative to fixtures/), env: table.
function H.run(args, env)
  -- In a shared work tree build/provium may be relinked while we run (exit 126/127, or
  -- no event stream): try again a little later; a real failure fails every time.
  local r
  for attempt = 1, 3 do
    r = run_once(args, env)
    if r.code ~= 126 and r.code ~= 127 and #r.events > 0 then return r end
    provium.sleep(2 * attempt)
  end
  return r
end

function run_once(args, env)
  n = n + 1
  local ev = provium.tmpdir() .. "/child" .. n .. ".events"
  local prefix = ""
  for k, v in pairs(env or {}) do prefix = prefix .. k .. "=" .. sh_quote(v) .. " " end
  local bin = H.binary()
  local cmd = ("cd %s && env -u PROVIUM_EVENTS %s%s run --no-color -j2 --events %s %s 2>&1"):format(
    sh_quote(H.fixtures), prefix, sh_quote(bin), sh_quote(ev), args)
  local out, code = capture(cmd)
  local r = { code = code, out = out, events = {}, by_test = {}, cmd = cmd }
  local lines = capture(("%s events --format json %s 2>&1"):format(sh_quote(bin), sh_quote(ev)))
  for line in lines:gmatch("[^\n]+") do
    local ok, e = pcall(json.decode, line)
    if ok and type(e) == "table" then
      r.events[#r.events + 1] = e
      if e.test then
        local bt = r.by_test[e.test] or {}
        r.by_test[e.test] = bt
        if e.ev == "test_start" then bt.start = e elseif e.ev == "test_end" then bt["end"] = e end
      end
    end
  end
  -- a test missing from the stream is an error that shows what the child run said
  -- (rawget(r.by_test, name) to check for absence)
  setmetatable(r.by_test, { __index = function(_, name)
    error(("no events for test %q in the child run (exit %s):\n%s"):format(name, tostring(code), out), 2)
  end })
  return r
end

-- events of one kind (and matching fields)
function H.find(r, kind, fields)
  local out = {}
  for _, e in ipairs(r.events) do
    if e.ev == kind then
      local ok = true
      for k, v in pairs(fields or {}) do if e[k] ~= v then ok = false end end
      if ok then out[#out + 1] = e end
    end
  end
  return out
end

return H
