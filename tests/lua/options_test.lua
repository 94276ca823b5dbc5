-- options_test.lua — every API method that takes opts checks them with the one
-- checker (lua/opts.c, docs/options.md): an unknown key, a non-table and a value that
-- makes no sense raise `invalid` with op and vm, naming the key, the method and the
-- keys it takes; and every method called with a dot raises `invalid` saying to use a
-- colon. Backend-neutral: the linux tier runs this file on kvm too (kvm-only methods:
-- kvm_guest_test.lua).
local vm = provium:vm("optvm")

-- Every method with opts: its op, the VM its errors name, the keys it takes, and a
-- call with the given opts.
local function cases()
  local w = vm:worker()
  local p = vm:spawn("sleep 30")
  local f = vm:open("/tmp/opts-file", "w")
  local s = vm:tail_file("/tmp/opts-tail")
  local task = provium.go(function() end)
  local br = provium:bridge("optbr")
  local nic = br:attach(vm)
  local cap = br:capture()
  local RUN = "cwd, env, stdin, timeout, user"
  local c = {
    { "vm:run", "optvm", RUN, function(o) vm:run("true", o) end },
    { "vm:succeed", "optvm", RUN, function(o) vm:succeed("true", o) end },
    { "vm:fail", "optvm", RUN, function(o) vm:fail("false", o) end },
    { "vm:spawn", "optvm", "cwd, env, stdin, user", function(o) vm:spawn("true", o) end },
    { "vm:wait_until_succeeds", "optvm", "cwd, env, interval, stdin, timeout, user",
      function(o) vm:wait_until_succeeds("true", o) end },
    { "vm:wait_until_fails", "optvm", "cwd, env, interval, stdin, timeout, user",
      function(o) vm:wait_until_fails("false", o) end },
    { "vm:wait_for_file", "optvm", "interval, timeout", function(o) vm:wait_for_file("/", o) end },
    { "vm:wait_for_port", "optvm", "interval, timeout", function(o) vm:wait_for_port(1, o) end },
    { "vm:read_file", "optvm", "timeout", function(o) vm:read_file("/etc/hostname", o) end },
    { "vm:write_file", "optvm", "append, mode, timeout", function(o) vm:write_file("/tmp/o", "x", o) end },
    { "vm:push", "optvm", "append, mode, timeout", function(o) vm:push("/etc/hostname", "/tmp/o", o) end },
    { "vm:pull", "optvm", "timeout", function(o) vm:pull("/etc/hostname", provium.tmpdir() .. "/o", o) end },
    { "vm:mkdir", "optvm", "mode, parents", function(o) vm:mkdir("/tmp/od", o) end },
    { "vm:rm", "optvm", "force, recursive", function(o) vm:rm("/tmp/od", o) end },
    { "vm:tail_file", "optvm", "from, poll_ms", function(o) vm:tail_file("/tmp/o", o) end },
    { "vm:fd_stream", "optvm", "poll_ms", function(o) vm:fd_stream(f:fd(), o) end },
    { "vm:start", "optvm", "timeout", function(o) vm:start(o) end },
    { "vm:stop", "optvm", "timeout", function(o) vm:stop(o) end },
    { "vm:reboot", "optvm", "timeout", function(o) vm:reboot(o) end },
    { "vm:wait_ready", "optvm", "timeout", function(o) vm:wait_ready(o) end },
    { "vm:run", "optvm", RUN, function(o) w:run("true", o) end },          -- a Worker's
    { "vm:read_file", "optvm", "timeout", function(o) w:read_file("/etc/hostname", o) end },
    { "p:wait", "optvm", "timeout", function(o) p:wait(o) end },
    { "f:tail_stream", "optvm", "poll_ms", function(o) f:tail_stream(o) end },
    { "stream:next", "optvm", "timeout", function(o) s:next(o) end },
    { "stream:read_until", "optvm", "plain, timeout", function(o) s:read_until("x", o) end },
    { "stream:expect", "optvm", "plain, timeout", function(o) s:expect("x", o) end },
    { "console:expect", "optvm", "plain, timeout", function(o) vm:console():expect("x", o) end },
    { "clock:sleep", "optvm", "timeout", function(o) vm:clock():sleep(0, o) end },
    { "lab:vm", "optnew", "agent, backend, boot_timeout, cmdline, cpus, disk_slots, disks, env, " ..
      "initrd, kernel, memory, nic_slots, pool, rootfs, setup, start", function(o) provium:vm("optnew", nil, o) end },
    { "lab:bridge", nil, "nat, subnet", function(o) provium:bridge("optbr2", o) end },
    { "lab:claim", nil, "capacity, count, timeout", function(o) provium:claim("optres", o) end },
    { "lab:barrier", nil, "timeout", function(o) provium:barrier("optbar", 1, o) end },
    { "task:wait", nil, "timeout", function(o) task:wait(o) end },
    { "provium.all", nil, "timeout", function(o) provium.all({}, o) end },
    { "wait_until", nil, "interval, message, timeout", function(o) wait_until(function() return true end, o) end },
    { "json.encode", nil, "pretty, sort_keys", function(o) json.encode({}, o) end },
    { "bridge:attach", "optvm", "ip, mac, slot", function(o) br:attach(vm, o) end },
    { "bridge:drop", nil, "between, seed", function(o) br:drop(0, o) end },
    { "bridge:duplicate", nil, "between, seed", function(o) br:duplicate(0, o) end },
    { "bridge:corrupt", nil, "between, seed", function(o) br:corrupt(0, o) end },
    { "bridge:latency", nil, "between, jitter, seed", function(o) br:latency(0, o) end },
    { "bridge:capture", nil, "filter, path", function(o) br:capture(o) end },
    { "nic:capture", "optvm", "filter, path", function(o) nic:capture(o) end },
    { "capture:next", nil, "timeout", function(o) cap:next(o) end },
    { "capture:read_until", nil, "plain, timeout", function(o) cap:read_until("x", o) end },
    { "capture:expect", nil, "plain, timeout", function(o) cap:expect("x", o) end },
  }
  return c, function() p:kill(); s:close(); f:close(); cap:close(); w:close() end
end

test("an unknown option is invalid, naming the key, the method and the keys it takes", function(t)
  local list, done = cases()
  t:cleanup(done)
  for _, c in ipairs(list) do
    local op, vmname, keys, call = c[1], c[2], c[3], c[4]
    local e = t:error(function() call({ zzbogus = 1 }) end)
    t:eq({ e.code, e.op, e.vm, e.option }, { "invalid", op, vmname, "zzbogus" }, op)
    t:eq(e.message, ("unknown option 'zzbogus'; %s takes: %s"):format(op, keys), op)
    t:eq(tostring(e), ("provium: %s%s: %s"):format(op, vmname and (" on " .. vmname) or "", e.message))
    e = t:error(function() call("soon") end)
    t:eq({ e.code, e.op, e.vm, e.message }, { "invalid", op, vmname, 'opts must be a table, got "soon"' }, op)
  end
  t:eq(vm:state(), "running", "no call did anything")
end)

test("a near miss says which key was meant", function(t)
  local function msg(f) return t:error(f).message end
  t:eq(msg(function() vm:run("sleep 9", { timout = 5 }) end),
    "unknown option 'timout' (did you mean 'timeout'?); vm:run takes: cwd, env, stdin, timeout, user")
  t:match(msg(function() vm:run("true", { Timeout = 5 }) end), "%(did you mean 'timeout'%?%)")
  t:match(msg(function() vm:run("true", { evn = {} }) end), "%(did you mean 'env'%?%)")
  t:match(msg(function() vm:tail_file("/tmp/x", { form = "end" }) end), "%(did you mean 'from'%?%)")
  t:match(msg(function() json.encode({}, { sortkeys = true }) end), "%(did you mean 'sort_keys'%?%)")
  t:match(msg(function() provium:vm("optcpu", nil, { cpu = 2 }) end), "%(did you mean 'cpus'%?%)")
  -- a key that is not close to any gets no guess
  t:eq(msg(function() vm:run("true", { colour = "red" }) end),
    "unknown option 'colour'; vm:run takes: cwd, env, stdin, timeout, user")
  -- keys are names: a positional value in opts is a mistake too
  t:eq(msg(function() vm:run("true", { 5 }) end),
    "opts[1]: fields are named (opts.name = value); vm:run takes: cwd, env, stdin, timeout, user")
end)

test("nonsense values are invalid, naming the option and what it must be", function(t)
  local cases = {
    { function() provium:vm("optc", nil, { cpus = -1 }) end, "lab:vm", "optc", "cpus", "opts.cpus must be a positive integer, got -1" },
    { function() provium:vm("optm", nil, { memory = 0 }) end, "lab:vm", "optm", "memory", "opts.memory must be a positive integer, got 0" },
    { function() provium:vm("optm", nil, { memory = 1.5 }) end, "lab:vm", "optm", "memory", "opts.memory must be a positive integer, got 1.5" },
    { function() provium:vm("optb", nil, { backend = "qemu" }) end, "lab:vm", "optb", "backend",
      'opts.backend must be one of "auto", "kvm" or "sandbox", got "qemu"' },
    { function() provium:vm("opts2", nil, { start = "no" }) end, "lab:vm", "opts2", "start", 'opts.start must be true or false, got "no"' },
    { function() vm:run("true", { timeout = -1 }) end, "vm:run", "optvm", "timeout", "opts.timeout must be a non-negative number of seconds, got -1" },
    { function() vm:run("true", { timeout = 0 / 0 }) end, "vm:run", "optvm", "timeout", "opts.timeout must be a non-negative number of seconds, got NaN" },
    { function() vm:run("true", { timeout = math.huge }) end, "vm:run", "optvm", "timeout", "opts.timeout must be a non-negative number of seconds, got inf" },
    { function() vm:run("true", { timeout = "5" }) end, "vm:run", "optvm", "timeout", 'opts.timeout must be a non-negative number of seconds, got "5"' },
    { function() vm:run("true", { env = "A=1" }) end, "vm:run", "optvm", "env", 'opts.env must be a table, got "A=1"' },
    { function() vm:run("true", { user = -3 }) end, "vm:run", "optvm", "user", "opts.user must be a user name or a uid, got -3" },
    { function() vm:run("true", { cwd = 7 }) end, "vm:run", "optvm", "cwd", "opts.cwd must be a string, got 7" },
    { function() vm:tail_file("/tmp/x", { from = "middle" }) end, "vm:tail_file", "optvm", "from", 'opts.from must be "start" or "end", got "middle"' },
    { function() vm:tail_file("/tmp/x", { poll_ms = 0 }) end, "vm:tail_file", "optvm", "poll_ms", "opts.poll_ms must be a positive integer, got 0" },
    { function() vm:write_file("/tmp/x", "", { mode = -1 }) end, "vm:write_file", "optvm", "mode", "opts.mode must be a non-negative integer, got -1" },
    { function() vm:rm("/tmp/x", { force = 1 }) end, "vm:rm", "optvm", "force", "opts.force must be true or false, got 1" },
    { function() vm:wait_for_file("/", { interval = -0.1 }) end, "vm:wait_for_file", "optvm", "interval", "opts.interval must be a non-negative number of seconds, got -0.1" },
    { function() provium:claim("optr", { count = 0 }) end, "lab:claim", nil, "count", "opts.count must be a positive integer, got 0" },
    { function() wait_until(function() return true end, { message = {} }) end, "wait_until", nil, "message", "opts.message must be a string, got a table" },
  }
  for i, c in ipairs(cases) do
    local e = t:error(c[1])
    t:eq({ e.code, e.op, e.vm, e.option, e.message }, { "invalid", c[2], c[3], c[4], c[5] }, "case " .. i)
  end
  -- positional seconds the same way
  local e = t:error(function() provium.sleep(0 / 0) end)
  t:eq({ e.code, e.op, e.message }, { "invalid", "provium.sleep", "seconds must be a non-negative number, got NaN" })
  e = t:error(function() vm:clock():sleep(-1) end)
  t:eq({ e.code, e.op, e.vm, e.message }, { "invalid", "clock:sleep", "optvm", "seconds must be a non-negative number, got -1" })
  -- integral floats are integers
  t:eq(vm:tail_file("/tmp/x", { poll_ms = 20.0 }):drain(), "")
end)

test("stream methods check their arguments", function(t)
  local s = vm:tail_file("/tmp/opts-stream")
  t:cleanup(function() s:close() end)
  local e = t:error(function() s:next("soon") end)
  t:eq({ e.code, e.op, e.vm, e.message }, { "invalid", "stream:next", "optvm", 'opts must be a table, got "soon"' })
  e = t:error(function() s:read_until(42) end)
  t:eq({ e.code, e.op, e.message }, { "invalid", "stream:read_until", "pattern must be a string, got 42" })
  e = t:error(function() s:expect("%", { timeout = 1 }) end)
  t:eq({ e.code, e.op }, { "invalid", "stream:expect" })
  t:match(e.message, "^pattern \"%%\" is not a Lua pattern: malformed pattern")
  e = t:error(function() s:expect("x", { plain = "yes" }) end)
  t:eq(e.message, 'opts.plain must be true or false, got "yes"')
end)

test("a profile field that does not exist or makes no sense is invalid", function(t)
  local e = t:error(function() provium:vm("optprof", { memroy = 64 }) end)
  t:eq({ e.code, e.op, e.vm, e.option }, { "invalid", "profile table", "optprof", "memroy" })
  t:match(e.message, "^unknown profile field 'memroy' %(did you mean 'memory'%?%); profile table takes: agent, backend, ")
  e = t:error(function() provium:vm("optprof", { cpus = 0 }) end)
  t:eq(e.message, "profile.cpus must be a positive integer, got 0")
end)

-- Dot calls: one per class the API hands out
test("a method called with a dot is invalid and says to use a colon", function(t)
  local w = vm:worker()
  local p = vm:spawn("sleep 30")
  local f = vm:open("/tmp/opts-dot", "w")
  local s = vm:tail_file("/tmp/opts-dot")
  local br = provium:bridge("optdot")
  local nic = br:attach(vm)
  local cap = br:capture()
  local claim = provium:claim("optdot")
  t:cleanup(function() p:kill(); s:close(); f:close(); cap:close(); w:close(); claim:release() end)
  local dots = {
    { "vm:run", "VM", function() vm.run("true") end },
    { "vm:state", "VM", function() vm.state() end },
    { "w:run", "Worker", function() w.run("true") end },
    { "w:close", "Worker", function() w.close() end },
    { "p:wait", "Process", function() p.wait({ timeout = 1 }) end },
    { "f:read", "File", function() f.read(1) end },
    { "stream:next", "Stream", function() s.next() end },
    { "console:log", "Console", function() vm:console().log() end },
    { "clock:now", "Clock", function() vm:clock().now() end },
    { "lab:vm", "Lab", function() provium.vm("x") end },
    { "lab:lab", "Lab", function() provium.lab("x") end },
    { "bridge:attach", "Bridge", function() br.attach(vm) end },
    { "nic:counters", "Nic", function() nic.counters() end },
    { "capture:next", "Capture", function() cap.next() end },
    { "claim:release", "Claim", function() claim.release() end },
    { "task:wait", "Task", function() provium.go(function() end).wait() end },
    { "t:eq", "Test", function() t.eq(1, 1) end },
  }
  for _, d in ipairs(dots) do
    local op, kind = d[1], d[2]
    local e = t:error(d[3])
    t:eq({ e.code, e.op }, { "invalid", op }, op)
    local recv, name = op:match("^(.-):(.*)$")
    t:match(e.message, ("^call it with a colon: %s%%(%%.%%.%%.%%), not %s%%.%s%%(%%.%%.%%.%%) %%(which passes .* as the %s%%)$")
      :format(op, recv, name, kind), op)
  end
  -- what was passed in place of the object is shown
  t:eq(t:error(function() vm.run("ls") end).message,
    'call it with a colon: vm:run(...), not vm.run(...) (which passes "ls" as the VM)')
  -- and unknown members are still named as such
  t:eq(t:error(function() return vm.frobnicate end).message, "VM has no method or field 'frobnicate'")
  t:eq(p:running(), true, "nothing ran")
end)
