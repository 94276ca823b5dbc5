-- docs/profiles.md example: a fixture build on the kvm backend, with a test guest.
provium._config.cache_dir = provium.tmpdir() .. "/cache" -- keep the user's cache clean
test("a profile's setup runs once, later VMs restore the fixture", function(t)
  local elf = provium._c_vm.self_dir() .. "/guest/snapshot_count.elf"
  if not io.open(elf) or not io.open("/dev/kvm") then t:skip("needs /dev/kvm and `make guest`") end
  local runs = 0
  local p = { backend = "kvm", kernel = elf, agent = false, memory = 64, name = "fixture-doc",
    cmdline = "console=ttyS0 iters=300000 step=30000",
    setup = function(vm) runs = runs + 1; vm:console():expect("progress 60000", { timeout = 120 }) end }
  local first = provium:vm("f1", p)  -- fixture build: setup runs, snapshot cached
  local second = provium:vm("f2", p) -- restored from the fixture
  t:eq(runs, 1)
  t:eq(second:info().backend, "kvm")
  t:ok(not second:console():log():find("snapshot_count: start", 1, true))
  first:kill()
end)
