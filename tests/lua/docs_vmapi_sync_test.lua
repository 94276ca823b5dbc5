-- The VM API docs show their examples verbatim: every `<!-- example: PATH -->` marker in
-- docs/{vm,process,file,worker,streams,console,clock,profiles,sandbox}.md is followed by
-- a lua code block equal to that file, so the examples shown are the ones make test runs.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local root = here .. "/../.."

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

for _, page in ipairs({ "vm", "process", "file", "worker", "streams", "console", "clock", "profiles", "sandbox" }) do
  local doc = "docs/" .. page .. ".md"
  test(doc .. " shows its examples verbatim", function(t)
    local text = read(root .. "/" .. doc)
    local n = 0
    for path, block in text:gmatch("<!%-%- example: (%S+) %-%->\n```lua\n(.-)```\n") do
      n = n + 1
      t:eq(block, read(root .. "/" .. path), doc .. " example " .. path)
    end
    t:ge(n, 1, "at least one example")
  end)
end

test("docs/profiles.md shows the example profile verbatim", function(t)
  local text = read(root .. "/docs/profiles.md")
  t:contains(text, read(root .. "/tests/lua/profiles/tools.lua"))
end)
