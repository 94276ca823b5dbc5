-- kvm_pool_test.lua — pools of ready VMs per profile (docs/profiles.md "Pools") on the
-- kvm backend with the freestanding snapshot_count test guest (no agent, so it runs on
-- this PVM host): after the fixture build the profile's next VMs are handed out of the
-- pool (resumed, not restored), the pool refills, `pool` events add up, and tearing it
-- down leaves no VM threads and no disk copies behind.
local ELF = provium._c_vm.self_dir() .. "/guest/snapshot_count.elf"
provium._config.cache_dir = provium.tmpdir() .. "/cache" -- keep the user's cache clean

local function need(t)
  if not io.open("/dev/kvm") then t:skip("/dev/kvm is missing or not accessible") end
  if not io.open(ELF) then t:skip(ELF .. " is missing: `make guest` builds it") end
end

local function finish(vm)
  local con = vm:console()
  con:expect("waiting for salt", { timeout = 300 })
  con:write("7\n")
  return (con:expect("result=(%x+)[\r\n]", { timeout = 120 }))
end

local function threads() return #provium._c_snap.ls("/proc/self/task") end

-- files in the file's tmpdir that pool VMs' restores made (their disk copies)
local function pool_copies()
  local r = {}
  for _, n in ipairs(provium._c_snap.ls(provium.tmpdir())) do
    if n:match("^pool%-") then r[#r + 1] = n end
  end
  return r
end

test("a pooled profile hands out ready VMs and its pool ends with nothing left", function(t)
  need(t)
  local before = threads()
  local seen = {}
  local orig = provium._emit
  provium._emit = function(ev)
    if ev.ev == "pool" or ev.ev == "fixture" or ev.ev == "vm_spawn" then
      local c = {}
      for k, v in pairs(ev) do c[k] = v end
      seen[#seen + 1] = c
    end
    return orig(ev)
  end
  t:cleanup(function() provium._emit = orig end)
  local runs = 0
  local p = { backend = "kvm", kernel = ELF, agent = false, memory = 64, name = "pooled", pool = 2,
    cmdline = "console=ttyS0 iters=150000 step=30000", disks = { { size = 1024 * 1024 } },
    setup = function(vm) runs = runs + 1; vm:console():expect("progress 60000", { timeout = 300 }) end }
  local lab = provium:lab("pooled")
  local first = lab:vm("p1", p) -- the fixture build; the pool gets its first VM
  t:eq(runs, 1)
  t:eq(first:info().pool, false)
  t:eq(provium._pools().pooled.ready, 1, "one VM ready right after the build")
  local second = lab:vm("p2", p)
  t:eq(runs, 1, "setup ran once")
  t:eq(second:info().pool, true, "handed out of the pool")
  t:match(second:info().from_snapshot, "^fixture%-pooled%-")
  t:eq(second.name, "p2")
  t:eq(second:state(), "running")
  t:eq(#second:disks(), 1, "the restored disk came along")
  t:ok(not second:console():log():find("snapshot_count: start", 1, true), "restored, not booted")
  t:eq(finish(second), finish(first), "the pooled VM carries on from the fixture")
  -- the pool refills in the background up to its size
  local deadline = provium._c_vm.mono_ns() + 120e9
  while provium._pools().pooled.ready < 2 and provium._c_vm.mono_ns() < deadline do provium.sleep(0.01) end
  t:eq(provium._pools().pooled.ready, 2, "refilled to pool = 2")
  local third = lab:vm("p3", p)
  t:eq(third:info().pool, true)
  t:eq(provium._pools().pooled.in_use, 2)
  t:eq(second:info().cid, third:info().cid, "restored VMs keep the fixture's CID (docs/snapshot.md)")
  -- what teardown must remove: the ready VMs' threads and disk copies
  t:ok(threads() > before, "VM threads run while VMs exist")
  t:ok(#pool_copies() >= 3, "pool VMs have disk copies: " .. table.concat(pool_copies(), " "))
  lab:close()
  t:eq(provium._pools().pooled.in_use, 0, "closing the lab gives the pool's VMs back")
  provium._pools_teardown()
  local st = provium._pools().pooled
  t:eq({ st.ready, st.in_use, st.building }, { 0, 0, 0 })
  t:eq(threads(), before, "no VM threads left")
  t:eq(pool_copies(), {}, "no disk copies left")
  -- events: a build, two hits out of the pool; pool counts always within the size
  local builds, hits, spawns, last = 0, 0, {}, nil
  for _, e in ipairs(seen) do
    if e.ev == "fixture" and e.action == "build_start" then builds = builds + 1 end
    if e.ev == "fixture" and e.action == "hit" then hits = hits + 1 end
    if e.ev == "vm_spawn" then spawns[#spawns + 1] = e.vm end
    if e.ev == "pool" then
      t:eq(e.profile, "pooled")
      t:ok(e.ready >= 0 and e.building >= 0 and e.in_use >= 0 and e.ready + e.building <= 2, json.encode(e))
      last = e
    end
  end
  t:eq(builds, 1)
  t:eq(hits, 2)
  t:eq(spawns, { "p1", "p2", "p3" }, "pool VMs get vm_spawn only when handed out")
  t:eq({ last.ready, last.in_use, last.building }, { 0, 0, 0 }, "the last pool event: empty")
end, { timeout = 600 })

test("pool = 0 turns the pool off", function(t)
  need(t)
  local p = { backend = "kvm", kernel = ELF, agent = false, memory = 64, name = "unpooled", pool = 0,
    cmdline = "console=ttyS0 iters=300000 step=30000",
    setup = function(vm) vm:console():expect("progress 30000", { timeout = 300 }) end }
  local a = provium:vm("u1", p)
  local b = provium:vm("u2", p)
  t:eq(b:info().pool, false, "restored on demand")
  t:match(b:info().from_snapshot, "^fixture%-unpooled%-")
  t:eq(provium._pools().unpooled, nil, "no pool made")
  a:kill(); b:kill()
end, { timeout = 600 })
