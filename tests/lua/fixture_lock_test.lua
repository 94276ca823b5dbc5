-- fixture_lock_test.lua — fixture builds are serialised across parallel files: a child
-- `provium run -j2` runs fixtures/fixture_lock_a and _b, which both need the same
-- fixture of a test-guest profile (no agent, so it runs on this PVM host). Exactly one
-- of them builds it (build_start/build_end), the other waits on the lock and restores
-- it (hit); -j2 also turns on pools, whose events must add up and end empty. The same
-- holds for two separate `provium run`s sharing $PROVIUM_CACHE_DIR (flock(2) works
-- across any processes).
local child = dofile(debug.getinfo(1, "S").source:gsub("^@", ""):match("^(.*)/") .. "/helpers/child.lua")
local ELF = provium._c_vm.self_dir() .. "/guest/snapshot_count.elf"

test("two parallel files that miss the fixture cache build it once", function(t)
  if not io.open("/dev/kvm") then t:skip("/dev/kvm is missing") end
  if not io.open(ELF) then t:skip(ELF .. " is missing: `make guest` builds it") end
  local cache = provium.tmpdir() .. "/cache"
  local r = child.run("--timeout 300 fixture_lock_a.fixture.lua fixture_lock_b.fixture.lua", { PROVIUM_CACHE_DIR = cache })
  t:eq(r.code, 0, r.out)
  t:eq(r.by_test["fixture a"]["end"].outcome, "pass", r.out)
  t:eq(r.by_test["fixture b"]["end"].outcome, "pass", r.out)
  local starts = child.find(r, "fixture", { action = "build_start" })
  local ends = child.find(r, "fixture", { action = "build_end" })
  t:eq(#starts, 1, "one build across both files")
  t:eq(#ends, 1)
  t:eq(ends[1].file, starts[1].file)
  t:ok(ends[1].duration_ns >= 2e9, "the build includes setup's 2 s")
  -- the other file waited for that build and restored it (its second VM is a pool VM)
  local other = starts[1].file:find("_a%.") and "fixture_lock_b.fixture.lua" or "fixture_lock_a.fixture.lua"
  -- each file makes two VMs of the profile: the builder's second one is a hit, the
  -- waiter's two are hits, the first of them after the build ended
  local hits = child.find(r, "fixture", { action = "hit", file = other })
  t:eq(#hits, 2, "the waiting file restored the fixture")
  t:eq(hits[1].snapshot, starts[1].snapshot)
  t:ok(hits[1].seq > ends[1].seq, "the waiter's first hit came after build_end")
  t:eq(#child.find(r, "fixture", { action = "hit", file = starts[1].file }), 1)
  t:eq(#child.find(r, "fixture", { action = "build_start", file = other }), 0)
  -- the cache holds the one fixture and the lock file (kept: unlinking a lock races)
  local names = {}
  for _, n in ipairs(provium._c_snap.ls(cache .. "/snapshots")) do names[#names + 1] = n end
  t:eq(#names, 2, table.concat(names, " "))
  t:eq(names[1], ".locks")
  t:eq(names[2], starts[1].snapshot)
  -- pools: per file, every event's counts are sane and the last one is empty
  for _, f in ipairs({ "fixture_lock_a.fixture.lua", "fixture_lock_b.fixture.lua" }) do
    local evs = child.find(r, "pool", { file = f })
    t:ok(#evs >= 3, f .. ": pool events")
    local took = false
    for _, e in ipairs(evs) do
      t:eq(e.profile, "locked-count")
      t:ok(e.ready >= 0 and e.in_use >= 0 and e.building >= 0 and e.ready + e.building <= 1, json.encode(e))
      if e.in_use == 1 then took = true end
    end
    t:ok(took, f .. ": a VM was handed out of the pool")
    local last = evs[#evs]
    t:eq({ last.ready, last.in_use, last.building }, { 0, 0, 0 }, f .. ": the pool ends empty")
  end
end, { timeout = 900 })

test("a fixture lock is exclusive until its holder lets go", function(t)
  local C = provium._c_snap
  local path = provium.tmpdir() .. "/x.lock"
  local fd = C.trylock(path)
  t:eq(math.type(fd), "integer")
  t:eq(C.trylock(path), false, "a second open file cannot take it")
  -- another process cannot either; flock(1) -n exits 1 when the lock is held
  local held = os.execute(("flock -n %s true"):format(child.quote(path)))
  t:eq(held, nil, "flock(1) in another process found it held")
  C.unlock(fd)
  t:eq(os.execute(("flock -n %s true"):format(child.quote(path))), true, "free after unlock")
  local fd2 = C.trylock(path)
  t:eq(math.type(fd2), "integer", "taken again")
  C.unlock(fd2)
  t:error(function() C.trylock(provium.tmpdir() .. "/no/such/dir/x.lock") end, "lock")
end)

-- the events of one recorded stream, decoded by `provium events`
local function decode(bin, path)
  local p = io.popen(("%s events --format json %s 2>&1"):format(child.quote(bin), child.quote(path)))
  local evs = {}
  for line in p:read("a"):gmatch("[^\n]+") do
    local ok, e = pcall(json.decode, line)
    if ok and type(e) == "table" then evs[#evs + 1] = e end
  end
  p:close()
  return evs
end

test("two separate provium runs sharing a cache build the fixture once", function(t)
  if not io.open("/dev/kvm") then t:skip("/dev/kvm is missing") end
  if not io.open(ELF) then t:skip(ELF .. " is missing: `make guest` builds it") end
  local bin = child.binary()
  local dir = provium.tmpdir()
  local cache = dir .. "/cache2"
  -- -j1 runs: PROVIUM_POOL=1 keeps the fixture files' pooled second VM
  local one = "cd %s && env -u PROVIUM_EVENTS PROVIUM_CACHE_DIR=%s PROVIUM_POOL=1 %s run --no-color -j1 --timeout 300 --events %s %s > %s 2>&1"
  local cmd = ("(" .. one .. ") & (" .. one .. ") & wait"):format(
    child.quote(child.fixtures), child.quote(cache), child.quote(bin), child.quote(dir .. "/r1.ev"), "fixture_lock_a.fixture.lua", child.quote(dir .. "/r1.out"),
    child.quote(child.fixtures), child.quote(cache), child.quote(bin), child.quote(dir .. "/r2.ev"), "fixture_lock_b.fixture.lua", child.quote(dir .. "/r2.out"))
  os.execute(cmd)
  local builds, hits, passed = 0, 0, 0
  for _, ev in ipairs({ "r1.ev", "r2.ev" }) do
    for _, e in ipairs(decode(bin, dir .. "/" .. ev)) do
      if e.ev == "fixture" and e.action == "build_start" then builds = builds + 1 end
      if e.ev == "fixture" and e.action == "hit" then hits = hits + 1 end
      if e.ev == "test_end" and e.outcome == "pass" then passed = passed + 1 end
    end
  end
  local function out(n) local f = io.open(dir .. "/" .. n); local s = f and f:read("a") or ""; if f then f:close() end; return s end
  t:eq(passed, 2, out("r1.out") .. out("r2.out"))
  t:eq(builds, 1, "one build across the two runs")
  t:eq(hits, 3, "the builder's second VM and both of the other run's")
end, { timeout = 900 })

test("a failed fixture build lets go of its lock and caches nothing", function(t)
  if not io.open("/dev/kvm") then t:skip("/dev/kvm is missing") end
  if not io.open(ELF) then t:skip(ELF .. " is missing: `make guest` builds it") end
  local old = provium._config.cache_dir
  provium._config.cache_dir = provium.tmpdir() .. "/cache3"
  t:cleanup(function() provium._config.cache_dir = old end)
  local p = { backend = "kvm", kernel = ELF, agent = false, memory = 64, name = "failing",
    cmdline = "console=ttyS0 iters=150000 step=30000", setup = function() error("setup broke") end }
  t:error(function() provium:vm("bad", p) end, "setup broke")
  local snaps = provium._config.cache_dir .. "/snapshots"
  t:eq(provium._c_snap.ls(snaps), { ".locks" }, "no fixture, no half-written directory")
  local locks = provium._c_snap.ls(snaps .. "/.locks")
  t:eq(#locks, 1)
  local fd = provium._c_snap.trylock(snaps .. "/.locks/" .. locks[1])
  t:eq(math.type(fd), "integer", "the lock is free again")
  provium._c_snap.unlock(fd)
end)
