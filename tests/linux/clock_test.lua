-- clock_test.lua — kvm-only: guest clock control under a Linux guest.
-- Only meaningful on Linux microVMs: skipped (with the reason) on the sandbox backend.
local KVM_ONLY = provium.backend() ~= "kvm" and "Linux-guest test: needs --backend kvm on a hardware-KVM host (tests/linux/run.sh)" or nil
local function test(name, fn) return _G.test(name, fn, { skip = KVM_ONLY, tags = { "linux" } }) end

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
