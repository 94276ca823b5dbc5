-- Bridges and NICs (API.md "Bridge and Nic"): addresses, ping and TCP between two
-- VMs, attach to a running VM, detach, vm:ip/nics/nic. Runs on the sandbox backend
-- and, in the linux tier (tests/linux/run.sh), on Linux microVMs with --backend kvm,
-- where each NIC is a virtio-net slot bound through netpath to a TAP on the bridge;
-- the kvm differences are the `provium.backend() == "kvm"` branches.
local net_ok, net_why = provium._c_net.available()
if not net_ok then test("networking", function(t) t:skip(net_why) end) return end
local kvm = provium.backend() == "kvm"
local net = provium:bridge("net")
local a = provium:vm("a")
local b = provium:vm("b", nil, { start = false })
local na = net:attach(a)
local nb = net:attach(b)          -- before start: plumbed when b starts
b:start()

test("the bridge has a /24 from 10.213.0.0/16 and NICs get addresses from it", function(t)
  t:eq(net.name, "net")
  t:match(net.subnet, "^10%.213%.%d+%.0/24$")
  local prefix = net.subnet:match("^(10%.213%.%d+%.)")
  t:eq(a:ip(), prefix .. "2")
  t:eq(b:ip(net), prefix .. "3")
  t:eq(na.ip, a:ip())
  if kvm then
    -- a was running when attached, so its NIC is a pre-provisioned slot with the
    -- slot's MAC; b was attached before start and boots with the bridge's MAC
    t:match(na.mac, "^02:6b:")
    t:match(nb.mac, "^02:70:76:")
  else
    t:match(na.mac, "^02:70:76:")
  end
  t:eq(na.ifname, "eth0")
  t:match(na.tap, "^pvt%d+$")
  t:eq(#net:vms(), 2)
  t:eq(a:nic(net), na)
  t:eq(#a:nics(), 1)
  t:match(a:succeed("ip -4 addr show eth0"), "inet " .. a:ip():gsub("%.", "%%.") .. "/24")
end)

test("ping works both ways", function(t)
  t:match(a:succeed("ping -c 3 -W 2 " .. b:ip()), "3 packets received")
  t:match(b:succeed("ping -c 3 -W 2 " .. a:ip()), "3 packets received")
end)

test("TCP between two VMs", function(t)
  local p = b:spawn("nc -l -p 7000")
  b:wait_for_port(7000)
  a:succeed("echo hello-over-tcp | nc -w 2 " .. b:ip() .. " 7000")
  local r = p:wait({ timeout = 10 })
  t:eq(r.stdout, "hello-over-tcp\n")
end)

test("attach to a running VM; detach removes the interface", function(t)
  local c = provium:vm("c")
  local nc = net:attach(c, { ip = net.subnet:match("^(10%.213%.%d+%.)") .. "77" })
  t:eq(c:ip(), nc.ip)
  t:match(c:succeed("ping -c 2 -W 2 " .. a:ip()), "2 packets received")
  net:detach(c)
  t:eq(c:ip(), nil)
  t:eq(#net:vms(), 2)
  if kvm then
    -- the slot's eth0 stays in the guest, link down and without an address
    -- (carrier cannot be read while the interface is down: operstate says it)
    c:wait_until_succeeds("grep -qx down /sys/class/net/eth0/operstate", { timeout = 10 })
    t:eq(c:run("ip link show eth0").stdout:find("[<,]UP[,>]"), nil, "eth0 is not up")
    t:eq(c:run("ip -4 addr show eth0").stdout:find("inet ", 1, true), nil)
  else
    c:fail("ip link show eth0")
  end
end)

test("a VM restart re-plumbs its NIC", function(t)
  b:reboot()
  t:match(b:succeed("ip -4 addr show eth0"), b:ip():gsub("%.", "%%."))
  t:match(a:succeed("ping -c 2 -W 2 " .. b:ip()), "2 packets received")
end)

test("bad arguments raise invalid", function(t)
  t:eq(t:error(function() net:attach("x") end).code, "invalid")
  t:eq(t:error(function() net:attach(a) end).code, "invalid")
  t:eq(t:error(function() provium:bridge("net") end).code, "invalid")
  t:eq(t:error(function() provium:bridge("x", { subnet = "nope" }) end).code, "invalid")
end)
