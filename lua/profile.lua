-- profile.lua — Profiles (API.md): a named VM recipe in profiles/<name>.lua, looked up
-- from the test file's directory upwards, then in the install (profiles/ next to the
-- binary's build dir, share/provium/profiles). "default" always exists. The sandbox
-- backend uses rootfs and env; setup(vm) runs after every boot there (no snapshots, so
-- no fixture cache; a reboot starts from a fresh root).
local provium = provium
local perr = provium._error
local cfg = provium._config
local V = provium._vm or {}
provium._vm = V

-- Every profile field and its kind (docs/profiles.md), checked by provium._opts; lab:vm
-- opts take the same fields (but name) and start.
local SPEC = "agent:bool backend:auto|kvm|sandbox boot_timeout:secs cmdline:string cpus:posint " ..
  "disk_slots:uint disks:table env:table initrd:string kernel:string memory:posint name:string " ..
  "nic_slots:uint pool:uint rootfs:string setup:function"
local FIELDS = {}
for k in SPEC:gmatch("([%w_]+):") do FIELDS[k] = true end
V.vm_opts_spec = SPEC:gsub(" name:string", "") .. " start:bool"

local function dirname(p)
  return p:match("^(.*)/[^/]*$") or "."
end

local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD") or "."
  return pwd .. "/" .. p
end

local function exists(p)
  local f = io.open(p, "r")
  if f then f:close(); return true end
  return false
end

-- every directory a profile is looked up in, in order
function V.profile_dirs()
  local dirs = {}
  if cfg.file then
    local d = dirname(abspath(cfg.file))
    while true do
      dirs[#dirs + 1] = (d == "/" and "" or d) .. "/profiles"
      if d == "" or d == "/" or not d:find("/") then break end
      local up = dirname(d)
      if up == d then break end
      d = up == "" and "/" or up
    end
  end
  local self_dir = provium._c_vm.self_dir()
  dirs[#dirs + 1] = dirname(self_dir) .. "/profiles"
  dirs[#dirs + 1] = dirname(self_dir) .. "/share/provium/profiles"
  dirs[#dirs + 1] = "/usr/share/provium/profiles"
  -- once each, in order (the binary may sit in the test tree the walk went through)
  local seen, out = {}, {}
  for _, d in ipairs(dirs) do
    if not seen[d] then seen[d] = true; out[#out + 1] = d end
  end
  return out
end

-- Checks a profile's fields (keys starting with "_" are provium's own); `where` is the
-- op of the error: "profile /path/x.lua", "profile table".
local function validate(t, where, vm)
  local pub = {}
  for k, v in pairs(t) do
    if type(k) ~= "string" or k:sub(1, 1) ~= "_" then pub[k] = v end
  end
  provium._opts(pub, where, vm, SPEC, "profile")
end

-- vm: the VM being made (errors then read "lab:vm on <vm>: ...")
local function load_named(name, vm)
  local op = vm and "lab:vm" or "profile"
  if type(name) ~= "string" or not name:match("^[%w_.-]+$") then
    perr({ code = "invalid", op = op, vm = vm, message = ("bad profile name %q"):format(tostring(name)) }, 4)
  end
  local looked = {}
  for _, d in ipairs(V.profile_dirs()) do
    local p = d .. "/" .. name .. ".lua"
    looked[#looked + 1] = p
    if exists(p) then
      local env = setmetatable({}, { __index = _G })
      local chunk, err = loadfile(p, "t", env)
      if not chunk then perr({ code = "invalid", op = "profile", message = ("profile %s: %s"):format(name, err) }, 4) end
      local ok, t = pcall(chunk)
      if not ok then perr({ code = "invalid", op = "profile", message = ("profile %s (%s) failed: %s"):format(name, p, tostring(t)) }, 4) end
      if type(t) ~= "table" then
        perr({ code = "invalid", op = "profile", message = ("profile %s (%s) must return a table, got %s"):format(name, p, type(t)) }, 4)
      end
      validate(t, "profile " .. p, vm)
      t.name = t.name or name
      t._path = p
      -- relative paths in a profile are relative to the profile's file
      for _, k in ipairs({ "rootfs", "kernel", "initrd" }) do
        if type(t[k]) == "string" and t[k]:sub(1, 1) ~= "/" then t[k] = d .. "/" .. t[k] end
      end
      return t
    end
  end
  if name == "default" then
    return { name = "default", backend = "auto", memory = 256, cpus = 1 }
  end
  perr({ code = "invalid", op = op, vm = vm, message = ("no profile %q; looked in:\n  %s"):format(name, table.concat(looked, "\n  ")) }, 4)
end

-- V.profile_resolve(profile, opts [, vm]) -> a fresh table: the profile with opts on
-- top; vm names the VM being made, for errors
function V.profile_resolve(profile, opts, vm)
  local base
  if profile == nil then
    base = load_named("default")
  elseif type(profile) == "string" then
    base = load_named(profile, vm)
  elseif getmetatable(profile) == V.Snapshot_mt then
    base = profile -- a snapshot to restore (snapshot.lua): its fields describe it
  elseif type(profile) == "table" then
    validate(profile, "profile table", vm)
    base = profile
  else
    perr({ code = "invalid", op = "lab:vm", vm = vm, message = "profile must be a name or a table, got " .. type(profile) }, 3)
  end
  local p = {}
  for k, v in pairs(base) do p[k] = v end
  p.name = p.name or (type(profile) == "table" and "custom" or "default")
  for k, v in pairs(opts or {}) do
    if FIELDS[k] and k ~= "name" then p[k] = v end
  end
  if p.env then
    local e = {}
    for k, v in pairs(p.env) do e[tostring(k)] = tostring(v) end
    p.env = e
  end
  return p
end

-- provium._profile(name) -> the resolved profile table (for tests and tools)
function provium._profile(name)
  return V.profile_resolve(name, nil)
end
