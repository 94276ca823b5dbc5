-- docs/nic.md example: counters, link state and a capture of one attachment.
local net = provium:bridge("lan")
local web, client = provium:vm("web"), provium:vm("client")
local nic = net:attach(web)
net:attach(client)

test("counters count what the guest sent and received", function(t)
  local before = nic:counters()
  client:succeed("ping -c 2 -i 0.2 " .. web:ip())
  local after = nic:counters()
  t:ge(after.rx_packets - before.rx_packets, 2) -- echo requests in
  t:ge(after.tx_packets - before.tx_packets, 2) -- echo replies out
end)

test("link_down: the guest sees no carrier and nothing passes", function(t)
  nic:link_down()
  t:eq(web:succeed("cat /sys/class/net/" .. nic.ifname .. "/carrier"), "0\n")
  t:eq(nic:link(), "down")
  client:fail("ping -c 1 -W 1 " .. web:ip())
  nic:link_up()
  client:wait_until_succeeds("ping -c 1 -W 1 " .. web:ip())
end)

test("capture one attachment, with a BPF filter and a pcap file", function(t)
  local cap = nic:capture({ filter = "icmp", path = provium.tmpdir() .. "/web.pcap" })
  client:succeed("ping -c 1 " .. web:ip())
  local req = cap:expect("rx icmp %S+ > %S+ echo%-request")
  t:eq(req.src, client:ip())
  local rep = cap:next()
  t:eq(rep.dir, "tx")
  t:eq(rep.dst, client:ip())
  cap:close() -- web.pcap is complete: tcpdump -r reads it
end)
