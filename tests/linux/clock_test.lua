-- clock_test.lua — kvm-only: guest clock control under a Linux guest.
-- Only meaningful on Linux microVMs: skipped (with the reason) on the sandbox backend.
local KVM_ONLY = provium.backend() ~= "kvm" and "Linux-guest test: needs --backend kvm on a hardware-KVM host (tests/linux/run.sh)" or nil
local function test(name, fn) return _G.test(name, fn, { skip = KVM_ONLY, tags = { "linux" } }) end

-- The host sets the wall clock as the agent connects: x86's kernel reads kvmclock's
-- at the start of boot but falls behind until its clocksource is kvm-clock (0.17-0.27 s
-- in the simulated host before this); arm64's has none. What is left is the one-way
-- time of that first message, well under a few round trips.
test("a booted guest's wall clock is the host's, to within a few round trips", function(t)
  local vm = provium:vm("wallboot", "default")
  local c = vm:clock()
  local off = c:offset()
  local t0 = provium._c_vm.wall_ns()
  vm:succeed("true")
  local rt = (provium._c_vm.wall_ns() - t0) / 1e9
  t:lt(math.abs(off), math.max(0.1, 3 * rt), ("offset %.3f s, a command's round trip %.3f s"):format(off, rt))
end)

test("clock:advance fires a guest timer", function(t)
  local vm = provium:vm("timer", "default")
  local p = vm:spawn("sleep 300 && echo fired")
  provium.sleep(0.5)
  t:ok(p:running())
  vm:clock():advance(400)
  local r = p:wait({ timeout = 20 })
  t:eq(r.code, 0)
  t:eq(r.stdout, "fired\n")
end)

test("clock:advance moves the guest's monotonic and wall clocks together", function(t)
  local vm = provium:vm("jump", "default")
  local c = vm:clock()
  local m0, w0 = c:monotonic(), c:now()
  c:advance(100)
  local m1, w1 = c:monotonic(), c:now()
  t:ge(m1 - m0, 100)
  t:lt(m1 - m0, 115)
  t:ge(w1 - w0, 100)
  t:lt(w1 - w0, 115)
  local up = tonumber(vm:succeed("cut -d' ' -f1 /proc/uptime"))
  t:ge(up, m1 - 1, "what the guest's own tools read moved as well")
end)

test("clock:set moves the guest wall clock; offset follows", function(t)
  local vm = provium:vm("wall", "default")
  local c = vm:clock()
  c:set(2000000000)
  t:lt(math.abs(c:now() - 2000000000), 5)
  t:gt(c:offset(), 1e8)
end)

test("clock:sleep returns after guest time passed (advance counts)", function(t)
  local vm = provium:vm("gsleep", "default")
  local c = vm:clock()
  local m0 = c:monotonic()
  provium.go(function() provium.sleep(0.2); c:advance(30) end)
  c:sleep(10)
  t:ge(c:monotonic() - m0, 10)
end)
