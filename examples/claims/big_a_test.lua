-- examples/claims/big_a_test.lua — with big_b_test.lua: two test files that share a
-- scarce resource through a claim. Each needs a 1 GiB VM, and the runner has memory
-- for one of them: both claim 1024 of the 1536 MiB "runner-memory-mib" resource.
-- Run in parallel (`provium run -j2 examples/claims`), the second file to get there
-- waits in lab:claim until the first releases; `provium run --events ev.mp` and
-- `provium events ev.mp` show the claim's wait, acquire and release.
-- Both backends (claims are arbitrated by the runner across the files of one run).

test("a 1 GiB VM, only while holding the memory for it", function(t)
  local mem = provium:claim("runner-memory-mib", { count = 1024, capacity = 1536 })
  local vm = provium:vm("big-a", "default", { memory = 1024 })
  t:eq(vm:info().memory, 1024)
  vm:succeed("echo big-a works > /tmp/out && sleep 0.2")
  vm:kill()     -- the memory is free again ...
  mem:release() -- ... so the other file may have it
end)
