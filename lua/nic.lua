-- nic.lua — Nic (API.md "Bridge and Nic"): one VM's attachment to one bridge. On the
-- sandbox backend the relay (lua/nic.c) carries its frames through netpath; it is
-- (re)made whenever the VM's sandbox starts, since each start is a new namespace.
local provium = provium
local perr = provium._error
local cfg = provium._config
local N = provium._net or {}
provium._net = N

local Nic, Nic_mt = provium._class("Nic", "nic", { nil_fields = { tap = true },
  vm = function(t) local vm = rawget(t, "vm"); return vm and vm.name end })
N.Nic = Nic
Nic_mt.__tostring = function(n)
  return ("Nic(%s on %s, %s, %s, link %s)"):format(n.vm.name, n.bridge.name, n.ip, n.mac, n._up and "up" or "down")
end

function Nic._new(bridge, vm, o)
  return setmetatable({ bridge = bridge, vm = vm, ip = o.ip, mac = o.mac, ifname = o.ifname,
    tap = nil, _up = true, _totals = nil }, Nic_mt)
end

local ZERO = { rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0, rx_dropped = 0, tx_dropped = 0 }

-- Counters survive re-plumbing (a VM restart makes a new relay).
local function add(a, b)
  local r = {}
  for k in pairs(ZERO) do r[k] = (a[k] or 0) + (b[k] or 0) end
  return r
end

function Nic:_unplumb()
  if self._relay then
    pcall(function() self._totals = add(self._totals or ZERO, self._relay:counters()) end)
    self._relay:close()
    self._relay = nil
    self._rule_ids = nil
  end
end

-- kvm: the relay's guest side is the VM's virtio-net slot (lua/kvm.c), whose link
-- state is the carrier the guest sees.
local function plumb_kvm(self)
  local vm, b = self.vm, self.bridge
  local fd = vm._sb:nic_fd(self._slot)
  if not fd then return end
  local ok, r = pcall(provium._c_nic.attach, {
    bridge = b.ifname, fd = fd, ifname = self.ifname, mac = self.mac,
    name = vm.name .. "@" .. b.name, seed = cfg.seed or 0,
  })
  if not ok then
    if provium._is_error(r) then r.vm = vm.name end
    error(r, 0)
  end
  self._relay = r
  self.tap = r:info().tap
  if not self._up then r:set_link(false) end
  vm._sb:nic_link(self._slot, self._up)
  for _, c in ipairs(self._captures or {}) do r:subscribe(c._h, "both") end
end

function Nic:_plumb()
  self:_unplumb()
  local vm = self.vm
  if vm.backend == "kvm" and self._slot then return plumb_kvm(self) end
  if not vm._sb then
    perr({ code = "unsupported", op = "bridge:attach", vm = vm.name, message = "NICs need a sandbox VM (the kvm backend attaches through virtio-net)" }, 3)
  end
  local b = self.bridge
  local ok, r = pcall(provium._c_nic.attach, {
    bridge = b.ifname, pid = vm._sb:pid(), ifname = self.ifname, mac = self.mac,
    cidr = self.ip .. "/" .. b._len, gw = b._gateway, name = vm.name .. "@" .. b.name,
    seed = cfg.seed or 0,
  })
  if not ok then
    if provium._is_error(r) then r.vm = vm.name end
    error(r, 0)
  end
  self._relay = r
  self.tap = r:info().tap
  if not self._up then r:set_link(false) end
  for _, c in ipairs(self._captures or {}) do r:subscribe(c._h, "both") end
end

-- What this attachment delivered, both directions ("tx": from the VM, "rx": to it).
function Nic:capture(opts)
  local c = N.capture_new(("nic %s@%s"):format(self.vm.name, self.bridge.name), opts, function(cap)
    local l = self._captures or {}
    for i = #l, 1, -1 do if l[i] == cap then table.remove(l, i) end end
    if self._relay then pcall(self._relay.unsubscribe, self._relay, cap._h) end
  end, "nic:capture", self.vm.name)
  self._captures = self._captures or {}
  self._captures[#self._captures + 1] = c
  if self._relay then self._relay:subscribe(c._h, "both") end
  return c
end

function Nic:counters()
  local c = self._totals or ZERO
  if self._relay then c = add(c, self._relay:counters()) end
  return add(c, ZERO)
end

-- On a VM that is not running the state is only recorded: the next start applies it.
local function set_link(nic, up)
  nic._up = up
  local st = nic.vm:state()
  if nic._relay and (st == "running" or st == "paused") then
    nic._relay:set_link(up)
    if nic._slot then nic.vm._sb:nic_link(nic._slot, up) end
  end
end

function Nic:link_down()
  set_link(self, false)
end

function Nic:link_up()
  set_link(self, true)
end

function Nic:link()
  return self._up and "up" or "down"
end
