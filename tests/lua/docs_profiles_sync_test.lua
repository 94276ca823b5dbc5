-- docs/profiles.md shows the example profile file verbatim (its examples' test files
-- are checked by docs_sync_test.lua).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local root = here .. "/../.."

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

test("docs/profiles.md shows the example profile verbatim", function(t)
  t:contains(read(root .. "/docs/profiles.md"), read(root .. "/tests/lua/profiles/tools.lua"))
end)
