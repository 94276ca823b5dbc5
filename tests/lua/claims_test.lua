-- Claims and barriers across files run in parallel: child runs at -j2 of two fixture
-- files, checked from their event streams.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/helpers/child.lua")

test("a claim serialises two files run in parallel", function(t)
  local r = child.run("claim_a.fixture.lua claim_b.fixture.lua")
  t:eq(r.code, 0, r.out)
  local spans = {}
  for _, e in ipairs(child.find(r, "claim", { resource = "shared-res" })) do
    spans[e.file] = spans[e.file] or {}
    spans[e.file][e.action] = e.t
  end
  local a, b = spans["claim_a.fixture.lua"], spans["claim_b.fixture.lua"]
  t:ok(a and a.wait and a.acquire and a.release, "claim_a: wait, acquire, release events")
  t:ok(b and b.wait and b.acquire and b.release, "claim_b: wait, acquire, release events")
  -- one held it while the other waited: the holds do not overlap
  local first, second = a, b
  if b.acquire < a.acquire then first, second = b, a end
  t:ge(second.acquire, first.release, "the second file acquired only after the first released")
  t:ge((second.release - first.acquire) / 1e9, 0.6, "two 0.3 s holds, one after the other")
end)

test("a barrier across two parallel files releases both when both arrived", function(t)
  local r = child.run("barrier_a.fixture.lua barrier_b.fixture.lua")
  t:eq(r.code, 0, r.out)
  local ev = child.find(r, "barrier", { name = "meet" })
  t:eq(#ev, 2)
  local idx = { ev[1].arrived, ev[2].arrived }
  table.sort(idx)
  t:eq(idx, { 1, 2 })
  t:eq(ev[1].parties, 2)
  -- nobody passed before both arrived: the late file arrives 0.3 s after its test
  -- started, the early one right after its test started (the files may start at
  -- different times on a loaded host, so compare with both)
  local late_arrival = r.by_test["arrives late"].start.t + 0.3e9
  local early_arrival = r.by_test["arrives early"].start.t
  for _, e in ipairs(ev) do
    t:ge(e.t, late_arrival - 0.01e9, "released after the late file arrived")
    t:ge(e.t, early_arrival, "released after the early file arrived")
  end
end)
