-- sandbox_bench.lua — run by tests/bench/bench_sandbox.sh: sandbox VM start to
-- agent-ready, vm:run("true") round trip on the VM and on a Worker, and a 16 MiB
-- write_file/read_file. Writes a table to $PROVIUM_BENCH_OUT.
local S = provium._sched
local out = assert(io.open(provium.env("PROVIUM_BENCH_OUT"), "w"))

local function stats(xs)
  table.sort(xs)
  local sum = 0
  for _, x in ipairs(xs) do sum = sum + x end
  return xs[math.floor(#xs / 2) + 1], xs[math.max(1, math.ceil(#xs * 0.9))], sum / #xs
end

local function row(name, xs, unit, target)
  local med, p90, mean = stats(xs)
  out:write(("%-38s n=%-5d median %8.3f %s  p90 %8.3f %s  mean %8.3f %s%s\n"):format(
    name, #xs, med, unit, p90, unit, mean, unit, target and ("  (target < " .. target .. ")") or ""))
end

test("sandbox start to agent-ready", function(t)
  local xs = {}
  for i = 1, 20 do
    local t0 = S.now()
    local vm = provium:vm("start" .. i)
    xs[#xs + 1] = (S.now() - t0) * 1000
    vm:_teardown()
  end
  row("sandbox VM start -> agent ready", xs, "ms", "50 ms")
end, { timeout = 120 })

test("vm:run round trips", function(t)
  local vm = provium:vm("rt")
  for _ = 1, 20 do vm:run("true") end
  local xs = {}
  for _ = 1, 500 do
    local t0 = S.now()
    vm:run("true")
    xs[#xs + 1] = (S.now() - t0) * 1000
  end
  row('vm:run("true") round trip', xs, "ms", "2 ms")
  local ys = {}
  for _ = 1, 500 do
    local t0 = S.now()
    vm:exists("/")
    ys[#ys + 1] = (S.now() - t0) * 1000
  end
  row("vm:exists round trip (no process)", ys, "ms")
  local w = vm:worker()
  local zs = {}
  for _ = 1, 200 do
    local t0 = S.now()
    w:run("true")
    zs[#zs + 1] = (S.now() - t0) * 1000
  end
  row('worker:run("true") round trip', zs, "ms")
  local data = ("x"):rep(16 * 1024 * 1024)
  local t0 = S.now()
  vm:write_file("/tmp/big", data)
  local tw = S.now() - t0
  t0 = S.now()
  local back = vm:read_file("/tmp/big")
  local tr = S.now() - t0
  t:eq(#back, #data)
  out:write(("%-38s write %6.0f MB/s  read %6.0f MB/s\n"):format("16 MiB write_file / read_file", 16 / tw, 16 / tr))
end, { timeout = 120 })
