-- Capture, counters, link state, duplicate and corrupt on the sandbox backend
-- (API.md "Bridge and Nic", "Streams").
-- Also run on Linux microVMs (--backend kvm) by the linux tier (tests/linux/run.sh).
local net_ok, net_why = provium._c_net.available()
if not net_ok then test("networking", function(t) t:skip(net_why) end) return end
local net = provium:bridge("cap")
local a, b = provium:vm("a"), provium:vm("b")
local na, nb = net:attach(a), net:attach(b)
a:succeed("ping -c 1 -W 2 " .. b:ip()) -- ARP settled

test("a bridge capture holds the ICMP echo request and reply with the right addresses", function(t)
  local cap = net:capture({ filter = "icmp" })
  a:succeed("ping -c 1 -W 2 " .. b:ip())
  local req = cap:expect("icmp " .. a:ip():gsub("%.", "%%.") .. " > " .. b:ip():gsub("%.", "%%.") .. " echo%-request", { timeout = 5 })
  t:eq(req.src, a:ip()); t:eq(req.dst, b:ip()); t:eq(req.proto, "icmp"); t:eq(req.icmp_type, 8)
  t:eq(req.src_mac, na.mac); t:eq(req.dst_mac, nb.mac)
  t:eq(req.len, #req.data); t:eq(req.len, 98)
  local rep = cap:expect("echo%-reply", { timeout = 5 })
  t:eq(rep.src, b:ip()); t:eq(rep.dst, a:ip())
  t:ge(rep.time, req.time)
  cap:close()
  t:ok(cap:eof())
end)

test("the filter keeps only what it matches; a bad filter is invalid", function(t)
  local cap = net:capture({ filter = "tcp port 7001" })
  a:succeed("ping -c 2 -i 0.2 -W 2 " .. b:ip())
  a:run("nc -w 1 " .. b:ip() .. " 7001 </dev/null") -- refused: SYN out, RST back
  local p = cap:next({ timeout = 5 })
  t:ok(p, "the SYN")
  t:eq(p.proto, "tcp"); t:eq(p.dport, 7001); t:eq(p.src, a:ip())
  for _, q in ipairs(cap:drain()) do t:eq(q.proto, "tcp", "only TCP passed the filter") end
  cap:close()
  t:eq(t:error(function() net:capture({ filter = "no such filter (" }) end).code, "invalid")
end)

test("the pcap file reads with tcpdump -r", function(t)
  local path = provium.tmpdir() .. "/cap.pcap"
  local cap = na:capture({ path = path, filter = "icmp" })
  a:succeed("ping -c 2 -i 0.2 -W 2 " .. b:ip())
  wait_until(function() return cap:stats().matched >= 4 end, { timeout = 5 })
  cap:close()
  local f = io.popen("tcpdump -n -r " .. path .. " 2>&1")
  local out = f:read("a"); f:close()
  t:log(out)
  local _, n = out:gsub("ICMP echo request", "")
  t:eq(n, 2)
  t:match(out, a:ip():gsub("%.", "%%.") .. " > " .. b:ip():gsub("%.", "%%.") .. ": ICMP echo request")
  t:match(out, b:ip():gsub("%.", "%%.") .. " > " .. a:ip():gsub("%.", "%%.") .. ": ICMP echo reply")
end)

test("counters move by the right amounts", function(t)
  local c0, d0 = na:counters(), nb:counters()
  a:succeed("ping -c 5 -i 0.2 -W 2 " .. b:ip())
  local c1, d1 = na:counters(), nb:counters()
  -- 5 requests out of a, 5 replies in (plus possibly ARP refreshes)
  t:ge(c1.tx_packets - c0.tx_packets, 5); t:le(c1.tx_packets - c0.tx_packets, 7)
  t:ge(c1.rx_packets - c0.rx_packets, 5); t:le(c1.rx_packets - c0.rx_packets, 7)
  t:ge(c1.tx_bytes - c0.tx_bytes, 5 * 98)
  t:ge(d1.rx_packets - d0.rx_packets, 5)
  t:eq(c1.tx_dropped, c0.tx_dropped)
  net:isolate(a)
  a:run("ping -c 3 -i 0.2 -W 1 " .. b:ip())
  net:unisolate(a)
  local c2 = na:counters()
  t:ge(c2.tx_dropped - c1.tx_dropped, 3)
end)

test("link_down: the guest sees NO-CARRIER and traffic stops; link_up restores", function(t)
  t:eq(na:link(), "up")
  na:link_down()
  t:eq(na:link(), "down")
  -- the kernel reports it at once in the carrier flag; `ip link` says NO-CARRIER
  -- once link watch has run (up to a second later)
  a:wait_until_succeeds("ip link show eth0 | grep NO-CARRIER", { timeout = 5 })
  t:eq(a:succeed("cat /sys/class/net/eth0/carrier"), "0\n")
  t:ne(a:run("ping -c 1 -W 1 " .. b:ip()).code, 0)
  t:ne(b:run("ping -c 1 -W 1 " .. a:ip()).code, 0)
  na:link_up()
  t:eq(a:succeed("cat /sys/class/net/eth0/carrier"), "1\n")
  a:wait_until_succeeds("ping -c 1 -W 1 " .. b:ip(), { timeout = 10 })
end)

test("duplicate shows every frame twice in a capture", function(t)
  net:duplicate(1.0, { between = { a, b } })
  local cap = nb:capture({ filter = "icmp[icmptype] == icmp-echo" })
  local bcap = net:capture({ filter = "icmp[icmptype] == icmp-echo" })
  a:run("ping -c 3 -i 0.2 -W 2 " .. b:ip())
  net:duplicate(0, { between = { a, b } })
  wait_until(function() return cap:stats().matched >= 6 and bcap:stats().matched >= 6 end, { timeout = 5 })
  t:eq(#bcap:drain(), 6, "the bridge carried both copies")
  bcap:close()
  local pk = cap:drain()
  cap:close()
  t:eq(#pk, 6)
  t:eq(pk[1].data, pk[2].data); t:eq(pk[3].data, pk[4].data)
  t:ne(pk[1].data, pk[3].data)
end)

-- a 98-byte echo request as a sent it: Ethernet header, IP and ICMP checksums intact
local function intact(p)
  local d = p.data
  if d:sub(1, 14) ~= (nb.mac .. na.mac):gsub(":", ""):gsub("..", function(h) return string.char(tonumber(h, 16)) end) .. "\8\0" then return false end
  local function sum(s)
    local x = 0
    for i = 1, #s - 1, 2 do x = x + s:byte(i) * 256 + s:byte(i + 1) end
    while x > 0xffff do x = (x & 0xffff) + (x >> 16) end
    return x
  end
  return sum(d:sub(15, 34)) == 0xffff and sum(d:sub(35)) == 0xffff
end

local function damaged(n)
  local cap = na:capture()
  -- Two flipped bits (one per NIC of the path) can cancel out in the ICMP checksum: a
  -- reply whose timestamp was hit gives an RTT of hours, and busybox ping then waits
  -- two RTTs for the rest after its last request, -w or not (1 run in 40 or so). Its
  -- requests are all out after n * 0.1 s: a ping still waiting at 4 s is ended.
  local p = a:spawn(("ping -c %d -i 0.1 -W 1 %s"):format(n, b:ip()))
  if not pcall(p.wait, p, { timeout = 4 }) then
    p:kill()
    p:wait({ timeout = 5 })
  end
  wait_until(function() return cap:stats().matched >= n end, { timeout = 5 })
  local bad, total = 0, 0
  for _, p in ipairs(cap:drain()) do
    if p.dir == "tx" and p.len == 98 then
      total = total + 1
      if not intact(p) then bad = bad + 1 end
    end
  end
  cap:close()
  return bad, total
end

test("corrupt damages every frame it hits, visibly in a capture", function(t)
  local bad, total = damaged(5)
  t:eq(total, 5); t:eq(bad, 0, "clean frames are intact")
  net:corrupt(1.0, { between = { a, b }, seed = 3 })
  bad, total = damaged(10)
  net:clear_faults()
  t:eq(total, 10); t:eq(bad, 10, "every corrupted frame has one flipped bit")
end)
