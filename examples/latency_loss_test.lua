-- examples/latency_loss_test.lua — latency and packet loss between two services.
-- "web" queries "db" (an HTTP service standing in for a database) across a bridge;
-- the faults apply to that pair only, so everything else on the network is normal.
-- Both backends: latency and loss are applied in provium's datapath (no netem).

local net = provium:bridge("services")
local web, db, other = provium:vm("web"), provium:vm("db"), provium:vm("other")
net:attach(web); net:attach(db); net:attach(other)
db:mkdir("/srv")
db:write_file("/srv/row", "id=1 name=provium\n")
db:succeed("httpd -p 5432 -h /srv")
db:wait_for_port(5432)

-- one query from web to db: the HTTP GET, as {code, stdout, duration (s), ...}
local function query(timeout)
  return web:run(("timeout %d wget -q -O - http://%s:5432/row"):format(timeout or 5, db:ip()))
end

test("100 ms each way between web and db: a query takes two slow round trips", function(t)
  local fast = query()
  t:eq(fast.stdout, "id=1 name=provium\n")
  net:latency(100, { between = { web, db } })
  local slow = query()
  t:eq(slow.stdout, "id=1 name=provium\n")
  t:ge(slow.duration, 0.35) -- connect + request: 2 round trips of 2 x 100 ms
  t:log(("query: %.3f s healthy, %.3f s with latency"):format(fast.duration, slow.duration))
  -- the third VM is not on the slow pair: its fastest ping stays well under the
  -- 200 ms any delayed round trip takes
  local rtt = tonumber(other:succeed("ping -c 3 -i 0.2 " .. db:ip()):match("min/avg/max = ([%d.]+)/"))
  t:lt(rtt, 150, "other -> db is not delayed")
  net:latency(0)
end)

test("30% loss between web and db: pings go missing, TCP retransmits, queries answer", function(t)
  net:drop(0.3, { between = { web, db }, seed = 7 }) -- the same seed, the same drops
  local out = web:run("ping -c 20 -i 0.1 -W 1 " .. db:ip()).stdout
  local loss = tonumber(out:match("(%d+)%% packet loss"))
  t:log(out:match("[^\n]*packet loss[^\n]*"))
  t:gt(loss, 0); t:lt(loss, 100)
  local r = query(20) -- TCP hides the loss from the application, given time
  t:eq(r.stdout, "id=1 name=provium\n")
  t:log(("the query took %.2f s through the loss"):format(r.duration))
  net:drop(0)
end)
