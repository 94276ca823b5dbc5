-- fixture_test.lua — kvm-only: Linux VMs from a profile's fixture snapshot and from its
-- pool (docs/profiles.md): the setup runs once, its state is in every VM, each VM has
-- its own name (hostname) and its own memory.
-- Only meaningful on Linux microVMs: skipped (with the reason) on the sandbox backend.
local KVM_ONLY = provium.backend() ~= "kvm" and "Linux-guest test: needs --backend kvm on a hardware-KVM host (tests/linux/run.sh)" or nil
local function test(name, fn) return _G.test(name, fn, { skip = KVM_ONLY, tags = { "linux" } }) end

local setups = 0
local prof = { name = "lx-fixture", pool = 1, setup = function(vm)
  setups = setups + 1
  vm:succeed("echo from-setup > /root/marker")
end }

test("a Linux VM from a fixture snapshot has the setup's state and its own name", function(t)
  local a = provium:vm("fx-a", prof)
  t:ok(setups <= 1, "setup ran at most once (none if another file built the fixture)")
  t:eq(a:read_file("/root/marker"), "from-setup\n")
  t:eq(a:succeed("hostname"), "fx-a\n")
  local b = provium:vm("fx-b", prof)
  t:ok(setups <= 1, "setup did not run again")
  t:match(b:info().from_snapshot, "^fixture%-lx%-fixture%-")
  t:eq(b:read_file("/root/marker"), "from-setup\n")
  t:eq(b:succeed("hostname"), "fx-b\n")
  -- the two are separate machines
  a:write_file("/root/only-a", "a")
  t:eq(b:exists("/root/only-a"), false)
  t:eq(a:info().cid, b:info().cid, "both keep the fixture's CID (docs/snapshot.md)")
end)

test("a Linux VM handed out of the profile's pool is ready and named", function(t)
  provium:vm("fx-warm", prof) -- starts the pool (after a build, or a restore of the cache)
  wait_until(function() return provium._pools()["lx-fixture"].ready >= 1 end,
    { timeout = 120, message = "the pool has a ready VM" })
  local sub = provium:lab("outer"):lab("inner")
  local p = sub:vm("fx-pooled", prof)
  t:eq(p:info().pool, true, "taken from the pool")
  t:eq(p:succeed("hostname"), "fx-pooled\n")
  t:eq(p:read_file("/root/marker"), "from-setup\n")
  t:eq(p:succeed("echo works"), "works\n")
  sub:close()
  t:eq(p:state(), "stopped")
end)
