-- examples/clock_lease_test.lua — a clock jump that fires timers and expires a lease.
-- A guest service holds a 300 s lease and arms a timer for its expiry. Instead of
-- waiting five minutes, the test moves guest time forward 400 s at once
-- (clock:advance): the wall and monotonic clocks jump and pending timers fire, so the
-- timer goes off and the lease reads as expired. The host's clock is not touched.
-- kvm backend only: a sandbox shares the host's clock.
local KVM_ONLY = provium.backend() ~= "kvm" and "needs --backend kvm (a host whose /dev/kvm runs " ..
  "Linux guests): the sandbox backend shares the host's clock, so it cannot be moved" or nil

test("400 s of guest time in an instant: the timer fires, the lease expires", function(t)
  local vm = provium:vm("lease")
  local clock = vm:clock()
  vm:succeed("echo $(( $(date +%s) + 300 )) > /run/lease-expiry") -- lease: 300 s
  local timer = vm:spawn("sleep 300 && echo lease timer fired")
  local valid = "test $(date +%s) -lt $(cat /run/lease-expiry)"
  vm:succeed(valid)
  provium.sleep(0.5)
  t:ok(timer:running(), "the timer waits")

  clock:advance(400)
  local r = timer:wait({ timeout = 20 }) -- seconds of host time, not 300
  t:eq(r.stdout, "lease timer fired\n")
  vm:fail(valid) -- the lease has expired
  t:gt(clock:offset(), 390, "the guest is 400 s ahead of the host")
end, { skip = KVM_ONLY })
