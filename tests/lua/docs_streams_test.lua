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
