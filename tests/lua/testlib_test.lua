-- The t context when assertions hold: each assertion passes and returns what it says,
-- t.name/t.meta, t:error returns the error, t:cleanup runs LIFO after the test even when
-- it fails (the failing side is in testlib_report_test.lua).
test("t:ok returns its value", function(t)
  t:eq(t:ok(42), 42)
  t:ok("non-empty")
  t:ok(0, "zero is true in Lua")
end)

test("t:eq compares tables deeply and scalars by value", function(t)
  t:eq({ a = { 1, 2, { b = "x" } } }, { a = { 1, 2, { b = "x" } } })
  t:eq("s", "s")
  t:eq(1, 1.0)
  local ok = pcall(t.eq, t, { 1 }, { 1, 2 })
  t:ok(not ok, "an extra element makes tables differ")
end)

test("t:ne", function(t)
  t:ne({ 1 }, { 2 })
  t:ne("a", "b")
  t:ne(nil, false)
end)

test("t:lt/le/gt/ge on numbers and strings", function(t)
  t:lt(1, 2); t:le(2, 2); t:gt(3, 2); t:ge(3, 3)
  t:lt("a", "b")
  t:ok(not pcall(t.lt, t, 2, 1))
  t:ok(not pcall(t.lt, t, 1, "x"), "mixed types do not compare")
end)

test("t:match returns the captures", function(t)
  local a, b = t:match("key=value", "^(%w+)=(%w+)$")
  t:eq({ a, b }, { "key", "value" })
end)

test("t:contains for strings (plain) and arrays (deep)", function(t)
  t:contains("a.b.c", ".b.")
  t:contains({ 1, { x = 2 } }, { x = 2 })
  t:ok(not pcall(t.contains, t, "abc", "a.c"), "plain text, not a pattern")
end)

test("t:error returns the error and matches message or text", function(t)
  local e = t:error(function() error({ code = "x", message = "the message" }) end, "the message")
  t:eq(e.code, "x")
  local e2 = t:error(function() provium:claim(1) end, "non%-empty string")
  t:eq(e2.code, "invalid")
  t:eq(e2.op, "lab:claim")
  t:match(tostring(e2), "^provium: lab:claim: ")
  t:error(function() error("a+b") end, "a+b")
end)

test("t.name and t.meta", function(t)
  t:eq(t.name, "t.name and t.meta")
  t:eq(t.meta.owner, "me")
  t:eq(t.meta.spec, "API-T")
end, { owner = "me", spec = "API-T" })

test("t has no unknown methods", function(t)
  local e = t:error(function() t:frobnicate() end)
  t:eq(e.code, "invalid")
  t:contains(e.message, "frobnicate")
end)

local order = {}
test("t:cleanup registers functions", function(t)
  t:cleanup(function() order[#order + 1] = "first registered" end)
  t:cleanup(function() order[#order + 1] = "second registered" end)
  order[#order + 1] = "body"
end)

test("t:cleanup ran LIFO after the previous test", function(t)
  t:eq(order, { "body", "second registered", "first registered" })
end)

test("t:skip raises a skip that stops the test", function(t)
  local ok, e = pcall(t.skip, t, "not on this host")
  t:ok(not ok)
  t:eq(tostring(e), "skip: not on this host")
end)

test("t:fail and assertions raise a value whose text is the message", function(t)
  local ok, e = pcall(t.fail, t, "boom")
  t:ok(not ok)
  t:eq(tostring(e), "boom")
end)

test("test() inside a test is an error", function(t)
  local e = t:error(function() test("nested", function() end) end)
  t:eq(e.code, "invalid")
  t:match(e.message, "top level")
end)

test("os.exit raises instead of ending the worker", function(t)
  local e = t:error(function() os.exit(3) end)
  t:eq(e.code, "invalid")
  t:match(e.message, "os.exit would end")
end)
