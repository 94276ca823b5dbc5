-- keep_test.lua — kvm-only: `provium run --keep` with a Linux microVM in a failed file
-- (docs/debugging.md "Kept VMs"): the failure is reported, the VM stays up held by its
-- worker (`provium ps` lists it as kvm, a piped `provium shell` reaches the guest), and
-- `provium kill` ends it leaving nothing. tests/kvmhost/kept_kvm.sh checks the rest.
local KVM_ONLY = provium.backend() ~= "kvm" and "Linux-guest test: needs --backend kvm on a hardware-KVM host (tests/linux/run.sh)" or nil
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local child = dofile(here .. "/../lua/helpers/child.lua")

local function sh(cmd)
  local f = io.popen(cmd .. " 2>&1")
  local out = f:read("a")
  f:close()
  return out
end

test("--keep with a failed kvm test: the VM stays, reachable by name, until provium kill", function(t)
  local kept = provium.tmpdir() .. "/kept"
  local env = "PROVIUM_KEPT_DIR=" .. kept .. " "
  local bin = child.binary()
  local r = child.run("--keep --backend kvm keep_kvm.fixture.lua", { PROVIUM_KEPT_DIR = kept })
  local undo <close> = setmetatable({}, { __close = function() sh(env .. bin .. " kill --all") end })
  t:eq(r.code, 1, r.out)
  t:eq(r.by_test["writes then fails"]["end"].outcome, "fail")
  local pid = tonumber(r.out:match("%-%-keep: VM keepme %(kvm%) is still running, held by pid (%d+)"))
  t:ok(pid, r.out)
  t:match(sh(env .. bin .. " ps"), "keepme +kvm +" .. pid)
  t:eq(sh("printf 'cat /root/mark\\n' | " .. env .. bin .. " shell keepme"), "left by the test")
  t:eq(sh(env .. bin .. " kill keepme"), ("killed VM keepme (pid %d)\n"):format(pid))
  t:eq(io.open("/proc/" .. pid .. "/comm"), nil, "its holder is gone")
  t:eq(sh("ls -A " .. kept), "", "nothing left in the registry")
end, { skip = KVM_ONLY, tags = { "linux" } })
