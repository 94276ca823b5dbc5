-- docs/bridge.md and docs/nic.md show their example files verbatim (every
-- `<!-- example: PATH -->` marker is followed by a lua block equal to that file).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local root = here .. "/../.."

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

for _, doc in ipairs({ "docs/bridge.md", "docs/nic.md" }) do
  test(doc .. " shows its examples verbatim", function(t)
    local text = read(root .. "/" .. doc)
    local n = 0
    for path, block in text:gmatch("<!%-%- example: (%S+) %-%->\n```lua\n(.-)```\n") do
      n = n + 1
      t:eq(block, read(root .. "/" .. path), doc .. " example " .. path)
    end
    t:eq(n, 1, "one example")
  end)
end
