-- docs/profiles.md example: a VM from tests/lua/profiles/tools.lua.
test("a profile prepares the VM", function(t)
  local vm = provium:vm("tools-doc", "tools")
  t:eq(vm:succeed("/opt/tools/hello"), "hello from tools\n")
  t:eq(vm:info().memory, 128)
  local bigger = provium:vm("tools-big", "tools", { memory = 512 })
  t:eq(bigger:info().memory, 512)
end)
