-- process.lua — Process (API.md): a command started with vm:spawn. Its stdout/stderr
-- arrive as stream frames of the spawn request. The stream rule (docs/process.md):
-- output goes to every stream attached to it (p:stdout_stream) and not closed, and
-- stays in that stream until read; output that arrives while no stream is attached
-- is kept for p:wait(), except that the first stream attached takes what is kept then.
-- So wait().stdout holds only what no stream was attached for.
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V

local Process, P_mt = provium._class("Process", "p")
V.Process = Process
P_mt.__tostring = function(p)
  return ("Process(%d, %s)"):format(p.pid, p._state or "running")
end

function Process._new(vm, conn, id, pid, cmd)
  return setmetatable({ pid = pid, _vm = vm, _vmname = vm.name, _conn = conn, _id = id,
    _cmd = cmd, _out = { stdout = {}, stderr = {} }, _eof = { stdout = false, stderr = false },
    _sinks = { stdout = {}, stderr = {} } }, P_mt)
end

-- moves arrived output to the attached streams' sources (each gets every byte), or,
-- with none attached, into the buffer p:wait() returns; true if anything new
function Process:_pull()
  local got = false
  for _, name in ipairs({ "stdout", "stderr" }) do
    if not self._eof[name] then
      local d, eof = self._conn.c:stream(self._id, name)
      if d ~= "" then
        local sinks = self._sinks[name]
        if #sinks > 0 then
          for _, src in ipairs(sinks) do src.pending[#src.pending + 1] = d end
        else
          local t = self._out[name]; t[#t + 1] = d
        end
        got = true
      end
      if eof then self._eof[name] = true; got = true end
    end
  end
  if self._conn.c:closed() ~= nil then
    self._eof.stdout, self._eof.stderr = true, true
  end
  return got
end

function Process:_take(name)
  local t = self._out[name]
  self._out[name] = {}
  return table.concat(t)
end

local function call(self, op, agent_op, args, deadline)
  return self._conn:call(agent_op, args, deadline or V.deadline(nil), op)
end

local function set_status(self, r)
  self._state = r.state
  if r.state ~= "running" then
    self._code = (r.state == "exited") and r.code or nil
    self._signal = (r.signal and r.signal ~= 0) and r.signal or nil
  end
end

-- p:wait([opts]) -> {code=, signal=, stdout=, stderr=}
function Process:wait(opts)
  opts = provium._opts(opts, "p:wait", self._vmname, "timeout:secs")
  local deadline = V.deadline(opts)
  if not self._state or self._state == "running" then
    -- the host enforces the deadline (a pending proc_wait ends with the process or
    -- the connection on the agent side)
    local id = self._conn:send("proc_wait", { pid = self.pid }, "p:wait")
    local t0 = S.now()
    local ok, r = pcall(self._conn.await, self._conn, id, deadline, "p:wait", "proc_wait")
    if not ok then
      -- a timeout here is the process still running, not a slow agent: say which
      if provium._is_error(r) and r.code == "timeout" then
        local cmd = self._cmd
        if type(cmd) == "table" then cmd = table.concat(cmd, " ") end
        perr({ code = "timeout", op = "p:wait", vm = self._vmname,
          message = ("process %d (%s) did not exit within %.1f s"):format(self.pid,
            tostring(cmd or "?"):sub(1, 200), S.now() - t0) }, 2)
      end
      error(r, 0)
    end
    if not r.ok then V.agent_error(r, "p:wait", self._vmname) end
    set_status(self, r.result)
  end
  -- the output streams end shortly after the exit (their eof frames follow)
  local conn = self._conn
  conn:wait(function()
    self:_pull()
    if self._eof.stdout and self._eof.stderr then return true end
  end, deadline or (S.now() + 5), "waiting for the output of process " .. self.pid)
  return { code = self._code, signal = self._signal, stdout = self:_take("stdout"), stderr = self:_take("stderr") }
end

function Process:kill()
  call(self, "p:kill", "proc_kill", { pid = self.pid })
end

function Process:signal(sig)
  if type(sig) ~= "string" and math.type(sig) ~= "integer" then
    perr({ code = "invalid", op = "p:signal", vm = self._vmname, message = "signal must be a number or a name like \"TERM\"" }, 2)
  end
  call(self, "p:signal", "proc_signal", { pid = self.pid, signal = sig })
end

function Process:write(data)
  if type(data) ~= "string" then
    perr({ code = "invalid", op = "p:write", vm = self._vmname, message = "data must be a string" }, 2)
  end
  local r = call(self, "p:write", "proc_write", { pid = self.pid, data = data })
  return r.n
end

function Process:close_stdin()
  call(self, "p:close_stdin", "proc_close_stdin", { pid = self.pid })
end

function Process:status()
  if self._state and self._state ~= "running" then return self._state end
  set_status(self, call(self, "p:status", "proc_status", { pid = self.pid }))
  return self._state
end

function Process:running()
  return self:status() == "running"
end

function Process:exit_code()
  self:status()
  return self._code
end

local function proc_stream(self, name)
  local src = { pending = {}, keeps_until_close = true }
  -- route what already arrived by the old rule, then attach: the first stream takes
  -- what no one has taken yet
  self:_pull()
  local sinks = self._sinks[name]
  if #sinks == 0 then src.pending = self._out[name]; self._out[name] = {} end
  sinks[#sinks + 1] = src
  local function take()
    local d = table.concat(src.pending)
    src.pending = {}
    return d
  end
  function src.pull()
    self:_pull()
    local d = take()
    return d, self._eof[name] and #src.pending == 0
  end
  function src.wait(_, deadline)
    pcall(self._conn.wait, self._conn, function()
      if self:_pull() then return true end
    end, deadline, ("waiting for %s of process %d on vm %s"):format(name, self.pid, self._vmname))
  end
  function src.poll_now() self._conn:poll_now() end
  -- closed: later output is no longer this stream's (what it holds stays readable)
  function src.close()
    self:_pull()
    for i = #sinks, 1, -1 do if sinks[i] == src then table.remove(sinks, i) end end
  end
  return V.stream_new("Tail", self._vmname, name .. " of process " .. self.pid, src)
end

function Process:stdout_stream() return proc_stream(self, "stdout") end
function Process:stderr_stream() return proc_stream(self, "stderr") end
