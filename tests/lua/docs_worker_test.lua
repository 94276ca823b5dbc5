-- docs/worker.md example: two workers run commands at the same time.
test("workers run concurrently from tasks", function(t)
  local vm = provium:vm("worker-doc")
  local a, b = vm:worker(), vm:worker()
  -- a waits for a file that b creates: this only ends if both commands run at once
  local results = provium.all({
    function() return a:succeed("while [ ! -e /tmp/go ]; do sleep 0.1; done; echo a", { timeout = 30 }) end,
    function() return b:succeed("sleep 0.5; touch /tmp/go; echo b") end,
  })
  t:eq(results, { "a\n", "b\n" })
  a:close()
  b:close()
end)
