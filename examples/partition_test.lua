-- examples/partition_test.lua — a three-node cluster, partitioned Jepsen-style and
-- healed. Each node serves its name over HTTP; a node "has quorum" when it reaches a
-- majority of the cluster (itself included). A nemesis cuts each node off in turn
-- while a checker records every node's view; the history must show the lone node
-- without quorum, the other two with it (never two majorities: no split brain), and
-- the whole cluster back together after each heal.
-- Both backends: the partition is enforced in provium's datapath, not in the guests.

local net = provium:bridge("cluster")
local nodes = {}
for i = 1, 3 do
  nodes[i] = provium:vm("n" .. i)
  net:attach(nodes[i]) -- eth0, 10.213.x.(i+1)/24
end
for _, n in ipairs(nodes) do
  n:mkdir("/srv")
  n:write_file("/srv/name", n.name .. "\n")
  n:succeed("httpd -p 7000 -h /srv") -- busybox httpd, detaches
  n:wait_for_port(7000)
end

-- The sorted names `node` reaches: one GET per peer, in parallel in the guest, 2 s each.
local function view(node)
  local gets = {}
  for _, peer in ipairs(nodes) do
    if peer ~= node then
      gets[#gets + 1] = ("timeout 2 wget -q -O - http://%s:7000/name &"):format(peer:ip())
    end
  end
  local seen = { node.name }
  for name in node:run(table.concat(gets, " ") .. " wait").stdout:gmatch("%S+") do
    seen[#seen + 1] = name
  end
  table.sort(seen)
  return seen
end

-- Every node's view, taken at the same time (one task per node).
local function observe()
  local views = provium.all({
    function() return view(nodes[1]) end,
    function() return view(nodes[2]) end,
    function() return view(nodes[3]) end,
  })
  local by_name = {}
  for i, n in ipairs(nodes) do by_name[n.name] = views[i] end
  return by_name
end

local function has_quorum(v) return #v * 2 > #nodes end
local ALL = { "n1", "n2", "n3" }

test("the healthy cluster: every node sees every node", function(t)
  local v -- (the first contact, ARP and httpd's first fork, may outlast 2 s on a slow host)
  wait_until(function() v = observe(); return #v.n1 + #v.n2 + #v.n3 == 9 end, { timeout = 60 })
  for name, view in pairs(v) do t:eq(view, ALL, name .. "'s view") end
end)

test("nemesis: cut each node off in turn; one majority at a time; heal", function(t)
  local history = {}
  for round, lone in ipairs(nodes) do
    local rest = {}
    for _, n in ipairs(nodes) do if n ~= lone then rest[#rest + 1] = n end end
    net:partition({ lone }, rest)                  -- nemesis: start
    history[round] = { lone = lone.name, during = observe() }
    net:heal()                                     -- nemesis: stop
    history[round].after = observe()
  end
  -- the checker
  for _, h in ipairs(history) do
    local majorities = 0
    for name, v in pairs(h.during) do
      t:eq(has_quorum(v), name ~= h.lone, name .. " has quorum iff it is not " .. h.lone)
      if has_quorum(v) then majorities = majorities + 1 end
    end
    t:eq(h.during[h.lone], { h.lone }, h.lone .. " was cut off both ways")
    t:eq(majorities, 2, "one majority side of two nodes while " .. h.lone .. " was out")
    for name, v in pairs(h.after) do t:eq(v, ALL, name .. " after healing " .. h.lone) end
  end
end)
