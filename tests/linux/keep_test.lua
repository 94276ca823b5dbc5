-- keep_test.lua — kvm-only: `provium run --keep` with a Linux microVM in a failed file
-- (docs/cli.md "Keeping VMs"): kvm VMs live in their worker, so the run says it cannot
-- keep them and tears them down; the failure is still reported and nothing is left.
local KVM_ONLY = provium.backend() ~= "kvm" and "Linux-guest test: needs --backend kvm on a hardware-KVM host (tests/linux/run.sh)" or nil
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/../lua/helpers/child.lua")

test("--keep with a failed kvm test: says the VM cannot be kept and leaves nothing", function(t)
  local r = child.run("--keep --backend kvm keep_kvm.fixture.lua")
  t:eq(r.code, 1, r.out)
  t:eq(r.by_test["writes then fails"]["end"].outcome, "fail")
  t:match(r.out, "%-%-keep: VM keepme %(kvm%) is torn down")
  local spawned, exited
  for _, e in ipairs(r.events) do
    if e.ev == "vm_spawn" and e.vm == "keepme" then spawned = e end
    if e.ev == "vm_exit" and e.vm == "keepme" then exited = e end
  end
  t:ok(spawned and spawned.backend == "kvm", "the VM was a kvm VM")
  t:ok(exited, "and it was torn down (vm_exit)")
  t:eq(io.open("/proc/" .. tostring(spawned.pid) .. "/stat"), nil, "its worker is gone")
end, { skip = KVM_ONLY, tags = { "linux" } })
