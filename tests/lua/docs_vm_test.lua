-- docs/vm.md example: a VM, commands, waiting and lifecycle.
test("a web server answers once its port is open", function(t)
  local web = provium:vm("web")
  t:eq(tostring(web), "VM(web, running, " .. provium.backend() .. ")")

  web:mkdir("/srv")
  web:write_file("/srv/index.html", "hello from web\n")
  web:spawn("httpd -f -p 8080 -h /srv")
  web:wait_for_port(8080, { timeout = 10 })
  t:eq(web:succeed("wget -qO- http://127.0.0.1:8080/index.html"), "hello from web\n")

  local r = web:run("ls /nonexistent")
  t:ne(r.code, 0)
  t:match(r.stderr, "No such file")

  local err = t:error(function() web:succeed("exit 3") end)
  t:eq(err.code, "guest")
  t:eq(err.exit_code, 3)

  web:stop()
  t:eq(web:state(), "stopped")
end)
