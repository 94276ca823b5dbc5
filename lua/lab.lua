-- lab.lua — Labs: the root Lab is the global `provium`; lab:lab(name) makes sub-labs.
-- A Lab owns VMs, bridges, sub-labs and claims, and tears them down on lab:close() or
-- at file end (provium._teardown_root, called by testlib.lua even after errors).
-- Also the task helpers provium.go/all/sleep and env/tmpdir/backend.
local provium = provium
local S = provium._sched
local cfg = provium._config
local emit = provium._emit
local perr = provium._error

-- Lab methods check their receiver (provium.lab("x") raises invalid: use a colon)
local Lab, Lab_mt = provium._class("Lab", "lab", { vm = function() return nil end })
local opts_check = provium._opts
Lab_mt.__tostring = function(lab)
  local n = #lab._vms
  return ("Lab(%s, %d vm%s)"):format(lab._name, n, n == 1 and "" or "s")
end
provium._Lab = Lab

local function init_lab(lab, name, parent)
  lab._name = name
  lab._parent = parent
  lab._root = parent and parent._root or lab
  lab._vms, lab._labs, lab._claims, lab._bridges = {}, {}, {}, {}
  lab._closed = false
  if not parent then lab._vm_names = {} end
  return setmetatable(lab, Lab_mt)
end

local function check_lab(lab, op)
  if lab._closed then perr({ code = "closed", op = op, message = "lab " .. lab._name .. " is closed" }, 3) end
  return lab
end

local function check(cond, op, msg)
  if not cond then perr({ code = "invalid", op = op, message = msg }, 3) end
end

-- VMs ----------------------------------------------------------------------------------
function Lab:vm(name, profile, opts)
  check_lab(self, "lab:vm")
  check(type(name) == "string" and name:match("^[%w_.-]+$"), "lab:vm",
    "VM name must be a string of letters, digits, '_', '.', '-', got " .. (type(name) == "string" and ("%q"):format(name) or type(name)))
  check(profile == nil or type(profile) == "string" or type(profile) == "table" or type(profile) == "userdata",
    "lab:vm", "profile must be a profile name, a table or a snapshot, got " .. type(profile))
  opts = opts_check(opts, "lab:vm", name, provium._vm.vm_opts_spec)
  local root = self._root
  if root._vm_names[name] then
    perr({ code = "invalid", op = "lab:vm", vm = name, message = "duplicate VM name (already in lab " .. root._vm_names[name]._name .. ")" }, 2)
  end
  if not provium._vm_new then
    perr({ code = "unsupported", op = "lab:vm", vm = name, message = "no backend available yet" }, 2)
  end
  provium.backend()
  root._vm_names[name] = self
  -- the name is free again after an error, or when the test times out meanwhile
  local undo <close> = S.undo(function() root._vm_names[name] = nil end)
  local vm = provium._vm_new(self, name, profile, opts)
  undo.done = true
  self._vms[#self._vms + 1] = { name = name, vm = vm, group = S.group }
  return vm
end

function Lab:vms()
  check_lab(self, "lab:vms")
  local r = {}
  for i, rec in ipairs(self._vms) do r[i] = rec.vm end
  return r
end

function Lab:bridges()
  check_lab(self, "lab:bridges")
  local r = {}
  for i, b in ipairs(self._bridges) do r[i] = b end
  return r
end

function Lab:labs()
  check_lab(self, "lab:labs")
  local r = {}
  for i, l in ipairs(self._labs) do r[i] = l end
  return r
end

function Lab:get(name)
  check_lab(self, "lab:get")
  for _, rec in ipairs(self._vms) do if rec.name == name then return rec.vm end end
  for _, b in ipairs(self._bridges) do if b.name == name then return b end end
  for _, l in ipairs(self._labs) do
    local v = l:get(name)
    if v then return v end
  end
  return nil
end

-- Sub-labs -----------------------------------------------------------------------------
function Lab:lab(name)
  check_lab(self, "lab:lab")
  check(type(name) == "string" and name ~= "", "lab:lab", "lab name must be a non-empty string, got " .. type(name))
  for _, l in ipairs(self._labs) do
    check(l._name ~= name, "lab:lab", "duplicate sub-lab name " .. ("%q"):format(name))
  end
  local sub = init_lab({}, name, self)
  self._labs[#self._labs + 1] = sub
  return sub
end

local function teardown_vm(root, rec)
  root._vm_names[rec.name] = nil
  -- --keep and a test failed (testlib.lua sets _keep_vms): leave the VM running
  if provium._keep_vms and rec.vm and rec.vm._keep then
    local ok, kept = pcall(rec.vm._keep, rec.vm)
    if ok and kept then return end
  end
  if rec.vm and rec.vm._teardown then
    local ok, err = pcall(rec.vm._teardown, rec.vm)
    if not ok then io.stderr:write("provium: teardown of VM ", rec.name, ": ", tostring(err), "\n") end
  end
end

-- closes everything the lab owns; never raises
local function close(lab)
  if lab._closed then return end
  lab._closed = true
  for i = #lab._labs, 1, -1 do close(lab._labs[i]) end
  for i = #lab._vms, 1, -1 do teardown_vm(lab._root, lab._vms[i]) end
  for i = #lab._bridges, 1, -1 do
    local b = lab._bridges[i]
    if b._teardown then pcall(b._teardown, b) end
  end
  for i = #lab._claims, 1, -1 do pcall(lab._claims[i].release, lab._claims[i]) end
  lab._vms, lab._labs, lab._bridges, lab._claims = {}, {}, {}, {}
  if lab._parent then
    local p = lab._parent._labs
    for i = #p, 1, -1 do if p[i] == lab then table.remove(p, i) end end
  end
end

function Lab:close()
  close(self)
end

-- Claims ---------------------------------------------------------------------------------
local Claim, Claim_mt = provium._class("Claim", "claim", { nil_fields = { released = true } })
Claim_mt.__tostring = function(c)
  return ("Claim(%s, %d, %s)"):format(c.resource, c.count, c.released and "released" or "held")
end

function Claim:release()
  if self.released then return end
  self.released = true
  -- The release event goes out before the parent hears of it, so a file waiting for
  -- this claim can never be granted it (and stamp its acquire) before our release.
  emit({ ev = "claim", resource = self.resource, action = "release", count = self.count })
  provium._c_chan.send({ k = "release", resource = self.resource, count = self.count })
  local list = self._lab._claims
  for i = #list, 1, -1 do if list[i] == self then table.remove(list, i) end end
end

function Lab:claim(resource, opts)
  check_lab(self, "lab:claim")
  check(type(resource) == "string" and resource ~= "", "lab:claim", "resource must be a non-empty string, got " .. type(resource))
  opts = opts_check(opts, "lab:claim", nil, "capacity:posint count:posint timeout:secs")
  local count, capacity = opts.count or 1, opts.capacity or 1
  count, capacity = math.tointeger(count), math.tointeger(capacity)
  check(count <= capacity, "lab:claim", ("opts.count (%d) is more than opts.capacity (%d)"):format(count, capacity))
  emit({ ev = "claim", resource = resource, action = "wait", count = count })
  local r = provium._request({ k = "claim", resource = resource, count = count, capacity = capacity },
    S.deadline(opts), ("waiting for claim %q"):format(resource), function(late)
      -- granted after we gave up: give it back at once
      if late.ok then provium._c_chan.send({ k = "release", resource = resource, count = count }) end
    end)
  if not r then
    perr({ code = "timeout", op = "lab:claim", message = ("claim %q not granted in time"):format(resource) }, 2)
  end
  if not r.ok then
    perr({ code = "infra", op = "lab:claim", message = ("claim %q refused: %s"):format(resource, tostring(r.message)) }, 2)
  end
  emit({ ev = "claim", resource = resource, action = "acquire", count = count })
  local c = setmetatable({ resource = resource, count = count, capacity = capacity, _lab = self }, Claim_mt)
  self._claims[#self._claims + 1] = c
  return c
end

-- Barriers --------------------------------------------------------------------------------
function Lab:barrier(name, parties, opts)
  check_lab(self, "lab:barrier")
  check(type(name) == "string" and name ~= "", "lab:barrier", "barrier name must be a non-empty string, got " .. type(name))
  check(math.type(parties) == "integer" and parties >= 1, "lab:barrier", "parties must be a positive integer, got " .. tostring(parties))
  opts = opts_check(opts, "lab:barrier", nil, "timeout:secs")
  local r = provium._request({ k = "barrier", name = name, parties = parties }, S.deadline(opts),
    ("waiting at barrier %q for %d parties"):format(name, parties))
  if not r then
    perr({ code = "timeout", op = "lab:barrier", message = ("barrier %q: %d parties did not arrive in time"):format(name, parties) }, 2)
  end
  if not r.ok then
    perr({ code = "infra", op = "lab:barrier", message = ("barrier %q failed: %s"):format(name, tostring(r.message)) }, 2)
  end
  emit({ ev = "barrier", name = name, arrived = r.index, parties = parties })
  return r.index
end

-- Not available yet ----------------------------------------------------------------------
function Lab:snapshot()
  check_lab(self, "lab:snapshot")
  perr({ code = "unsupported", op = "lab:snapshot", message = "snapshots need the kvm backend" }, 2)
end
function Lab:restore()
  check_lab(self, "lab:restore")
  perr({ code = "unsupported", op = "lab:restore", message = "snapshots need the kvm backend" }, 2)
end
function Lab:bridge(name, opts)
  check_lab(self, "lab:bridge")
  check(type(name) == "string" and name:match("^[%w_.-]+$"), "lab:bridge",
    "bridge name must be a string of letters, digits, '_', '.', '-', got " .. tostring(name))
  opts = opts_check(opts, "lab:bridge", nil, "nat:bool subnet:string")
  for _, b in ipairs(self._bridges) do check(b.name ~= name, "lab:bridge", ("duplicate bridge name %q"):format(name)) end
  local b = provium._bridge_new(self, name, opts) -- bridge.lua
  self._bridges[#self._bridges + 1] = b
  return b
end

-- The root lab and the provium.* functions ---------------------------------------------------
init_lab(provium, "root", nil)

-- A test that timed out: tear down the VMs it started (testlib.lua calls this).
function provium._test_timed_out(rec)
  local function walk(lab)
    for i = #lab._vms, 1, -1 do
      local v = lab._vms[i]
      if v.group == rec then
        teardown_vm(lab._root, v)
        table.remove(lab._vms, i)
      end
    end
    for _, l in ipairs(lab._labs) do walk(l) end
  end
  walk(provium)
end

local made_tmpdir
function provium._teardown_root()
  close(provium)
  if made_tmpdir then provium._c_lab.rm_rf(made_tmpdir); made_tmpdir = nil end
end

function provium.tmpdir()
  if cfg.tmp_dir then return cfg.tmp_dir end
  if not made_tmpdir then made_tmpdir = provium._c_lab.mkdtemp("provium-file") end
  return made_tmpdir
end

function provium.env(name)
  if type(name) ~= "string" then perr({ code = "invalid", op = "provium.env", message = "name must be a string, got " .. type(name) }, 2) end
  return os.getenv(name)
end

function provium.sleep(s)
  provium._arg(s, "nonneg", "provium.sleep", nil, "seconds")
  S.sleep(s)
end

local backend
function provium.backend()
  if backend then return backend end
  if not provium._backend_select then
    perr({ code = "unsupported", op = "provium.backend", message = "no backend available yet" }, 2)
  end
  backend = provium._backend_select(cfg.backend or "auto")
  return backend
end

function provium.go(fn, ...)
  if type(fn) ~= "function" then perr({ code = "invalid", op = "provium.go", message = "expected a function, got " .. type(fn) }, 2) end
  return S.spawn(fn, ...)
end

-- provium.all(list [, opts]) -> results: waits for every task (functions become tasks);
-- results[i] is the first value task i returned. Re-raises the error that happened first.
function provium.all(list, opts)
  if type(list) ~= "table" then perr({ code = "invalid", op = "provium.all", message = "expected an array of tasks or functions, got " .. type(list) }, 2) end
  local tasks = {}
  for i, x in ipairs(list) do
    if type(x) == "function" then tasks[i] = S.spawn(x)
    elseif getmetatable(x) == S.Task then tasks[i] = x
    else perr({ code = "invalid", op = "provium.all", message = ("element %d is a %s, not a task or function"):format(i, type(x)) }, 2) end
  end
  opts = opts_check(opts, "provium.all", nil, "timeout:secs")
  local results, first, first_seq = {}, nil, nil
  for i, task in ipairs(tasks) do
    local r = table.pack(pcall(task.wait, task, opts))
    if r[1] then
      results[i] = r[2]
    elseif not first_seq or (task.seq or math.huge) < first_seq then
      first, first_seq = r[2], task.seq or math.huge
    end
  end
  if first_seq then error(first, 0) end
  return results
end
