-- snapshot_test.lua — kvm-only: snapshots of Linux guests with the agent.
-- Only meaningful on Linux microVMs: skipped (with the reason) on the sandbox backend.
local KVM_ONLY = provium.backend() ~= "kvm" and "Linux-guest test: needs --backend kvm on a hardware-KVM host (tests/linux/run.sh)" or nil
local function test(name, fn) return _G.test(name, fn, { skip = KVM_ONLY, tags = { "linux" } }) end

test("snapshot restore then run works (the snapshot's CID, the carried agent connection)", function(t)
  local vm = provium:vm("orig", "default")
  vm:succeed("echo before > /tmp/state")
  local s = vm:snapshot()
  local r = s:restore()
  t:eq(r:succeed("cat /tmp/state"), "before\n")
  -- the CID is in the guest's memory: the restored guest keeps it (docs/snapshot.md)
  t:eq(r:info().cid, vm:info().cid)
  -- the restored VM's agent connection is the spare the snapshot carried, handshaken
  -- before it; the old agent stream got an RST (no transport reset to wait for)
  local st = r._sb:vsock_stats()
  t:eq(st.adopted, 1, "the carried agent stream was adopted")
  t:eq(st.opened, 1, "and no other stream was needed")
  t:eq(st.events_sent, 0, "no transport reset")
  t:ge(st.rst_sent, 1, "the stream the snapshot held was reset")
  r:succeed("echo after > /tmp/state")
  t:eq(vm:succeed("cat /tmp/state"), "before\n", "the original is independent")
  t:eq(r._sb:prewritten(), 0, "a first restore has no write set to go by")
  r:_teardown() -- leaves the pages its guest wrote beside the snapshot
  -- the next restore copies those in before the guest runs (vmm/snapshot_writes.c)
  local r2 = s:restore()
  t:ge(r2._sb:prewritten(), 50, "the pages the last restore wrote were copied in")
  t:eq(r2:succeed("cat /tmp/state"), "before\n", "with the snapshot's contents")
  s:delete()
end)

-- A VM destroyed after its snapshot hands its RAM to the next restore of it
-- (vmm/snapshot_warm.c): the pages written since are put back from the memory file
-- first, so the restore sees the snapshot, not what the guest did after it.
test("a VM gone since its snapshot hands its RAM to the next restore, as it was at the snapshot", function(t)
  local vm = provium:vm("handover", "default")
  vm:succeed("echo before > /tmp/state; head -c 1048576 /dev/urandom > /tmp/pre")
  local sum = vm:succeed("md5sum < /tmp/pre")
  local s = vm:snapshot()
  -- after the snapshot the guest changes its memory: none of this may come back
  vm:succeed("echo after > /tmp/state; head -c 4194304 /dev/urandom > /tmp/post; rm /tmp/pre")
  local w0 = provium._c_kvm.warm_stats()
  vm:_teardown() -- destroyed (vm:kill() only stops it)
  local w1 = provium._c_kvm.warm_stats()
  local r = s:restore()
  if w1.usable == "yes" then
    t:eq(w1.given, w0.given + 1, "the destroyed VM's RAM was kept for the restore")
    t:ge(w1.repaired_pages - w0.repaired_pages, 256, "the pages written after the snapshot were put back")
    t:ok(r._sb:ram_warm(), "the restore took it")
  else
    t:log("this kernel keeps no soft-dirty bits: every restore maps the memory file")
    t:eq(r._sb:ram_warm(), false)
  end
  t:eq(r:succeed("cat /tmp/state"), "before\n")
  t:eq(r:succeed("md5sum < /tmp/pre"), sum, "a file from before the snapshot is whole")
  t:eq(r:run("test -e /tmp/post").code, 1, "one written after it does not exist")
  local r2 = s:restore()
  t:eq(r2._sb:ram_warm(), false, "taken once: the next restore maps the memory file")
  t:eq(r2:succeed("cat /tmp/state"), "before\n")
  t:eq(r2:succeed("md5sum < /tmp/pre"), sum)
  s:delete()
end)

-- x86: kvmclock is restored; arm64: the virtual counter (KVM_REG_ARM_TIMER_CNT)
test("a restored guest's clock continues from the snapshot, without the time saved", function(t)
  local vm = provium:vm("tick", "default")
  local h0, m0 = os.time(), vm:clock():monotonic()
  local s = vm:snapshot()
  vm:kill()
  provium.sleep(8) -- the snapshot sits on disk
  local r = s:restore()
  local m1, h1 = r:clock():monotonic(), os.time()
  t:ge(m1, m0, "guest time goes on from the saved value, not from 0")
  -- os.time() is whole seconds: at least 6 of the 8 s saved must not show
  t:ge((h1 - h0) - (m1 - m0), 6, "the time on disk does not exist for the guest")
  t:eq(r:succeed("echo alive"), "alive\n")
  s:delete()
end)

-- both vCPUs' registers, the second one's powered-on state, its redistributor and
-- CPU interface (arm64) or LAPIC (x86): work scheduled on CPU 1 after the restore
test("a two-vCPU guest comes back with both CPUs running", function(t)
  local vm = provium:vm("smp", "default", { cpus = 2 })
  t:eq(vm:succeed("cat /sys/devices/system/cpu/online"), "0-1\n")
  local s = vm:snapshot()
  vm:kill()
  local r = s:restore()
  t:eq(r:succeed("cat /sys/devices/system/cpu/online"), "0-1\n")
  for cpu = 0, 1 do
    t:eq(r:succeed(("taskset -c %d sh -c 'sleep 0.2; echo on $(cut -d\" \" -f39 /proc/self/stat)'"):format(cpu)),
      ("on %d\n"):format(cpu), "a process pinned to CPU " .. cpu .. " runs there")
  end
  s:delete()
end)

test("lab snapshot of two VMs restores both", function(t)
  local lab = provium:lab("pair")
  local a = lab:vm("a", "default")
  local b = lab:vm("b", "default")
  a:write_file("/tmp/who", "a")
  b:write_file("/tmp/who", "b")
  local ls = lab:snapshot("linux-pair")
  lab:close()
  local vms = provium:lab("again"):restore(ls)
  t:eq(#vms, 2)
  t:eq(vms[1]:read_file("/tmp/who"), "a")
  t:eq(vms[2]:read_file("/tmp/who"), "b")
  -- each spare agent stream was opened before the lab's cut, and carried
  for _, v in ipairs(vms) do t:eq(v._sb:vsock_stats().adopted, 1, v.name .. ": carried agent stream") end
  ls:delete()
end)

test("lifecycle: stop is a clean poweroff, reboot comes back, pause/resume", function(t)
  local vm = provium:vm("life", "default")
  t:eq(vm:succeed("hostname"), "life\n", "the guest is named after its VM")
  vm:pause()
  t:eq(vm:state(), "paused")
  vm:resume()
  t:eq(vm:succeed("echo up"), "up\n")
  vm:reboot()
  t:eq(vm:state(), "running")
  t:eq(vm:succeed("hostname"), "life\n", "and keeps its name after a reboot")
  t:eq(vm:syscall("reboot", "restart"), 0)
  t:eq(vm:succeed("echo back"), "back\n", "the agent answers after a guest reboot")
  vm:stop()
  t:eq(vm:state(), "stopped")
  t:eq(vm:exit_reason(), "stop")
end)
