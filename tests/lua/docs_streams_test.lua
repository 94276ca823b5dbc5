-- docs/streams.md example: following a log file.
test("tail a log and wait for a line", function(t)
  local vm = provium:vm("streams-doc")
  local log = vm:tail_file("/tmp/app.log")
  vm:spawn("sleep 0.2; echo 'starting' >> /tmp/app.log; echo 'listening on port 9000' >> /tmp/app.log")
  t:eq(log:next({ timeout = 5 }), "starting")
  local port = log:expect("listening on port (%d+)\n", { timeout = 5 })
  t:eq(port, "9000")
  t:eq(log:next({ timeout = 0.1 }), nil) -- nothing more yet
  t:eq(log:eof(), false)                  -- a timeout, not the end
  log:close()
end)

-- docs/streams.md example: a stream attached to a process gets all its later output.
test("a process's stream gets every later line; wait() what no stream was attached for", function(t)
  local vm = provium:vm("streams-doc2")
  local p = vm:spawn("echo alpha; echo beta; read go; echo gamma; echo delta")
  local out = p:stdout_stream()
  t:eq(out:read_until("beta", { timeout = 5 }), "alpha\nbeta")
  p:close_stdin()                       -- gamma and delta are printed after this
  t:eq(p:wait({ timeout = 5 }).stdout, "") -- the stream was attached: they are its
  t:eq(out:drain(), "\ngamma\ndelta\n")
end)
