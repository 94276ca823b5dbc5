-- docs/writing-tests.md example: wait_until and tasks.
test("wait_until polls until the predicate is truthy", function(t)
  local ready = false
  provium.go(function() provium.sleep(0.2); ready = true end)
  local value = wait_until(function() return ready and "ready" end,
    { timeout = 5, interval = 0.05, message = "the service" })
  t:eq(value, "ready")
end)

test("tasks run concurrently", function(t)
  local log = {}
  local function worker(name)
    log[#log + 1] = name .. " started"
    provium.sleep(0.2)
    log[#log + 1] = name .. " done"
    return name
  end
  local results = provium.all({ function() return worker("a") end, function() return worker("b") end })
  t:eq(results, { "a", "b" })
  t:eq(log, { "a started", "b started", "a done", "b done" })
end)

test("provium.go starts a task; wait() returns its results", function(t)
  local task = provium.go(function(x) provium.sleep(0.1) return x * 2 end, 21)
  t:eq(task:wait(), 42)
end)
