-- vm.lua — the VM object (API.md "VM") on the sandbox backend, provium._vm_new for
-- lab:vm, provium._backend_select, and the command/file/syscall methods shared with
-- Workers (worker.lua). Everything that waits is written here on top of the scheduler;
-- the C side (lua/vm.c: provium._c_vm, lua/agentconn.c) never blocks.
local provium = provium
local S = provium._sched
local perr = provium._error
local cfg = provium._config
local V = provium._vm or {}
provium._vm = V

-- Methods check their receiver (a dot call raises invalid) and their opts
-- (provium._opts: unknown keys and bad values raise invalid naming the method).
local VM, VM_mt = provium._class("VM", "vm", { vm = function(t) return rawget(t, "name") end })
V.VM, V.VM_mt = VM, VM_mt
local opts_check = provium._opts
VM_mt.__tostring = function(vm)
  return ("VM(%s, %s, %s)"):format(vm.name, vm:state(), vm.backend)
end

-- Backend selection -------------------------------------------------------------------
local KVM_HINT = "use --backend sandbox (or auto), or a host whose /dev/kvm is kvm_intel/kvm_amd"

function provium._backend_select(req)
  req = req or cfg.backend or "auto"
  if req == "sandbox" then return "sandbox" end
  if req == "kvm" then return "kvm" end
  if req ~= "auto" then
    perr({ code = "invalid", op = "provium.backend", message = ("unknown backend %q (auto, kvm or sandbox)"):format(tostring(req)) }, 2)
  end
  local ok, why = provium._c_vm.kvm_linux_ok()
  if ok and provium._kvm_vm_new then return "kvm" end
  if ok then why = "the kvm backend is not built into this provium yet" end
  -- say it once per run (every test file is its own worker process)
  local note = cfg.tmp_dir and (cfg.tmp_dir:match("^(.*)/[^/]+/?$") or cfg.tmp_dir) .. "/.backend-note"
  if cfg.verbose ~= -1 and (not note or provium._c_vm.note_once(note)) then
    io.stderr:write("provium: backend auto: using sandbox (", why, ")\n")
  end
  return "sandbox"
end

-- Shared helpers ------------------------------------------------------------------------
-- The options of the command methods (docs/options.md)
local CMD_OPTS = "cwd:string env:table stdin:string user:user"
local RUN_OPTS = CMD_OPTS .. " timeout:secs"
local POLL_OPTS = "interval:secs timeout:secs"

local function check_arg(cond, op, vm, msg)
  if not cond then perr({ code = "invalid", op = op, vm = vm, message = msg }, 4) end
end
V.check_arg = check_arg

-- The connection an operation goes through: the VM's own, or a Worker's (worker.lua
-- gives Workers the same methods by defining _link()).
function VM:_link(op)
  local st = self:state()
  if st ~= "running" then
    perr({ code = "closed", op = op, vm = self.name,
      message = ("VM is %s%s"):format(st, self._exit and (" (" .. self._exit .. ")") or "") }, 4)
  end
  return self._conn, self
end

-- Commands ----------------------------------------------------------------------------------
local function cmd_args(cmd, opts, op, vm)
  local a = {}
  if type(cmd) == "string" then
    a.cmd = cmd
  elseif type(cmd) == "table" then
    check_arg(#cmd > 0, op, vm, "argv must be a non-empty array of strings")
    local argv = {}
    for i, s in ipairs(cmd) do
      check_arg(type(s) == "string" or type(s) == "number", op, vm, ("argv[%d] is a %s, not a string"):format(i, type(s)))
      argv[i] = tostring(s)
    end
    a.argv = argv
  else
    check_arg(false, op, vm, "command must be a shell string or an argv array, got " .. type(cmd))
  end
  if opts.env ~= nil then
    local env = {}
    for k, v in pairs(opts.env) do env[tostring(k)] = tostring(v) end
    a.env = env
  end
  a.cwd, a.stdin = opts.cwd, opts.stdin
  a.user = type(opts.user) == "number" and math.tointeger(opts.user) or opts.user
  return a
end
V.cmd_args = cmd_args

local function describe_cmd(cmd)
  if type(cmd) == "table" then return table.concat(cmd, " ") end
  return tostring(cmd)
end

-- run through a connection; shared by VM and Worker
local function run(self, cmd, opts, op)
  opts = opts_check(opts, op, self.name, RUN_OPTS)
  local conn = self:_link(op)
  local a = cmd_args(cmd, opts, op, self.name)
  local deadline = V.deadline(opts)
  if opts.timeout then
    -- the agent enforces the timeout (and kills the process group); we wait a bit longer
    a.timeout_ns = math.max(1, math.floor(opts.timeout * 1e9))
    deadline = deadline + 5
  elseif deadline then
    -- bounded by the test's timeout: the scheduler stops the test at its deadline and
    -- reports where it waited; the agent's limit is only a backstop
    a.timeout_ns = math.max(1, math.floor((deadline - S.now() + 2) * 1e9))
  end
  local t0 = S.now()
  local id = conn:send("exec", a, op)
  local r = conn:await(id, deadline, op, "exec")
  local out = conn.c:stream(id, "stdout")
  local err = conn.c:stream(id, "stderr")
  conn.c:forget(id)
  if not r.ok then V.agent_error(r, op, self.name) end
  local res = r.result
  if res.timed_out then
    perr({ code = "timeout", op = op, vm = self.name,
      message = ("command did not finish in %.1f s (killed): %s"):format(S.now() - t0, describe_cmd(cmd)),
      stdout = out .. (res.stdout or ""), stderr = err .. (res.stderr or "") }, 3)
  end
  local sig = res.signal
  if sig == 0 then sig = nil end
  return {
    code = (sig == nil) and res.code or nil,
    signal = sig,
    stdout = out .. (res.stdout or ""),
    stderr = err .. (res.stderr or ""),
    duration = (res.duration_ns or 0) / 1e9,
    pid = res.pid,
  }
end
V.run = run

local function tail_text(s, n)
  if #s > n then return "..." .. s:sub(-n) end
  return s
end

function VM:run(cmd, opts) return run(self, cmd, opts, "vm:run") end

function VM:succeed(cmd, opts)
  local r = run(self, cmd, opts, "vm:succeed")
  if r.code ~= 0 then
    perr({ code = "guest", op = "vm:succeed", vm = self.name, exit_code = r.code, signal = r.signal,
      stdout = r.stdout, stderr = r.stderr,
      message = ("command %s (%s): %s%s"):format(
        r.signal and ("killed by signal " .. r.signal) or ("exited with code " .. tostring(r.code)),
        describe_cmd(cmd), r.stderr ~= "" and "stderr: " or "", tail_text(r.stderr, 2048)) }, 2)
  end
  return r.stdout
end

function VM:fail(cmd, opts)
  local r = run(self, cmd, opts, "vm:fail")
  if r.code == 0 then
    perr({ code = "guest", op = "vm:fail", vm = self.name, exit_code = 0, stdout = r.stdout, stderr = r.stderr,
      message = ("command succeeded but was expected to fail: %s"):format(describe_cmd(cmd)) }, 2)
  end
  return r.stderr
end

-- polls fn() every opts.interval (default 0.1 s) until it returns non-nil
local function poll_until(self, opts, op, spec, fn, what)
  opts = opts_check(opts, op, self.name, spec)
  local deadline = S.deadline(opts)
  local interval = opts.interval or 0.1
  local t0 = S.now()
  local last
  while true do
    local v
    v, last = fn(deadline)
    if v ~= nil then return v end
    if deadline and S.now() + interval > deadline then
      perr({ code = "timeout", op = op, vm = self.name,
        message = ("%s: still not true after %.1f s%s"):format(what, S.now() - t0, last and ("; last: " .. last) or "") }, 3)
    end
    S.sleep(interval, op .. " " .. what)
  end
end
V.poll_until = poll_until

-- the command options of a wait_until_* call (each run gets the whole timeout)
local function run_opts(opts)
  if not opts then return nil end
  return { cwd = opts.cwd, env = opts.env, stdin = opts.stdin, user = opts.user, timeout = opts.timeout }
end

function VM:wait_until_succeeds(cmd, opts)
  return poll_until(self, opts, "vm:wait_until_succeeds", RUN_OPTS .. " interval:secs", function()
    local r = run(self, cmd, run_opts(opts), "vm:wait_until_succeeds")
    if r.code == 0 then return r.stdout end
    return nil, ("exit code %s, stderr %q"):format(tostring(r.code), tail_text(r.stderr, 500))
  end, describe_cmd(cmd))
end

function VM:wait_until_fails(cmd, opts)
  return poll_until(self, opts, "vm:wait_until_fails", RUN_OPTS .. " interval:secs", function()
    local r = run(self, cmd, run_opts(opts), "vm:wait_until_fails")
    if r.code ~= 0 then return r.stderr end
    return nil, "it still succeeds"
  end, describe_cmd(cmd))
end

function VM:wait_for_file(path, opts)
  check_arg(type(path) == "string", "vm:wait_for_file", self.name, "path must be a string")
  return poll_until(self, opts, "vm:wait_for_file", POLL_OPTS, function()
    if self:exists(path) then return true end
  end, "file " .. path .. " exists")
end

-- a TCP listener on `port` in /proc/net/tcp{,6} (state 0A = LISTEN)
local function listening(self, port)
  local hex = (":%04X"):format(port)
  for _, f in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local ok, data = pcall(self.read_file, self, f)
    if ok and data then
      for line in data:gmatch("[^\n]+") do
        local laddr, st = line:match("^%s*%d+:%s+(%S+)%s+%S+%s+(%x%x)")
        if laddr and st == "0A" and laddr:sub(-5) == hex then return true end
      end
    end
  end
  return nil
end

function VM:wait_for_port(port, opts)
  check_arg(math.type(port) == "integer" and port > 0 and port < 65536, "vm:wait_for_port", self.name,
    "port must be an integer 1..65535")
  return poll_until(self, opts, "vm:wait_for_port", POLL_OPTS, function()
    return listening(self, port)
  end, "a TCP listener on port " .. port)
end

-- Syscalls ----------------------------------------------------------------------------------
function VM:syscall(name, ...)
  check_arg(type(name) == "string", "vm:syscall", self.name, "syscall name must be a string")
  local conn = self:_link("vm:syscall")
  local vm = rawget(self, "_vm") or self
  -- reboot/poweroff end the agent's connection with the guest (the sandbox agent is not
  -- even PID 1): they mean the VM's own reboot/stop, which wait for it to come back/stop
  if name == "reboot" then
    local cmd = ...
    if cmd == "restart" then vm:reboot(); return 0 end
    if cmd == "poweroff" or cmd == "halt" then vm:stop(); return 0 end
  end
  local args = table.pack(...)
  local a = { name = name }
  if args.n > 0 then
    local list = {}
    for i = 1, args.n do list[i] = args[i] end
    a.args = list
  end
  local r = conn:call("syscall", a, V.deadline(nil), "vm:syscall(" .. name .. ")")
  return r.ret
end

-- Files --------------------------------------------------------------------------------------
-- an agent error message that names the path (the agent usually does already)
function V.with_path(r, path)
  local m = (r.message and r.message ~= "") and r.message or (r.errname or "error")
  if m:find(path, 1, true) then return m end
  return path .. ": " .. m
end
local CHUNK = 256 * 1024

function VM:read_file(path, opts)
  check_arg(type(path) == "string", "vm:read_file", self.name, "path must be a string")
  opts = opts_check(opts, "vm:read_file", self.name, "timeout:secs")
  local conn = self:_link("vm:read_file")
  local id = conn:send("read_file", { path = path }, "vm:read_file")
  local parts = {}
  local r = conn:await(id, V.deadline(opts), "vm:read_file", "read_file")
  local data = conn.c:stream(id, "data")
  conn.c:forget(id)
  if not r.ok then
    r.message = V.with_path(r, path)
    V.agent_error(r, "vm:read_file", self.name)
  end
  parts[1] = data
  parts[2] = r.result.data or ""
  return table.concat(parts)
end

-- Sends a write_file request; chunks come from next_chunk() (nil at the end) when
-- `stream` is set, so a big file is never one frame. Returns the agent's reply.
local function send_file(self, conn, a, next_chunk, deadline, op)
  if not next_chunk then
    local id = conn:send("write_file", a, op)
    return conn:await(id, deadline, op, "write_file")
  end
  a.stream = true
  local id = conn:send("write_file", a, op)
  for chunk in next_chunk do
    conn.c:send_stream(id, "data", chunk)
    -- let the socket drain between chunks (an early error reply waits in the table)
    if conn.c:want_write() then
      conn:wait(function() return (not conn.c:want_write() or conn.c:closed() ~= nil or nil) end,
        deadline, "sending a file to vm " .. self.name)
    end
  end
  conn.c:send_eof(id, "data")
  return conn:await(id, deadline, op, "write_file")
end

local function write_opts(self, path, opts, op)
  check_arg(type(path) == "string", op, self.name, "path must be a string")
  opts = opts_check(opts, op, self.name, "append:bool mode:uint timeout:secs")
  return { path = path, append = opts.append or nil, mode = math.tointeger(opts.mode) }, opts
end

local function file_result(self, r, path, op)
  if not r.ok then
    r.message = V.with_path(r, path)
    V.agent_error(r, op, self.name)
  end
  return r.result.size
end

function VM:write_file(path, data, opts)
  local a
  a, opts = write_opts(self, path, opts, "vm:write_file")
  check_arg(type(data) == "string", "vm:write_file", self.name, "data must be a string, got " .. type(data))
  local conn = self:_link("vm:write_file")
  local chunks
  if #data <= CHUNK then
    a.data = data
  else
    local i = 1
    chunks = function()
      if i > #data then return nil end
      local c = data:sub(i, i + CHUNK - 1)
      i = i + CHUNK
      return c
    end
  end
  local r = send_file(self, conn, a, chunks, V.deadline(opts), "vm:write_file")
  return file_result(self, r, path, "vm:write_file")
end

local function simple(op, agent_op, argf, resf)
  return function(self, ...)
    local conn = self:_link(op)
    local a = argf(self, ...)
    local r = conn:call(agent_op, a, V.deadline(nil), op)
    if resf then return resf(r) end
  end
end

function VM:stat(path)
  check_arg(type(path) == "string", "vm:stat", self.name, "path must be a string")
  local conn = self:_link("vm:stat")
  local id = conn:send("stat", { path = path }, "vm:stat")
  local r = conn:await(id, V.deadline(nil), "vm:stat", "stat")
  if not r.ok then
    if r.errname == "ENOENT" or r.errname == "ENOTDIR" then return nil end
    V.agent_error(r, "vm:stat", self.name)
  end
  local s = r.result
  return { size = s.size, mode = s.mode, uid = s.uid, gid = s.gid, type = s.type,
    mtime = (s.mtime_ns or 0) / 1e9, mtime_ns = s.mtime_ns, ino = s.ino, nlink = s.nlink }
end

VM.exists = simple("vm:exists", "exists", function(self, path)
  check_arg(type(path) == "string", "vm:exists", self.name, "path must be a string")
  return { path = path }
end, function(r) return r.exists end)

VM.ls = simple("vm:ls", "ls", function(self, path)
  check_arg(type(path) == "string", "vm:ls", self.name, "path must be a string")
  return { path = path }
end, function(r) return r.names or {} end)

VM.mkdir = simple("vm:mkdir", "mkdir", function(self, path, opts)
  check_arg(type(path) == "string", "vm:mkdir", self.name, "path must be a string")
  opts = opts_check(opts, "vm:mkdir", self.name, "mode:uint parents:bool")
  return { path = path, parents = opts.parents or nil, mode = math.tointeger(opts.mode) }
end)

VM.rm = simple("vm:rm", "rm", function(self, path, opts)
  check_arg(type(path) == "string", "vm:rm", self.name, "path must be a string")
  opts = opts_check(opts, "vm:rm", self.name, "force:bool recursive:bool")
  return { path = path, recursive = opts.recursive or nil, force = opts.force or nil }
end)

-- vm:push(host_path, guest_path [, {mode=}]) -> size; the host file is read in chunks
function VM:push(host_path, guest_path, opts)
  check_arg(type(host_path) == "string" and type(guest_path) == "string", "vm:push", self.name,
    "push(host_path, guest_path) takes two strings")
  local a
  a, opts = write_opts(self, guest_path, opts, "vm:push")
  local f, err = io.open(host_path, "rb")
  if not f then perr({ code = "invalid", op = "vm:push", vm = self.name, message = "cannot read " .. tostring(err) }, 2) end
  local conn = self:_link("vm:push")
  local ok, r = pcall(send_file, self, conn, a, function() return f:read(CHUNK) end, V.deadline(opts), "vm:push")
  f:close()
  if not ok then error(r, 0) end
  return file_result(self, r, guest_path, "vm:push")
end

function VM:pull(guest_path, host_path, opts)
  check_arg(type(host_path) == "string" and type(guest_path) == "string", "vm:pull", self.name,
    "pull(guest_path, host_path) takes two strings")
  opts = opts_check(opts, "vm:pull", self.name, "timeout:secs")
  local conn = self:_link("vm:pull")
  local f, err = io.open(host_path, "wb")
  if not f then perr({ code = "invalid", op = "vm:pull", vm = self.name, message = "cannot write " .. tostring(err) }, 2) end
  -- write chunks to the host file as they arrive: the file is never held whole
  local id = conn:send("read_file", { path = guest_path }, "vm:pull")
  local size = 0
  local ok, r = pcall(conn.wait, conn, function()
    local d = conn.c:stream(id, "data")
    if d ~= "" then f:write(d); size = size + #d end
    return conn.c:reply(id)
  end, V.deadline(opts), "pulling " .. guest_path .. " from vm " .. self.name)
  local rest = conn.c:stream(id, "data")
  conn.c:forget(id)
  if ok and r and r.ok then
    f:write(rest)
    f:write(r.result.data or "")
    size = size + #rest + #(r.result.data or "")
  end
  f:close()
  if not ok then os.remove(host_path); error(r, 0) end
  if not r then os.remove(host_path); V.timeout_error("vm:pull", self.name, "pulling " .. guest_path) end
  if not r.ok then
    os.remove(host_path)
    r.message = V.with_path(r, guest_path)
    V.agent_error(r, "vm:pull", self.name)
  end
  return size
end

function VM:open(path, mode)
  check_arg(type(path) == "string", "vm:open", self.name, "path must be a string")
  mode = mode or "r"
  check_arg(type(mode) == "string" and mode:match("^[rwa]%+?b?$"), "vm:open", self.name,
    ("mode must be one of r w a r+ w+ a+, got %q"):format(tostring(mode)))
  local conn = self:_link("vm:open")
  local r = conn:call("open", { path = path, mode = mode:gsub("b", "") }, V.deadline(nil), "vm:open")
  return V.File._new(self, conn, r.fd, path)
end

function VM:tail_file(path, opts)
  check_arg(type(path) == "string", "vm:tail_file", self.name, "path must be a string")
  opts = opts_check(opts, "vm:tail_file", self.name, "from:start|end poll_ms:posint")
  local conn = self:_link("vm:tail_file")
  local a = { path = path, from = opts.from, poll_ms = math.tointeger(opts.poll_ms) }
  local _, id = conn:call("tail", a, V.deadline(nil), "vm:tail_file")
  return V.Stream._tail(self, conn, id, "tail " .. path)
end

function VM:fd_stream(fd, opts)
  check_arg(math.type(fd) == "integer", "vm:fd_stream", self.name, "fd must be an integer (from f:fd())")
  opts = opts_check(opts, "vm:fd_stream", self.name, "poll_ms:posint")
  local conn = self:_link("vm:fd_stream")
  local _, id = conn:call("tail_fd", { fd = fd, poll_ms = math.tointeger(opts.poll_ms) }, V.deadline(nil), "vm:fd_stream")
  return V.Stream._tail(self, conn, id, "fd " .. fd)
end

function VM:spawn(cmd, opts)
  opts = opts_check(opts, "vm:spawn", self.name, CMD_OPTS)
  local conn = self:_link("vm:spawn")
  local a = cmd_args(cmd, opts, "vm:spawn", self.name)
  local r, id = conn:call("spawn", a, V.deadline(nil), "vm:spawn")
  return V.Process._new(self, conn, id, r.pid, cmd)
end

-- Methods a Worker shares with its VM (worker.lua copies these).
V.shared_methods = { "run", "succeed", "fail", "spawn", "wait_until_succeeds", "wait_until_fails",
  "wait_for_file", "wait_for_port", "read_file", "write_file", "open", "stat", "exists", "ls",
  "mkdir", "rm", "push", "pull", "tail_file", "fd_stream", "syscall" }
