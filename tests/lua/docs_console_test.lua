-- docs/console.md example: the console log, a stream of it, and input.
test("console output and input", function(t)
  local vm = provium:vm("console-doc")
  local con = vm:console()
  con:expect("agent started", { timeout = 5 }) -- /init says so on its console
  t:match(con:log(), "agent started")
  local live = con:read()
  vm:run("echo 'kernel: something happened' > /proc/1/fd/1")
  t:eq(live:next({ timeout = 5 }), "kernel: something happened")
  con:write("hello console\n")
  t:eq(vm:succeed("head -n 1 /proc/1/fd/0"), "hello console\n")
end)
