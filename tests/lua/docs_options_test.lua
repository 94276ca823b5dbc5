-- docs/options.md example: what a mistyped option, a nonsense value and a dot call say.
test("options are checked, and methods want a colon", function(t)
  local vm = provium:vm("options-doc")
  local e = t:error(function() vm:run("sleep 9", { timout = 5 }) end)
  t:eq(e.code, "invalid")
  t:eq(e.op, "vm:run")
  t:eq(e.vm, "options-doc")
  t:eq(e.option, "timout")
  t:eq(e.message, "unknown option 'timout' (did you mean 'timeout'?); " ..
    "vm:run takes: cwd, env, stdin, timeout, user")

  e = t:error(function() provium:vm("tiny", nil, { memory = 0 }) end)
  t:eq(tostring(e), "provium: lab:vm on tiny: opts.memory must be a positive integer, got 0")

  e = t:error(function() vm:tail_file("/tmp/log"):next("soon") end)
  t:eq(e.message, 'opts must be a table, got "soon"')

  e = t:error(function() vm.run("true") end)
  t:eq(e.message, 'call it with a colon: vm:run(...), not vm.run(...) (which passes "true" as the VM)')
end)
