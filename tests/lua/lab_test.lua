-- Labs: the root lab `provium`, sub-labs and what they own, lookups, tostring, claims
-- held by labs, and the methods that are not available yet. VMs here come from a stub
-- backend (provium._vm_new) so the ownership rules are tested without any backend.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/helpers/child.lua")

local torn = {}
provium._backend_select = function() return "fake" end
provium._vm_new = function(lab, name, profile, opts)
  return setmetatable({ name = name, profile = profile, opts = opts,
    _teardown = function(self) torn[#torn + 1] = self.name end },
    { __tostring = function(v) return "VM(" .. v.name .. ")" end })
end

test("provium globals", function(t)
  t:match(provium.version, "^%d+%.%d+%.%d+")
  t:eq(math.type(provium.PROTOCOL_VERSION), "integer")
  t:ge(provium.PROTOCOL_VERSION, 1)
  t:eq(provium.env("PATH"), os.getenv("PATH"))
  t:eq(provium.env("PROVIUM_SURELY_UNSET_VAR"), nil)
  t:eq(provium.backend(), "fake")
end)

test("provium.tmpdir is a writable per-file directory", function(t)
  local d = provium.tmpdir()
  t:eq(provium.tmpdir(), d)
  local f = assert(io.open(d .. "/probe", "w"))
  f:write("x")
  f:close()
  t:eq(io.open(d .. "/probe"):read("a"), "x")
end)

test("lab:vm records the VM; vms/get find it; names are unique per file", function(t)
  local vm = provium:vm("web", "default", { memory = 64 })
  t:eq(vm.profile, "default")
  t:eq(vm.opts.memory, 64)
  t:eq(provium:get("web"), vm)
  t:eq(#provium:vms(), 1)
  t:eq(tostring(provium), "Lab(root, 1 vm)")
  local sub = provium:lab("dup-check")
  local e = t:error(function() sub:vm("web") end)
  t:eq(e.code, "invalid")
  t:match(e.message, "duplicate VM name")
  e = t:error(function() provium:vm("bad name!") end)
  t:eq(e.code, "invalid")
  e = t:error(function() provium:vm("x", 42) end)
  t:match(e.message, "profile must be")
  sub:close()
end)

test("sub-labs own their VMs; closing one closes only what it owns", function(t)
  torn = {}
  local a = provium:lab("a")
  local b = provium:lab("b")
  local inner = a:lab("inner")
  a:vm("a1"); a:vm("a2"); inner:vm("i1"); b:vm("b1")
  t:eq(tostring(a), "Lab(a, 2 vms)")
  t:eq(#provium:labs(), 2)
  t:eq(a:get("i1").name, "i1", "get searches sub-labs")
  t:eq(provium:get("i1").name, "i1")
  a:close()
  t:eq(torn, { "i1", "a2", "a1" }, "sub-labs first, then VMs newest first")
  t:eq(#provium:labs(), 1)
  t:eq(provium:labs()[1], b)
  t:eq(provium:get("a1"), nil)
  a:close() -- idempotent
  local e = t:error(function() a:vm("again") end)
  t:eq(e.code, "closed")
  -- the name is free again
  local again = b:vm("a1")
  t:eq(again.name, "a1")
  b:close()
  t:eq(torn, { "i1", "a2", "a1", "a1", "b1" })
end)

test("a new lab owns no bridges", function(t)
  t:eq(provium:lab("empty"):bridges(), {})
end)

test("unknown lab methods and dot-calls are clear errors", function(t)
  local e = t:error(function() provium:frobnicate() end)
  t:eq(e.code, "invalid")
  t:eq(e.message, "Lab has no method or field 'frobnicate'")
  e = t:error(function() provium.lab("x") end)
  t:match(e.message, "with a colon")
end)

test("closing a sub-lab releases its claims, not the parent's", function(t)
  local sub = provium:lab("claims")
  local c = sub:claim("res-sub")
  t:match(tostring(c), "^Claim%(res%-sub, 1, held%)$")
  sub:close()
  t:eq(tostring(c), "Claim(res-sub, 1, released)")
  -- released: claiming it again is granted at once
  provium:claim("res-sub", { timeout = 2 }):release()
  -- the root's claim stays held while another sub-lab closes
  local held = provium:claim("res-root")
  local other = provium:lab("other")
  other:close()
  local e = t:error(function() provium:claim("res-root", { timeout = 0.2 }) end)
  t:eq(e.code, "timeout")
  held:release()
end)

test("claim arguments are checked", function(t)
  t:eq(t:error(function() provium:claim("r", { count = 2 }) end).code, "invalid")
  t:eq(t:error(function() provium:claim("r", { count = 0, capacity = 2 }) end).code, "invalid")
  local c = provium:claim("counted", { count = 2, capacity = 3 })
  t:eq(c.count, 2)
  c:release()
  c:release() -- idempotent
end)

test("barrier with one party returns at once with index 1", function(t)
  t:eq(provium:barrier("solo", 1), 1)
  t:eq(t:error(function() provium:barrier("x", 0) end).code, "invalid")
end)

test("the lab tears down at test timeout and at file end, even after errors", function(t)
  local out = provium.tmpdir() .. "/teardown"
  os.execute("mkdir -p " .. child.quote(out))
  local r = child.run("teardown.fixture.lua", { PV_OUT = out })
  t:eq(r.code, 1)
  t:eq(r.by_test["starts a VM and hangs"]["end"].outcome, "error")
  local lines = {}
  for l in io.lines(out .. "/log") do lines[#lines + 1] = l end
  -- the hung test's VM goes first, before the next test runs; the rest at file end
  t:eq(lines, { "teardown hung", "third test runs", "teardown in-sub-lab", "teardown kept-until-file-end" })
end)

test("a barrier between two tasks of one file releases both", function(t)
  local order = {}
  local r = provium.all({
    function() local i = provium:barrier("pair", 2); order[#order + 1] = "a"; return i end,
    function() provium.sleep(0.2); order[#order + 1] = "b arrives"; return provium:barrier("pair", 2) end,
  })
  table.sort(r)
  t:eq(r, { 1, 2 })
  t:eq(order[1], "b arrives", "the first task waited for the second")
end)
