-- A test profile (tests/lua/profile_test.lua): found by walking up from the test file.
return {
  memory = 64,
  cpus = 1,
  env = { PROFILE_MARK = "small" },
  setup = function(vm)
    vm:write_file("/tmp/setup-ran", "yes")
  end,
}
