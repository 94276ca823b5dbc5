-- worker.lua — Worker (API.md): another agent connection to the same VM, with the
-- VM's command, file, process and syscall methods. Requests on different Workers run
-- concurrently (each connection is served by its own agent thread, and each task waits
-- on its own socket); on one Worker they are serialised (API.md): a call made while
-- another task's call on the same Worker is in flight waits for it to finish.
-- Sandbox backend: each Worker is a separate agent process started inside the sandbox's
-- namespaces (lua/sandbox.c sandbox_connect), so it needs nothing from /init.
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V

local Worker, W_mt = provium._class("Worker", "w", { vm = function(t) return rawget(t, "name") end })
V.Worker = Worker
W_mt.__tostring = function(w)
  return ("Worker(%s, %s)"):format(w.name, w._closed and "closed" or "open")
end
W_mt.__close = function(w) pcall(w.close, w) end

function Worker._new(vm)
  vm:_link("vm:worker")
  local fd
  if vm.backend == "sandbox" then
    fd = vm._sb:connect()
  else
    fd = vm:_connect_agent()
  end
  local conn = V.conn(fd, vm.name)
  local w = setmetatable({ name = vm.name, backend = vm.backend, _vm = vm, _conn = conn }, W_mt)
  local ok, ready = pcall(conn.ready_wait, conn, S.now() + 10)
  if not ok or not ready then
    conn:close()
    perr({ code = ok and "timeout" or "infra", op = "vm:worker", vm = vm.name,
      message = "the worker's agent did not answer: " .. (ok and "no hello within 10 s" or tostring(ready)) }, 2)
  end
  vm._workers[w] = true
  return w
end

function Worker:_link(op)
  if self._closed then
    perr({ code = "closed", op = op, vm = self.name, message = "worker is closed" }, 4)
  end
  self._vm:_link(op)
  return self._conn, self._vm
end

function Worker:state() return self._vm:state() end

function Worker:close()
  if self._closed then return end
  self._closed = true
  self._conn:close()
  if self._vm._workers then self._vm._workers[self] = nil end
end

-- One call at a time per Worker. The lock is released by a to-be-closed value, so it
-- is given back whether the call returns or raises. A method that calls another on
-- the same Worker (wait_for_file calls exists) holds the lock already: it goes on.
local function release(w)
  w._busy = false
  if w._idle then w._idle:signal() end
end
local unlock_mt = { __close = function(u) release(u.w) end }

local function serialised(fn)
  return function(self, ...)
    local me = S.current() or true
    if rawget(self, "_busy") == me then return fn(self, ...) end
    while rawget(self, "_busy") do
      self._idle = self._idle or S.cond()
      self._idle:wait(nil)
    end
    self._busy = me
    local _ <close> = setmetatable({ w = self }, unlock_mt)
    return fn(self, ...)
  end
end

for _, name in ipairs(V.shared_methods) do
  Worker[name] = serialised(provium._raw(V.VM, name))
end
