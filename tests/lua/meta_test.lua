-- Meta keys (slow, skip, tags, timeout, spec, pass-through keys) and the selection
-- flags, checked on the events of child runs of fixtures/meta.fixture.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/helpers/child.lua")

local plain
local function run_plain()
  plain = plain or child.run("meta.fixture.lua")
  return plain
end
local function outcome(r, name)
  local e = r.by_test[name]
  return e and e["end"] and e["end"].outcome, e and e["end"] and e["end"].message
end

test("slow tests are skipped without --slow and run with it", function(t)
  t:eq({ outcome(run_plain(), "slow one") }, { "skip", "slow test (use --slow)" })
  local r = child.run("--slow -f 'slow one' meta.fixture.lua")
  t:eq(outcome(r, "slow one"), "pass")
end)

test("skip = true and skip = reason", function(t)
  t:eq({ outcome(run_plain(), "skipped") }, { "skip", "skipped" })
  t:eq({ outcome(run_plain(), "skipped with reason") }, { "skip", "flaky on CI" })
end)

test("--tags selects, --exclude-tags removes", function(t)
  local r = child.run("--tags net meta.fixture.lua")
  t:eq(outcome(r, "tagged net"), "pass")
  t:eq(rawget(r.by_test, "tagged disk"), nil)
  t:eq(rawget(r.by_test, "untagged"), nil)
  r = child.run("--exclude-tags net,slowio meta.fixture.lua")
  t:eq(rawget(r.by_test, "tagged net"), nil)
  t:eq(rawget(r.by_test, "tagged disk"), nil)
  t:eq(outcome(r, "untagged"), "pass")
end)

test("-f matches a substring or a Lua pattern", function(t)
  local r = child.run("-f 'tagged d' meta.fixture.lua")
  t:eq(outcome(r, "tagged disk"), "pass")
  t:eq(rawget(r.by_test, "tagged net"), nil)
  r = child.run("-f '^un.-ed$' meta.fixture.lua")
  t:eq(outcome(r, "untagged"), "pass")
  t:eq(rawget(r.by_test, "tagged disk"), nil)
  r = child.run("-f 'no such test' meta.fixture.lua")
  t:eq(r.code, 4, "nothing matched")
end)

test("meta.timeout stops a test that never returns, with its location", function(t)
  local e = run_plain().by_test["never returns"]["end"]
  t:eq(e.outcome, "error")
  t:eq(e.where, "meta.fixture.lua:12")
  t:match(e.message, "^test timed out after 0.4 s, sleeping 0.05 s")
  t:lt(e.duration_ns / 1e9, 10, "stopped, not left running")
end)

test("--timeout and PROVIUM_TIMEOUT set the default per-test timeout; meta.timeout wins", function(t)
  local r = child.run("--timeout 0.2 timeout.fixture.lua")
  local e = r.by_test["hangs for the default timeout"]["end"]
  t:eq(e.outcome, "error")
  t:match(e.message, "^test timed out after 0.2 s")
  t:eq(e.where, "timeout.fixture.lua:4")
  r = child.run("timeout.fixture.lua", { PROVIUM_TIMEOUT = "0.3" })
  t:match(r.by_test["hangs for the default timeout"]["end"].message, "^test timed out after 0.3 s")
  r = child.run("--timeout 0.2 -f 'never returns' meta.fixture.lua")
  t:match(r.by_test["never returns"]["end"].message, "timed out after 0.4 s")
end)

test("spec and every other meta key appear in test_start and test_end", function(t)
  local bt = run_plain().by_test["spec and extras"]
  local want = { spec = { "API-1", "API-2" }, owner = "storage-team", weight = 3, nested = { a = { 1, 2 } } }
  t:eq(bt.start.meta, want)
  t:eq(bt["end"].meta, want)
  t:eq(bt["end"].outcome, "pass")
  t:eq(run_plain().by_test["tagged disk"].start.meta.tags, { "disk", "slowio" })
end)

test("a test that does not run gets a test_end and no test_start", function(t)
  -- docs/events.md: test_start comes before each test that runs; test_end after every
  -- test, including skipped, slow-not-run and todo ones
  for _, name in ipairs({ "slow one", "skipped", "skipped with reason" }) do
    local bt = run_plain().by_test[name]
    t:eq(bt.start, nil, name .. ": no test_start")
    t:eq(bt["end"].outcome, "skip", name)
    t:eq(bt["end"].duration_ns, 0, name)
  end
  local todo = child.run("todo.fixture.lua")
  t:eq(#child.find(todo, "test_start"), 0, "a todo file runs no test")
  t:eq(#child.find(todo, "test_end"), 2)
  -- a test that runs and skips itself has both
  local r = child.run("--slow -f 'slow one' meta.fixture.lua")
  t:ok(r.by_test["slow one"].start, "with --slow it runs: test_start")
end)

test("file-level todo reports every test todo and runs none", function(t)
  local r = child.run("todo.fixture.lua")
  t:eq(r.code, 0)
  t:eq({ outcome(r, "first") }, { "todo", "waiting for the new API" })
  t:eq(outcome(r, "second"), "todo")
  t:eq(child.find(r, "file_end")[1].todo, 2)
end)

test("--fail-fast stops the file's remaining tests after a failure", function(t)
  local r = child.run("--fail-fast asserts.fixture.lua")
  t:eq(r.code, 1)
  t:eq(outcome(r, "ok fails"), "fail")
  local e = rawget(r.by_test, "eq fails")
  t:ok(e == nil or e["end"].outcome == "skip", "no test after the first failure runs")
end)

test("--shuffle --seed gives a different, reproducible order", function(t)
  local function order(r)
    local names = {}
    for _, e in ipairs(child.find(r, "test_start")) do names[#names + 1] = e.test end
    return table.concat(names, "|")
  end
  local base = order(child.run("-f tagged meta.fixture.lua"))
  local s1 = order(child.run("--shuffle --seed 7 meta.fixture.lua"))
  local s2 = order(child.run("--shuffle --seed 7 meta.fixture.lua"))
  t:eq(s1, s2)
  local s3 = order(child.run("--shuffle --seed 8 meta.fixture.lua"))
  local unshuffled = order(run_plain())
  t:ok(s1 ~= unshuffled or s3 ~= unshuffled, "some seed changes the order")
  t:ok(base ~= "")
end)

-- bad meta values are errors at registration (caught here at the top level)
local bad_meta = {}
for _, m in ipairs({ { timeout = "x" }, { timeout = -1 }, { tags = "net" }, { tags = { 1 } },
    { spec = 5 }, { spec = { "ok", 2 } } }) do
  local ok, e = pcall(test, "bad meta", function() end, m)
  bad_meta[#bad_meta + 1] = { ok = ok, e = e, key = next(m) }
end
test("bad meta values raise invalid naming the key", function(t)
  t:eq(#bad_meta, 6)
  for _, b in ipairs(bad_meta) do
    t:eq(b.ok, false, b.key)
    t:eq(b.e.code, "invalid")
    t:match(b.e.message, 'test%("bad meta"%): meta%.' .. b.key .. " must be")
  end
end)
