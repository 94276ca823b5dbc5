-- Lab teardown with real VMs of the run's backend: at test timeout (before the next test
-- starts) and at file end after a failing test; the VM processes are gone afterwards.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/helpers/child.lua")

test("VMs are torn down at test timeout and at file end", function(t)
  local r = child.run("vm_timeout.fixture.lua")
  t:eq(r.code, 1, r.out)
  local seq = {}
  local pids = {}
  for i, e in ipairs(r.events) do
    if e.ev == "vm_exit" then seq["exit " .. e.vm] = i end
    if e.ev == "test_end" then seq["end " .. e.test] = i end
    if e.ev == "test_start" then seq["start " .. e.test] = i end
    if e.ev == "file_end" then seq.file_end = i end
    if e.ev == "test_log" then pids[#pids + 1] = tonumber(e.text:match("^pid (%d+)")) end
  end
  t:eq(r.by_test["starts a VM and hangs"]["end"].outcome, "error")
  t:eq(r.by_test["runs after the hang"]["end"].outcome, "pass", r.out)
  t:eq(r.by_test["times out while its VM starts"]["end"].outcome, "error")
  t:eq(r.by_test["runs after the start timeout"]["end"].outcome, "pass", r.out)
  t:ok(seq["exit hung-vm"], "vm_exit for the hung test's VM")
  t:lt(seq["exit hung-vm"], seq["start runs after the hang"], "torn down before the next test")
  t:ok(seq["exit kept-vm"], "vm_exit for the failing test's VM")
  t:gt(seq["exit kept-vm"], seq["end runs after the hang"], "kept until the file ends")
  t:lt(seq["exit kept-vm"], seq.file_end)
  t:eq(#pids, 2)
  for _, pid in ipairs(pids) do
    t:eq(io.open("/proc/" .. pid .. "/stat"), nil, "process " .. pid .. " is gone")
  end
end, { timeout = provium.backend() == "kvm" and 600 or 30 })

-- the threads of this worker process (a kvm VM's vCPU and device threads live here)
local function threads() return #provium._c_snap.ls("/proc/self/task") end

test("closing a sub-lab stops its VMs and only those", function(t)
  local keep = provium:vm("outer")
  local sub = provium:lab("scope")
  local before = threads()
  local inner = sub:vm("inner")
  local pid = inner:info().pid
  if provium.backend() == "kvm" then
    t:gt(threads(), before, "the inner VM's threads run in this worker")
  else
    t:ok(io.open("/proc/" .. pid .. "/stat"), "inner VM process running")
  end
  t:eq(provium:get("inner"), inner)
  sub:close()
  t:eq(inner:state(), "stopped")
  if provium.backend() == "kvm" then
    t:eq(threads(), before, "the inner VM's threads are gone")
  else
    t:eq(io.open("/proc/" .. pid .. "/stat"), nil, "inner VM process gone")
  end
  t:eq(provium:get("inner"), nil)
  t:eq(keep:succeed("echo still"), "still\n")
  local e = t:error(function() sub:vm("again") end)
  t:eq(e.code, "closed")
  t:eq(provium:vm("inner").name, "inner", "the name is free again")
end)
