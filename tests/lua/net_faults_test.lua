-- Network faults on the sandbox backend (API.md "Bridge and Nic"), enforced in the
-- NIC datapath (devices/netpath_rules.c): partition, heal, isolate, latency, drop.
-- Also run on Linux microVMs (--backend kvm) by the linux tier (tests/linux/run.sh).
local net_ok, net_why = provium._c_net.available()
if not net_ok then test("networking", function(t) t:skip(net_why) end) return end
local net = provium:bridge("faults")
local a, b, c = provium:vm("a"), provium:vm("b"), provium:vm("c")
net:attach(a); net:attach(b); net:attach(c)

-- true when `from` gets an answer from `to` (one ping, 1 s)
local function reaches(from, to)
  return from:run("ping -c 1 -W 1 " .. to:ip()).code == 0
end

test("partition blocks both directions between groups, not within; heal restores", function(t)
  t:ok(reaches(a, b)); t:ok(reaches(a, c))
  net:partition({ a, b }, { c })
  t:ok(reaches(a, b), "a-b in one group")
  t:ok(not reaches(a, c), "a-c across groups")
  t:ok(not reaches(c, a), "c-a across groups")
  t:ok(not reaches(c, b), "c-b across groups")
  net:heal()
  t:ok(reaches(c, a), "after heal")
  t:ok(reaches(b, c), "after heal")
end)

test("partition with three groups", function(t)
  net:partition({ a }, { b }, { c })
  t:ok(not reaches(a, b)); t:ok(not reaches(b, c)); t:ok(not reaches(c, a))
  net:heal()
  t:ok(reaches(a, b))
end)

test("isolate cuts one VM from all; unisolate restores", function(t)
  net:isolate(c)
  t:ok(not reaches(c, a)); t:ok(not reaches(b, c))
  t:ok(reaches(a, b), "the others still talk")
  net:unisolate(c)
  t:ok(reaches(c, a))
end)

-- busybox ping's summary: "round-trip min/avg/max = 0.1/0.2/0.3 ms" -> min, avg, max.
-- A delay of L ms each way puts every round trip at 2L or more, whatever the host; a
-- path without the fault stays under that, however slow the host (an emulated KVM host
-- takes tens of ms per ping), so the checks compare with the delay, not with hardware.
local function rtt(out)
  local mn, avg, mx = out:match("min/avg/max = ([%d.]+)/([%d.]+)/([%d.]+)")
  return tonumber(mn), tonumber(avg), tonumber(mx)
end

test("latency 50 ms shows in the ping round trip (about 100 ms)", function(t)
  local _, base = rtt(a:succeed("ping -c 3 -i 0.2 " .. b:ip()))
  net:latency(50)
  local mn, avg = rtt(a:succeed("ping -c 5 -i 0.2 " .. b:ip()))
  t:log(("rtt without latency %.2f ms, with 50 ms min %.2f avg %.2f ms"):format(base, mn, avg))
  t:ge(mn, 99, "every round trip is delayed twice by 50 ms")
  t:le(avg, base + 200)
  net:latency(0)
  t:lt((rtt(a:succeed("ping -c 3 -i 0.2 " .. b:ip()))), 100, "no round trip waits 2 x 50 ms any more")
end)

test("latency between one pair only, with jitter", function(t)
  net:latency(40, { between = { a, c }, jitter = 10 })
  local acmin, ac = rtt(a:succeed("ping -c 4 -i 0.2 " .. c:ip()))
  local abmin, ab = rtt(a:succeed("ping -c 4 -i 0.2 " .. b:ip()))
  t:log(("a-c %.2f ms (min %.2f), a-b %.2f ms (min %.2f)"):format(ac, acmin, ab, abmin))
  t:ge(acmin, 59, "a-c: 40 +- 10 ms each way")
  t:ge(ac, 75); t:le(ac, ab + 200)
  t:lt(abmin, 60, "a-b is not delayed")
  net:clear_faults()
end)

test("a long delay on one pair never slows the others (the timer queue)", function(t)
  net:latency(400, { between = { a, c } })
  local slow = provium.go(function() return (select(2, rtt(a:succeed("ping -c 3 -i 0.2 -W 3 " .. c:ip())))) end)
  local _, fast, fastmax = rtt(b:succeed("ping -c 10 -i 0.05 " .. a:ip()))
  local ac = slow:wait()
  net:clear_faults()
  t:log(("a-c %.1f ms while b-a %.2f ms (max %.2f)"):format(ac, fast, fastmax))
  t:ge(ac, 780)
  t:lt(fastmax, 400, "no b-a frame waited behind a-c's 400 ms frames")
end)

-- the guest's view of the drops: tx_dropped of a's NIC over 1000 echo requests
local function drop_run(seed)
  net:drop(0.3, { between = { a, b }, seed = seed })
  local before = a:nic(net):counters()
  a:run("ping -c 1000 -i 0.002 -W 1 -q " .. b:ip(), { timeout = 60 })
  local after = a:nic(net):counters()
  net:drop(0, { between = { a, b } })
  return after.tx_dropped - before.tx_dropped, after.tx_packets - before.tx_packets
end

test("drop 0.3 over 1000 packets is within bounds and the same seed repeats it", function(t)
  -- static neighbours: no ARP frame may shift the draws between the runs
  a:succeed(("arp -s %s %s"):format(b:ip(), b:nic(net).mac))
  b:succeed(("arp -s %s %s"):format(a:ip(), a:nic(net).mac))
  local d1, p1 = drop_run(42)
  local d2, p2 = drop_run(42)
  t:log(("seed 42: %d dropped, %d passed; again: %d, %d"):format(d1, p1, d2, p2))
  -- 1000 draws at p = 0.3: mean 300, sd 14.5; 5 sd either way
  t:ge(d1, 228); t:le(d1, 372)
  t:eq(d1, d2, "the same seed drops the same frames")
  local d3 = drop_run(7)
  t:ne(d3, d1, "another seed drops others")
end)
