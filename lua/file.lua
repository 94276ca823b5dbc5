-- file.lua — File (API.md "File (guest fd)"): an fd the agent holds, from vm:open.
-- POSIX semantics; errors raise `guest` with errno.
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V

local File, F_mt = provium._class("File", "f")
V.File = File
F_mt.__tostring = function(f)
  return ("File(%s, fd %d%s)"):format(f._path, f._fd, f._closed and ", closed" or "")
end
F_mt.__close = function(f) pcall(f.close, f) end

local MAX = 1024 * 1024

function File._new(vm, conn, fd, path)
  return setmetatable({ _vm = vm, _vmname = vm.name, _conn = conn, _fd = fd, _path = path }, F_mt)
end

local function live(f, op)
  if f._closed then
    perr({ code = "closed", op = op, vm = f._vmname, message = "file " .. f._path .. " is closed" }, 3)
  end
  return f._conn
end

local function call(f, op, agent_op, args)
  local conn = live(f, op)
  return conn:call(agent_op, args, V.deadline(nil), op)
end

-- f:read([n]) -> up to n bytes (all to EOF without n), nil at EOF
function File:read(n)
  provium._arg(n, "uint", "f:read", self._vmname, "n", true)
  n = math.tointeger(n)
  if n then
    local parts, got = {}, 0
    while got < n do
      local r = call(self, "f:read", "read", { fd = self._fd, n = math.min(n - got, MAX) })
      if r.eof or #r.data == 0 then break end
      parts[#parts + 1] = r.data
      got = got + #r.data
    end
    if got == 0 and n > 0 then return nil end
    return table.concat(parts)
  end
  local parts = {}
  while true do
    local r = call(self, "f:read", "read", { fd = self._fd, n = MAX })
    if r.eof or #r.data == 0 then break end
    parts[#parts + 1] = r.data
  end
  if #parts == 0 then return nil end
  return table.concat(parts)
end

-- f:write(data) -> bytes written
function File:write(data)
  if type(data) ~= "string" then
    perr({ code = "invalid", op = "f:write", vm = self._vmname, message = "data must be a string" }, 2)
  end
  local total = 0
  for i = 1, math.max(#data, 1), MAX do
    local chunk = data:sub(i, i + MAX - 1)
    local r = call(self, "f:write", "write", { fd = self._fd, data = chunk })
    total = total + r.n
    if r.n < #chunk then break end
  end
  return total
end

-- f:seek([whence [, offset]]) -> position (like Lua's file:seek)
function File:seek(whence, offset)
  whence = whence or "cur"
  if whence ~= "set" and whence ~= "cur" and whence ~= "end" then
    perr({ code = "invalid", op = "f:seek", vm = self._vmname, message = "whence must be \"set\", \"cur\" or \"end\"" }, 2)
  end
  local r = call(self, "f:seek", "seek", { fd = self._fd, whence = whence, offset = offset or 0 })
  return r.pos
end

function File:tell()
  return call(self, "f:tell", "tell", { fd = self._fd }).pos
end

function File:fd()
  return self._fd
end

function File:sync()
  call(self, "f:sync", "fsync", { fd = self._fd })
end

function File:tail_stream(opts)
  opts = provium._opts(opts, "f:tail_stream", self._vmname, "poll_ms:posint")
  local conn = live(self, "f:tail_stream")
  local _, id = conn:call("tail_fd", { fd = self._fd, poll_ms = math.tointeger(opts.poll_ms) }, V.deadline(nil), "f:tail_stream")
  return V.Stream._tail(self._vm, conn, id, self._path)
end

function File:close()
  if self._closed then return end
  local conn = live(self, "f:close")
  self._closed = true
  if conn.c:closed() == nil then
    conn:call("close", { fd = self._fd }, V.deadline(nil), "f:close")
  end
end
