-- examples/profiles/warm.lua — the profile fixture_snapshot_test.lua uses: a VM with
-- a prepared data set. `setup` runs once; on the kvm backend its result is cached
-- as a snapshot (a fixture) that later VMs of this profile are restored from.
return {
  memory = 128,
  setup = function(vm)
    vm:mkdir("/srv/app", { parents = true })
    vm:succeed("seq 1 50000 > /srv/app/rows && sha256sum /srv/app/rows > /srv/app/rows.sum")
    vm:write_file("/srv/app/ready", "warm\n")
  end,
}
