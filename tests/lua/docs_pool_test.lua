-- docs/profiles.md example: a pool of ready VMs for a profile, with a test guest.
provium._config.cache_dir = provium.tmpdir() .. "/cache" -- keep the user's cache clean
test("a pooled profile's next VMs are handed out ready", function(t)
  local elf = provium._c_vm.self_dir() .. "/guest/snapshot_count.elf"
  if not io.open(elf) or not io.open("/dev/kvm") then t:skip("needs /dev/kvm and `make guest`") end
  local p = { backend = "kvm", kernel = elf, agent = false, memory = 64, name = "pool-doc",
    cmdline = "console=ttyS0 iters=300000 step=30000", pool = 1, -- one ready VM
    setup = function(vm) vm:console():expect("progress 60000", { timeout = 120 }) end }
  local first = provium:vm("w1", p)   -- fixture build; then one VM is restored, paused
  t:eq(provium._pools()["pool-doc"].ready, 1)
  local second = provium:vm("w2", p)  -- resumed out of the pool: no restore on this path
  t:eq(second:info().pool, true)
  t:eq(first:info().pool, false)
  t:eq(provium._pools()["pool-doc"].in_use, 1)
end)
