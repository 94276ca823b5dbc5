-- Clock (API.md): the sandbox shares the host's clocks: reading and sleeping work,
-- setting and advancing do not.
local vm
local function v()
  vm = vm or provium:vm("clk")
  return vm
end

test("now, now_ns, monotonic and offset read the guest clocks", function(t)
  local c = v():clock()
  t:match(tostring(c), "^Clock%(clk%)$")
  local now = c:now()
  t:lt(math.abs(now - os.time()), 5)
  local ns = c:now_ns()
  t:eq(math.type(ns), "integer")
  t:lt(math.abs(ns / 1e9 - now), 5)
  local m1 = c:monotonic()
  provium.sleep(0.05)
  local m2 = c:monotonic()
  t:ge(m2 - m1, 0.04)
  t:lt(math.abs(c:offset()), 0.5)
end)

test("set, set_ns and advance raise unsupported on the sandbox", function(t)
  local c = v():clock()
  for _, m in ipairs({ "set", "set_ns", "advance" }) do
    local e = t:error(function() c[m](c, 1) end)
    t:eq(e.code, "unsupported")
    t:eq(e.op, "clock:" .. m)
    t:match(e.message, "shares the host's wall clock; use the kvm backend")
  end
end)

test("sleep waits that much guest time (host time on the sandbox), yielding", function(t)
  local c = v():clock()
  local m0, h0 = c:monotonic(), provium._c_vm.mono_ns()
  local other = provium.go(function() provium.sleep(0.05); return "ran" end)
  c:sleep(0.3)
  t:ge(c:monotonic() - m0, 0.3)
  t:ge((provium._c_vm.mono_ns() - h0) / 1e9, 0.3)
  t:lt((provium._c_vm.mono_ns() - h0) / 1e9, 3, "not much longer")
  t:eq(provium.all({ other })[1], "ran")
  c:sleep(0)
  t:eq(t:error(function() c:sleep(-1) end).code, "invalid")
  t:eq(t:error(function() c:sleep("x") end).code, "invalid")
end)
