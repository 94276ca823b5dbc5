-- kvm_snapshot_test.lua — snapshots from Lua on the kvm backend with the freestanding
-- snapshot_count test guest (no agent, so it runs on this PVM host): a guest
-- snapshotted mid-work and restored finishes with the same result as an
-- uninterrupted run; two restores are independent; lab snapshots; the cache API;
-- fixture builds (setup once, later VMs restore it) with their events.
local build = provium._c_vm.self_dir()
local ELF = build .. "/guest/snapshot_count.elf"
local CMD = "console=ttyS0 iters=300000 step=30000"

-- keep this file's snapshots out of the user's cache
provium._config.cache_dir = provium.tmpdir() .. "/cache"

local function need(t)
  local f = io.open("/dev/kvm", "r")
  if not f then t:skip("/dev/kvm is missing or not accessible") end
  f:close()
  f = io.open(ELF, "r")
  if not f then t:skip(ELF .. " is missing: `make guest` builds it") end
  f:close()
end

local function prof(extra)
  local p = { backend = "kvm", kernel = ELF, cmdline = CMD, memory = 64, agent = false, name = "count" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- feeds the salt once the guest asks and returns its result line
local function finish(vm, salt)
  local con = vm:console()
  con:expect("waiting for salt", { timeout = 300 })
  con:write(salt .. "\n")
  return (con:expect("result=(%x+)[\r\n]", { timeout = 120 }))
end

-- a VM of `name` snapshotted as `snap` part way through its work
local function mid_snapshot(name, snap)
  local vm = provium:vm(name, prof())
  vm:console():expect("progress 30000", { timeout = 300 })
  return vm:snapshot(snap), vm
end

local reference
local function reference_result(t)
  if not reference then
    local vm = provium:vm("ref", prof())
    reference = finish(vm, "7")
    vm:kill()
  end
  return reference
end

test("a guest snapshotted mid-work and restored finishes with the uninterrupted result", function(t)
  need(t)
  local want = reference_result(t)
  local s, vm = mid_snapshot("count", "mid")
  t:eq(s.name, "mid")
  t:eq(s.vm, "count")
  t:eq(s.profile, "count")
  t:ok(s.size > 0)
  t:ok(math.abs(s.created - os.time()) < 600)
  t:match(s.path, "/snapshots/mid$")
  vm:kill()
  local r1 = s:restore(provium, "count-a")
  local r2 = provium:vm("count-b", s)
  t:eq(r1.backend, "kvm")
  t:ok(not r1:console():log():find("snapshot_count: start", 1, true), "the restored guest did not start over")
  t:eq(finish(r1, "7"), want)
  t:eq(finish(r2, "7"), want, "a second restore of the same snapshot is independent")
  t:eq(r1:info().cid, r2:info().cid, "both keep the saved guest's CID (docs/snapshot.md)")
  local info = s:info()
  t:eq(info.memory, 64)
  t:contains(info.kernel, "snapshot_count.elf")
end)

test("a restore copies in the pages the last restore of the snapshot wrote", function(t)
  need(t)
  local want = reference_result(t)
  local s, vm = mid_snapshot("wcount", "writes")
  vm:_teardown()
  -- where the kernel keeps soft-dirty bits the first restore takes the torn-down VM's
  -- RAM (vmm/snapshot_warm.c), which has no write set, and hands it on when it goes:
  -- while it lives, the others map the file
  local r0 = s:restore(provium, "writes-0")
  t:eq(r0._sb:ram_warm(), provium._c_kvm.warm_stats().usable == "yes")
  local r1 = s:restore(provium, "writes-a")
  t:eq(r1._sb:prewritten(), 0, "the first restore has no write set to go by")
  t:eq(finish(r1, "7"), want)
  r1:_teardown() -- leaves the pages it wrote beside the snapshot
  local f = io.open(s.path .. "/written", "rb")
  t:ok(f, "the write set is kept in the snapshot directory")
  if f then f:close() end
  local r2 = s:restore(provium, "writes-b")
  t:ok(r2._sb:prewritten() > 0, "the second restore copied pages in before the guest ran")
  t:eq(finish(r2, "7"), want, "and the guest still computes the uninterrupted result")
  r2:_teardown()
  r0:_teardown()
  s:delete()
end)

test("provium.snapshots / provium.snapshot / s:delete", function(t)
  need(t)
  local vm = provium:vm("cache", prof())
  local s = vm:snapshot("cache-one")
  vm:kill()
  local names = {}
  for _, x in ipairs(provium.snapshots()) do names[x.name] = true end
  t:ok(names["cache-one"], "listed")
  t:eq(provium.snapshot("cache-one").vm, "cache")
  -- a dot call is invalid saying to use a colon (docs/options.md)
  t:eq(t:error(function() s.info() end).op, "snapshot:info")
  t:match(t:error(function() s.restore() end).message, "^call it with a colon: snapshot:restore")
  s:delete()
  t:error(function() provium.snapshot("cache-one") end, "no snapshot")
end)

test("lab:snapshot of two VMs restores both into another lab", function(t)
  need(t)
  local want = reference_result(t)
  local lab = provium:lab("two")
  local a = lab:vm("a", prof())
  local b = lab:vm("b", prof())
  a:console():expect("progress 30000", { timeout = 300 })
  b:console():expect("progress 30000", { timeout = 300 })
  local ls = lab:snapshot("pair")
  t:eq(ls:vms(), { "a", "b" })
  t:eq(t:error(function() ls.vms() end).op, "labsnapshot:vms")
  t:eq(ls.vm, nil)
  lab:close()
  local other = provium:lab("other")
  local vms = other:restore(ls)
  t:eq(#vms, 2)
  t:eq(vms[1].name, "a")
  t:eq(vms[2].name, "b")
  t:eq(finish(vms[1], "7"), want)
  t:eq(finish(vms[2], "7"), want)
  local found
  for _, x in ipairs(provium.snapshots()) do if x.name == "pair" then found = x end end
  t:ok(found, "the lab snapshot is in the cache")
end)

test("a profile's setup runs once: a fixture build, then later VMs restore it", function(t)
  need(t)
  local runs = 0
  local p = prof({ name = "fixture-count", setup = function(vm)
    runs = runs + 1
    vm:console():expect("progress 60000", { timeout = 300 })
  end })
  local first = provium:vm("f1", p)
  t:eq(runs, 1)
  local second = provium:vm("f2", p)
  t:eq(runs, 1, "the second VM restored the fixture instead of running setup")
  t:ok(not second:console():log():find("snapshot_count: start", 1, true), "restored, not booted")
  local want = reference_result(t)
  t:eq(finish(second, "7"), want)
  t:eq(finish(first, "7"), want)
  local fx
  for _, x in ipairs(provium.snapshots()) do if x.name:match("^fixture%-fixture%-count%-") then fx = x end end
  t:ok(fx, "the fixture is cached under its key")
end)
