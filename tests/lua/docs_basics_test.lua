-- docs/writing-tests.md example: tests, assertions, meta, cleanups.
test("arithmetic still works", function(t)
  t:eq(1 + 1, 2)
  t:ne("a", "b")
  t:lt(1, 2)
  t:match("version 1.2.3", "^version (%d+)%.")
  t:contains({ "red", "green" }, "green")
end)

test("tables compare deeply", function(t)
  t:eq({ name = "web", ports = { 80, 443 } }, { name = "web", ports = { 80, 443 } })
end)

test("errors are values you can inspect", function(t)
  local err = t:error(function() provium:claim(42) end, "non%-empty string")
  t:eq(err.code, "invalid")
end)

test("cleanups run last-registered first, even when the test fails", function(t)
  local path = provium.tmpdir() .. "/scratch"
  local f = assert(io.open(path, "w"))
  t:cleanup(function() os.remove(path) end)
  t:cleanup(function() f:close() end)
  f:write("data")
  t:log("wrote", path)
end)

test("tagged, with a spec id and a timeout", function(t)
  t:eq(t.meta.owner, "docs")
end, { tags = { "docs" }, spec = "API-TESTS", timeout = 5, owner = "docs" })
