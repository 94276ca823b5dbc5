-- examples/fixture_snapshot_test.lua — a fixture snapshot that makes twenty tests
-- start in milliseconds. Every test gets a fresh VM of the "warm" profile
-- (profiles/warm.lua). On the kvm backend the first one boots and runs the
-- profile's setup, and provium snapshots it into the cache (a fixture build); the
-- other nineteen, and every later run, are restored from that snapshot: no boot,
-- no setup. On the sandbox backend a VM starts in milliseconds anyway and setup
-- runs for each (it has no snapshots). Each test logs how fast its VM was ready.

for i = 1, 20 do
  test(("test %02d gets a ready VM"):format(i), function(t)
    local vm = provium:vm(("w%02d"):format(i), "warm")
    t:eq(vm:read_file("/srv/app/ready"), "warm\n")
    vm:succeed("sha256sum -c /srv/app/rows.sum") -- the data set setup made, intact
    vm:write_file("/srv/app/mine", vm.name)      -- changes stay in this VM
    local info = vm:info()
    if vm.backend == "kvm" and i > 1 then
      t:ok(info.from_snapshot, "restored from the fixture, not booted")
    end
    t:log(("%s ready in %.0f ms%s"):format(vm.name, (info.boot_time or 0) * 1000,
      info.from_snapshot and (" (from " .. info.from_snapshot .. ")") or ""))
    vm:kill() -- free its memory now, not at the end of the file
  end)
end
