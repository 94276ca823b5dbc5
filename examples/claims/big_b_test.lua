-- examples/claims/big_b_test.lua — with big_a_test.lua: the other file that needs a
-- 1 GiB VM on a runner with memory for one. It claims the same 1024 of the 1536 MiB
-- "runner-memory-mib", so run in parallel with big_a_test.lua one of the two waits
-- in lab:claim until the other releases (the claim's timeout bounds that wait).
-- The claim is also released when the lab closes, should the test fail midway.
-- Both backends.

test("a 1 GiB VM that fills 64 MiB, only while holding the memory for it", function(t)
  local mem = provium:claim("runner-memory-mib", { count = 1024, capacity = 1536, timeout = 120 })
  local vm = provium:vm("big-b", "default", { memory = 1024 })
  t:eq(vm:succeed("head -c 67108864 /dev/zero > /tmp/blob && wc -c < /tmp/blob"), "67108864\n")
  vm:kill()
  mem:release()
end)
