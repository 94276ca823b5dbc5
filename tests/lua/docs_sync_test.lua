-- The docs show the example files verbatim: every `<!-- example: PATH -->` marker in
-- docs/writing-tests.md, docs/lab.md, docs/json.md, the VM API and the networking pages is followed by a lua code block
-- equal to that file (so the examples the docs show are the ones make test runs).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local root = here .. "/../.."

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- pages that show exactly this many examples
local exact = { ["docs/bridge.md"] = 1, ["docs/nic.md"] = 1 }

for _, doc in ipairs({ "docs/writing-tests.md", "docs/lab.md", "docs/json.md",
    -- the VM API pages (L2)
    "docs/vm.md", "docs/process.md", "docs/file.md", "docs/worker.md", "docs/streams.md",
    "docs/console.md", "docs/clock.md", "docs/profiles.md", "docs/sandbox.md", "docs/options.md",
    -- networking
    "docs/bridge.md", "docs/nic.md" }) do
  test(doc .. " shows its examples verbatim", function(t)
    local text = read(root .. "/" .. doc)
    local n = 0
    for path, block in text:gmatch("<!%-%- example: (%S+) %-%->\n```lua\n(.-)```\n") do
      n = n + 1
      t:eq(block, read(root .. "/" .. path), doc .. " example " .. path)
    end
    if exact[doc] then t:eq(n, exact[doc], "one example") else t:ge(n, 1, "at least one example") end
  end)
end
