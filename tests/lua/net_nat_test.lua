-- bridge:nat on the sandbox backend: a listener on the host end of the NAT veth
-- (never an outside address) is reachable from a VM; nat(false) removes it all.
-- Also run on Linux microVMs (--backend kvm) by the linux tier (tests/linux/run.sh).
local net_ok, net_why = provium._c_net.available()
if not net_ok then test("networking", function(t) t:skip(net_why) end) return end
local net = provium:bridge("nat", { nat = true })
local a = provium:vm("a")
net:attach(a)

local function sh(cmd)
  local f = io.popen(cmd .. " 2>&1")
  local out = f:read("a")
  f:close()
  return out
end

-- Is a TCP socket of this network namespace listening on the port? (/proc/net/tcp
-- and tcp6: local address "ADDR:PORT" in hex, state 0A is LISTEN)
local function listening(port)
  local want = (":%04X"):format(port)
  for _, path in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local f = io.open(path)
    if f then
      for line in f:lines() do
        local loc, st = line:match("^%s*%d+:%s+(%x+:%x+)%s+%x+:%x+%s+(%x%x)")
        if loc and st == "0A" and loc:sub(-5) == want then f:close() return true end
      end
      f:close()
    end
  end
  return false
end

test("a host listener on the NAT veth's host end is reachable from a VM", function(t)
  t:match(net.nat_ip, "^10%.214%.%d+%.%d+$")
  t:match(a:succeed("ip route"), "default via " .. net.subnet:match("^(%d+%.%d+%.%d+%.)") .. "1")
  -- a free port: were something already listening on it, listening() below would
  -- see that one, our nc would fail to bind, and the VM's line would go elsewhere
  local port
  repeat port = 20000 + math.random(0, 20000) until not listening(port)
  local out = provium.tmpdir() .. "/got"
  -- busybox's nc (-l -p): the sandbox root's, else the one on PATH (a cross build, as
  -- in the arm64 simulated host, has no sandbox root; busybox is its PATH's first)
  local busybox = (provium.env("PROVIUM_BUILD") or "build") .. "/rootfs/bin/busybox"
  if not io.open(busybox) then busybox = "busybox" end
  -- The listener's own limit is generous: the kernel completes a connection into the
  -- listen backlog before nc accepts it, so a listener killed by its timeout on a busy
  -- machine (15 s once) left the VM's nc thinking it delivered the line while nobody
  -- ever read it. It ends after one connection; the cleanup stops it if none came.
  local pidf = provium.tmpdir() .. "/nc.pid"
  os.execute(("timeout 120 %s nc -l -p %d > %s 2>&1 & echo $! > %s"):format(busybox, port, out, pidf))
  t:cleanup(function() os.execute(("kill $(cat %s) 2>/dev/null"):format(pidf)) end)
  -- listening, not just started: on a slow (simulated) host 0.3 s was not enough
  wait_until(function() return listening(port) end, { timeout = 10, message = "nc listens on port " .. port })
  local cap = net:capture({ filter = "tcp port " .. port })
  local r = a:run(("echo hello-from-vm | nc -w 2 %s %d"):format(net.nat_ip, port))
  t:eq(r.code, 0, r.stderr)
  wait_until(function() local f = io.open(out); local s = f and f:read("a"); if f then f:close() end; return s and s:find("hello-from-vm", 1, true) end,
    { timeout = 15, message = "the host listener got the VM's line" })
  -- the bridge capture holds the VM's SYN and the answer the gateway sent
  local syn = cap:expect("bridge tcp " .. a:ip():gsub("%.", "%%.") .. " > " .. net.nat_ip:gsub("%.", "%%."), { timeout = 5 })
  t:eq(syn.dport, port)
  local back = cap:expect("bridge tcp " .. net.nat_ip:gsub("%.", "%%.") .. " > " .. a:ip():gsub("%.", "%%."), { timeout = 5 })
  t:eq(back.sport, port)
  cap:close()
  t:match(sh("ip -o link show"), "pvh%x+%d+")
end)

test("nat(false) removes the veth from the host", function(t)
  local veth = net._nat.host_veth
  t:match(sh("ip -o link show " .. veth), veth)
  net:nat(false)
  t:eq(net.nat_ip, nil)
  -- (the whole list: iproute2 and busybox's ip word a missing device differently)
  t:ok(not sh("ip -o link show"):find(veth .. "[@:]"), veth .. " is still on the host")
  t:ne(a:run("ping -c 1 -W 1 10.214.0.1").code, 0)
end)

test("two NAT bridges get different host networks", function(t)
  local n1 = provium:bridge("nat1", { nat = true })
  local n2 = provium:bridge("nat2", { nat = true })
  t:ne(n1.nat_ip, n2.nat_ip)
  local function net30(ip)
    local a, b, c, d = ip:match("(%d+)%.(%d+)%.(%d+)%.(%d+)")
    return a .. "." .. b .. "." .. c .. "." .. (tonumber(d) // 4)
  end
  t:ne(net30(n1.nat_ip), net30(n2.nat_ip))
  local v = provium:vm("v2")
  n2:attach(v)
  t:eq(v:run("ping -c 1 -W 2 " .. n2.nat_ip).code, 0)
end)
