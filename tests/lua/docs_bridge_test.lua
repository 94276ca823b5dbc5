-- docs/bridge.md example: wiring VMs, and a partition nemesis in the style of Jepsen.
local net = provium:bridge("cluster")
local nodes = {}
for i = 1, 3 do
  nodes[i] = provium:vm("n" .. i)
  net:attach(nodes[i]) -- eth0 with 10.213.x.(i+1)/24
end

-- true when `from` gets a reply from `to` within a second
local function reaches(from, to)
  return from:run("ping -c 1 -W 1 " .. to:ip()).code == 0
end

test("every node reaches every other node", function(t)
  t:match(net.subnet, "^10%.213%.%d+%.0/24$")
  for _, a in ipairs(nodes) do
    for _, b in ipairs(nodes) do
      if a ~= b then t:ok(reaches(a, b), a.name .. " -> " .. b.name) end
    end
  end
end)

test("nemesis: cut each node off in turn; the majority keeps talking", function(t)
  local history = {}
  for round = 1, #nodes do
    local lone, rest = nodes[round], {}
    for _, n in ipairs(nodes) do if n ~= lone then rest[#rest + 1] = n end end
    net:partition({ lone }, rest) -- start: a minority of one
    history[round] = {
      node = lone.name,
      cut = not reaches(lone, rest[1]) and not reaches(rest[2], lone),
      majority = reaches(rest[1], rest[2]),
    }
    net:heal() -- stop
  end
  for _, h in ipairs(history) do
    t:ok(h.cut, h.node .. " was cut off both ways")
    t:ok(h.majority, "the others talked while " .. h.node .. " was cut off")
  end
  t:ok(reaches(nodes[1], nodes[3]), "healed")
end)

test("a slow link between two nodes only", function(t)
  net:latency(30, { between = { nodes[1], nodes[2] } })
  local out = nodes[1]:succeed("ping -c 3 -i 0.2 " .. nodes[2]:ip())
  local avg = tonumber(out:match("min/avg/max = [%d.]+/([%d.]+)/"))
  t:ge(avg, 55) -- about 2 * 30 ms
  net:clear_faults()
end)
