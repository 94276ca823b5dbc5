-- Worker (API.md): more agent connections; operations on different workers run
-- concurrently when issued from different tasks.
local S = provium._sched
local vm
local function v()
  vm = vm or provium:vm("workers")
  return vm
end

test("two workers each running sleep 1 finish together in about 1 s", function(t)
  local a, b = v():worker(), v():worker()
  local t0 = S.now()
  local r = provium.all({
    function() return a:run("sleep 1; echo a").stdout end,
    function() return b:run("sleep 1; echo b").stdout end,
  })
  local dt = S.now() - t0
  t:eq(r, { "a\n", "b\n" })
  t:ge(dt, 0.95)
  t:lt(dt, 1.8)
  a:close()
  b:close()
end)

test("a worker has the VM's command, file, process and syscall methods", function(t)
  local w = v():worker()
  t:match(tostring(w), "^Worker%(workers, open%)$")
  w:write_file("/tmp/w", "from worker")
  t:eq(v():read_file("/tmp/w"), "from worker")
  t:eq(w:read_file("/tmp/w"), "from worker")
  t:eq(w:succeed("cat /tmp/w"), "from worker")
  t:eq(w:fail("false"), "")
  t:eq(w:stat("/tmp/w").size, 11)
  t:eq(w:exists("/tmp/w"), true)
  t:eq(w:syscall("uname").nodename, "workers")
  local p = w:spawn("echo spawned")
  t:eq(p:wait().stdout, "spawned\n")
  local f = w:open("/tmp/w")
  t:eq(f:read(4), "from")
  f:close()
  w:close()
  local e = t:error(function() w:run("true") end)
  t:eq(e.code, "closed")
end)

test("calls on one worker from two tasks are serialised", function(t)
  local w = v():worker()
  local t0 = S.now()
  local order = {}
  provium.all({
    function() w:run("sleep 0.5"); order[#order + 1] = "first" end,
    function() provium.sleep(0.05); w:run("true"); order[#order + 1] = "second" end,
  })
  local dt = S.now() - t0
  t:eq(order, { "first", "second" }) -- the quick call waited for the slow one
  t:ge(dt, 0.45)
  -- an error in a serialised call gives the worker back
  t:error(function() w:succeed("exit 3") end)
  t:eq(w:succeed("echo again"), "again\n")
  w:close()
end)

test("a slow request on the VM connection does not delay a worker", function(t)
  local w = v():worker()
  local slow = provium.go(function() return v():run("sleep 1; echo slow").stdout end)
  local t0 = S.now()
  t:eq(w:succeed("echo quick"), "quick\n")
  t:lt(S.now() - t0, 0.9) -- not behind the 1 s sleep
  t:eq(slow:wait(), "slow\n")
  w:close()
end)

test("requests from two tasks on one connection both get their replies", function(t)
  v() -- start it before the tasks share it
  local r = provium.all({
    function() return v():run("sleep 0.3; echo x").stdout end,
    function() return v():run("echo y").stdout end,
    function() return v():read_file("/etc/hostname") end,
  })
  t:eq(r, { "x\n", "y\n", "provium\n" })
end)

test("workers close when their VM stops", function(t)
  local v2 = provium:vm("wstop")
  local w = v2:worker()
  t:eq(w:succeed("echo hi"), "hi\n")
  v2:kill()
  local e = t:error(function() w:run("true") end)
  t:eq(e.code, "closed")
end)

test("a Worker method that calls another on the same Worker does not wait for itself", function(t)
  -- wait_for_file calls exists, wait_for_port reads /proc/net/tcp: each held the
  -- Worker's one-call lock and then waited for it (until the test's timeout)
  local w = v():worker()
  t:cleanup(function() w:close() end)
  w:write_file("/tmp/w-reenter", "x")
  t:eq(w:wait_for_file("/tmp/w-reenter", { timeout = 5 }), true)
  local srv = v():spawn({ "nc", "-l", "-p", "7351" })
  t:cleanup(function() srv:kill() end)
  t:eq(w:wait_for_port(7351, { timeout = 5 }), true)
  t:eq(w:wait_until_succeeds("true", { timeout = 5 }), "")
end, { timeout = 20 })
