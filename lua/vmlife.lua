-- vmlife.lua — VM lifecycle on the sandbox backend (start, stop, kill, reboot, pause,
-- resume, crash, wait_ready, state, exit_reason, teardown), provium._vm_new for lab:vm,
-- the vm_spawn/vm_exit events, info/ip, and the methods the sandbox cannot do.
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V
local VM = V.VM
local VM_mt = V.VM_mt

local BOOT_TIMEOUT = 30 -- seconds from start to the agent's hello

local function emit(ev)
  if provium._emit then pcall(provium._emit, ev) end
end

-- The last lines of the console, for boot failure messages.
local function console_tail(vm, n)
  if not vm._sb then return "" end
  local ok, data = pcall(vm._sb.console_read, vm._sb, 0)
  if not ok or not data or data == "" then return "" end
  return data:sub(-(n or 1500))
end

-- Marks the VM gone (once) and emits vm_exit.
local function mark_exit(vm, state, reason, code)
  if vm._state == "stopped" or vm._state == "crashed" or vm._state == "created" then return end
  vm._state = state
  vm._exit = reason
  if vm._conn then vm._conn:close(); vm._conn = nil end
  for w in pairs(vm._workers or {}) do pcall(w.close, w) end
  emit({ ev = "vm_exit", vm = vm.name, reason = reason, code = code })
end

-- Polls PID 1 of the sandbox: an agent/init that exited by itself stops the VM.
local function refresh(vm)
  local st = vm._state
  if (st == "running" or st == "booting" or st == "paused") and vm._sb then
    local gone, how = vm._sb:exited()
    if gone then
      if how.signal then
        mark_exit(vm, "crashed", ("init killed by signal %d"):format(how.signal), nil)
      else
        mark_exit(vm, how.code == 0 and "stopped" or "crashed",
          how.code == 0 and "poweroff" or ("init exited with status " .. tostring(how.code)), how.code)
      end
    end
  end
end

function VM:state()
  refresh(self)
  return self._state
end

function VM:exit_reason()
  refresh(self)
  return self._exit
end

local function free_sandbox(vm)
  if vm._conn then vm._conn:close(); vm._conn = nil end
  if vm._sb then vm._sb:kill() end
end

-- Starts the sandbox and waits for the agent's hello.
local function boot(vm, opts)
  local p = vm._profile
  local t0 = S.now()
  vm._state = "booting"
  vm._exit = nil
  local ok, sb = pcall(provium._c_vm.sandbox_start, { name = vm.name, rootfs = p.rootfs, env = p.env,
    keepable = provium._config and provium._config.keep or nil })
  if not ok then
    vm._state = "crashed"
    vm._exit = "start failed"
    if provium._is_error(sb) then sb.op = "vm:start"; error(sb, 0) end
    error(sb, 0)
  end
  vm._sb = sb
  vm._conn = V.conn(sb:agent_fd(), vm.name)
  local deadline = S.now() + ((opts and opts.timeout) or BOOT_TIMEOUT)
  local ok2, ready = pcall(vm._conn.ready_wait, vm._conn, deadline)
  if not ok2 or not ready then
    local why = ok2 and ("the agent did not say hello within %.1f s"):format(S.now() - t0)
      or (provium._is_error(ready) and ready.message or tostring(ready))
    local code = (ok2 or not provium._is_error(ready)) and "timeout"
      or (ready.code == "protocol" and "protocol" or "infra")
    if code == "infra" then
      -- init is going down: give the console reader a moment to see its last words
      local until_t = S.now() + 0.5
      while S.now() < until_t and not select(3, sb:console_read(sb:console_pos())) do S.sleep(0.01) end
    end
    local con = console_tail(vm)
    free_sandbox(vm)
    vm._state = "crashed"
    vm._exit = "boot failed"
    perr({ code = code, op = "vm:start", vm = vm.name,
      message = why .. (con ~= "" and ("; console:\n" .. con) or "") }, 3)
  end
  vm._state = "running"
  if V.on_boot then V.on_boot(vm) end -- bridge.lua: plumb the VM's NICs
  vm._boot_ns = math.floor((S.now() - t0) * 1e9)
  vm._started_at = provium._c_vm.wall_ns() / 1e9
  emit({ ev = "vm_spawn", vm = vm.name, backend = vm.backend, profile = p.name,
    pid = sb:pid(), boot_ns = vm._boot_ns })
end

function VM:start(opts)
  opts = provium._opts(opts, "vm:start", self.name, "timeout:secs")
  local st = self:state()
  if st == "running" or st == "booting" or st == "paused" then
    perr({ code = "invalid", op = "vm:start", vm = self.name, message = "VM is already " .. st }, 2)
  end
  if self._sb then self._sb:free(); self._sb = nil end -- the previous run's sandbox
  boot(self, opts)
  -- every start is a fresh root on the sandbox (no fixture snapshot to restore), so the
  -- profile's setup runs after each boot
  if self._profile.setup then self._profile.setup(self) end
  return self
end

function VM:wait_ready(opts)
  opts = provium._opts(opts, "vm:wait_ready", self.name, "timeout:secs")
  local st = self:state()
  if st ~= "running" then
    perr({ code = "closed", op = "vm:wait_ready", vm = self.name, message = "VM is " .. st }, 2)
  end
  self._conn:call("ping", nil, V.deadline(opts), "vm:wait_ready")
  return true
end

-- Clean poweroff: the agent exits, /init follows; kill whatever is left after the timeout.
function VM:stop(opts)
  opts = provium._opts(opts, "vm:stop", self.name, "timeout:secs")
  local st = self:state()
  if st == "stopped" or st == "crashed" or st == "created" then return end
  if st == "paused" then self._sb:resume() end
  if self._conn then pcall(self._conn.call, self._conn, "poweroff", nil, S.now() + 2, "vm:stop") end
  local deadline = S.now() + (opts.timeout or 10)
  while not self._sb:exited() and S.now() < deadline do S.sleep(0.005, "waiting for vm " .. self.name .. " to power off") end
  local gone, how = self._sb:exited()
  if not gone then
    self._sb:kill()
    mark_exit(self, "stopped", "stop (killed after timeout)", nil)
  else
    mark_exit(self, "stopped", "stop", how.code)
  end
  free_sandbox(self)
end

function VM:kill()
  local st = self:state()
  if st == "stopped" or st == "crashed" or st == "created" then return end
  free_sandbox(self)
  mark_exit(self, "stopped", "killed", nil)
end

-- The sandbox has no disks: a crash is a hard kill.
function VM:crash()
  local st = self:state()
  if st == "stopped" or st == "crashed" or st == "created" then return end
  free_sandbox(self)
  mark_exit(self, "crashed", "crash", nil)
end

-- Restarts the sandbox: a fresh private root (like a VM rebooting from its initramfs).
function VM:reboot(opts)
  opts = provium._opts(opts, "vm:reboot", self.name, "timeout:secs")
  local st = self:state()
  if st == "running" or st == "paused" or st == "booting" then
    free_sandbox(self)
    mark_exit(self, "stopped", "reboot", nil)
  end
  return self:start(opts)
end

-- pause/resume serve both backends: vm._sb is a Sandbox or a KvmVM (kvm.lua), both
-- with pause/resume, and self:state() is the backend's.
function VM:pause()
  local st = self:state()
  if st ~= "running" then perr({ code = "invalid", op = "vm:pause", vm = self.name, message = "VM is " .. st }, 2) end
  self._sb:pause()
  self._state = "paused"
end

function VM:resume()
  local st = self:state()
  if st ~= "paused" then perr({ code = "invalid", op = "vm:resume", vm = self.name, message = "VM is " .. st .. ", not paused" }, 2) end
  self._sb:resume()
  self._state = "running"
end

-- Lab teardown: kill, reap, free. Idempotent, never raises.
function VM:_teardown()
  pcall(function()
    for w in pairs(self._workers or {}) do pcall(w.close, w) end
    local st = self:state()
    if self._conn then self._conn:close(); self._conn = nil end
    if self._sb then self._sb:free() end
    if st == "running" or st == "paused" or st == "booting" then
      mark_exit(self, "stopped", "teardown", nil)
    end
  end)
  self._state = self._state == "crashed" and "crashed" or "stopped"
end

-- --keep after a failed test (lab.lua): the sandbox outlives the worker, held by a keeper
-- process; says how to reach it. Returns true when kept (else the caller tears it down).
function VM:_keep()
  if self:state() ~= "running" and self:state() ~= "paused" then return false end
  if self.backend ~= "sandbox" then
    io.stderr:write("provium: --keep: VM ", self.name, " (", tostring(self.backend), ") is torn down: ",
      "this backend's VMs cannot outlive their worker\n")
    return false
  end
  local pid = self._sb:pid()
  local ok, keeper, listed = pcall(self._sb.keep, self._sb,
    type(provium._keep_vms) == "string" and provium._keep_vms or nil, provium._config and provium._config.tmp_dir)
  if not ok then
    io.stderr:write("provium: --keep: VM ", self.name, " cannot be kept: ", tostring(keeper), "\n")
    return false
  end
  for w in pairs(self._workers or {}) do pcall(w.close, w) end
  if self._conn then self._conn:close(); self._conn = nil end
  self._sb:free() -- lets go of it: the keeper holds it now
  self._sb = nil
  local how = listed and ("  a shell:   provium shell %s\n  console:   provium console %s\n" ..
    "  stop it:   provium kill %s   (`provium ps` lists what is kept)\n"):format(self.name, self.name, self.name) or ""
  io.stderr:write(("provium: --keep: VM %s (sandbox) is still running as pid %d after a failed test\n%s" ..
    "  enter it:  nsenter -t %d -a -r -w /bin/sh\n" ..
    "  stop it:   kill -KILL %d\n"):format(self.name, pid, how, pid, pid))
  mark_exit(self, "stopped", "kept", nil)
  self._kept_pid, self._keeper_pid = pid, keeper
  return true
end

-- Info ----------------------------------------------------------------------------------------
function VM:info()
  local p = self._profile
  return {
    name = self.name, backend = self.backend, profile = p.name, state = self:state(),
    pid = self._sb and self._sb:pid() or nil, memory = p.memory, cpus = p.cpus,
    kernel = nil, rootfs = self._sb and self._sb:rootfs() or p.rootfs,
    userns = self._sb and self._sb:userns() or nil,
    boot_time = self._boot_ns and self._boot_ns / 1e9 or nil, boot_ns = self._boot_ns,
    started_at = self._started_at,
  }
end

function VM:ip(bridge)
  for _, nic in ipairs(self._nics or {}) do
    if bridge == nil or nic.bridge == bridge or (nic.bridge and nic.bridge.name == bridge) then return nic.ip end
  end
  return nil
end

function VM:nics()
  local r = {}
  for i, n in ipairs(self._nics or {}) do r[i] = n end
  return r
end

function VM:nic(bridge)
  for _, nic in ipairs(self._nics or {}) do
    if nic.bridge == bridge or (nic.bridge and nic.bridge.name == bridge) then return nic end
  end
  perr({ code = "invalid", op = "vm:nic", vm = self.name, message = "VM has no NIC on bridge " .. tostring(bridge and (bridge.name or bridge)) }, 2)
end

-- What the sandbox cannot do ----------------------------------------------------------------
local function unsupported(op, what)
  return function(self)
    perr({ code = "unsupported", op = op, vm = self.name,
      message = ("the %s backend %s; use the kvm backend (a host whose /dev/kvm runs Linux guests)"):format(self.backend, what) }, 2)
  end
end
VM.attach_disk = unsupported("vm:attach_disk", "has no disks")
VM.disks = unsupported("vm:disks", "has no disks")
VM.disk = unsupported("vm:disk", "has no disks")
VM.snapshot = unsupported("vm:snapshot", "cannot snapshot a VM")

-- Streams, clock, worker -------------------------------------------------------------------------
function VM:console()
  return V.Console._new(self)
end

function VM:clock()
  return V.Clock._new(self)
end

function VM:worker()
  return V.Worker._new(self)
end

-- vm:shell(): an interactive shell in the guest on this terminal (docs/debugging.md):
-- /bin/sh on a pty the agent allocates, this terminal raw, resizes passed on, Ctrl-]
-- leaves. Over a connection of its own, so the VM's other users go on. Returns the
-- shell's exit status (0 when left with Ctrl-]); its time counts against no timeout.
function VM:shell()
  self:_link("vm:shell")
  local fd = self.backend == "sandbox" and self._sb:connect() or self:_connect_agent()
  return S.interactive(provium._c_shell, fd, self.name)
end

-- provium._vm_new(lab, name, profile, opts) -> VM (lab:vm, lab.lua) ----------------------------
function provium._vm_new(lab, name, profile, opts)
  opts = opts or {}
  local prof = V.profile_resolve(profile, opts, name)
  local backend = provium.backend()
  if prof.backend and prof.backend ~= "auto" then backend = prof.backend end
  if opts.backend and opts.backend ~= "auto" then backend = opts.backend end
  if backend == "kvm" then
    if provium._kvm_vm_new then return provium._kvm_vm_new(lab, name, prof, opts) end
    local ok, why = provium._c_vm.kvm_linux_ok()
    if ok then why = "the kvm backend is not built into this provium yet" end
    perr({ code = "infra", op = "lab:vm", vm = name,
      message = ("backend kvm was asked for but cannot run here: %s; use --backend sandbox or auto"):format(why) }, 3)
  elseif backend ~= "sandbox" then
    perr({ code = "invalid", op = "lab:vm", vm = name, message = ("unknown backend %q"):format(tostring(backend)) }, 3)
  end
  if prof.disks and #prof.disks > 0 then
    perr({ code = "unsupported", op = "lab:vm", vm = name,
      message = ("profile %s has disks: the sandbox backend has no disks; use the kvm backend"):format(prof.name) }, 3)
  end
  local vm = setmetatable({ name = name, backend = "sandbox", _lab = lab, _profile = prof,
    _state = "created", _workers = setmetatable({}, { __mode = "k" }) }, VM_mt)
  if opts.start ~= false then
    -- torn down on a start error, and when the test times out while it starts
    local undo <close> = S.undo(function() vm:_teardown() end)
    vm:start()
    undo.done = true
  end
  return vm
end
