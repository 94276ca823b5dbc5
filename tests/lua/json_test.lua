-- The json global: round trips, arrays vs objects, json.null, json.array, options,
-- and errors that say where (line/column for decode, key path for encode).
test("round trip of nested values", function(t)
  local v = { name = "web", ports = { 80, 443 }, nested = { ok = true, ratio = 0.25, n = -3 }, empty = json.array() }
  local back = json.decode(json.encode(v))
  t:eq(back.name, "web")
  t:eq(back.ports, { 80, 443 })
  t:eq(back.nested, { ok = true, ratio = 0.25, n = -3 })
  t:eq(#back.empty, 0)
  t:eq(json.encode(back.empty), "[]")
end)

test("sequences become arrays, other tables objects, empty tables {}", function(t)
  t:eq(json.encode({ 1, 2, 3 }), "[1,2,3]")
  t:eq(json.encode({ [1] = "a", [3] = "c" }, { sort_keys = true }), '{"1":"a","3":"c"}')
  t:eq(json.encode({}), "{}")
  t:eq(json.encode(json.array({})), "[]")
  t:eq(json.encode({ a = 1, b = 2 }, { sort_keys = true }), '{"a":1,"b":2}')
end)

test("scalars encode at top level; integers stay integers", function(t)
  t:eq(json.encode("x\n\"y\""), '"x\\n\\"y\\""')
  t:eq(json.encode(42), "42")
  t:eq(json.encode(0.1), "0.1")
  t:eq(json.encode(true), "true")
  t:eq(json.encode(nil), "null")
  t:eq(math.type(json.decode("7")), "integer")
  t:eq(math.type(json.decode("7.5")), "float")
  local third = 1 / 3
  t:eq(json.decode(json.encode(third)), third)
end)

test("json.null in both directions", function(t)
  local v = json.decode('{"a":null,"b":[null,1]}')
  t:eq(v.a, json.null)
  t:eq(v.b[1], json.null)
  t:eq(tostring(json.null), "json.null")
  t:eq(json.encode({ x = json.null }), '{"x":null}')
end)

test("pretty and sort_keys", function(t)
  t:eq(json.encode({ b = 1, a = { 1 } }, { pretty = true, sort_keys = true }),
    '{\n  "a": [\n    1\n  ],\n  "b": 1\n}')
end)

test("invalid JSON raises invalid with line and column", function(t)
  local e = t:error(function() json.decode('{"a": 1,\n  "b": }') end)
  t:eq(e.code, "invalid")
  t:eq(e.op, "json.decode")
  t:match(e.message, "^line 2 column 8: ")
  e = t:error(function() json.decode("") end)
  t:match(e.message, "^line 1 column 0: ")
  e = t:error(function() json.decode(42) end)
  t:match(e.message, "expected a string, got number")
end)

test("unencodable values name what and where", function(t)
  local e = t:error(function() json.encode({ a = { b = { 1, print } } }) end)
  t:eq(e.code, "invalid")
  t:eq(e.message, "cannot encode a function (at $.a.b[2])")
  e = t:error(function() json.encode({ x = 0 / 0 }) end)
  t:eq(e.message, "cannot encode NaN (at $.x)")
  e = t:error(function() json.encode({ ["a key"] = math.huge }) end)
  t:eq(e.message, 'cannot encode inf (at $["a key"])')
  local cyc = {}
  cyc.self = { cyc }
  e = t:error(function() json.encode(cyc) end)
  t:eq(e.message, "cannot encode a table that contains itself (cycle at $.self[1])")
  e = t:error(function() json.encode({ [true] = 1 }) end)
  t:match(e.message, "cannot encode a boolean as an object key")
  e = t:error(function() json.encode("\xff") end)
  t:match(e.message, "not valid UTF%-8")
end)

test("a table used twice (not a cycle) encodes", function(t)
  local shared = { 1 }
  t:eq(json.encode({ shared, shared }), "[[1],[1]]")
end)
