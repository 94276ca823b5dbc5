-- bridge.lua — Bridge (API.md "Bridge and Nic"): a Linux bridge in the run's network
-- namespace, NIC attachments, and faults (partition, isolate, latency, drop,
-- duplicate, corrupt) enforced per NIC in the netpath datapath (lua/nic.c).
-- provium._bridge_new(lab, name, opts) is what lab:bridge calls.
local provium = provium
local perr = provium._error
local cfg = provium._config
local C = provium._c_net
local V = provium._vm or {}
provium._vm = V
local N = provium._net or {}
provium._net = N

local Bridge, Bridge_mt = provium._class("Bridge", "bridge", { nil_fields = { nat_ip = true } })
N.Bridge, N.Bridge_mt = Bridge, Bridge_mt
local opts_check = provium._opts
Bridge_mt.__tostring = function(b)
  return ("Bridge(%s, %s, %d nic%s)"):format(b.name, b.subnet, #b._nics, #b._nics == 1 and "" or "s")
end

local function check(cond, op, msg, lvl)
  if not cond then perr({ code = "invalid", op = op, message = msg }, (lvl or 2) + 1) end
end

local function check_bridge(b, op)
  if b._closed then perr({ code = "closed", op = op, message = "bridge " .. b.name .. " was torn down" }, 3) end
  return b
end

-- "a.b.c.d/len" -> base address (integer), prefix length
local function parse_cidr(s)
  if type(s) ~= "string" then return nil end
  local a, b, c, d, len = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/(%d+)$")
  if not a then return nil end
  a, b, c, d, len = tonumber(a), tonumber(b), tonumber(c), tonumber(d), tonumber(len)
  if a > 255 or b > 255 or c > 255 or d > 255 or len < 8 or len > 30 then return nil end
  local ip = ((a * 256 + b) * 256 + c) * 256 + d
  local size = 1 << (32 - len)
  return ip - ip % size, len
end
N.parse_cidr = parse_cidr

local function ip_str(n)
  return ("%d.%d.%d.%d"):format(n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)
end
N.ip_str = ip_str

-- (lab:bridge checked opts: subnet, nat)
function provium._bridge_new(lab, name, opts)
  opts = opts or {}
  if opts.subnet ~= nil then
    check(parse_cidr(opts.subnet), "lab:bridge", ("subnet must be an IPv4 CIDR like 10.0.0.0/24, got %s"):format(tostring(opts.subnet)), 3)
  end
  -- the kernel allocates the index: names are unique in the run's namespace, shared
  -- by every file of the run
  local idx, ifname
  for k = 0, 255 do
    if C.bridge_add("pvbr" .. k) then idx, ifname = k, "pvbr" .. k; break end
  end
  if not idx then perr({ code = "infra", op = "lab:bridge", message = "no free bridge index (256 in use)" }, 3) end
  local subnet = opts.subnet or ("10.213.%d.0/24"):format(idx)
  local base, len = parse_cidr(subnet)
  local b = setmetatable({
    name = name, subnet = ip_str(base) .. "/" .. len, ifname = ifname,
    _lab = lab, _idx = idx, _base = base, _len = len, _next_host = 2, _nics = {},
    _isolated = {}, _groups = nil, _faults = {}, _captures = {}, _closed = false,
  }, Bridge_mt)
  if opts.nat then b:nat(true) end
  return b
end

function Bridge:vms()
  check_bridge(self, "bridge:vms")
  local r = {}
  for i, n in ipairs(self._nics) do r[i] = n.vm end
  return r
end

function Bridge:_nic_of(vm)
  for _, n in ipairs(self._nics) do if n.vm == vm then return n end end
end

local function vm_arg(b, vm, op)
  if getmetatable(vm) ~= V.VM_mt then
    perr({ code = "invalid", op = op, message = "expected a VM, got " .. tostring(vm) }, 4)
  end
  return vm
end

function Bridge:attach(vm, opts)
  check_bridge(self, "bridge:attach")
  vm_arg(self, vm, "bridge:attach")
  opts = opts_check(opts, "bridge:attach", vm.name, "ip:string mac:string slot:posint")
  if vm.backend ~= "sandbox" and vm.backend ~= "kvm" then
    perr({ code = "unsupported", op = "bridge:attach", vm = vm.name,
      message = ("bridges are wired to sandbox and kvm VMs, not %s"):format(tostring(vm.backend)) }, 2)
  end
  if self:_nic_of(vm) then
    perr({ code = "invalid", op = "bridge:attach", vm = vm.name, message = "already attached to bridge " .. self.name }, 2)
  end
  local ip
  if opts.ip then
    check(type(opts.ip) == "string" and parse_cidr(opts.ip .. "/24"), "bridge:attach",
      "ip must be an IPv4 address, got " .. tostring(opts.ip))
    ip = opts.ip
  else
    local host = self._next_host
    check(host < (1 << (32 - self._len)) - 1, "bridge:attach", "subnet " .. self.subnet .. " is full")
    self._next_host = host + 1
    ip = ip_str(self._base + host)
  end
  vm._nics = vm._nics or {}
  local n = #self._nics + 1
  local mac = opts.mac or ("02:70:76:%02x:%02x:%02x"):format(self._idx, (n >> 8) & 255, n & 255)
  local st = vm:state()
  local running = st == "running" or st == "paused"
  local slot, ifname = nil, "eth" .. #vm._nics
  if vm.backend == "kvm" then
    -- a virtio-net slot: before start a new NIC (with this MAC) on the next boot's
    -- command line; on a running VM a free pre-provisioned slot (its MAC is fixed)
    if running then
      slot, mac = vm._sb:nic_take(opts.slot)
    else
      slot = vm._sb:add_nic(mac)
    end
    ifname = "eth" .. (slot - 1)
  end
  local nic = N.Nic._new(self, vm, { ip = ip, mac = mac, ifname = ifname })
  nic._slot = slot
  self._nics[#self._nics + 1] = nic
  vm._nics[#vm._nics + 1] = nic
  if running then
    local ok, err = pcall(function()
      nic:_plumb()
      if slot then self:_guest_config(nic) end
    end)
    if not ok then
      pcall(nic._unplumb, nic)
      if slot then pcall(vm._sb.nic_release, vm._sb, slot) end
      self._nics[#self._nics] = nil
      vm._nics[#vm._nics] = nil
      error(err, 0)
    end
  end
  self:_apply()
  return nic
end

-- kvm, attach on a running VM: the agent configures the guest's interface (a boot
-- does it from provium.net= on the command line, see V.kvm_net_cmdline). A VM
-- without an agent (test guests) gets only the link.
function Bridge:_guest_config(nic)
  local vm = nic.vm
  if not vm._conn then return end
  -- IPv6 off as on the sandbox (no router solicitations in counters and captures)
  local cmd = ("(echo 1 > /proc/sys/net/ipv6/conf/%s/disable_ipv6) 2>/dev/null; "):format(nic.ifname) ..
    ("ip addr replace %s/%d dev %s && ip link set %s up"):format(nic.ip, self._len, nic.ifname, nic.ifname)
  if self._gateway then cmd = cmd .. (" && ip route replace default via %s dev %s"):format(self._gateway, nic.ifname) end
  local r = vm:run(cmd)
  if r.code ~= 0 then
    perr({ code = "infra", op = "bridge:attach", vm = vm.name,
      message = ("configuring %s in the guest failed (exit %d): %s"):format(nic.ifname, r.code, tostring(r.stderr)) }, 3)
  end
end

-- "provium.net=eth0,10.213.0.2/24[,GW];..." for a kvm VM's boot (kernels/init).
function V.kvm_net_cmdline(vm)
  local e = {}
  for _, nic in ipairs(vm._nics or {}) do
    if nic._slot then
      local b = nic.bridge
      e[#e + 1] = ("%s,%s/%d%s"):format(nic.ifname, nic.ip, b._len, b._gateway and ("," .. b._gateway) or "")
    end
  end
  if #e == 0 then return nil end
  return "provium.net=" .. table.concat(e, ";")
end

function Bridge:detach(vm)
  check_bridge(self, "bridge:detach")
  vm_arg(self, vm, "bridge:detach")
  local nic = self:_nic_of(vm)
  if not nic then
    perr({ code = "invalid", op = "bridge:detach", vm = vm.name, message = "not attached to bridge " .. self.name }, 2)
  end
  nic:_unplumb()
  if nic._slot and vm._sb then
    if vm._conn and vm:state() == "running" then
      pcall(vm.run, vm, ("ip addr flush dev %s; ip link set %s down"):format(nic.ifname, nic.ifname))
    end
    pcall(vm._sb.nic_release, vm._sb, nic._slot)
  end
  for i = #self._nics, 1, -1 do if self._nics[i] == nic then table.remove(self._nics, i) end end
  for i = #(vm._nics or {}), 1, -1 do if vm._nics[i] == nic then table.remove(vm._nics, i) end end
  self._isolated[vm] = nil
  self:_apply()
end

-- Faults ------------------------------------------------------------------------------------
-- The wanted rules of one NIC, in evaluation order (drops first).
local function rules_for(b, nic, locals)
  local r = {}
  if b._isolated[nic.vm] then r[#r + 1] = { action = "drop", everything = true, label = "isolate" } end
  if b._groups then
    local mine
    for gi, g in ipairs(b._groups) do if g[nic.vm] then mine = gi end end
    if mine then
      local peers = {}
      for _, o in ipairs(b._nics) do
        for gi, g in ipairs(b._groups) do
          if gi ~= mine and g[o.vm] then peers[#peers + 1] = o.mac end
        end
      end
      if #peers > 0 then r[#r + 1] = { action = "drop", peers = peers, locals = locals, label = "partition" } end
    end
  end
  for _, kind in ipairs({ "drop", "delay", "duplicate", "corrupt" }) do
    for _, f in ipairs(b._faults) do
      if f.action == kind then
        local peers
        if f.between then
          local other
          if f.between[1] == nic.vm then other = f.between[2] elseif f.between[2] == nic.vm then other = f.between[1] end
          local on = other and b:_nic_of(other)
          if on then peers = { on.mac } end
        end
        if not f.between or peers then
          r[#r + 1] = { action = kind, rate = f.rate, delay_ms = f.ms, jitter_ms = f.jitter,
            peers = peers, locals = locals, seed = f.seed, label = kind }
        end
      end
    end
  end
  return r
end

-- Installs the wanted rules on every plumbed NIC: new ones first, then the old ones
-- go, so a change never opens a window without the rules.
function Bridge:_apply()
  local locals = {}
  for i, n in ipairs(self._nics) do locals[i] = n.mac end
  for _, nic in ipairs(self._nics) do
    if nic._relay then
      local old = nic._rule_ids or {}
      local ids = {}
      for _, spec in ipairs(rules_for(self, nic, locals)) do ids[#ids + 1] = nic._relay:add_fault(spec) end
      for _, id in ipairs(old) do nic._relay:del_rule(id) end
      nic._rule_ids = ids
    end
  end
end

local function vm_list(x, op)
  check(type(x) == "table", op, "each group must be an array of VMs, got " .. type(x), 3)
  local set = {}
  for _, vm in ipairs(x) do
    if getmetatable(vm) ~= V.VM_mt then perr({ code = "invalid", op = op, message = "expected a VM, got " .. tostring(vm) }, 4) end
    set[vm] = true
  end
  return set
end

function Bridge:partition(...)
  check_bridge(self, "bridge:partition")
  local groups = {}
  for i = 1, select("#", ...) do groups[i] = vm_list(select(i, ...), "bridge:partition") end
  check(#groups >= 2, "bridge:partition", "needs at least two groups")
  self._groups = groups
  self:_apply()
end

function Bridge:heal()
  check_bridge(self, "bridge:heal")
  self._groups = nil
  self._isolated = {}
  self:_apply()
end

function Bridge:isolate(vm)
  check_bridge(self, "bridge:isolate")
  vm_arg(self, vm, "bridge:isolate")
  self._isolated[vm] = true
  self:_apply()
end

function Bridge:unisolate(vm)
  check_bridge(self, "bridge:unisolate")
  vm_arg(self, vm, "bridge:unisolate")
  self._isolated[vm] = nil
  self:_apply()
end

local function between_of(opts, op)
  local bt = opts.between
  if bt == nil then return nil end
  check(type(bt) == "table" and getmetatable(bt[1]) == V.VM_mt and getmetatable(bt[2]) == V.VM_mt,
    op, "opts.between must be {vm_a, vm_b}", 4)
  return { bt[1], bt[2] }
end

local function same_pair(a, b)
  if a == nil or b == nil then return a == b end
  return (a[1] == b[1] and a[2] == b[2]) or (a[1] == b[2] and a[2] == b[1])
end

-- Sets (or with value 0 removes) the fault of `action` for opts.between (or the bridge).
-- opts were checked by the caller (FAULT_OPTS)
local function set_fault(b, action, f, opts, op)
  f.action = action
  f.between = between_of(opts, op)
  f.seed = math.tointeger(opts.seed) or cfg.seed or 0
  for i = #b._faults, 1, -1 do
    local o = b._faults[i]
    if o.action == action and same_pair(o.between, f.between) then table.remove(b._faults, i) end
  end
  if not f.off then b._faults[#b._faults + 1] = f end
  b:_apply()
end

local FAULT_OPTS = "between:table seed:int"
local function rate_fault(action)
  local op = "bridge:" .. action
  return function(self, rate, opts)
    check_bridge(self, op)
    provium._arg(rate, "rate", op, nil, "rate")
    opts = opts_check(opts, op, nil, FAULT_OPTS)
    set_fault(self, action == "duplicate" and "duplicate" or action, { rate = rate, off = rate == 0 }, opts, op)
  end
end
Bridge.drop = rate_fault("drop")
Bridge.duplicate = rate_fault("duplicate")
Bridge.corrupt = rate_fault("corrupt")

function Bridge:latency(ms, opts)
  check_bridge(self, "bridge:latency")
  provium._arg(ms, "nonneg", "bridge:latency", nil, "ms")
  opts = opts_check(opts, "bridge:latency", nil, FAULT_OPTS .. " jitter:nonneg")
  local jitter = opts.jitter or 0
  set_fault(self, "delay", { ms = ms, jitter = jitter, off = ms == 0 and jitter == 0 }, opts, "bridge:latency")
end

function Bridge:clear_faults()
  check_bridge(self, "bridge:clear_faults")
  self._faults, self._groups, self._isolated = {}, nil, {}
  self:_apply()
end

-- NAT ----------------------------------------------------------------------------------------
-- bridge:nat(true): the bridge gets the subnet's first address as gateway (every VM's
-- default route), and a veth pair joins the run's namespace to the host's, with an
-- nftables masquerade rule on it inside the run's namespace. bridge.nat_ip is the
-- host end's address: a host listener there is reachable from the VMs. Forwarding is
-- on only inside the run's namespace; the host's own settings are never changed.
function Bridge:nat(on)
  check_bridge(self, "bridge:nat")
  check(type(on) == "boolean", "bridge:nat", "expected true or false, got " .. tostring(on))
  if on == (self._nat ~= nil) then return end
  if on then
    local k, tag = self._idx, C.run_tag()
    -- a free /30 in 10.214.0.0/16, starting from one the run's tag and k suggest
    local start = (tonumber(tag, 16) * 64 + k) % 16384
    local base
    for i = 0, 16383 do
      local cand = (10 << 24) | (214 << 16) | (((start + i) % 16384) * 4)
      if not C.host_net_used(ip_str(cand), 30) then base = cand; break end
    end
    if not base then perr({ code = "infra", op = "bridge:nat", message = "no free /30 in 10.214.0.0/16 on the host" }, 2) end
    local nat = { veth = "pvn" .. k, host_veth = "pvh" .. tag .. k, table = "provium_" .. self.ifname,
      host_ip = ip_str(base + 1) }
    local gw = ip_str(self._base + 1)
    C.nat_up({ bridge = self.ifname, gw_cidr = gw .. "/" .. self._len, veth = nat.veth,
      host_veth = nat.host_veth, host_cidr = nat.host_ip .. "/30", run_cidr = ip_str(base + 2) .. "/30",
      host_ip = nat.host_ip, table = nat.table })
    self._nat, self._gateway, self.nat_ip = nat, gw, nat.host_ip
    for _, nic in ipairs(self._nics) do
      if nic._slot then
        -- kvm: the VMM runs in provium's own process, so the route goes in through
        -- the agent (never into the namespace of nic.vm._sb:pid())
        if nic._relay and nic.vm._conn then
          nic.vm:run(("ip route replace default via %s dev %s"):format(gw, nic.ifname))
        end
      elseif nic._relay and nic.vm._sb then
        C.route_default(nic.vm._sb:pid(), gw)
      end
    end
  else
    self:_nat_teardown()
  end
end

function Bridge:_nat_teardown()
  if not self._nat then return end
  pcall(C.nat_down, { veth = self._nat.veth, table = self._nat.table })
  self._nat, self.nat_ip = nil, nil
end

-- Capture ------------------------------------------------------------------------------------
-- Everything on the bridge: libpcap on the Linux bridge itself (promiscuous), so it
-- sees what each VM delivered into it (after that NIC's faults: both copies of a
-- duplicate, corrupted bytes, delayed frames when they arrive) and what the bridge
-- sends itself (the NAT gateway).
function Bridge:capture(opts)
  check_bridge(self, "bridge:capture")
  local c = N.capture_new("bridge " .. self.name, opts, function(cap)
    for i = #self._captures, 1, -1 do if self._captures[i] == cap then table.remove(self._captures, i) end end
    if cap._live then cap._live:close(); cap._live = nil end
  end, "bridge:capture")
  local ok, live = pcall(provium._c_net_capture.live, c._h, self.ifname)
  if not ok then c:close(); error(live, 0) end
  c._live = live
  self._captures[#self._captures + 1] = c
  return c
end

-- Lab teardown: captures, every NIC's relay, then the Linux bridge. Never raises.
function Bridge:_teardown()
  if self._closed then return end
  self._closed = true
  -- a kept kvm VM's network stays as it is, in its holder (kvm.lua K:_keep)
  for _, nic in ipairs(self._nics) do if nic.vm._kept then return end end
  for i = #self._captures, 1, -1 do pcall(self._captures[i].close, self._captures[i]) end
  for _, nic in ipairs(self._nics) do
    for i = #(nic._captures or {}), 1, -1 do pcall(nic._captures[i].close, nic._captures[i]) end
  end
  for _, nic in ipairs(self._nics) do
    pcall(nic._unplumb, nic)
    local vn = nic.vm._nics or {}
    for i = #vn, 1, -1 do if vn[i] == nic then table.remove(vn, i) end end
  end
  self._nics = {}
  pcall(self._nat_teardown, self)
  pcall(C.link_del, self.ifname)
end

-- A VM (re)started: plumb its NICs into the new sandbox (vmlife.lua calls this).
function V.on_boot(vm)
  for _, nic in ipairs(vm._nics or {}) do
    nic:_plumb()
    nic.bridge:_apply()
  end
end
