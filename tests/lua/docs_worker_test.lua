-- docs/worker.md example: two workers run commands at the same time.
test("workers run concurrently from tasks", function(t)
  local vm = provium:vm("worker-doc")
  local a, b = vm:worker(), vm:worker()
  local t0 = provium._sched.now()
  local results = provium.all({
    function() return a:succeed("sleep 1; echo a") end,
    function() return b:succeed("sleep 1; echo b") end,
  })
  t:eq(results, { "a\n", "b\n" })
  t:lt(provium._sched.now() - t0, 1.8) -- together (about 1 s), not one after the other (2 s)
  a:close()
  b:close()
end)
