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
local Snapshot = {}
local Snap_mt = { __name = "provium.Snapshot" }
Snap_mt.__index = function(t, k)
  local m = Snapshot[k]
  if m ~= nil then return m end
  if type(k) == "string" and k:sub(1, 1) == "_" then return nil end
  perr({ code = "invalid", op = "snapshot." .. tostring(k), message = "Snapshot has no method or field '" .. tostring(k) .. "'" }, 2)
end
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
function V.kvm_restore_vm(lab, name, dir, prof, opts)
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
  local ok, err = pcall(function()
    if p.agent ~= false then
      vm._conn = V.kvm_wait_agent(vm, S.now() + ((opts and opts.timeout) or 30), t0)
    end
  end)
  if not ok then
    pcall(vm._teardown, vm)
    error(err, 0)
  end
  vm._state = "running"
  vm._boot_ns = math.floor((S.now() - t0) * 1e9)
  vm._started_at = provium._c_vm.wall_ns() / 1e9
  emit({ ev = "vm_spawn", vm = name, backend = "kvm", profile = p.name, cid = sb:info().cid,
    pid = sb:pid(), boot_ns = vm._boot_ns, from_snapshot = vm._from_snapshot })
  return vm
end

-- Saving --------------------------------------------------------------------------------
-- writes vm's snapshot into dir (must not exist); `paused` = the caller paused it
local function save_vm(vm, dir, paused)
  local st = vm:state()
  if st == "created" then
    perr({ code = "invalid", op = "vm:snapshot", vm = vm.name, message = "the VM has not started" }, 4)
  end
  vm._sb:snapshot(dir, paused)
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
local LabSnapshot = {}
local LS_mt = { __name = "provium.LabSnapshot" }
LS_mt.__index = function(t, k)
  local m = LabSnapshot[k]
  if m ~= nil then return m end
  if type(k) == "string" and k:sub(1, 1) == "_" then return nil end
  perr({ code = "invalid", op = "labsnapshot." .. tostring(k), message = "LabSnapshot has no method or field '" .. tostring(k) .. "'" }, 2)
end
LS_mt.__tostring = function(s) return ("LabSnapshot(%s, %d vms)"):format(s.name, #s._vms) end

local function labsnap_from_dir(name, dir)
  local meta = read_json(dir .. "/" .. LAB_META)
  if not meta or meta.kind ~= "lab" then return nil end
  return setmetatable({ name = name, path = dir, size = C.du(dir), created = meta.created, vm = nil,
    profile = nil, _vms = meta.vms or {} }, LS_mt)
end

function LabSnapshot:vms()
  local r = {}
  for i, v in ipairs(self._vms) do r[i] = v end
  return r
end

function LabSnapshot:info()
  return { name = self.name, path = self.path, size = self.size, created = self.created, vms = self:vms() }
end

function LabSnapshot:delete() C.rm_tree(self.path) end

function LabSnapshot:restore(lab)
  lab = lab or provium
  local out = {}
  for i, n in ipairs(self._vms) do
    local s = snap_from_dir(n, self.path .. "/" .. n)
    if not s then perr({ code = "invalid", op = "labsnapshot:restore", vm = n, message = "no VM snapshot for " .. n .. " in " .. self.path }, 2) end
    out[i] = lab:vm(free_name(lab, n), s)
  end
  return out
end

-- lab:snapshot(name): every VM paused, saved, then resumed (one consistent cut).
-- Bridge wiring is not saved yet (docs/snapshot.md).
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
  local paused, names = {}, {}
  local ok, err = pcall(function()
    for _, vm in ipairs(vms) do
      if vm:state() == "running" then vm._sb:pause(); paused[#paused + 1] = vm end
    end
    for _, vm in ipairs(vms) do
      save_vm(vm, tmp .. "/" .. vm.name, true)
      names[#names + 1] = vm.name
    end
  end)
  for _, vm in ipairs(paused) do pcall(vm._sb.resume, vm._sb) end
  if not ok then pcall(C.rm_tree, tmp); error(err, 0) end
  write_json(tmp .. "/" .. LAB_META, { kind = "lab", name = name, vms = json.array(names),
    created = provium._c_vm.wall_ns() / 1e9 })
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
    if type(k) == "string" and k:sub(1, 1) ~= "_" and k ~= "setup" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = prof[k]
    parts[#parts + 1] = k .. "=" .. (type(v) == "table" and json.encode(v, { sort_keys = true }) or tostring(v))
  end
  parts[#parts + 1] = string.dump(prof.setup, true)
  return ("fixture-%s-%s"):format((prof.name or "custom"):gsub("[^%w_.-]", "_"), C.hash(parts))
end

-- Returns a VM restored from the profile's fixture (building it first when missing).
function V.fixture_vm(lab, name, prof, opts, kernel, initrd, cmdline, create)
  local key = V.fixture_key(prof, kernel, initrd, cmdline)
  local root = V.snap_root()
  local dir = root .. "/" .. key
  if C.isfile(dir .. "/vm.state") then
    emit({ ev = "fixture", profile = prof.name, action = "hit", snapshot = key })
    return V.kvm_restore_vm(lab, name, dir, prof, opts)
  end
  emit({ ev = "fixture", profile = prof.name, action = "build_start", snapshot = key })
  local t0 = provium._c_vm.mono_ns()
  local vm = create()
  local okb, errb = pcall(vm.start, vm) -- runs setup once
  if not okb then pcall(vm._teardown, vm); error(errb, 0) end
  vm._fixture_restored = true
  C.mkdir_p(root)
  local tmp = unique_tmp(dir)
  local ok, err = pcall(save_vm, vm, tmp, false)
  if not ok then pcall(C.rm_tree, tmp); pcall(vm._teardown, vm); error(err, 0) end
  C.rename(tmp, dir)
  emit({ ev = "fixture", profile = prof.name, action = "build_end", snapshot = key,
    duration_ns = provium._c_vm.mono_ns() - t0 })
  return vm
end
