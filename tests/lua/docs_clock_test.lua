-- docs/clock.md example: reading the guest clock.
test("the guest clock", function(t)
  local vm = provium:vm("clock-doc")
  local clock = vm:clock()
  t:lt(math.abs(clock:now() - os.time()), 5)
  t:lt(math.abs(clock:offset()), 1)
  if provium.backend() == "sandbox" then
    local err = t:error(function() clock:advance(3600) end)
    t:eq(err.code, "unsupported")
  end
end)
