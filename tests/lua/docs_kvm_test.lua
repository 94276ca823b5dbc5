-- docs/vm.md example: a freestanding test guest on the kvm backend (no agent).
test("the kvm backend boots a test guest with a disk", function(t)
  local elf = provium._c_vm.self_dir() .. "/guest/virtio_blk.elf"
  if not io.open(elf) or not io.open("/dev/kvm") then t:skip("needs /dev/kvm and `make guest`") end
  local vm = provium:vm("blk", { backend = "kvm", kernel = elf, agent = false, memory = 64,
    cmdline = "console=ttyS0 blk=basic" }, { start = false })
  local d = vm:attach_disk({ size = 1024 * 1024, serial = "PROVIUM-SN" })
  t:eq(d.name, "vda")
  local pattern = {}  -- the guest checks sector 1 holds byte i = i*13+1
  for i = 0, 511 do pattern[#pattern + 1] = string.char((i * 13 + 1) & 0xff) end
  d:write_sectors(1, table.concat(pattern))
  vm:start()
  wait_until(function() return vm:state() ~= "running" end, { timeout = 60 })
  t:contains(vm:console():log(), "PASS: sector 1 holds the host's pattern")
  t:eq(vm:exit_reason(), "exit code 0")
  t:eq(d:stats().writes, 1)
end)
