-- conn.lua — an agent connection as the VM API uses it: blocking request/reply on top
-- of the non-blocking AgentConn (lua/agentconn.c) and the scheduler. One task at a
-- time reads the socket (the "reader"); it signals a condition after every batch of
-- frames so other tasks waiting on the same connection look for their replies.
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V

-- V.deadline(opts) -> absolute deadline for a blocking call: now + opts.timeout, else a
-- moment after the running test's deadline, so that the scheduler stops a test that
-- overruns its timeout (reporting where it waited and tearing its VMs down) before
-- the call gives up by itself; nil outside tests.
function V.deadline(opts)
  if type(opts) == "table" and opts.timeout ~= nil then return S.deadline(opts) end
  local d = S.deadline(nil)
  return d and d + 1 or nil
end

local Conn = {}
Conn.__index = Conn
V.Conn = Conn

-- V.conn(fd, vmname [, adopted]) -> Conn (owns fd); `adopted`: a stream whose
-- handshake was done before a snapshot carried it (no hello sent, ready at once)
function V.conn(fd, vmname, adopted)
  local c = provium._c_agent.connect(fd, vmname, adopted)
  return setmetatable({ c = c, vm = vmname, cond = S.cond(), reader = nil }, Conn)
end

-- true when another live task is the reader (blocked on the socket)
local function other_reader(self)
  local r = self.reader
  return type(r) == "table" and r ~= S.current() and not r.dead
end

-- Conn:wait(check, deadline, what) -> the first non-nil check(), or check() at the deadline.
function Conn:wait(check, deadline, what)
  while true do
    local v = check()
    if v ~= nil then return v end
    if deadline and S.now() >= deadline then
      if not other_reader(self) then pcall(self.c.pump, self.c) end
      return check()
    end
    local me = S.current()
    if me and other_reader(self) then
      -- someone else reads the socket; it signals after each batch
      local slice = S.now() + 0.25
      if deadline and deadline < slice then slice = deadline end
      self.cond:wait(slice, what)
    else
      self.reader = me or true
      local ok, n = pcall(self.c.pump, self.c)
      if not ok then
        self.reader = nil
        self.cond:signal()
        error(n, 0)
      end
      v = check()
      if v ~= nil then
        self.reader = nil
        if n > 0 then self.cond:signal() end
        return v
      end
      if n == 0 then
        local mode = self.c:want_write() and "rw" or "r"
        local fd = self.c:fd()
        if fd < 0 then self.reader = nil; perr({ code = "closed", op = what, vm = self.vm, message = "the agent connection is closed" }) end
        S.wait_fd(fd, mode, deadline, what)
      end
      self.reader = nil
      self.cond:signal()
    end
  end
end

-- Conn:poll_now(): reads what already arrived without waiting (for drain()), unless
-- another task is the reader (it will deliver it).
function Conn:poll_now()
  if other_reader(self) then return end
  local ok, n = pcall(self.c.pump, self.c)
  if ok and n > 0 then self.cond:signal() end
end

-- Raises the provium error for an agent error reply.
function V.agent_error(r, op, vm)
  local code = r.code
  if code == nil or code == "" then code = "guest" end
  local msg = r.message
  if not msg or msg == "" then msg = r.errname or "error" end
  if code == "guest" and r.errname and not msg:find(r.errname, 1, true) then
    msg = msg .. " (" .. r.errname .. ")"
  end
  perr({ code = code, op = op, vm = vm, errno = r.errno, errname = r.errname, message = msg }, 3)
end

function V.timeout_error(op, vm, what, deadline_from)
  perr({ code = "timeout", op = op, vm = vm,
    message = ("timed out %s"):format(what or "") .. (deadline_from and (" after %.1f s"):format(S.now() - deadline_from) or "") }, 3)
end

-- Conn:send(op, args, apiop) -> id (raises closed)
function Conn:send(op, args, apiop)
  local ok, id = pcall(self.c.send, self.c, op, args)
  if not ok then
    if provium._is_error(id) then id.op = apiop or op; error(id, 0) end
    error(id, 0)
  end
  return id
end

-- Conn:reply(id, deadline, apiop) -> the raw reply (timeout raises)
function Conn:await(id, deadline, apiop, op)
  local t0 = S.now()
  local c = self.c
  local ok, r = pcall(self.wait, self, function() return c:reply(id) end, deadline,
    ("waiting for reply to %s on vm %s"):format(op or apiop, self.vm))
  if not ok then
    if provium._is_error(r) then r.op = apiop or r.op end
    error(r, 0)
  end
  if not r then
    c:forget(id)
    V.timeout_error(apiop, self.vm, ("waiting for the agent to answer %s"):format(op or apiop), t0)
  end
  return r
end

-- Conn:call(op, args, deadline, apiop) -> result, id; agent errors raise
function Conn:call(op, args, deadline, apiop)
  local id = self:send(op, args, apiop or op)
  local r = self:await(id, deadline, apiop or op, op)
  if not r.ok then V.agent_error(r, apiop or op, self.vm) end
  return r.result, id
end

-- Conn:ready_wait(deadline) -> true when the agent's hello arrived
function Conn:ready_wait(deadline)
  local c = self.c
  return self:wait(function() return c:ready() or nil end, deadline, "waiting for the agent's hello on vm " .. self.vm)
end

function Conn:close()
  pcall(self.c.close, self.c)
  self.cond:signal()
end
