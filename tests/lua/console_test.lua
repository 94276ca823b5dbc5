-- Console (API.md): on the sandbox the console is the init's stdout/stderr (a 1 MiB
-- ring from the start) and console input is the init's stdin.
local vm
local function v()
  vm = vm or provium:vm("con")
  return vm
end

test("log holds everything printed since boot", function(t)
  local c = v():console()
  t:match(tostring(c), "^Console%(con%)$")
  -- /init logs the agent start on the console (just after starting it: wait for it)
  wait_until(function() return c:log():find("provium-init: agent started", 1, true) end, { timeout = 5 })
  t:match(c:log(), "provium%-init: agent started")
  v():run("echo from-guest > /proc/1/fd/1")
  wait_until(function() return c:log():find("from-guest", 1, true) end, { timeout = 5 })
end)

test("read returns a ConsoleStream from now on", function(t)
  local c = v():console()
  v():run("echo old-line > /proc/1/fd/1")
  wait_until(function() return c:log():find("old-line", 1, true) end, { timeout = 5 })
  local s = c:read()
  v():run("echo new-line > /proc/1/fd/1")
  t:eq(s:next({ timeout = 5 }), "new-line")
  t:match(tostring(s), "^ConsoleStream")
  s:close()
end)

test("expect finds text and returns captures, moving forward", function(t)
  local c = v():console()
  v():run("echo 'boot-id=1234' > /proc/1/fd/1; echo 'boot-id=5678' > /proc/1/fd/1")
  t:eq(c:expect("boot%-id=(%d+)", { timeout = 5 }), "1234")
  t:eq(c:expect("boot%-id=(%d+)", { timeout = 5 }), "5678")
  local e = t:error(function() c:expect("never printed", { timeout = 0.2 }) end)
  t:eq(e.code, "timeout")
  t:match(e.message, "boot%-id=5678")
end)

test("write is input to the guest console", function(t)
  local c = v():console()
  t:eq(c:write("typed\n"), 6)
  -- nobody reads the init's stdin; read it from the pipe ourselves
  t:eq(v():succeed("head -n 1 /proc/1/fd/0"), "typed\n")
end)

test("the ring keeps the last 1 MiB", function(t)
  local c = v():console()
  v():run("head -c 1200000 /dev/zero | tr '\\0' x > /proc/1/fd/1; echo END > /proc/1/fd/1")
  -- a Linux guest's console is far slower under an emulated KVM host than a pipe
  wait_until(function() return c:log():find("END\n", 1, true) end,
    { timeout = provium.backend() == "kvm" and 120 or 10 })
  local log = c:log()
  t:eq(#log, 1024 * 1024)
  t:eq(log:sub(-4), "END\n")
end)

test("close makes the console unusable", function(t)
  local c = v():console()
  c:close()
  local e = t:error(function() c:log() end)
  t:eq(e.code, "closed")
end)
