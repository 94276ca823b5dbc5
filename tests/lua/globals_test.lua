-- The provium globals (API.md) on the real backend: version and protocol agree with
-- `provium version`, backend() is what auto resolved to, env() reads the host
-- environment, tmpdir() is per file and removed when the file ends even after a failure.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/helpers/child.lua")

local function sh(cmd)
  local p = io.popen(cmd); local s = p:read("a"); p:close(); return s
end

test("version, PROTOCOL_VERSION and backend() match `provium version`", function(t)
  local out = sh(child.quote(child.binary()) .. " version")
  t:eq(provium.version, out:match("^provium (%S+)\n"))
  t:eq(provium.PROTOCOL_VERSION, math.tointeger(tonumber(out:match("\nprotocol (%d+)\n"))))
  t:eq(provium.backend(), out:match("\n%s*auto%s+(%a+)"))
  t:eq(provium:vm("g1").backend, provium.backend())
end)

test("provium.env reads the host environment, nil when unset", function(t)
  t:eq(provium.env("HOME"), os.getenv("HOME"))
  t:eq(provium.env("PROVIUM_GLOBALS_TEST_UNSET_" .. os.time()), nil)
  local r = child.run("tmpdir.fixture.lua", { PV_OUT = provium.tmpdir() .. "/where" })
  t:eq(r.code, 1)
  local f = assert(io.open(provium.tmpdir() .. "/where"))
  local d = f:read("a"); f:close()
  t:match(d, "^/.+")
  t:ne(d, provium.tmpdir(), "each file has its own temp dir")
  t:eq(io.open(d .. "/scratch"), nil, "the failed file's temp dir was removed")
  t:eq(os.execute("test -e " .. child.quote(d)), nil)
end)

test("provium.tmpdir is a directory of this file, the same on every call", function(t)
  local d = provium.tmpdir()
  t:eq(provium.tmpdir(), d)
  t:eq(os.execute("test -d " .. child.quote(d) .. " -a -w " .. child.quote(d)), true)
end)
