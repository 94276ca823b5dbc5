-- docs/sandbox.md example: what a sandbox VM is.
test("a sandbox is a private root in its own namespaces", function(t)
  local a, b = provium:vm("sb-a"), provium:vm("sb-b")
  t:eq(a.backend, "sandbox")
  t:eq(a:succeed("hostname"), "sb-a\n")
  t:eq(a:succeed("cat /proc/1/comm"), "init\n")   -- its own PID 1
  t:eq(a:succeed("ls /sys/class/net"), "lo\n")    -- its own network
  a:write_file("/etc/motd", "only in a\n")
  t:eq(b:exists("/etc/motd"), false)             -- its own writable root
  local err = t:error(function() a:attach_disk({ size = 1 << 20 }) end)
  t:eq(err.code, "unsupported")
end)
