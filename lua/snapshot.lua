-- snapshot.lua — Snapshot and LabSnapshot (API.md; docs/snapshot.md) on the kvm
-- backend, and fixture builds (docs/profiles.md): vm:snapshot([name]),
-- snapshot:restore([lab [, name]]), lab:vm(name, snapshot), lab:snapshot(name),
-- lab:restore(labsnap), provium.snapshots(), provium.snapshot(name), s:delete(),
-- s:info(). Snapshots live in the cache: $PROVIUM_CACHE_DIR/snapshots/<name>/ (a VM
-- snapshot: vm.state + memory + disk images from vmm/, plus provium.json with what Lua
-- needs to restore it; a lab snapshot: lab.json and one VM snapshot per VM).
local provium = provium
local S = provium._sched
local perr = provium._error
local cfg = provium._config
local C = provium._c_snap
local V = provium._vm or {}
provium._vm = V

local META = "provium.json"
local LAB_META = "lab.json"

local function emit(ev)
  if provium._emit then pcall(provium._emit, ev) end
end

function V.snap_root()
  local base = cfg.cache_dir
  if not base or base == "" then
    local d, err = C.cache_dir()
    if not d then perr({ code = "infra", op = "snapshot", message = "no cache directory: " .. tostring(err) }, 3) end
    base = d
  end
  return base .. "/snapshots"
end

local function read_json(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local ok, v = pcall(json.decode, s)
  return ok and v or nil
end

local function write_json(path, v)
  local f, err = io.open(path, "wb")
  if not f then perr({ code = "infra", op = "snapshot", message = "cannot write " .. tostring(err) }, 3) end
  f:write(json.encode(v, { sort_keys = true }))
  f:close()
end

local function check_name(name, op)
  if type(name) ~= "string" or not name:match("^[%w_.-]+$") or name:match("%.tmp%-") then
    perr({ code = "invalid", op = op, message = ("snapshot name must be letters, digits, '_', '.', '-', got %q"):format(tostring(name)) }, 3)
  end
end

-- Snapshot ----------------------------------------------------------------------------
local SNAP_NIL = { vm = true, profile = true, created = true }
local Snapshot, Snap_mt = provium._class("Snapshot", "snapshot", { nil_fields = SNAP_NIL })
Snap_mt.__tostring = function(s) return ("Snapshot(%s, vm %s)"):format(s.name, tostring(s.vm)) end
V.Snapshot_mt = Snap_mt

-- a Snapshot object for directory `dir` (nil when it holds none)
local function snap_from_dir(name, dir)
  local meta = read_json(dir .. "/" .. META) or {}
  local ok, info = pcall(provium._c_kvm.snapshot_info, dir)
  if not ok then return nil end
  -- backend/_snapshot make lab:vm(name, snapshot) reach the kvm restore path
  return setmetatable({ name = name, path = dir, size = C.du(dir), created = meta.created or info.created,
    vm = meta.vm or info.vm, profile = meta.profile, backend = "kvm", _snapshot = dir,
    _agent = meta.agent ~= false, _info = info }, Snap_mt)
end
V.snap_from_dir = snap_from_dir

function Snapshot:info()
  local i = {}
  for k, v in pairs(self._info or {}) do i[k] = v end
  i.name, i.path, i.size, i.created, i.vm, i.profile = self.name, self.path, self.size, self.created, self.vm, self.profile
  return i
end

function Snapshot:delete()
  C.rm_tree(self.path)
end

-- a free VM name in lab, starting from `base`
local function free_name(lab, base)
  local function taken(n)
    local ok, v = pcall(lab.get, lab, n)
    return ok and v ~= nil
  end
  if not taken(base) then return base end
  for i = 2, 1000 do
    local n = ("%s-%d"):format(base, i)
    if not taken(n) then return n end
  end
  return base
end

function Snapshot:restore(lab, name)
  lab = lab or provium
  return lab:vm(name or free_name(lab, self.vm or "vm"), self)
end

-- Restoring (called by kvm.lua's provium._kvm_vm_new for a snapshot "profile") ---------
-- restore_raw: the VM running and ready, without its vm_spawn event (a pooled VM gets
-- its event when lab:vm hands it out)
local function restore_raw(lab, name, dir, prof, opts)
  local t0 = S.now()
  local meta = read_json(dir .. "/" .. META) or {}
  local sb = provium._c_kvm.restore(dir, name, provium.tmpdir())
  local p = {}
  for k, v in pairs(prof or {}) do p[k] = v end
  p.name = meta.profile or p.name
  if meta.agent == false then p.agent = false end
  p._snapshot = nil
  local vm = V.kvm_wrap(lab, name, p, sb)
  vm._from_snapshot = dir:match("([^/]+)$")
  vm._fixture_restored = true
  vm:disks() -- Disk objects for the restored disks (empty slots stay slots)
  vm._state = "booting"
  -- torn down on an error, and when the test times out while it restores
  local undo <close> = S.undo(function() vm:_teardown() end)
  if p.agent ~= false then
    local deadline = V.boot_deadline(p, nil)
    -- the spare agent connection the snapshot carried (save_vm): handshaken already,
    -- so the new name is the first call on it
    local fd = sb:adopted()
    if fd then
      local conn = V.conn(fd, vm.name, true)
      local ok = pcall(conn.call, conn, "sethostname", { name = vm.name }, math.min(deadline, S.now() + 10), "lab:vm")
      if ok then vm._conn = conn else conn:close() end
    end
    -- else connect; the guest's hostname is the snapshotted VM's: the new name goes
    -- with the connect
    if not vm._conn then
      vm._conn = V.kvm_wait_agent(vm, deadline, t0, { "sethostname", { name = vm.name }, "lab:vm" })
    end
  end
  undo.done = true
  vm._state = "running"
  vm._boot_ns = math.floor((S.now() - t0) * 1e9)
  vm._started_at = provium._c_vm.wall_ns() / 1e9
  return vm
end

local function emit_spawn(vm)
  emit({ ev = "vm_spawn", vm = vm.name, backend = "kvm", profile = vm._profile.name, cid = vm._sb:info().cid,
    pid = vm._sb:pid(), boot_ns = vm._boot_ns, from_snapshot = vm._from_snapshot })
end

function V.kvm_restore_vm(lab, name, dir, prof, opts)
  local vm = restore_raw(lab, name, dir, prof, opts)
  emit_spawn(vm)
  return vm
end

-- Saving --------------------------------------------------------------------------------
-- A spare agent connection for the snapshot to carry (docs/snapshot.md): opened and
-- handshaken while the VM runs and marked to carry, so that a restore adopts it
-- ready rather than connecting and handshaking again. Best effort: nil when the
-- agent does not answer soon (a restore then connects as before). The caller closes
-- it after the snapshot (the guest's end is reset; the snapshot keeps its copy).
local function open_spare(vm)
  if vm._profile.agent == false or not vm._conn or vm:state() ~= "running" then return nil end
  local ok, fd, hp = pcall(vm._sb.connect, vm._sb, V.AGENT_PORT)
  if not ok or not fd then return nil end
  local conn = V.conn(fd, vm.name)
  local ok2, ready = pcall(conn.ready_wait, conn, S.now() + 5)
  if ok2 and ready and vm._sb:carry(hp, V.AGENT_PORT) then return conn end
  conn:close()
  return nil
end

-- writes vm's snapshot into dir (must not exist); `paused` = the caller paused it
-- (and opened the spare, when given, before)
local function save_vm(vm, dir, paused, spare)
  local st = vm:state()
  if st == "created" then
    perr({ code = "invalid", op = "vm:snapshot", vm = vm.name, message = "the VM has not started" }, 4)
  end
  if not paused then spare = open_spare(vm) end
  local ok, err = pcall(vm._sb.snapshot, vm._sb, dir, paused)
  if spare then spare:close() end
  if not ok then error(err, 0) end
  write_json(dir .. "/" .. META, { kind = "vm", vm = vm.name, profile = vm._profile.name,
    agent = vm._profile.agent ~= false, created = provium._c_vm.wall_ns() / 1e9 })
end

local function unique_tmp(final)
  return ("%s.tmp-%d-%d"):format(final, math.floor(provium._c_vm.mono_ns() % 1e9), math.random(1, 1e6))
end

-- vm:snapshot([name]) -> Snapshot (kvm; the sandbox raises unsupported in vmlife.lua)
function V.KVM.snapshot(vm, name)
  name = name or ("%s-%d"):format(vm.name, math.floor(provium._c_vm.wall_ns() / 1e6))
  check_name(name, "vm:snapshot")
  local root = V.snap_root()
  C.mkdir_p(root)
  local final = root .. "/" .. name
  local tmp = unique_tmp(final)
  local ok, err = pcall(save_vm, vm, tmp, false)
  if not ok then pcall(C.rm_tree, tmp); error(err, 0) end
  C.rename(tmp, final)
  return snap_from_dir(name, final)
end

-- LabSnapshot ----------------------------------------------------------------------------
local rewire -- below, with lab:snapshot
local LabSnapshot, LS_mt = provium._class("LabSnapshot", "labsnapshot", { nil_fields = SNAP_NIL })
LS_mt.__tostring = function(s) return ("LabSnapshot(%s, %d vms)"):format(s.name, #s._vms) end

local function labsnap_from_dir(name, dir)
  local meta = read_json(dir .. "/" .. LAB_META)
  if not meta or meta.kind ~= "lab" then return nil end
  return setmetatable({ name = name, path = dir, size = C.du(dir), created = meta.created, vm = nil,
    profile = nil, _vms = meta.vms or {}, _bridges = meta.bridges or {} }, LS_mt)
end

function LabSnapshot:vms()
  local r = {}
  for i, v in ipairs(self._vms) do r[i] = v end
  return r
end

function LabSnapshot:info()
  local bridges = {}
  for i, b in ipairs(self._bridges) do bridges[i] = b end
  return { name = self.name, path = self.path, size = self.size, created = self.created, vms = self:vms(),
    bridges = bridges }
end

function LabSnapshot:delete() C.rm_tree(self.path) end

function LabSnapshot:restore(lab)
  lab = lab or provium
  local out, by_name = {}, {}
  for i, n in ipairs(self._vms) do
    local s = snap_from_dir(n, self.path .. "/" .. n)
    if not s then perr({ code = "invalid", op = "labsnapshot:restore", vm = n, message = "no VM snapshot for " .. n .. " in " .. self.path }, 2) end
    out[i] = lab:vm(free_name(lab, n), s)
    by_name[n] = out[i]
  end
  rewire(lab, self._bridges, by_name)
  return out
end

-- The lab's bridges and which of `vms` is on which, with what (lab.json "bridges"):
-- {name=, subnet=, nat=, nics={{vm=, ip=, mac=, ifname=, slot=, link=}...}}.
local function wiring(lab, vms)
  local mine = {}
  for _, vm in ipairs(vms) do mine[vm] = true end
  local r = {}
  for _, b in ipairs(lab._bridges or {}) do
    local nics = {}
    for _, n in ipairs(b._nics) do
      if mine[n.vm] then
        nics[#nics + 1] = { vm = n.vm.name, ip = n.ip, mac = n.mac, ifname = n.ifname, slot = n._slot,
          link = n._up and "up" or "down" }
      end
    end
    r[#r + 1] = { name = b.name, subnet = b.subnet, nat = b._nat ~= nil, nics = json.array(nics) }
  end
  return r
end

-- lab:restore: re-creates the saved bridges (a name the lab already has gets
-- "-2"...) and re-attaches each restored VM to its saved slot with its ip; the MAC
-- comes back with the device. The guest's address is in its restored memory.
function rewire(lab, bridges, by_name)
  for _, sb in ipairs(bridges or {}) do
    local bname, k = sb.name, 1
    local taken = false
    for _, b in ipairs(lab._bridges or {}) do if b.name == bname then taken = true end end
    while taken do
      k = k + 1
      bname = ("%s-%d"):format(sb.name, k)
      taken = false
      for _, b in ipairs(lab._bridges or {}) do if b.name == bname then taken = true end end
    end
    local br = lab:bridge(bname, { subnet = sb.subnet, nat = sb.nat or nil })
    local top = br._next_host
    for _, n in ipairs(sb.nics or {}) do
      local vm = by_name[n.vm]
      if vm then
        local nic = br:attach(vm, { ip = n.ip, mac = n.mac, slot = n.slot })
        if n.link == "down" then nic:link_down() end
        local a, b2, c, d = n.ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
        local host = ((((tonumber(a) * 256 + tonumber(b2)) * 256 + tonumber(c)) * 256 + tonumber(d)) - br._base)
        if host + 1 > top then top = host + 1 end
      end
    end
    br._next_host = top
  end
end

-- lab:snapshot(name): every VM paused, saved, then resumed (one consistent cut),
-- with the bridge wiring of those VMs (docs/snapshot.md).
local Lab = provium._Lab
function Lab:snapshot(name)
  check_name(name, "lab:snapshot")
  local vms = self:vms()
  for _, vm in ipairs(vms) do
    if vm.backend ~= "kvm" then
      perr({ code = "unsupported", op = "lab:snapshot", vm = vm.name, message = "the sandbox backend cannot snapshot a VM; use the kvm backend" }, 2)
    end
  end
  local root = V.snap_root()
  C.mkdir_p(root)
  local final = root .. "/" .. name
  local tmp = unique_tmp(final)
  C.mkdir_p(tmp)
  local paused, names, spares = {}, {}, {}
  local ok, err = pcall(function()
    for _, vm in ipairs(vms) do spares[vm] = open_spare(vm) end -- before the cut
    for _, vm in ipairs(vms) do
      if vm:state() == "running" then vm._sb:pause(); paused[#paused + 1] = vm end
    end
    for _, vm in ipairs(vms) do
      save_vm(vm, tmp .. "/" .. vm.name, true, spares[vm])
      spares[vm] = nil
      names[#names + 1] = vm.name
    end
  end)
  for _, c in pairs(spares) do c:close() end
  for _, vm in ipairs(paused) do pcall(vm._sb.resume, vm._sb) end
  if not ok then pcall(C.rm_tree, tmp); error(err, 0) end
  write_json(tmp .. "/" .. LAB_META, { kind = "lab", name = name, vms = json.array(names),
    bridges = json.array(wiring(self, vms)), created = provium._c_vm.wall_ns() / 1e9 })
  C.rename(tmp, final)
  return labsnap_from_dir(name, final)
end

function Lab:restore(ls)
  if getmetatable(ls) ~= LS_mt then
    perr({ code = "invalid", op = "lab:restore", message = "expected a LabSnapshot (from lab:snapshot or provium.snapshot)" }, 2)
  end
  return ls:restore(self)
end

-- The cache ------------------------------------------------------------------------------
local function from_entry(root, n)
  if n:match("%.tmp%-") then return nil end
  local dir = root .. "/" .. n
  if C.isfile(dir .. "/" .. LAB_META) then return labsnap_from_dir(n, dir) end
  if C.isfile(dir .. "/vm.state") then return snap_from_dir(n, dir) end
  return nil
end

function provium.snapshots()
  local root = V.snap_root()
  local r = {}
  for _, n in ipairs(C.ls(root)) do
    local s = from_entry(root, n)
    if s then r[#r + 1] = s end
  end
  return r
end

function provium.snapshot(name)
  check_name(name, "provium.snapshot")
  local s = from_entry(V.snap_root(), name)
  if not s then perr({ code = "invalid", op = "provium.snapshot", message = ("no snapshot %q in %s"):format(name, V.snap_root()) }, 2) end
  return s
end

-- Fixture builds ----------------------------------------------------------------------------
-- The cache key: kernel and initrd contents, the profile's fields, the setup's bytecode.
function V.fixture_key(prof, kernel, initrd, cmdline)
  local parts = { "provium-fixture-1", { file = kernel } }
  if initrd then parts[#parts + 1] = { file = initrd } end
  parts[#parts + 1] = cmdline or ""
  local keys = {}
  for k, v in pairs(prof) do
    -- `pool` sizes the pool of ready VMs; it does not change what setup builds
    if type(k) == "string" and k:sub(1, 1) ~= "_" and k ~= "setup" and k ~= "pool" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = prof[k]
    parts[#parts + 1] = k .. "=" .. (type(v) == "table" and json.encode(v, { sort_keys = true }) or tostring(v))
  end
  parts[#parts + 1] = string.dump(prof.setup, true)
  return ("fixture-%s-%s"):format((prof.name or "custom"):gsub("[^%w_.-]", "_"), C.hash(parts))
end

-- Build locks: one flock()ed file per fixture key in <snapshots>/.locks (dot entries
-- are not snapshots). Whoever holds it builds; the others wait, then restore. The
-- kernel drops a lock whose holder died, so a crashed build lets the next one build.
local FIXTURE_WAIT = 1800 -- seconds a VM waits for another worker's fixture build
local held_locks = {}

local function lock_fixture(root, key, prof)
  local dir = root .. "/.locks"
  C.mkdir_p(dir)
  local path = dir .. "/" .. key .. ".lock"
  local deadline = S.now() + FIXTURE_WAIT
  while true do
    local fd = C.trylock(path)
    if fd then
      held_locks[fd] = true
      return fd
    end
    if S.now() > deadline then
      perr({ code = "timeout", op = "lab:vm", message = ("fixture %s of profile %s: another build held %s for %d s"):format(
        key, tostring(prof.name), path, FIXTURE_WAIT) }, 4)
    end
    S.sleep(0.05, "waiting for another worker's build of fixture " .. key)
  end
end

local function unlock_fixture(fd)
  if held_locks[fd] then
    held_locks[fd] = nil
    C.unlock(fd)
  end
end

-- Pools of ready VMs (docs/profiles.md "Pools"): per fixture key and worker, `size`
-- VMs restored from the fixture and paused; lab:vm takes one (resumed: no restore on
-- its path) and a background task restores the replacement. Torn down at file end.
local pools = {}      -- fixture key -> pool
local pool_order = {} -- keys in creation order (teardown order)

local function pool_size(prof)
  local n = prof.pool
  if n == nil then n = tonumber(provium.env("PROVIUM_POOL") or "") end
  if n == nil then n = ((cfg.jobs or 1) > 1) and 1 or 0 end
  if type(n) ~= "number" or n < 0 then
    perr({ code = "invalid", op = "lab:vm", message = "profile field pool must be a non-negative integer, got " .. tostring(n) }, 5)
  end
  return math.floor(n)
end

local function pool_emit(pool)
  emit({ ev = "pool", profile = pool.profile, ready = #pool.ready, in_use = pool.in_use, building = pool.building })
end

-- destroys a pooled VM that was never handed out (it had no vm_spawn, so no vm_exit)
local function pool_discard(vm)
  pcall(function()
    if vm._conn then vm._conn:close(); vm._conn = nil end
    vm._sb:halt()
    vm._sb:destroy()
  end)
  vm._state = "stopped"
  for _, f in ipairs(vm._files or {}) do os.remove(f) end
end

-- the private disk copies a restore made in the file's tmpdir
local function disk_files(vm)
  local r = {}
  for _, d in ipairs(vm:disks()) do
    local ok, p = pcall(function() return d.path end)
    if ok and type(p) == "string" then r[#r + 1] = p end
  end
  return r
end

local function pool_fill_one(pool)
  pool.seq = pool.seq + 1
  local name = ("pool-%s-%d"):format(pool.profile:gsub("[^%w_.-]", "_"), pool.seq)
  pool.building = pool.building + 1
  pool_emit(pool)
  local ok, vm = pcall(restore_raw, nil, name, pool.dir, pool.prof, nil)
  pool.building = pool.building - 1
  if ok then
    local okp, perr2 = pcall(function()
      vm._files = disk_files(vm)
      -- one command before it waits: the pages and code paths a command needs are
      -- brought in here, off the test's path, not by the test's first command
      if vm._conn then V.run(vm, "true", nil, "lab:vm") end
      vm._sb:pause()
      vm._state = "paused"
    end)
    if not okp then pool_discard(vm); ok, vm = false, perr2 end
  end
  if ok and pool.closed then pool_discard(vm); ok = false end
  if ok then
    pool.ready[#pool.ready + 1] = vm
  else
    pool.failed = vm
  end
  pool_emit(pool)
  return ok
end

-- restores VMs until the pool holds `size` ready ones (in a task of the file, so it
-- outlives the test that started it)
local function pool_refill(pool)
  if pool.closed or pool.filling then return end
  pool.filling = true
  local task = S.spawn(function()
    while not pool.closed and #pool.ready + pool.building < pool.size do
      if not pool_fill_one(pool) then break end
    end
    pool.filling = false
  end)
  task.group = "file"
  debug.sethook(task.co)
end

local function pool_for(key, dir, prof)
  local p = pools[key]
  if p then return p end
  local n = pool_size(prof)
  if n <= 0 then return nil end
  local cp = {}
  for k, v in pairs(prof) do cp[k] = v end
  p = { key = key, dir = dir, prof = cp, profile = prof.name or "custom", size = n, ready = {},
    in_use = 0, building = 0, seq = 0 }
  pools[key] = p
  pool_order[#pool_order + 1] = key
  return p
end

-- hands a ready VM to lab as `name`: resumed, its vm_spawn says from_snapshot
local function pool_take(pool, lab, name)
  local vm = table.remove(pool.ready, 1)
  local t0 = S.now()
  local ok, err = pcall(vm._sb.resume, vm._sb)
  if not ok then pool_discard(vm); error(err, 0) end
  vm.name, vm._lab = name, lab
  vm._state = "running"
  ok, err = pcall(V.kvm_set_hostname, vm)
  if not ok then pool_discard(vm); error(err, 0) end
  vm._from_pool = true
  vm._boot_ns = math.floor((S.now() - t0) * 1e9)
  vm._started_at = provium._c_vm.wall_ns() / 1e9
  pool.in_use = pool.in_use + 1
  local released = false
  -- an instance field shadows K._teardown: count the VM out of in_use when it goes
  rawset(vm, "_teardown", function(self)
    V.KVM._teardown(self)
    if self._files then for _, f in ipairs(self._files) do os.remove(f) end end
    if not released then
      released = true
      pool.in_use = pool.in_use - 1
      pool_emit(pool)
    end
  end)
  pool_emit(pool)
  emit_spawn(vm)
  return vm
end

-- provium._pools() -> {profile = {ready=, in_use=, building=, size=}} (tests, docs)
function provium._pools()
  local r = {}
  for _, key in ipairs(pool_order) do
    local p = pools[key]
    r[p.profile] = { ready = #p.ready, in_use = p.in_use, building = p.building, size = p.size, key = key }
  end
  return r
end

-- tears every pool down: ready VMs destroyed, restores in flight discarded when they
-- finish (pool.closed); VMs in use are the labs' (they end with them)
function provium._pools_teardown()
  for _, key in ipairs(pool_order) do
    local p = pools[key]
    p.closed = true
    local n = #p.ready
    for i = #p.ready, 1, -1 do pool_discard(table.remove(p.ready, i)) end
    if n > 0 or p.building > 0 then pool_emit(p) end
  end
  for fd in pairs(held_locks) do unlock_fixture(fd) end
end

local prev_teardown = provium._teardown_root
function provium._teardown_root()
  pcall(provium._pools_teardown)
  return prev_teardown()
end

-- Returns a VM restored from the profile's fixture (building it first when missing):
-- from the pool when one is ready, else restored now; a missing fixture is built under
-- its lock, and a worker that waited for another's build restores the result.
function V.fixture_vm(lab, name, prof, opts, kernel, initrd, cmdline, create)
  local key = V.fixture_key(prof, kernel, initrd, cmdline)
  local root = V.snap_root()
  local dir = root .. "/" .. key
  local pool = pool_for(key, dir, prof)
  local function hit()
    emit({ ev = "fixture", profile = prof.name, action = "hit", snapshot = key })
    local vm
    if pool and #pool.ready == 0 and pool.filling then
      -- a restore for the pool is under way: take that one rather than make another
      local deadline = S.now() + 60
      while #pool.ready == 0 and pool.filling and S.now() < deadline do
        S.sleep(0.005, "waiting for the pool of profile " .. pool.profile)
      end
    end
    if pool and #pool.ready > 0 then
      vm = pool_take(pool, lab, name)
    else
      vm = V.kvm_restore_vm(lab, name, dir, prof, opts)
    end
    if pool then pool_refill(pool) end
    return vm
  end
  if C.isfile(dir .. "/vm.state") then return hit() end
  C.mkdir_p(root)
  local fd = lock_fixture(root, key, prof)
  if C.isfile(dir .. "/vm.state") then
    -- another worker built it while this one waited
    unlock_fixture(fd)
    return hit()
  end
  -- the lock goes back also when the test times out during the build
  local unlock <close> = S.undo(function() unlock_fixture(fd) end)
  local ok, vm = pcall(function()
    emit({ ev = "fixture", profile = prof.name, action = "build_start", snapshot = key })
    local t0 = provium._c_vm.mono_ns()
    local vm = create()
    local undo <close> = S.undo(function() vm:_teardown() end)
    vm:start() -- runs setup once
    undo.done = true
    vm._fixture_restored = true
    local tmp = unique_tmp(dir)
    local oks, errs = pcall(save_vm, vm, tmp, false)
    if not oks then pcall(C.rm_tree, tmp); pcall(vm._teardown, vm); error(errs, 0) end
    C.rename(tmp, dir)
    emit({ ev = "fixture", profile = prof.name, action = "build_end", snapshot = key,
      duration_ns = provium._c_vm.mono_ns() - t0 })
    return vm
  end)
  unlock.done = true
  unlock_fixture(fd)
  if not ok then error(vm, 0) end
  if pool then
    -- the first ready VM now (a restore is cheap next to the build just done), so the
    -- profile's next lab:vm takes it even when no task ran in between; the rest later
    if not pool.closed and #pool.ready + pool.building < pool.size then pool_fill_one(pool) end
    pool_refill(pool)
  end
  return vm
end
