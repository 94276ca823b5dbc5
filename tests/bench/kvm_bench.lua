-- kvm_bench.lua — run by tests/bench/bench_kvm.sh: the kvm backend from Lua. With the
-- snapshot_count test guest (runs on any /dev/kvm, PVM included): lab:vm to first
-- console line (cold boot), vm:snapshot, restore (lab:vm from a snapshot), fixture
-- hit. Where Linux guests run (hardware KVM): the default profile's boot to
-- agent-ready (Firecracker's published bar: ~125 ms to init) and a restore to
-- agent-ready. Writes a table to $PROVIUM_BENCH_OUT.
local S = provium._sched
local out = assert(io.open(provium.env("PROVIUM_BENCH_OUT"), "w"))
provium._config.cache_dir = provium.tmpdir() .. "/cache"
local ELF = provium._c_vm.self_dir() .. "/guest/snapshot_count.elf"

local function stats(xs)
  table.sort(xs)
  local sum = 0
  for _, x in ipairs(xs) do sum = sum + x end
  return xs[math.floor(#xs / 2) + 1], xs[math.max(1, math.ceil(#xs * 0.9))], sum / #xs
end

local function row(name, xs, unit)
  local med, p90, mean = stats(xs)
  out:write(("%-44s n=%-4d median %9.3f %s  p90 %9.3f %s  mean %9.3f %s\n"):format(
    name, #xs, med, unit, p90, unit, mean, unit))
  out:flush()
end

local function ms(t0) return (S.now() - t0) * 1000 end

-- the Linux rows need a host whose /dev/kvm runs Linux guests: else a "skipped" row
local function need_linux(t, row_name)
  local ok, why = provium._c_vm.kvm_linux_ok()
  if not ok then
    out:write(("%-44s skipped: %s\n"):format(row_name, why))
    t:skip(why)
  end
end

test("test guest: cold boot, snapshot, restore, fixture hit", function(t)
  if not io.open(ELF) then t:skip(ELF .. " missing (make guest)") end
  local prof = { backend = "kvm", kernel = ELF, agent = false, memory = 128, name = "bench",
    cmdline = "console=ttyS0 iters=100000000 step=100000000" }
  local boot, snap, rest = {}, {}, {}
  for i = 1, 10 do
    local t0 = S.now()
    local vm = provium:vm("cold" .. i, prof)
    vm:console():expect("snapshot_count: start", { timeout = 60 })
    boot[#boot + 1] = ms(t0)
    t0 = S.now()
    local s = vm:snapshot("bench" .. i)
    snap[#snap + 1] = ms(t0)
    vm:_teardown()
    t0 = S.now()
    local r = s:restore()
    rest[#rest + 1] = ms(t0)
    r:_teardown()
    s:delete()
  end
  row("test guest lab:vm -> first console line", boot, "ms")
  row("vm:snapshot (128 MiB guest, running)", snap, "ms")
  row("snapshot:restore (128 MiB guest)", rest, "ms")
  local fx = {}
  prof.setup = function(vm) vm:console():expect("snapshot_count: start", { timeout = 60 }) end
  provium:vm("fxbuild", prof):_teardown()
  for i = 1, 10 do
    local t0 = S.now()
    local vm = provium:vm("fx" .. i, prof)
    fx[#fx + 1] = ms(t0)
    vm:_teardown()
  end
  row("lab:vm with a fixture hit", fx, "ms")
end, { timeout = 600 })

test("Linux: default profile boot and restore to agent-ready", function(t)
  need_linux(t, "Linux default boot -> agent ready")
  local boot, rest = {}, {}
  -- fewer runs inside the simulated KVM host, where each boot takes seconds
  for i = 1, tonumber(provium.env("PROVIUM_BENCH_LINUX_RUNS") or "") or 10 do
    local t0 = S.now()
    local vm = provium:vm("linux" .. i, "default", { backend = "kvm" })
    boot[#boot + 1] = ms(t0)
    local s = vm:snapshot("linux-bench" .. i)
    vm:_teardown()
    t0 = S.now()
    local r = s:restore()
    r:succeed("true")
    rest[#rest + 1] = ms(t0)
    r:_teardown()
    s:delete()
  end
  row("Linux default boot -> agent ready", boot, "ms")
  row("Linux restore -> first command done", rest, "ms")
end, { timeout = 600 })

-- Issue 13's other two restore paths: lab:vm from a profile's fixture (a restore on
-- the call's path) and from its pool (restored ahead, resumed on the call), each to
-- its first command done; the same runs as above.
test("Linux: lab:vm from a fixture and from a pool to the first command", function(t)
  need_linux(t, "Linux lab:vm from a fixture/pool")
  local n = tonumber(provium.env("PROVIUM_BENCH_LINUX_RUNS") or "") or 10
  local setup = function(vm) vm:succeed("echo built > /root/fixture") end
  local fixture = { name = "bench-fixture", backend = "kvm", pool = 0, setup = setup }
  local pooled = { name = "bench-pool", backend = "kvm", pool = 1, setup = setup }
  provium:vm("lfx-build", fixture):_teardown() -- builds the fixture
  local fx, pl = {}, {}
  for i = 1, n do
    local t0 = S.now()
    local vm = provium:vm("lfx" .. i, fixture)
    vm:succeed("true")
    fx[#fx + 1] = ms(t0)
    vm:_teardown()
  end
  provium:vm("lpl-warm", pooled):_teardown() -- builds its fixture and starts the pool
  for i = 1, n do
    wait_until(function() return provium._pools()["bench-pool"].ready >= 1 end,
      { timeout = 120, message = "the pool has a ready VM" })
    local t0 = S.now()
    local vm = provium:vm("lpl" .. i, pooled)
    vm:succeed("true")
    pl[#pl + 1] = ms(t0)
    t:eq(vm:info().pool, true, "taken from the pool")
    vm:_teardown()
  end
  row("Linux lab:vm from a fixture -> first command", fx, "ms")
  row("Linux lab:vm from a pool -> first command", pl, "ms")
end, { timeout = 900 })
