-- Process (API.md): vm:spawn and every Process method on the sandbox backend.
local vm
local function v()
  vm = vm or provium:vm("proc")
  return vm
end

test("10 000 lines from a spawned process all arrive, in order", function(t)
  local p = v():spawn("i=1; while [ $i -le 10000 ]; do echo line$i; i=$((i+1)); done")
  local s = p:stdout_stream()
  for i = 1, 10000 do
    local line = s:next({ timeout = 20 })
    if line ~= "line" .. i then t:eq(line, "line" .. i, "line " .. i) end
  end
  t:eq(s:next({ timeout = 10 }), nil)
  t:ok(s:eof())
  local r = p:wait()
  t:eq(r.code, 0)
  t:eq(r.stdout, "") -- the stream consumed it all
end)

test("wait returns code, signal and the output no stream consumed", function(t)
  local p = v():spawn("echo o; echo e >&2; exit 4")
  t:gt(p.pid, 0)
  local r = p:wait()
  t:eq(r.code, 4)
  t:eq(r.signal, nil)
  t:eq(r.stdout, "o\n")
  t:eq(r.stderr, "e\n")
  t:eq(p:status(), "exited")
  t:eq(p:exit_code(), 4)
  t:eq(p:running(), false)
end)

test("write and close_stdin feed the process's stdin", function(t)
  local p = v():spawn("cat")
  t:eq(p:write("abc\n"), 4)
  p:write("def\n")
  p:close_stdin()
  local r = p:wait({ timeout = 5 })
  t:eq(r.stdout, "abc\ndef\n")
  t:eq(r.code, 0)
end)

test("kill takes the whole process group", function(t)
  local p = v():spawn("sleep 100 & sleep 100; wait")
  t:ok(p:running())
  t:eq(p:status(), "running")
  t:eq(p:exit_code(), nil)
  wait_until(function() return v():run("pidof sleep").code == 0 end, { timeout = 5 })
  p:kill()
  local r = p:wait({ timeout = 5 })
  t:eq(r.signal, 9)
  t:eq(p:status(), "signaled")
  wait_until(function() return v():run("pidof sleep").code ~= 0 end, { timeout = 5 })
end)

test("signal takes a name or a number", function(t)
  local p = v():spawn("trap 'echo got-term; exit 0' TERM; while true; do sleep 0.05; done")
  local s = p:stdout_stream()
  provium.sleep(0.2)
  p:signal("TERM")
  t:eq(s:next({ timeout = 5 }), "got-term")
  t:eq(p:wait().code, 0)
  local q = v():spawn("sleep 100")
  q:signal(15)
  t:eq(q:wait().signal, 15)
  local e = t:error(function() q:signal({}) end)
  t:eq(e.code, "invalid")
end)

test("stderr_stream is separate from stdout", function(t)
  local p = v():spawn("echo to-out; echo to-err >&2")
  local err = p:stderr_stream()
  t:eq(err:next({ timeout = 5 }), "to-err")
  local r = p:wait()
  t:eq(r.stdout, "to-out\n")
  t:eq(r.stderr, "")
end)

test("tostring of a process", function(t)
  local p = v():spawn("true")
  p:wait()
  t:match(tostring(p), "^Process%(%d+, exited%)$")
end)

test("p:wait with a timeout the process outlives raises timeout naming the process", function(t)
  local p = v():spawn("sleep 30")
  local e = t:error(function() p:wait({ timeout = 0.3 }) end)
  t:eq(e.code, "timeout")
  t:eq(e.op, "p:wait")
  t:match(e.message, "^process " .. p.pid .. " %(sleep 30%) did not exit within 0%.%d s$")
  t:ok(p:running(), "still running after the timed-out wait")
  p:kill()
  t:eq(p:wait({ timeout = 5 }).signal, 9, "a second wait still gets the exit")
end)

-- the SigIgn and SigBlk lines of a command's /proc/self/status
local function sigmasks(status)
  return { ign = status:match("SigIgn:%s*(%x+)"), blk = status:match("SigBlk:%s*(%x+)") }
end
local NONE = { ign = "0000000000000000", blk = "0000000000000000" }

test("commands start with default signal dispositions and an empty signal mask", function(t)
  -- exec'd directly (argv) and through /bin/sh, run and spawned
  t:eq(sigmasks(v():succeed({ "cat", "/proc/self/status" })), NONE, "vm:run argv")
  t:eq(sigmasks(v():succeed("cat /proc/self/status")), NONE, "vm:run shell")
  local p = v():spawn({ "cat", "/proc/self/status" })
  t:eq(sigmasks(p:wait({ timeout = 10 }).stdout), NONE, "vm:spawn argv")
  local w = v():worker()
  t:eq(sigmasks(w:succeed({ "cat", "/proc/self/status" })), NONE, "a worker's command")
  w:close()
end)

test("INT and QUIT end a waiting process", function(t)
  for _, cmd in ipairs({ { "sleep", "30" }, "sleep 30" }) do
    for _, s in ipairs({ { "INT", 2 }, { "QUIT", 3 }, { "SIGINT", 2 } }) do
      local p = v():spawn(cmd)
      p:signal(s[1])
      local r = p:wait({ timeout = 10 })
      t:eq(r.signal, s[2], s[1] .. " to " .. tostring(p))
    end
  end
end)

test("a plain shell command is the process itself: its pid, its signals", function(t)
  -- busybox ash ignores SIGQUIT; the agent runs a lone plain command with `exec`
  -- so the program does not inherit that (agent/exec.c sh_run_direct)
  t:eq(sigmasks(v():succeed("cat /proc/self/status")), NONE)
  local p = v():spawn("cat /proc/self/status")
  local r = p:wait({ timeout = 10 })
  t:eq(r.stdout:match("\nPid:%s*(%d+)"), tostring(p.pid))
  -- what the shell forks starts with defaults too
  t:eq(sigmasks(v():succeed("cat /proc/self/status; true")), NONE)
  t:eq(sigmasks(v():succeed("cat /proc/self/status | cat")), NONE)
  -- builtins and missing programs behave as in the shell
  t:eq(v():run("echo $((1+2))").stdout, "3\n")
  local nf = v():run("no-such-program-xyz")
  t:eq(nf.code, 127)
  t:match(nf.stderr, "no%-such%-program%-xyz: not found")
end)

-- The stream rule (docs/streams.md "Streams of a process"): an attached stream gets
-- every later byte, kept until read; wait() returns only what no stream was attached for.
test("a stream attached to a process receives every later byte, wait() none of it", function(t)
  local p = v():spawn("echo alpha; echo beta; read x; echo gamma; echo delta; echo err >&2")
  local s = p:stdout_stream()
  t:eq(s:read_until("beta", { timeout = 5 }), "alpha\nbeta")
  p:close_stdin() -- gamma and delta come after the read_until returned
  local r = p:wait({ timeout = 10 })
  t:eq(r.code, 0)
  t:eq(r.stdout, "", "the stream had it")
  t:eq(r.stderr, "err\n", "no stream on stderr: wait has it")
  t:eq(s:drain(), "\ngamma\ndelta\n")
  t:eq(s:next({ timeout = 1 }), nil)
  t:eq(s:eof(), true)
end)

test("output printed before the first stream attached goes to that stream", function(t)
  local p = v():spawn("echo early; read x; echo late")
  provium.sleep(0.3) -- "early" has reached the host by now, most likely; either way it is the stream's
  local s = p:stdout_stream()
  p:close_stdin()
  t:eq(s:next({ timeout = 5 }), "early")
  t:eq(s:next({ timeout = 5 }), "late")
  t:eq(p:wait({ timeout = 10 }).stdout, "")
end)

test("a closed stream keeps what it got; later output goes to wait()", function(t)
  local p = v():spawn("echo one; echo two; read x; echo three")
  local s = p:stdout_stream()
  t:eq(s:next({ timeout = 5 }), "one")
  wait_until(function() return s:read_until("two\n", { plain = true, timeout = 0.1 }) end, { timeout = 5 })
  s:close()
  p:close_stdin()
  t:eq(p:wait({ timeout = 10 }).stdout, "three\n")
  t:eq(s:next({ timeout = 0.1 }), nil)
  t:eq(s:eof(), true)
end)

test("two streams on one output both get every later byte", function(t)
  local p = v():spawn("echo first; read x; echo second")
  local a = p:stdout_stream()
  t:eq(a:next({ timeout = 5 }), "first")
  local b = p:stdout_stream() -- attached after "first": gets only what follows
  p:close_stdin()
  t:eq(a:next({ timeout = 5 }), "second")
  t:eq(b:next({ timeout = 5 }), "second")
  t:eq(b:next({ timeout = 5 }), nil)
  t:eq(p:wait({ timeout = 10 }).stdout, "")
end)
