-- Tasks and the scheduler: provium.go/all/sleep really run concurrently, errors are
-- re-raised, wait_until polls, and the _sched primitives L2 builds on behave.
local S = provium._sched

test("two tasks sleeping 0.5 s finish in about 0.5 s", function(t)
  local t0 = S.now()
  local marks = {}
  local function sleeper(name)
    marks[name .. " start"] = S.now()
    provium.sleep(0.5)
    marks[name .. " end"] = S.now()
    return name
  end
  local r = provium.all({ function() return sleeper("a") end, function() return sleeper("b") end })
  local took = S.now() - t0
  t:eq(r, { "a", "b" })
  -- the second sleep began before the first ended: they overlapped
  t:lt(marks["b start"], marks["a end"])
  t:ge(took, 0.5)
  t:lt(took, 1.0, "one after the other would take at least 1 s")
end)

test("provium.go returns a Task; wait returns every result", function(t)
  local task = provium.go(function(a, b) provium.sleep(0.05) return a + b, "sum" end, 2, 3)
  t:match(tostring(task), "^Task%(running%)$")
  t:eq(task:done(), false)
  local x, y = task:wait()
  t:eq({ x, y }, { 5, "sum" })
  t:eq(task:done(), true)
  t:eq(tostring(task), "Task(done)")
end)

test("task:wait re-raises the task's error", function(t)
  local task = provium.go(function() error({ code = "guest", message = "inner" }) end)
  local e = t:error(function() task:wait() end)
  t:eq(e.message, "inner")
end)

test("provium.all waits for all and re-raises the first error", function(t)
  local finished = {}
  local e = t:error(function()
    provium.all({
      function() provium.sleep(0.2); finished[#finished + 1] = "slow"; error("second failure") end,
      function() provium.sleep(0.05); finished[#finished + 1] = "fast"; error("first failure") end,
      function() provium.sleep(0.1); finished[#finished + 1] = "ok" end,
    })
  end)
  t:match(tostring(e), "first failure")
  t:eq(finished, { "fast", "ok", "slow" })
end)

test("provium.all accepts tasks and functions", function(t)
  local a = provium.go(function() return 1 end)
  t:eq(provium.all({ a, function() return 2 end }), { 1, 2 })
end)

test("task:wait with a timeout raises timeout", function(t)
  local task = provium.go(function() provium.sleep(5) end)
  local e = t:error(function() task:wait({ timeout = 0.1 }) end)
  t:eq(e.code, "timeout")
  t:match(e.message, "it is sleeping 5 s at .*tasks_test%.lua:%d+$")
end)

test("wait_until returns the first truthy value", function(t)
  local n = 0
  local v = wait_until(function() n = n + 1; return n >= 3 and "ready" end, { interval = 0.01 })
  t:eq(v, "ready")
  t:eq(n, 3)
end)

test("wait_until sees changes made by another task", function(t)
  local flag = false
  provium.go(function() provium.sleep(0.1); flag = true end)
  t:eq(wait_until(function() return flag end, { timeout = 2, interval = 0.01 }), true)
end)

test("wait_until raises timeout with the message", function(t)
  local e = t:error(function()
    wait_until(function() return false end, { timeout = 0.1, interval = 0.02, message = "disk ready" })
  end)
  t:eq(e.code, "timeout")
  t:match(e.message, "^disk ready not true after 0%.1")
end)

test("_sched.cond wakes every waiter; wait returns false at the deadline", function(t)
  local c = S.cond()
  local woke = 0
  local a = provium.go(function() if c:wait(S.now() + 2) then woke = woke + 1 end end)
  local b = provium.go(function() if c:wait(S.now() + 2) then woke = woke + 1 end end)
  provium.sleep(0.05)
  c:signal()
  provium.all({ a, b })
  t:eq(woke, 2)
  t:eq(S.cond():wait(S.now() + 0.05), false)
end)

test("_sched.wait_fd: ready fd -> true, deadline -> false, other tasks run meanwhile", function(t)
  local fd = provium._c_chan.fd()   -- the channel to the runner: writable, nothing to read
  t:eq(S.wait_fd(fd, "w", S.now() + 1), true)
  local ticks = 0
  local ticker = provium.go(function() for _ = 1, 5 do provium.sleep(0.02); ticks = ticks + 1 end end)
  local t0 = S.now()
  t:eq(S.wait_fd(fd, "r", S.now() + 0.2), false)
  t:ge(S.now() - t0, 0.19)
  ticker:wait()
  t:eq(ticks, 5)
end)

test("_sched.deadline prefers opts.timeout, else the test's deadline", function(t)
  local d = S.deadline({ timeout = 1 })
  t:ok(d > S.now() and d <= S.now() + 1)
  local td = S.deadline()
  t:ok(td and td > S.now() + 5 and td <= S.now() + 10)
end, { timeout = 10 })

test("tasks left running end with their test", function(t)
  _G.leftover_ran = false
  provium.go(function() provium.sleep(0.2); _G.leftover_ran = true end)
end)

test("... and never run after it", function(t)
  provium.sleep(0.3)
  t:eq(_G.leftover_ran, false)
end)
