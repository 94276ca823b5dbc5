-- docs/lab.md example: sub-labs, claims and barriers.
test("a sub-lab is a scope you can close", function(t)
  local scope = provium:lab("scratch")
  t:eq(tostring(scope), "Lab(scratch, 0 vms)")
  t:eq(provium:labs()[1], scope)
  scope:close()
  t:eq(#provium:labs(), 0)
end)

test("claims serialise files that use the same host resource", function(t)
  local port = provium:claim("host-port-8080")
  -- ... use the port; files running in parallel that claim it wait here
  port:release()
end)

test("a barrier with one party returns at once", function(t)
  t:eq(provium:barrier("setup-done", 1), 1)
end)
