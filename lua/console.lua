-- console.lua — Console (API.md): the sandbox's console is its init's stdout/stderr,
-- kept by lua/sandbox.c in a 1 MiB ring buffer from the start; console:write feeds the
-- init's stdin. console:expect consumes from the Console's own cursor (initially the
-- start of the log), so successive expects move forward.
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V

local Console, C_mt = provium._class("Console", "console")
V.Console = Console
C_mt.__tostring = function(c) return ("Console(%s)"):format(c._vmname) end

local POLL = 0.005

function Console._new(vm)
  return setmetatable({ _vm = vm, _vmname = vm.name, _stream = nil }, C_mt)
end

local function sb(c, op)
  if c._closed then perr({ code = "closed", op = op, vm = c._vmname, message = "console is closed" }, 3) end
  local s = c._vm._sb
  if not s then perr({ code = "closed", op = op, vm = c._vmname, message = "VM has not started" }, 3) end
  return s
end

-- a ConsoleStream reading the ring from byte position `pos`
local function stream_from(c, pos)
  local vm = c._vm
  local src = { pos = pos, sb = vm._sb }
  function src.pull()
    -- after a reboot the VM has a new sandbox: follow it from its start
    if vm._sb and vm._sb ~= src.sb then src.sb, src.pos = vm._sb, 0 end
    if not src.sb then return "", true end
    local d, np, eof = src.sb:console_read(src.pos)
    src.pos = np
    return d, eof and d == "" and vm._sb == src.sb and vm:state() ~= "running"
  end
  function src.wait(_, deadline)
    local t = S.now() + POLL
    if deadline and deadline < t then t = deadline end
    S.sleep(math.max(0, t - S.now()), "waiting for console output of vm " .. c._vmname)
  end
  function src.close() end
  return V.stream_new("ConsoleStream", c._vmname, "the console of vm " .. c._vmname, src)
end

-- c:log() -> everything printed since boot (the last 1 MiB)
function Console:log()
  local s = sb(self, "console:log")
  return (s:console_read(0))
end

-- c:read() -> ConsoleStream from now on
function Console:read()
  local s = sb(self, "console:read")
  return stream_from(self, s:console_pos())
end

-- c:expect(pattern [, opts]) -> captures; raises timeout with the last 2 KiB
function Console:expect(pattern, opts)
  sb(self, "console:expect")
  provium._arg(pattern, "string", "console:expect", self._vmname, "pattern")
  provium._opts(opts, "console:expect", self._vmname, "plain:bool timeout:secs")
  if not self._stream then self._stream = stream_from(self, 0) end
  return self._stream:expect(pattern, opts)
end

-- c:write(data): input to the guest console (the init's stdin)
function Console:write(data)
  if type(data) ~= "string" then
    perr({ code = "invalid", op = "console:write", vm = self._vmname, message = "data must be a string" }, 2)
  end
  local s = sb(self, "console:write")
  local off = 1
  local deadline = V.deadline(nil)
  while off <= #data do
    local n = s:console_write(data:sub(off))
    off = off + n
    if off <= #data then
      if deadline and S.now() > deadline then
        perr({ code = "timeout", op = "console:write", vm = self._vmname, message = "nobody reads the console input" }, 2)
      end
      S.sleep(POLL)
    end
  end
  return #data
end

function Console:close()
  self._closed = true
end
