-- examples/hello_test.lua — the first test a newcomer runs (README, getting-started).
-- `provium run examples/` boots one VM (a Linux microVM where /dev/kvm runs Linux
-- guests, the sandbox backend elsewhere) and drives it. The other files here show
-- one headline scenario each (docs/README.md lists them).

test("a guest runs commands", function(t)
  local vm = provium:vm("web")
  t:eq(vm:succeed("echo hello"), "hello\n")
  local r = vm:run("exit 3")
  t:eq(r.code, 3)
end)

test("files go in and come back", function(t)
  local vm = provium:vm("files")
  vm:write_file("/tmp/greeting", "hi from the host\n")
  t:eq(vm:read_file("/tmp/greeting"), "hi from the host\n")
  t:match(vm:succeed("wc -c < /tmp/greeting"), "17")
end)

test("a process streams its output", function(t)
  local vm = provium:vm("stream")
  local p = vm:spawn("for i in 1 2 3; do echo line $i; done")
  local out = p:stdout_stream()
  t:eq(out:next(), "line 1")
  t:eq(out:next(), "line 2")
  t:eq(out:next(), "line 3")
  t:eq(p:wait().code, 0)
end)
