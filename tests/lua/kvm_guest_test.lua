-- kvm_guest_test.lua — the kvm backend's VM creation path, Disk userdata and clock,
-- tested for real on this host with the freestanding test guests (build/guest/*.elf,
-- `make guest`): they need no agent (profile agent=false) and run even where /dev/kvm
-- cannot run Linux (PVM). Linux-guest tests with the agent live in tests/linux/.
local build = provium._c_vm.self_dir()

local function kvm_usable()
  local f = io.open("/dev/kvm", "r")
  if not f then return false, "/dev/kvm is missing or not accessible" end
  f:close()
  return true
end

local function guest(name)
  local p = build .. "/guest/" .. name .. ".elf"
  local f = io.open(p, "r")
  if f then f:close(); return p end
  return nil
end

local function need(t, name)
  local ok, why = kvm_usable()
  if not ok then t:skip(why) end
  local p = guest(name)
  if not p then t:skip(build .. "/guest/" .. name .. ".elf is missing: `make guest` builds it") end
  return p
end

local function profile(elf, cmdline)
  return { backend = "kvm", kernel = elf, cmdline = cmdline, memory = 64, agent = false }
end

-- the pattern the virtio_blk guest writes/expects: byte i = i*seed+1
local function pat(seed)
  local b = {}
  for i = 0, 511 do b[#b + 1] = string.char((i * seed + 1) & 0xff) end
  return table.concat(b)
end

local function wait_exit(vm)
  wait_until(function() return vm:state() ~= "running" end, { timeout = 120, message = "the guest exits" })
end

test("provium.backend() resolves auto to sandbox where Linux guests cannot run", function(t)
  local ok, why = provium._c_vm.kvm_linux_ok()
  if ok then
    t:eq(provium.backend(), "kvm")
  else
    t:eq(provium.backend(), "sandbox")
    t:ok(type(why) == "string" and #why > 0, "doctor gives a reason")
  end
end)

test("a Linux guest on the kvm backend is refused with doctor's reason where it cannot run", function(t)
  local ok, why = provium._c_vm.kvm_linux_ok()
  if ok then t:skip("this host runs Linux guests") end
  local e = t:error(function() provium:vm("linux", { backend = "kvm" }) end)
  t:eq(e.code, "infra")
  t:contains(e.message, why)
end)

test("test guest boots through lab:vm: console, exit reason, disk host I/O and stats", function(t)
  local elf = need(t, "virtio_blk")
  local vm = provium:vm("blk", profile(elf, "console=ttyS0 blk=basic"), { start = false })
  t:eq(vm.backend, "kvm")
  t:eq(vm:state(), "created")
  local d = vm:attach_disk({ size = 1024 * 1024, serial = "PROVIUM-SN" })
  t:eq(d.name, "vda")
  t:eq(d:size(), 1024 * 1024)
  t:eq(vm:disk(1), d)
  t:eq(vm:disk("vda"), d)
  t:eq(#vm:disks(), 1)
  d:write_sectors(1, pat(13))
  vm:start()
  t:match(tostring(vm), "^VM%(blk, %a+, kvm%)$")
  wait_exit(vm)
  local log = vm:console():log()
  t:contains(log, "PASS: sector 1 holds the host's pattern")
  t:contains(log, "capacity 2048 sectors")
  t:contains(log, "serial: PROVIUM-SN")
  t:eq(vm:state(), "stopped")
  t:eq(vm:exit_reason(), "exit code 0")
  t:eq(d:read_sectors(2, 1), pat(31), "the guest's write reached the image")
  local st = d:stats()
  t:eq(st.reads, 1)
  t:eq(st.writes, 1)
  t:eq(st.flushes, 1)
  t:eq(st.errors, 0)
  local info = vm:info()
  t:eq(info.backend, "kvm")
  t:ok(info.cid > 2, "a guest CID")
  t:eq(info.memory, 64)
end)

test("disk:fail_writes fails exactly the covered writes; faults() lists the rule", function(t)
  local elf = need(t, "virtio_blk")
  local vm = provium:vm("fail", profile(elf, "console=ttyS0 blk=fail"), { start = false })
  local d = vm:attach_disk({ size = 1024 * 1024 })
  local id = d:fail_writes({ from = 100, to = 103 })
  t:ok(id > 0)
  local f = d:faults()
  t:eq(#f, 1)
  t:eq(f[1].kind, "fail-writes" == f[1].kind and "fail-writes" or f[1].kind)
  t:eq(f[1].from, 100)
  t:eq(f[1].to, 103)
  vm:start()
  wait_exit(vm)
  local log = vm:console():log()
  for lba = 96, 107 do
    t:contains(log, ("write lba=%d status=%d"):format(lba, (lba >= 100 and lba <= 103) and 1 or 0))
  end
  local st = d:stats()
  t:eq(st.errors, 4)
  t:eq(st.writes, 8)
  t:eq(d:faults()[1].hits, 4)
  t:eq(d:read_sectors(101, 1), string.rep("\0", 512), "a failed write left nothing")
  d:clear_faults()
  t:eq(#d:faults(), 0)
end)

test("disk:fail_reads with count and disk:corrupt show in what the guest reads", function(t)
  local elf = need(t, "virtio_blk")
  local vm = provium:vm("faults", profile(elf, "console=ttyS0 blk=faults"), { start = false })
  local d = vm:attach_disk({ size = 1024 * 1024 })
  local s = {}
  for i = 0, 511 do s[#s + 1] = string.char((0x40 + i) & 0xff) end
  s = table.concat(s)
  d:write_sectors(6, s)
  d:fail_reads({ from = 5, to = 5, count = 1 })
  d:corrupt(6, { offset = 3, xor = 0xff })
  vm:start()
  wait_exit(vm)
  local log = vm:console():log()
  t:contains(log, "read 5: first status=1 second status=0")
  t:contains(log, "sector 6 bytes 2..4: 42 bc 44")
  t:eq(d:read_sectors(6, 1), s, "corruption is only in what the guest reads")
end)

test("vm:crash drops what the guest did not flush from a writeback disk", function(t)
  local elf = need(t, "virtio_blk")
  local vm = provium:vm("crash", profile(elf, "console=ttyS0 blk=crash"), { start = false })
  local d = vm:attach_disk({ size = 1024 * 1024 })
  t:eq(d:cache("writeback"), "writeback")
  t:eq(d:cache(), "writeback")
  vm:start()
  wait_exit(vm)
  t:eq(d:read_sectors(11, 1), pat(7), "before the crash the host sees the cached write")
  t:eq(vm:crash(), 1, "one unflushed sector lost")
  t:eq(d:read_sectors(10, 1), pat(3), "the flushed write is kept")
  t:eq(d:read_sectors(11, 1), string.rep("\0", 512), "the unflushed write is gone")
end)

test("disk:detach on a running guest: IOERR and NEEDS_RESET; console:write reaches it", function(t)
  local elf = need(t, "virtio_blk")
  local vm = provium:vm("detach", profile(elf, "console=ttyS0 blk=detach"), { start = false })
  local d = vm:attach_disk({ size = 1024 * 1024 })
  d:cache("writeback")
  vm:start()
  vm:console():expect("detach: ready", { timeout = 120 })
  t:error(function() vm:attach_disk({ size = 4096 }) end, "attach disks before")
  d:detach()
  t:ok(d:detached())
  vm:console():write("go\n")
  wait_exit(vm)
  local log = vm:console():log()
  t:contains(log, "PASS: read after detach fails with IOERR")
  t:contains(log, "PASS: device signals DEVICE_NEEDS_RESET")
  t:eq(vm:exit_reason(), "exit code 0")
end)

test("clock:advance fires a guest LAPIC timer armed for ~550 s of guest time", function(t)
  local elf = need(t, "clock_kvmclock")
  local vm = provium:vm("clock", profile(elf, "console=ttyS0"))
  local con = vm:console()
  local before = vm:clock():kvmclock_ns()
  con:write("timer\n")
  con:expect("timer armed", { timeout = 120 })
  provium.sleep(0.2)
  t:ok(not con:log():find("timer fired", 1, true), "not fired by itself")
  vm:clock():advance(600)
  con:expect("timer fired", { timeout = 60 })
  t:ge(vm:clock():kvmclock_ns() - before, 600 * 1e9)
  con:write("exit\n")
  wait_exit(vm)
end)

test("vm:kill stops a running guest; pause/resume", function(t)
  local elf = need(t, "clock_kvmclock")
  local vm = provium:vm("kill", profile(elf, "console=ttyS0"))
  vm:pause()
  t:eq(vm:state(), "paused")
  vm:resume()
  t:eq(vm:state(), "running")
  vm:console():write("read\n")
  vm:console():expect("clock %d+", { timeout = 60 })
  vm:kill()
  t:eq(vm:state(), "stopped")
  t:eq(vm:exit_reason(), "killed")
  t:error(function() vm:run("true") end, "stopped")
end)

test("a guest exiting with a non-zero code is crashed with that exit reason; vm_exit code", function(t)
  local elf = need(t, "exit")
  local vm = provium:vm("exit3", profile(elf, "console=ttyS0 exit=3"))
  wait_exit(vm)
  t:eq(vm:state(), "crashed")
  t:eq(vm:exit_reason(), "exit code 3")
  t:contains(vm:console():log(), "exit: code 3")
end)

test("vm:start after an exit boots a fresh VM on the same disk image; streams continue", function(t)
  local elf = need(t, "virtio_blk")
  local vm = provium:vm("again", profile(elf, "console=ttyS0 blk=basic"), { start = false })
  local d = vm:attach_disk({ size = 1024 * 1024 })
  d:write_sectors(1, pat(13))
  d:cache("writeback")
  vm:start()
  wait_exit(vm)
  local stream = vm:console():read()
  t:eq(d:stats().writes, 1)
  vm:start()
  wait_exit(vm)
  t:eq(vm:exit_reason(), "exit code 0")
  local _, n = vm:console():log():gsub("SUMMARY", "")
  t:eq(n, 1, "console:log() is this boot's output")
  t:ok(stream:read_until("SUMMARY", { timeout = 5, plain = true }), "a stream opened before the restart sees the new boot")
  t:eq(d:stats().writes, 1, "a fresh device")
  t:eq(d:cache(), "writeback", "the cache mode is kept")
  t:eq(d:read_sectors(2, 1), pat(31))
end)
