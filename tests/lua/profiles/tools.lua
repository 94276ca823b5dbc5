-- docs/profiles.md example profile (tests/lua/profiles/tools.lua).
return {
  memory = 128,
  env = { APP_MODE = "test" },
  setup = function(vm)
    vm:mkdir("/opt/tools", { parents = true })
    vm:write_file("/opt/tools/hello", "#!/bin/sh\necho hello from tools\n", { mode = tonumber("755", 8) })
  end,
}
