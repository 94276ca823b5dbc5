-- Every error code the sandbox backend can raise is a table {code, message, op, vm}
-- whose tostring is exactly "provium: <op> on <vm>: <message>" (API.md conventions).
-- (`protocol` needs a misbehaving agent: tests/unit/test_agentconn.c provokes it.)
local vm = provium:vm("errvm")

local function check(t, e, code, op)
  t:eq(type(e), "table")
  t:eq(e.code, code)
  t:eq(e.op, op)
  t:eq(type(e.message), "string")
  t:ok(#e.message > 0, "a message")
  if e.vm then
    t:eq(tostring(e), ("provium: %s on %s: %s"):format(e.op, e.vm, e.message))
  else
    t:eq(tostring(e), ("provium: %s: %s"):format(e.op, e.message))
  end
end

test("guest: errno and errname, on the VM", function(t)
  local e = t:error(function() vm:read_file("/no/such/file") end)
  check(t, e, "guest", "vm:read_file")
  t:eq(e.vm, "errvm")
  t:eq(e.errname, "ENOENT")
  t:eq(tostring(e), "provium: vm:read_file on errvm: " .. e.message)
end)

test("timeout: a command that outlives opts.timeout", function(t)
  local e = t:error(function() vm:run("sleep 5", { timeout = 0.3 }) end)
  check(t, e, "timeout", "vm:run")
  t:eq(e.vm, "errvm")
end)

test("invalid: a wrong argument type", function(t)
  local e = t:error(function() vm:run(42) end)
  check(t, e, "invalid", "vm:run")
  t:eq(e.vm, "errvm")
  t:match(e.message, "number")
end)

test("unsupported: what the sandbox cannot do names the backend", function(t)
  local e = t:error(function() vm:clock():set(0) end)
  t:eq(e.code, "unsupported")
  t:eq(e.vm, "errvm")
  t:match(e.message, "sandbox")
  t:eq(tostring(e), ("provium: %s on errvm: %s"):format(e.op, e.message))
end)

test("closed: a VM that was stopped", function(t)
  local v = provium:vm("errgone")
  v:kill()
  local e = t:error(function() v:run("true") end)
  t:eq(e.code, "closed")
  t:eq(e.vm, "errgone")
  t:eq(tostring(e), ("provium: %s on errgone: %s"):format(e.op, e.message))
end)

test("infra: a backend the host cannot run", function(t)
  local e = t:error(function() provium:vm("errkvm", { backend = "kvm" }) end)
  t:eq(e.code, "infra")
  t:eq(e.vm, "errkvm")
  t:eq(tostring(e), ("provium: %s on errkvm: %s"):format(e.op, e.message))
end, { skip = provium.backend() == "kvm" and "kvm runs Linux guests here" or nil })

test("an error without a VM prints without 'on'", function(t)
  local e = t:error(function() json.decode("{") end)
  check(t, e, "invalid", e.op)
  t:eq(e.vm, nil)
end)

test("invalid: a bad opts.timeout is invalid, not a Lua error, on every blocking call", function(t)
  -- the error names the call and its VM (op, vm), and the option
  local calls = {
    { function() vm:run("true", { timeout = "x" }) end, "vm:run", "errvm", '"x"' },
    { function() vm:spawn("true"):wait({ timeout = "5" }) end, "p:wait", "errvm", '"5"' },
    { function() vm:tail_file("/tmp/none"):next({ timeout = "1" }) end, "stream:next", "errvm", '"1"' },
    { function() provium.go(function() end):wait({ timeout = "z" }) end, "task:wait", nil, '"z"' },
    { function() wait_until(function() return true end, { timeout = -1 }) end, "wait_until", nil, "-1" },
    { function() vm:read_file("/etc/hostname", { timeout = 0 / 0 }) end, "vm:read_file", "errvm", "NaN" },
  }
  for i, c in ipairs(calls) do
    local e = t:error(c[1])
    t:eq({ e.code, e.op, e.vm, e.option }, { "invalid", c[2], c[3], "timeout" }, "call " .. i)
    t:eq(e.message, "opts.timeout must be a non-negative number of seconds, got " .. c[4])
    t:eq(tostring(e), ("provium: %s%s: %s"):format(c[2], c[3] and (" on " .. c[3]) or "", e.message))
  end
end)
