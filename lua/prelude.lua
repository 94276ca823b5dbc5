-- prelude.lua — loaded first in every worker: the task scheduler (provium._sched),
-- provium._error, provium._emit and the request/reply client of the parent channel.
-- Tasks are coroutines; a blocking call inside a task yields to the loop in
-- _sched.run, which poll()s over every fd a task waits on plus the earliest deadline.
-- C code never blocks (lua-contract.md); blocking loops are written on top of this.
local provium = provium
local C = provium._c_sched
local chan = provium._c_chan
local cfg = provium._config

-- Errors -----------------------------------------------------------------------------
local Error = debug.getregistry()["provium.Error"]

-- provium._error{code=, message=, op=, vm=, errno=, errname=} raises an error table
-- with the same metatable as errors raised from C (errors.c).
function provium._error(t, level)
  local e = {}
  for k, v in pairs(t) do e[k] = v end
  e.code = e.code or "infra"
  e.message = e.message or e.code
  error(setmetatable(e, Error), level or 2)
end

-- true when v is a provium error table
function provium._is_error(v)
  return type(v) == "table" and getmetatable(v) == Error
end

-- Classes ----------------------------------------------------------------------------
-- Every API object's methods are made here, so a method called with a dot
-- (`vm.run("x")`: no receiver) raises the same `invalid` everywhere, saying to use a
-- colon (provium._self_error, lua/opts.c, which the C Disk uses too).
--
-- provium._methods(kind, recv, is_mine) -> methods: a table whose public functions
-- (names not starting with "_") check their receiver with is_mine(self) (a metatable,
-- or a function for a metatable made later) before they run; kind names the type
-- ("VM") and recv an instance ("vm": vm:run) in messages. Reading gives the checked function;
-- provium._raw(methods, name) the function as written (to share it with a class
-- whose objects pass another check, e.g. Worker).
local raws = setmetatable({}, { __mode = "k" })
function provium._methods(kind, recv, is_mine)
  local store, raw = {}, {}
  local check = is_mine
  if type(is_mine) == "table" then check = function(x) return getmetatable(x) == is_mine end end
  local methods = setmetatable({}, {
    __index = store,
    __newindex = function(_, k, fn)
      raw[k] = fn
      if type(fn) == "function" and type(k) == "string" and k:sub(1, 1) ~= "_" then
        local op = recv .. ":" .. k
        local f = fn
        fn = function(self, ...)
          if not check(self) then provium._self_error(op, self, kind) end
          return f(self, ...)
        end
      end
      store[k] = fn
    end,
  })
  raws[methods] = raw
  return methods
end

function provium._raw(methods, name)
  return raws[methods][name]
end

-- provium._class(kind, recv [, o]) -> methods, mt: a class whose instances have mt.
-- mt.__index gives the methods; an unknown public member raises `invalid`
-- ("VM has no method or field 'x'", op recv.x); names starting with "_" and those in
-- o.nil_fields read as nil. o.vm(t) gives the VM name for that error (default
-- t._vmname).
function provium._class(kind, recv, o)
  o = o or {}
  local mt = { __name = "provium." .. kind }
  local methods = provium._methods(kind, recv, mt)
  mt.__provium_methods = methods -- what the prompt's Tab completion lists (repl.lua)
  local nil_fields = o.nil_fields or {}
  local vmname = o.vm or function(t) return rawget(t, "_vmname") end
  mt.__index = function(t, k)
    local m = methods[k]
    if m ~= nil then return m end
    if type(k) == "string" and k:sub(1, 1) == "_" or nil_fields[k] then return nil end
    provium._error({ code = "invalid", op = recv .. "." .. tostring(k), vm = vmname(t),
      message = kind .. " has no method or field '" .. tostring(k) .. "'" }, 2)
  end
  return methods, mt
end

-- Events -----------------------------------------------------------------------------
-- provium._emit(ev) sends one event to the parent; fills in file and t (unix ns).
-- One event is one SOCK_SEQPACKET packet, which the kernel caps (about 200 KiB): long
-- texts (a log of a whole file, a failure showing a huge value) are cut to 64 KiB.
local MAX_TEXT = 65536
function provium._emit(ev)
  ev.file = ev.file or cfg.file
  ev.t = C.unix_ns()
  for _, k in ipairs({ "text", "message", "error" }) do
    local v = ev[k]
    if type(v) == "string" and #v > MAX_TEXT then
      ev[k] = v:sub(1, MAX_TEXT) .. ("\n... (%d more bytes cut)"):format(#v - MAX_TEXT)
    end
  end
  local ok, err = chan.send({ k = "event", ev = ev })
  if not ok and cfg.file then
    io.stderr:write(("provium: %s: event %s lost: %s\n"):format(cfg.file, tostring(ev.ev), tostring(err)))
  end
end

-- The scheduler ------------------------------------------------------------------------
local S = {}
provium._sched = S
S.now = C.now
S.now_ns = C.now_ns

local current = nil      -- the task whose coroutine is running, or nil
local ready = {}         -- FIFO of {task, value}
local waiting = {}       -- set: task -> true (blocked on an fd, a timer or a cond)
local YIELD = {}         -- what our tasks yield, so foreign yields can be told apart

-- (the scheduler's own fields read as nil when unset)
local Task, Task_mt = provium._class("Task", "task", { nil_fields = { dead = true, queued = true,
  blocked = true, results = true, err = true, seq = true, abandoned = true } })
S.Task = Task_mt

local function make_ready(task, value)
  if task.dead or task.queued then return end
  waiting[task] = nil
  if task.blocked and task.blocked.cond then task.blocked.cond.waiters[task] = nil end
  task.blocked = nil
  task.queued = true
  ready[#ready + 1] = { task, value }
end

local next_task_id = 0
-- S.spawn(fn, ...) -> task: a new task, run at the next scheduler turn. It belongs to
-- the current task's group (a test), so it is abandoned with that test.
function S.spawn(fn, ...)
  local args = table.pack(...)
  next_task_id = next_task_id + 1
  local task = setmetatable({
    id = next_task_id,
    co = coroutine.create(function() return fn(table.unpack(args, 1, args.n)) end),
    group = current and current.group or S.group,
    done_cond = nil,
  }, Task_mt)
  task.done_cond = S.cond()
  -- A task that never yields (a busy Lua loop) cannot be stopped by the scheduler: a
  -- count hook (sched.c) yields it once its test's (or the file top level's) deadline
  -- has passed, and step() leaves it blocked so the timeout is reported at its line.
  C.busy_hook(task.co)
  make_ready(task, nil)
  return task
end
-- S.file_deadline: set by testlib.lua while the file's top level runs
-- coroutine -> the line its top frame was at when the busy hook stopped it
S.busy_lines = setmetatable({}, { __mode = "k" })

-- the group new top-level tasks join (the running test, or "file")
S.group = "file"

function S.current() return current end

local finished_seq = 0
local function finish(task, ok, ...)
  finished_seq = finished_seq + 1
  task.seq = finished_seq
  task.dead = true
  task.queued = false
  waiting[task] = nil
  if ok then
    task.results = table.pack(...)
  else
    task.err = ...
  end
  task.done_cond:signal()
end

local function step(task, value)
  task.queued = false
  if task.dead then return end
  local prev = current
  current = task
  local r = table.pack(coroutine.resume(task.co, value))
  current = prev
  if coroutine.status(task.co) == "dead" then
    finish(task, table.unpack(r, 1, r.n))
  elseif r.n == 1 and S._busy_stopped then
    -- stopped by the busy hook (sched.c): never resumed; the deadline reports it
    S.busy_lines[task.co] = S._busy_stopped -- its real line (testlib's where_in)
    S._busy_stopped = nil
    task.blocked = { what = "busy in Lua without yielding (a loop that never calls a blocking provium function?)" }
    waiting[task] = true
  elseif r[2] ~= YIELD then
    -- a yield that is not ours (coroutine.yield called directly in a task body)
    finish(task, false, "coroutine.yield called outside a coroutine of your own")
  end
end

-- Blocks the running task until made ready; returns the value it was woken with.
local function block(task, wait)
  task.blocked = wait
  waiting[task] = true
  return coroutine.yield(YIELD)
end

local function in_task()
  return current ~= nil and coroutine.running() == current.co
end

-- S.wait_fd(fd, mode, deadline [, what]) -> true when ready, false at the deadline.
-- `what` (optional) says what is awaited, for timeout reports.
function S.wait_fd(fd, mode, deadline, what)
  if in_task() then
    return block(current, { fd = fd, mode = mode or "r", deadline = deadline, what = what })
  end
  while true do
    local t = -1
    if deadline then
      t = deadline - C.now()
      if t <= 0 then return false end
    end
    if C.poll({ fd }, { mode or "r" }, t)[1] then return true end
  end
end

function S.sleep(seconds, what)
  local deadline = C.now() + (tonumber(seconds) or 0)
  if in_task() then
    block(current, { deadline = deadline, what = what or ("sleeping " .. tostring(seconds) .. " s") })
    return
  end
  local t = deadline - C.now()
  if t > 0 then C.poll({}, {}, t) end
end

-- Yields to let other ready tasks run (no-op outside a task).
function S.yield()
  if in_task() then
    local task = current
    make_ready(task, true)
    coroutine.yield(YIELD)
  end
end

-- Conditions: c:wait(deadline [, what]) -> true when signalled, false at the deadline;
-- c:signal() wakes every waiter.
local Cond = {}
Cond.__index = Cond
function S.cond() return setmetatable({ waiters = {} }, Cond) end
function Cond:wait(deadline, what)
  if in_task() then
    local task = current
    self.waiters[task] = true
    return block(task, { cond = self, deadline = deadline, what = what })
  end
  -- outside any task nobody else can run: just wait out the deadline
  if deadline then S.sleep(math.max(0, deadline - C.now())) end
  return false
end
function Cond:signal()
  local list = {}
  for task in pairs(self.waiters) do list[#list + 1] = task end
  self.waiters = {}
  for _, task in ipairs(list) do make_ready(task, true) end
end

-- S.interactive(fn, ...): runs fn while a person is at the keyboard (vm:shell(), the
-- prompt): the time it takes counts against no deadline — the test's and the file's
-- move by it, and the runner does not call the test hung meanwhile.
-- Sessions nest (a vm:shell() typed at the prompt): the runner hears of the outermost.
S.paused = 0
local interactive_depth = 0
function S.interactive(fn, ...)
  local t0 = C.now()
  local chan = interactive_depth == 0 and provium._c_chan or nil
  interactive_depth = interactive_depth + 1
  if chan then pcall(chan.send, { k = "interactive", on = true }) end
  local res = table.pack(pcall(fn, ...))
  local dt = C.now() - t0
  S.paused = S.paused + dt
  if S.test_deadline then S.test_deadline = S.test_deadline + dt end
  if S.file_deadline then S.file_deadline = S.file_deadline + dt end
  interactive_depth = interactive_depth - 1
  if chan then pcall(chan.send, { k = "interactive", on = false }) end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- S.deadline(opts) -> absolute deadline: opts.timeout, else the running test's deadline.
-- Methods check their opts first (provium._opts); the check here is the backstop.
function S.deadline(opts)
  local timeout = type(opts) == "table" and opts.timeout or nil
  if timeout ~= nil then
    provium._arg(timeout, "secs", "opts.timeout", nil, "opts.timeout")
    return C.now() + timeout
  end
  return S.test_deadline
end

-- One scheduler turn: runs ready tasks, then polls until something is ready or `limit`.
local function turn(limit)
  while #ready > 0 do
    local batch = ready
    ready = {}
    for _, item in ipairs(batch) do step(item[1], item[2]) end
  end
  return true
end

-- S.run(task, deadline) runs the loop until task finished (-> true) or the deadline
-- passed (-> false). Other tasks run meanwhile.
function S.run(task, deadline)
  local p0 = S.paused
  while true do
    turn()
    if task.dead then return true end
    local now = C.now()
    -- time a person spent in an interactive session does not count (S.interactive)
    if deadline and S.paused ~= p0 then deadline, p0 = deadline + (S.paused - p0), S.paused end
    if deadline and now >= deadline then return false end
    local fds, modes, who = {}, {}, {}
    local earliest = deadline
    for t in pairs(waiting) do
      local w = t.blocked
      if w.fd then
        fds[#fds + 1] = w.fd; modes[#modes + 1] = w.mode; who[#who + 1] = t
      end
      if w.deadline and (not earliest or w.deadline < earliest) then earliest = w.deadline end
    end
    if #fds == 0 and not earliest and #ready == 0 then
      error("deadlock: every task is waiting and nothing can wake them")
    end
    local timeout = -1
    if #ready > 0 then timeout = 0
    elseif earliest then timeout = math.max(0, earliest - now) end
    local res = C.poll(fds, modes, timeout)
    -- wake in a deterministic order: ready fds by task id, then expired deadlines by
    -- (deadline, task id), so runs with the same inputs interleave the same way
    local woken = {}
    for i, t in ipairs(who) do
      if res[i] and waiting[t] then woken[#woken + 1] = t end
    end
    table.sort(woken, function(a, b) return a.id < b.id end)
    for _, t in ipairs(woken) do make_ready(t, true) end
    now = C.now()
    local expired = {}
    for t in pairs(waiting) do
      if t.blocked.deadline and now >= t.blocked.deadline then expired[#expired + 1] = t end
    end
    table.sort(expired, function(a, b)
      if a.blocked.deadline ~= b.blocked.deadline then return a.blocked.deadline < b.blocked.deadline end
      return a.id < b.id
    end)
    for _, t in ipairs(expired) do make_ready(t, false) end
  end
end

-- S.abandon(group): drops every task of the group; they are never resumed again.
function S.abandon(group)
  local all = {}
  for t in pairs(waiting) do all[#all + 1] = t end
  for _, item in ipairs(ready) do all[#all + 1] = item[1] end
  local keep = {}
  for _, item in ipairs(ready) do
    if item[1].group ~= group then keep[#keep + 1] = item end
  end
  ready = keep
  for _, t in ipairs(all) do
    if t.group == group and not t.dead then
      waiting[t] = nil
      if t.blocked and t.blocked.cond then t.blocked.cond.waiters[t] = nil end
      t.dead = true
      t.abandoned = true
      pcall(coroutine.close, t.co)
    end
  end
end

-- S.undo(fn) -> a to-be-closed value that calls fn when its block is left by an error
-- or because its task was abandoned (S.abandon closes the coroutine: a test timeout),
-- unless the block set `.done = true` first. What a half-made VM must give back:
--   local undo <close> = S.undo(function() vm:_teardown() end)
--   vm:start(); undo.done = true
local Undo_mt = { __close = function(u) if not u.done then pcall(u.fn) end end }
function S.undo(fn)
  return setmetatable({ fn = fn, done = false }, Undo_mt)
end

-- S.tasks_of(group) -> the live tasks of a group, oldest first.
function S.tasks_of(group)
  local r = {}
  for t in pairs(waiting) do if t.group == group then r[#r + 1] = t end end
  for _, item in ipairs(ready) do if item[1].group == group and not item[1].dead then r[#r + 1] = item[1] end end
  table.sort(r, function(a, b) return a.id < b.id end)
  return r
end

-- What a blocked task is waiting for, for timeout reports.
function S.describe(task)
  local w = task.blocked
  if not w then return "running" end
  if w.what then return w.what end
  if w.fd then return ("waiting for fd %d (%s)"):format(w.fd, w.mode) end
  if w.cond then return "waiting for a condition" end
  return "sleeping"
end

-- Task objects (provium.go) ------------------------------------------------------------
function Task:done() return self.dead == true end
function Task:wait(opts)
  opts = provium._opts(opts, "task:wait", nil, "timeout:secs")
  local deadline = S.deadline(opts)
  local function timed_out()
    local at = provium._where and provium._where(self.co, 0)
    provium._error({ code = "timeout", op = "task:wait", message = ("task did not finish in time; it is %s%s"):format(
      S.describe(self), at and (" at " .. at) or "") })
  end
  while not self.dead do
    if not in_task() then
      if not S.run(self, deadline) then timed_out() end
    elseif not self.done_cond:wait(deadline, "waiting for a task") and not self.dead then
      timed_out()
    end
  end
  if self.abandoned then
    provium._error({ code = "closed", op = "task:wait", message = "task was abandoned (its test ended)" })
  end
  if self.err ~= nil then error(self.err, 0) end
  return table.unpack(self.results, 1, self.results.n)
end
function Task_mt.__tostring(self)
  return ("Task(%s)"):format(self.dead and (self.err ~= nil and "failed" or "done") or "running")
end

-- Requests to the parent (claims, barriers) ---------------------------------------------
local next_id, replies, late = 0, {}, {}
-- provium._request(msg, deadline, what [, on_late]) -> reply table, or nil at the
-- deadline. on_late(reply) is called if the reply arrives after that (e.g. to release a
-- claim granted after its caller gave up).
-- provium._pump(): reads every reply the runner sent so far, without blocking.
-- Replies for other tasks' requests are stored and those tasks woken (chan_cond).
local chan_cond = S.cond()
local reader = nil   -- the task blocked reading the channel for everyone
function provium._pump()
  local delivered = false
  local m = chan.recv()
  while m do
    if m.k == "reply" and m.id then
      if late[m.id] then
        local f = late[m.id]
        late[m.id] = nil
        pcall(f, m)
      else
        replies[m.id] = m
        delivered = true
      end
    end
    m = chan.recv()
  end
  if delivered then
    chan_cond:signal()
    -- the reader may be blocked on the fd whose data we just took: wake it too
    if reader and reader ~= current and not reader.dead and waiting[reader] then make_ready(reader, true) end
  end
end

-- One task at a time waits on the channel fd (the reader); the others wait on chan_cond,
-- which the reader signals when it read replies or stops reading, so a reply read by one
-- task for another always wakes that other.
function provium._request(msg, deadline, what, on_late)
  next_id = next_id + 1
  local id = next_id
  msg.id = id
  local ok, err = chan.send(msg)
  if not ok then
    provium._error({ code = "infra", op = msg.k, message = "cannot reach the runner: " .. tostring(err) })
  end
  local function take()
    provium._pump()
    local r = replies[id]
    replies[id] = nil
    return r
  end
  while true do
    local r = take()
    if r then return r end
    local me = in_task() and current or nil
    if me and reader and reader ~= me and not reader.dead then
      -- bounded, so a reader that was abandoned with its test is noticed
      local until_ = C.now() + 0.1
      if deadline and deadline < until_ then until_ = deadline end
      chan_cond:wait(until_, what)
    else
      reader = me
      local ready = S.wait_fd(chan.fd(), "r", deadline, what)
      if reader == me then reader = nil end
      chan_cond:signal()
      if not ready then
        r = take()
        if r then return r end
      end
    end
    if deadline and C.now() >= deadline then
      r = take()
      if r then return r end
      late[id] = on_late or function() end
      return nil
    end
  end
end
