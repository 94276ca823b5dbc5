-- kvm.lua — the kvm backend (docs/vm.md "The kvm backend"): provium._kvm_vm_new for
-- lab:vm, and the VM methods that differ from the sandbox: lifecycle (start, stop,
-- kill, reboot, crash, state, exit_reason, wait_ready, teardown; pause and resume are
-- vmlife.lua's, calling the KvmVM's pause/resume through vm._sb), the
-- agent over a vsock stream (connect to guest port 1024, retried until the guest
-- listens or the boot timeout passes), disks (attach_disk, disks, disk), the kvm
-- Clock (set through the agent, advance/sleep through the VMM) and info. Every other
-- VM method (run, files, spawn, syscalls, console, workers) is vm.lua's, shared with
-- the sandbox: only the transport differs. The C half is lua/kvm.c (provium._c_kvm).
-- A KvmVM userdata sits in vm._sb, offering the Sandbox's console/connect methods.
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V

-- kvm VMs are VM_mt objects (vm.lua, loaded later): their methods check for that
local K = provium._methods("VM", "vm", function(x) return getmetatable(x) == V.VM_mt end)
V.KVM = K
local AGENT_PORT = 1024
V.AGENT_PORT = AGENT_PORT
local BOOT_TIMEOUT = 60         -- seconds from start to the agent's hello (hardware KVM boots in < 1 s)
local DEFAULT_SLOTS = 2           -- empty disk slots a Linux VM gets for attach_disk while running
local DEFAULT_NIC_SLOTS = 2       -- link-down virtio-net slots a Linux VM gets for bridge:attach while running
local DEFAULT_CMDLINE = "console=ttyS0 console=hvc0 panic=-1 quiet" -- /dev/console = hvc0 (virtio, fast); early boot on ttyS0

local function emit(ev)
  if provium._emit then pcall(provium._emit, ev) end
end

-- kvm VMs share VM_mt with sandbox VMs (bridge.lua and others check it); their own
-- methods come first through vm._kvm. vm.lua loads after this file, so this is lazy.
local patched = false
local function patch_metatable()
  if patched then return end
  patched = true
  local mt = V.VM_mt
  local base = mt.__index
  mt.__index = function(t, k)
    local km = rawget(t, "_kvm")
    if km then
      local m = km[k]
      if m ~= nil then return m end
    end
    return base(t, k)
  end
end

local function console_tail(vm, n)
  if not vm._sb then return "" end
  local ok, data = pcall(vm._sb.console_read, vm._sb, 0)
  if not ok or not data then return "" end
  return data:sub(-(n or 2000))
end
V.kvm_console_tail = console_tail

local function panicked(vm)
  local t = console_tail(vm, 64 * 1024)
  return t:find("Kernel panic", 1, true) ~= nil
end

local function mark_exit(vm, state, reason, code)
  if vm._state == "stopped" or vm._state == "crashed" or vm._state == "created" then return end
  vm._state = state
  vm._exit = reason
  if vm._conn then vm._conn:close(); vm._conn = nil end
  for w in pairs(vm._workers or {}) do pcall(w.close, w) end
  -- where the exits went (docs/events.md), once the vCPUs have stopped
  local okx, exits = pcall(function() return vm._sb and vm._sb:exit_stats() end)
  emit({ ev = "vm_exit", vm = vm.name, reason = reason, code = code, exits = okx and exits or nil })
end

-- How the VMM's exit maps onto state and exit_reason.
local function exit_state(vm, ex)
  if panicked(vm) then return "crashed", "kernel panic", nil end
  local r = ex.reason
  if r == "triple-fault" or r == "triple_fault" or r:find("triple") then return "crashed", "triple fault", nil end
  if r == "error" then return "crashed", "vmm error: " .. (ex.detail or ""), nil end
  if r == "port" or r:find("port") then
    return ex.code == 0 and "stopped" or "crashed", "exit code " .. tostring(ex.code), ex.code
  end
  if r == "reset" then return "stopped", "reboot", nil end
  if r == "halt" then return "stopped", "poweroff", nil end
  return "stopped", r, nil
end

local function refresh(vm)
  local st = vm._state
  if (st == "running" or st == "booting" or st == "paused") and vm._sb then
    local ex = vm._sb:poll()
    if ex then
      local s, why, code = exit_state(vm, ex)
      mark_exit(vm, s, why, code)
    end
  end
end

function K:state() refresh(self); return self._state end
function K:exit_reason() refresh(self); return self._exit end

function K:_link(op)
  local st = self:state()
  if st ~= "running" then
    perr({ code = "closed", op = op, vm = self.name,
      message = ("VM is %s%s"):format(st, self._exit and (" (" .. self._exit .. ")") or "") }, 4)
  end
  if not self._conn then
    perr({ code = "unsupported", op = op, vm = self.name,
      message = "this VM runs no agent (its profile says agent=false)" }, 4)
  end
  return self._conn, self
end

function K:_connect_agent()
  return self._sb:connect(AGENT_PORT)
end

-- Connects to the agent, retrying while the guest does not listen yet; watches for
-- the guest dying (exit, panic) meanwhile. `first` ({op, args, apiop}, optional) is
-- a call sent on each try right behind the host's hello, so the agent answers it
-- straight after its own: one round trip less than calling it after the hello (a
-- restore's sethostname); its args may be a function, called for each try (a boot's
-- clock_set sends the time of that try). Returns the connection, and first's result
-- when given.
local function wait_agent(vm, deadline, t0, first)
  local last
  while true do
    refresh(vm)
    if vm._state ~= "booting" then
      local con = console_tail(vm)
      local why = vm._exit or vm._state
      vm._state, vm._exit = "crashed", why
      perr({ code = "infra", op = "vm:start", vm = vm.name,
        message = ("the guest died while booting (%s)%s"):format(why, con ~= "" and ("; console:\n" .. con) or "") }, 4)
    end
    if panicked(vm) then
      pcall(vm._sb.halt, vm._sb)
      vm._state, vm._exit = "crashed", "kernel panic"
      perr({ code = "infra", op = "vm:start", vm = vm.name,
        message = "kernel panic while booting; console:\n" .. console_tail(vm) }, 4)
    end
    if S.now() >= deadline then
      local con = console_tail(vm)
      perr({ code = "timeout", op = "vm:start", vm = vm.name,
        message = ("the agent did not say hello on vsock port %d within %.1f s%s%s"):format(AGENT_PORT, S.now() - t0,
          last and ("; last: " .. tostring(last)) or "", con ~= "" and ("; console:\n" .. con) or "") }, 4)
    end
    local ok, fd = pcall(vm._sb.connect, vm._sb, AGENT_PORT, true)
    -- after a restore, until the guest took the transport reset, the VMM refuses a
    -- connect at once (the guest sees nothing): retry soon, it is cheap. Other tries
    -- reach the guest, which must answer each: those wait longer.
    local soon = ok and fd == nil
    if soon then
      last = "the guest has not taken the transport reset yet (after a restore)"
    elseif ok then
      local conn = V.conn(fd, vm.name)
      local fid, ok2, ready = nil, true, nil
      -- a refused stream (the guest does not listen yet) may already be closed
      if first then
        local args = first[2]
        if type(args) == "function" then args = args() end
        ok2, fid = pcall(conn.send, conn, first[1], args, first[3])
      end
      if ok2 then ok2, ready = pcall(conn.ready_wait, conn, math.min(deadline, S.now() + 0.25))
      else ready = fid end
      if ok2 and ready then
        if not fid then return conn end
        local okr, r = pcall(conn.await, conn, fid, deadline, first[3], first[1])
        if not okr then conn:close(); error(r, 0) end
        if not r.ok then conn:close(); V.agent_error(r, first[3], vm.name) end
        return conn, r.result
      end
      last = ok2 and "no hello yet" or (provium._is_error(ready) and ready.message or tostring(ready))
      conn:close()
    else
      last = provium._is_error(fd) and fd.message or tostring(fd)
    end
    S.sleep(soon and 0.005 or 0.05, "waiting for the agent of vm " .. vm.name .. " to listen")
  end
end

V.kvm_wait_agent = wait_agent

-- How long a boot (or restore) waits for the agent: opts.timeout, else the profile's
-- boot_timeout, else as long as the test may run (API.md: default timeouts come from
-- the test's), a second less so that the boot's own error, with the console, is the
-- one reported; outside a test BOOT_TIMEOUT. A slow host (an emulated KVM host boots
-- in tens of seconds) needs only a longer test timeout.
function V.boot_deadline(p, opts)
  local now = S.now()
  if opts and opts.timeout then return now + opts.timeout end
  if p and p.boot_timeout then return now + p.boot_timeout end
  local d = S.deadline(nil)
  if d then return math.max(now + 1, d - 1) end
  return now + BOOT_TIMEOUT
end

-- A restored or pooled VM wakes up with the host name of the VM it was saved from:
-- the agent gives it this VM's name.
function V.kvm_set_hostname(vm, deadline)
  if vm._conn then
    vm._conn:call("sethostname", { name = vm.name }, deadline or (S.now() + 10), "lab:vm")
  end
end

local function boot(vm, opts)
  local p = vm._profile
  local t0 = S.now()
  vm._exit = nil
  -- /init sets the guest's hostname to the VM's name (names are [%w_.-]+: one word)
  local extra = "provium.hostname=" .. vm.name
  local net = V.kvm_net_cmdline and V.kvm_net_cmdline(vm)
  if net then extra = extra .. " " .. net end
  vm._sb:start(extra)
  vm._state = "booting"
  -- bridge attachments: bind each NIC's slot to its relay (bridge.lua)
  if vm._nics and #vm._nics > 0 and V.on_boot then
    local ok, err = pcall(V.on_boot, vm)
    if not ok then pcall(vm._sb.halt, vm._sb); vm._state, vm._exit = "crashed", "network setup failed"; error(err, 0) end
  end
  if p.agent ~= false then
    -- The agent sets the host's wall clock first thing. arm64's kernel has no
    -- kvmclock and no RTC and boots in 1970; x86's reads kvmclock's wall clock at
    -- the start of boot but falls behind until its clocksource switches to
    -- kvm-clock (0.2 s in the simulated host, over 1 s when that host is loaded).
    local first = { "clock_set", function() return { ns = provium._c_vm.wall_ns() } end, "vm:start" }
    local ok, conn = pcall(wait_agent, vm, V.boot_deadline(p, opts), t0, first)
    if not ok then
      pcall(vm._sb.halt, vm._sb)
      if vm._state == "booting" then vm._state, vm._exit = "crashed", "boot failed" end
      error(conn, 0)
    end
    vm._conn = conn
  end
  vm._state = "running"
  vm._boot_ns = math.floor((S.now() - t0) * 1e9)
  vm._started_at = provium._c_vm.wall_ns() / 1e9
  emit({ ev = "vm_spawn", vm = vm.name, backend = "kvm", profile = p.name, cid = vm._sb:info().cid,
    pid = vm._sb:pid(), boot_ns = vm._boot_ns, from_snapshot = vm._from_snapshot })
end

function K:start(opts)
  opts = provium._opts(opts, "vm:start", self.name, "timeout:secs")
  local st = self:state()
  if st == "running" or st == "booting" or st == "paused" then
    perr({ code = "invalid", op = "vm:start", vm = self.name, message = "VM is already " .. st }, 2)
  end
  boot(self, opts)
  -- a fresh boot (not a restore) runs the profile's setup, as on the sandbox
  if self._profile.setup then self._profile.setup(self) end
  return self
end

function K:wait_ready(opts)
  opts = provium._opts(opts, "vm:wait_ready", self.name, "timeout:secs")
  local conn = self:_link("vm:wait_ready")
  conn:call("ping", nil, V.deadline(opts), "vm:wait_ready")
  return true
end

-- waits (on the scheduler) until the VMM says the guest exited, or the deadline
local function wait_exit(vm, deadline)
  while true do
    local ex = vm._sb:poll()
    if ex then return ex end
    if S.now() >= deadline then return nil end
    S.sleep(0.01, "waiting for vm " .. vm.name .. " to power off")
  end
end

-- Clean poweroff through the agent (the guest syncs and powers off), then wait.
function K:stop(opts)
  opts = provium._opts(opts, "vm:stop", self.name, "timeout:secs")
  local st = self:state()
  if st == "stopped" or st == "crashed" or st == "created" then return end
  if st == "paused" then self._sb:resume(); self._state = "running" end
  if self._conn then pcall(self._conn.call, self._conn, "poweroff", nil, S.now() + 2, "vm:stop") end
  local ex = wait_exit(self, S.now() + (opts.timeout or 10))
  if not ex then
    self._sb:halt()
    mark_exit(self, "stopped", "stop (killed after timeout)", nil)
  else
    local s, why, code = exit_state(self, ex)
    mark_exit(self, s == "crashed" and s or "stopped", why == "poweroff" and "stop" or why, code)
  end
end

function K:kill()
  local st = self:state()
  if st == "stopped" or st == "crashed" or st == "created" then return end
  self._sb:halt()
  mark_exit(self, "stopped", "killed", nil)
end

-- Power loss: stop the vCPUs, then every disk drops what the guest had not flushed.
function K:crash()
  local st = self:state()
  if st == "created" then return 0 end
  -- a guest that already stopped by itself still has its disks' volatile caches
  -- until the VM is destroyed: power loss drops them too
  self._sb:halt()
  local lost = self._sb:power_loss()
  mark_exit(self, "crashed", "crash", nil)
  return lost
end

function K:reboot(opts)
  opts = provium._opts(opts, "vm:reboot", self.name, "timeout:secs")
  local st = self:state()
  if st == "running" or st == "paused" then
    if st == "paused" then self._sb:resume() end
    if self._conn then pcall(self._conn.call, self._conn, "reboot", nil, S.now() + 2, "vm:reboot") end
    if not wait_exit(self, S.now() + 10) then self._sb:halt() end
    mark_exit(self, "stopped", "reboot", nil)
  elseif st == "booting" then
    self._sb:halt()
    mark_exit(self, "stopped", "reboot", nil)
  end
  return self:start(opts)
end

function K:_teardown()
  pcall(function()
    for w in pairs(self._workers or {}) do pcall(w.close, w) end
    local st = self:state()
    if self._conn then self._conn:close(); self._conn = nil end
    if self._sb then self._sb:halt() end
    if st == "running" or st == "paused" or st == "booting" then
      mark_exit(self, "stopped", "teardown", nil)
    end
    if self._sb then self._sb:destroy() end
  end)
  self._state = self._state == "crashed" and "crashed" or "stopped"
end

-- --keep after a failed test (lab.lua): the VM stays up in this worker, which holds it
-- once the file's results are sent (lua/kvm_keep.c; testlib.lua calls V.kvm_hold).
-- Says how to reach it. Returns true when kept (else the caller tears it down).
function K:_keep()
  local st = self:state()
  if st ~= "running" and st ~= "paused" then return false end
  if st == "paused" then pcall(self._sb.resume, self._sb) end -- a shell needs it running
  local netns = self._nics and #self._nics > 0 and os.getenv("PROVIUM_NETNS") or ""
  local ok, err = pcall(provium._c_kvm_keep.keep, self._sb,
    type(provium._keep_vms) == "string" and provium._keep_vms or nil, provium._config and provium._config.tmp_dir, netns)
  if not ok then
    io.stderr:write("provium: --keep: VM ", self.name, " cannot be kept: ",
      provium._is_error(err) and err.message or tostring(err), "\n")
    return false
  end
  for w in pairs(self._workers or {}) do pcall(w.close, w) end
  if self._conn then self._conn:close(); self._conn = nil end
  V.kvm_kept = V.kvm_kept or {}
  V.kvm_kept[#V.kvm_kept + 1] = self._sb -- referenced until the holder ends
  self._kept = true
  io.stderr:write(("provium: --keep: VM %s (kvm) is still running, held by pid %d, after a failed test\n" ..
    "  a shell:   provium shell %s\n  console:   provium console %s\n" ..
    "  stop it:   provium kill %s   (`provium ps` lists what is kept)\n"):format(self.name,
    self._sb:pid(), self.name, self.name, self.name))
  mark_exit(self, "stopped", "kept", nil)
  return true
end

-- After the file's last event: hold the kept kvm VMs (never returns) when there are any.
function V.kvm_hold()
  if V.kvm_kept and #V.kvm_kept > 0 then provium._c_kvm_keep.hold() end
end

function K:info()
  local p = self._profile
  local i = self._sb and self._sb:info() or {}
  i.name, i.backend, i.profile, i.state = self.name, "kvm", p.name, self:state()
  i.boot_time = self._boot_ns and self._boot_ns / 1e9 or nil
  i.boot_ns = self._boot_ns
  i.started_at = self._started_at
  i.disks = self._sb and #self:disks() or 0
  i.from_snapshot = self._from_snapshot -- restored from this snapshot (a fixture key for fixture VMs)
  i.pool = self._from_pool or false     -- handed out ready from the profile's pool (snapshot.lua)
  return i
end

-- Disks ---------------------------------------------------------------------------------
-- vm:attach_disk{path=|size=, readonly=, serial=} -> Disk; before start only (see docs/disk.md)
function K:attach_disk(spec)
  V.check_arg(type(spec) == "table", "vm:attach_disk", self.name, "spec must be a table {path=} or {size=}")
  provium._opts(spec, "vm:attach_disk", self.name, "path:string readonly:bool serial:any size:posint", "spec")
  V.check_arg(spec.path or spec.size, "vm:attach_disk", self.name, "spec needs path= or size=")
  local path = spec.path
  if not path then
    self._ndisk_files = (self._ndisk_files or 0) + 1
    path = ("%s/%s-disk%d.img"):format(provium.tmpdir(), self.name, self._ndisk_files)
    os.remove(path)
  end
  local slot = self._sb:add_disk({ path = path, size = spec.size, readonly = spec.readonly and true or false,
    serial = spec.serial and tostring(spec.serial) or nil })
  local d = provium._c_disk.new(self._sb, slot)
  self._disks[slot] = d
  return d
end

-- the disks in guest order (vda, vdb...), without empty slots
function K:disks()
  local r = {}
  for _, s in ipairs(self._sb:slots()) do
    if not s.empty then
      self._disks[s.slot] = self._disks[s.slot] or provium._c_disk.new(self._sb, s.slot)
      r[#r + 1] = self._disks[s.slot]
    end
  end
  return r
end

function K:disk(key)
  local all = self:disks()
  if math.type(key) == "integer" then
    if all[key] then return all[key] end
  elseif type(key) == "string" then
    for _, d in ipairs(all) do
      if d.name == key or d.path == key then return d end
    end
  end
  perr({ code = "invalid", op = "vm:disk", vm = self.name, message = ("VM has no disk %s (it has %d)"):format(tostring(key), #all) }, 2)
end

-- Clock ---------------------------------------------------------------------------------
local KvmClock, KC_mt = provium._class("Clock", "clock")
-- reading the clocks is the same as on the sandbox (clock.lua)
for _, k in ipairs({ "now_ns", "now", "monotonic", "offset" }) do KvmClock[k] = provium._raw(V.Clock, k) end
KC_mt.__tostring = function(c) return ("Clock(%s)"):format(c._vmname) end

function K:clock()
  return setmetatable({ _vm = self, _vmname = self.name }, KC_mt)
end

function KvmClock:set_ns(ns)
  provium._arg(ns, "uint", "clock:set_ns", self._vmname, "ns")
  local conn = self._vm:_link("clock:set_ns")
  conn:call("clock_set", { ns = math.tointeger(ns) }, V.deadline(nil), "clock:set_ns")
end

function KvmClock:set(s)
  provium._arg(s, "nonneg", "clock:set", self._vmname, "seconds")
  return self:set_ns(math.floor(s * 1e9))
end

-- advance: wall and monotonic clocks and pending timers jump forward (vm_clock_advance)
function KvmClock:advance(s)
  provium._arg(s, "nonneg", "clock:advance", self._vmname, "seconds")
  local vm = self._vm
  local st = vm:state()
  if st ~= "running" and st ~= "paused" then
    perr({ code = "closed", op = "clock:advance", vm = vm.name, message = "VM is " .. st }, 2)
  end
  vm._sb:clock_advance(math.floor(s * 1e9))
end

-- sleep: returns once the guest's kvmclock moved by s (advances count)
function KvmClock:sleep(s, opts)
  provium._arg(s, "nonneg", "clock:sleep", self._vmname, "seconds")
  opts = provium._opts(opts, "clock:sleep", self._vmname, "timeout:secs")
  local vm = self._vm
  local start = vm._sb:clock_get()
  local want = start + math.floor(s * 1e9)
  local deadline = V.deadline(opts)
  while vm._sb:clock_get() < want do
    if deadline and S.now() > deadline then
      perr({ code = "timeout", op = "clock:sleep", vm = vm.name, message = ("guest time did not pass %.3f s"):format(s) }, 2)
    end
    S.sleep(math.min(0.01, s), "waiting for guest time on vm " .. vm.name)
  end
end

-- guest kvmclock in ns (the VMM's view, no agent needed)
function KvmClock:kvmclock_ns()
  return self._vm._sb:clock_get()
end

-- Creation ------------------------------------------------------------------------------
-- The kernel, initrd and command line a profile boots.
function V.kvm_boot_files(prof, name)
  local kernel, initrd = prof.kernel, prof.initrd
  if not kernel then
    local k, i = provium._c_kvm.kernel_paths()
    if not k then
      perr({ code = "infra", op = "lab:vm", vm = name, message = "no guest kernel: " .. tostring(i) }, 4)
    end
    kernel, initrd = k, initrd or i
  end
  local cmdline = prof.cmdline or DEFAULT_CMDLINE
  if prof.env and prof.agent ~= false then
    -- the kernel hands unknown KEY=VALUE words to /init as its environment, so the
    -- agent and every command inherit them (values may not contain '"')
    local words = {}
    for k, v in pairs(prof.env) do
      k, v = tostring(k), tostring(v)
      if not k:match("^[%a_][%w_]*$") or v:find('"', 1, true) then
        perr({ code = "invalid", op = "lab:vm", vm = name, message = ("env %s: names must be identifiers and values must not contain '\"' on the kvm backend"):format(k) }, 4)
      end
      words[#words + 1] = v:find("%s") and ('%s="%s"'):format(k, v) or (k .. "=" .. v)
    end
    table.sort(words)
    if #words > 0 then cmdline = cmdline .. " " .. table.concat(words, " ") end
  end
  return kernel, initrd, cmdline
end

function V.kvm_wrap(lab, name, prof, sb)
  patch_metatable()
  return setmetatable({ name = name, backend = "kvm", _lab = lab, _profile = prof, _kvm = K, _sb = sb,
    _state = "created", _disks = {}, _workers = setmetatable({}, { __mode = "k" }) }, V.VM_mt)
end

function provium._kvm_vm_new(lab, name, prof, opts)
  opts = opts or {}
  local agent = prof.agent ~= false
  if prof._snapshot then agent = prof._agent ~= false end
  if agent and not prof.kernel then
    -- the default Linux guest with the agent: only where provium doctor says Linux
    -- guests run (a kernel the profile names is booted as asked; if it cannot reach
    -- the agent, vm:start says so with the console)
    local ok, why = provium._c_vm.kvm_linux_ok()
    if not ok then
      perr({ code = "infra", op = "lab:vm", vm = name,
        message = ("backend kvm cannot run Linux guests here: %s; use --backend sandbox or auto"):format(why) }, 3)
    end
  end
  if prof._snapshot then return V.kvm_restore_vm(lab, name, prof._snapshot, prof, opts) end
  local kernel, initrd, cmdline = V.kvm_boot_files(prof, name)
  local function create()
    local sb = provium._c_kvm.new({ name = name, kernel = kernel, initrd = initrd, cmdline = cmdline,
      memory = prof.memory and math.floor(prof.memory) or 256, cpus = prof.cpus and math.floor(prof.cpus) or 1,
      disk_slots = prof.disk_slots or (agent and DEFAULT_SLOTS or 0),
      nic_slots = prof.nic_slots or (agent and DEFAULT_NIC_SLOTS or 0), work_dir = provium.tmpdir() })
    local vm = V.kvm_wrap(lab, name, prof, sb)
    local undo <close> = S.undo(function() vm:_teardown() end)
    for _, spec in ipairs(prof.disks or {}) do vm:attach_disk(spec) end
    undo.done = true
    return vm
  end
  -- a profile with setup: its first VM is a fixture build, later ones restore it
  if prof.setup and opts.start ~= false and V.fixture_vm then
    return V.fixture_vm(lab, name, prof, opts, kernel, initrd, cmdline, create)
  end
  local vm = create()
  if opts.start ~= false then
    -- torn down on a boot error, and when the test times out while it boots
    local undo <close> = S.undo(function() vm:_teardown() end)
    vm:start()
    undo.done = true
  end
  return vm
end
