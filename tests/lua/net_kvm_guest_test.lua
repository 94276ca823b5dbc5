-- net_kvm_guest_test.lua — bridge:attach on the kvm backend, for real on this host
-- with the freestanding test guest net_pair.elf (build/guest, `make guest`; no
-- agent, so it runs under PVM): its virtio-net slot binds to a TAP on the bridge
-- through the relay's netpath, so frames the guest sends show in captures and
-- counters, link_down stops them, partitions and latency apply, detach frees the
-- slot. The guest sends "tx <payload>" as an 0x88b5 frame to its MAC with the last
-- byte replaced by peer=N, and prints "RX <payload>" for each frame it receives.
-- Configuring a Linux guest's interface through the agent runs in tests/linux.
local build = provium._c_vm.self_dir()

local function need(t)
  local f = io.open("/dev/kvm", "r")
  if not f then t:skip("/dev/kvm is missing or not accessible") end
  f:close()
  local p = build .. "/guest/net_pair.elf"
  f = io.open(p, "r")
  if not f then t:skip(p .. " is missing: `make guest` builds it") end
  f:close()
  return p
end

local function profile(elf, peer, slots)
  return { backend = "kvm", kernel = elf, cmdline = "console=ttyS0 peer=" .. peer, memory = 64,
    agent = false, nic_slots = slots }
end

-- a packet of the capture that carries payload (0x88b5 frame), or nil
local function find(cap, payload, timeout)
  local deadline = provium._sched.now() + (timeout or 5)
  while provium._sched.now() < deadline do
    local p = cap:next({ timeout = 0.2 })
    if p and p.data and p.data:find(payload, 1, true) then return p end
  end
  return nil
end

local function send(vm, payload)
  local con = vm:console()
  con:write("tx " .. payload .. "\n")
  con:expect("TX " .. payload:gsub("%p", "%%%0"), { timeout = 30 })
end

test("attach on a running kvm VM binds a link-down slot: frames reach the bridge, counters move, link_down stops them, detach frees it", function(t)
  local elf = need(t)
  local vm = provium:vm("np", profile(elf, 9, 2))
  vm:console():expect("NET: ready", { timeout = 60 })
  local slots = vm._sb:nic_slots()
  t:eq(#slots, 2, "two pre-provisioned slots")
  t:eq(slots[1].link, false, "a free slot is link-down")
  t:eq(slots[2].link, false)
  local br = provium:bridge("kb")
  local bcap = br:capture()
  local nic = br:attach(vm)
  t:eq(nic.ifname, "eth0")
  t:eq(nic.mac, slots[1].mac, "a running VM's NIC has its slot's MAC")
  t:ok(nic.tap ~= nil, "a TAP on the bridge")
  slots = vm._sb:nic_slots()
  t:eq(slots[1].used, true)
  t:eq(slots[1].link, true, "attach sets the slot's link up")
  local ncap = nic:capture()
  send(vm, "hello-one")
  local p = find(bcap, "hello-one")
  t:ok(p ~= nil, "the guest's frame is in the bridge capture")
  if p then
    t:eq(p.src_mac or p.src, nic.mac)
    t:eq(p.proto, "0x88b5")
  end
  local q = find(ncap, "hello-one")
  t:ok(q ~= nil, "and in the NIC capture")
  if q then t:eq(q.dir, "tx") end
  wait_until(function() return nic:counters().tx_packets == 1 end, { timeout = 5, message = "tx_packets 1" })
  t:eq(nic:counters().tx_bytes, 14 + #"hello-one")

  nic:link_down()
  t:eq(vm._sb:nic_slots()[1].link, false, "the guest's carrier is down")
  send(vm, "hello-two")
  t:eq(find(bcap, "hello-two", 1), nil, "nothing passes a down link")
  t:eq(nic:counters().tx_packets, 1)
  nic:link_up()
  send(vm, "hello-three")
  t:ok(find(bcap, "hello-three") ~= nil, "link up: frames pass again")
  wait_until(function() return nic:counters().tx_packets == 2 end, { timeout = 5, message = "tx_packets 2" })

  br:drop(1)
  send(vm, "hello-four")
  t:eq(find(bcap, "hello-four", 1), nil, "drop(1) drops it in netpath")
  wait_until(function() return nic:counters().tx_dropped >= 1 end, { timeout = 5, message = "tx_dropped counted" })
  br:clear_faults()

  br:detach(vm)
  slots = vm._sb:nic_slots()
  t:eq(slots[1].used, false, "detach frees the slot")
  t:eq(slots[1].link, false, "and sets its link down")
  -- the second and third attach use slots 1 and 2; a third has none left
  local n1 = br:attach(vm)
  t:eq(n1.ifname, "eth0")
  local br2 = provium:bridge("kb2")
  local n2 = br2:attach(vm)
  t:eq(n2.ifname, "eth1")
  local br3 = provium:bridge("kb3")
  local e = t:error(function() br3:attach(vm) end)
  t:eq(e.code, "unsupported")
  t:contains(e.message, "nic_slots")

  -- a restart re-makes the devices and re-binds both attachments (booted link-up)
  local before = n1:counters().tx_packets
  vm:console():write("quit\n")
  wait_until(function() return vm:state() ~= "running" end, { timeout = 60, message = "the guest exits" })
  vm:start()
  vm:console():expect("NET: ready", { timeout = 60 })
  slots = vm._sb:nic_slots()
  t:eq(slots[1].link, true, "eth0 boots link-up after a restart")
  t:eq(slots[2].link, true, "eth1 too")
  send(vm, "after-restart")
  t:ok(find(bcap, "after-restart") ~= nil, "frames pass after the restart")
  wait_until(function() return n1:counters().tx_packets == before + 1 end,
    { timeout = 5, message = "counters continue across the restart" })
  vm:console():write("quit\n")
end)

test("two kvm VMs attached before start exchange frames through the bridge; partition drops both ways, heal restores, latency delays", function(t)
  local elf = need(t)
  local br = provium:bridge("kp")
  -- attach before start: the bridge picks the MACs 02:70:76:<idx>:00:01 and :02
  local a = provium:vm("pa", profile(elf, 2, 0), { start = false })
  local b = provium:vm("pb", profile(elf, 1, 0), { start = false })
  local na, nb = br:attach(a), br:attach(b)
  t:match(na.mac, ":00:01$")
  t:match(nb.mac, ":00:02$")
  a:start()
  b:start()
  a:console():expect("NET: ready 01 %-> 02", { timeout = 60 })
  b:console():expect("NET: ready 02 %-> 01", { timeout = 60 })
  t:eq(a._sb:nic_slots()[1].link, true, "a NIC attached before start boots link-up")
  send(a, "a-to-b")
  b:console():expect("RX a%-to%-b", { timeout = 10 })
  send(b, "b-to-a")
  a:console():expect("RX b%-to%-a", { timeout = 10 })
  t:eq(na:counters().rx_packets >= 1, true, "a received")

  br:partition({ a }, { b })
  local capb = nb:capture({ filter = "ether proto 0x88b5" })
  local drops = na:counters().tx_dropped + nb:counters().tx_dropped
  send(a, "cut-ab")
  send(b, "cut-ba")
  provium._sched.sleep(0.5)
  for _, p in ipairs(capb:drain()) do
    t:ok(not p.data:find("cut-", 1, true), "partition: nothing crossed b's attachment (" .. p.summary .. ")")
  end
  t:eq(na:counters().tx_dropped + nb:counters().tx_dropped, drops + 2, "both frames dropped in netpath")
  t:ok(not b:console():log():find("RX cut-ab", 1, true), "b did not print it")
  t:ok(not a:console():log():find("RX cut-ba", 1, true), "a did not print it")
  br:heal()
  send(a, "healed")
  b:console():expect("RX healed", { timeout = 10 })

  br:latency(300)
  local t0 = provium._sched.now()
  send(a, "late")
  b:console():expect("RX late", { timeout = 10 })
  t:ok(provium._sched.now() - t0 >= 0.3, "latency 300 ms: the frame arrived no sooner")
  br:clear_faults()
  a:console():write("quit\n")
  b:console():write("quit\n")
end)

test("lab:snapshot saves the bridge wiring; lab:restore re-creates the bridge and re-attaches both VMs, which exchange frames again", function(t)
  local elf = need(t)
  local lab = provium:lab("wired")
  local br = lab:bridge("kw", { subnet = "10.77.0.0/24" })
  local a = lab:vm("wa", profile(elf, 2, 0), { start = false })
  local b = lab:vm("wb", profile(elf, 1, 0), { start = false })
  local na, nb = br:attach(a), br:attach(b)
  a:start()
  b:start()
  a:console():expect("NET: ready", { timeout = 60 })
  b:console():expect("NET: ready", { timeout = 60 })
  nb:link_down()
  -- a single VM's snapshot restores with its slots free and link-down (no bridge)
  local one = a:snapshot(("netone-%d"):format(math.floor(provium._c_vm.mono_ns() % 1e9)))
  local r1 = one:restore(provium, "wa-one")
  t:eq(r1._sb:nic_slots()[1].link, false, "a restored slot is link-down until attached")
  t:eq(r1._sb:nic_slots()[1].used, false)
  t:eq(#r1:nics(), 0)
  r1:kill()
  one:delete()
  local name = ("netwire-%d"):format(math.floor(provium._c_vm.mono_ns() % 1e9))
  local ls = lab:snapshot(name)
  local info = ls:info()
  t:eq(#info.bridges, 1)
  t:eq(info.bridges[1].name, "kw")
  t:eq(info.bridges[1].subnet, "10.77.0.0/24")
  t:eq(#info.bridges[1].nics, 2)
  t:eq(info.bridges[1].nics[1].vm, "wa")
  t:eq(info.bridges[1].nics[1].ip, na.ip)
  t:eq(info.bridges[1].nics[1].mac, na.mac)
  t:eq(info.bridges[1].nics[2].link, "down")
  lab:close()

  local other = provium:lab("rewired")
  local vms = other:restore(ls)
  t:eq(#vms, 2)
  local bs = other:bridges()
  t:eq(#bs, 1, "the bridge is re-created")
  local rb = bs[1]
  t:eq(rb.name, "kw")
  t:eq(rb.subnet, "10.77.0.0/24")
  local ra, rbm = vms[1], vms[2]
  t:eq(ra:ip(rb), na.ip, "same ip")
  t:eq(rbm:ip(rb), nb.ip)
  t:eq(ra:nic(rb).mac, na.mac, "same MAC (the slot's saved one)")
  t:eq(rbm:nic(rb).mac, nb.mac)
  t:eq(rbm:nic(rb):link(), "down", "link state restored")
  t:eq(ra._sb:nic_slots()[1].link, true)
  t:eq(rbm._sb:nic_slots()[1].link, false)
  rbm:nic(rb):link_up()
  send(ra, "after-restore")
  rbm:console():expect("RX after%-restore", { timeout = 10 })
  local n3 = rb:attach(provium:vm("wc", profile(elf, 1, 1)))
  t:ok(n3.ip ~= na.ip and n3.ip ~= nb.ip, "a new attachment gets a fresh address")
  ls:delete()
end)
