-- restore_trace.lua — run INSIDE the simulated KVM host by kvmhost_restore_trace.sh:
-- where a Linux restore's time goes. Boots the default profile, snapshots it, and
-- restores that snapshot N times (PROVIUM_TRACE_RUNS, default 3), each to its first
-- command done, with the host kernel's kvm tracepoints on; for each restore prints
-- the wall time, the KVM exits by reason with the time L1 (the simulated host's KVM)
-- spent on them, the guest's own run time, and the guest's page faults (nested on
-- x86, stage 2 on arm64: distinct 4 KiB pages, writes). The first restore of a
-- snapshot is the one the bench's "restore -> first command" row measures; later
-- ones are what a fixture hit costs.
local S = provium._sched
local T = "/sys/kernel/tracing"
local AWK = debug.getinfo(1, "S").source:match("^@(.*/)") .. "restore_trace.awk"
local function sh(c)
  local p = assert(io.popen(c))
  local o = p:read("a")
  p:close()
  return o
end

local function tracing(on)
  if on then
    sh(("echo 0 > %s/tracing_on; echo > %s/trace; echo 1 > %s/tracing_on"):format(T, T, T))
  else
    sh(("echo 0 > %s/tracing_on"):format(T))
  end
end

test("restore: exits by reason and nested page faults", function(t)
  sh("mount -t tracefs none " .. T .. " 2>/dev/null; echo 131072 > " .. T .. "/buffer_size_kb")
  -- the guest's page faults: kvm_page_fault on x86, kvm_guest_fault on arm64
  local pf = sh("uname -m"):match("aarch64") and "kvm_guest_fault" or "kvm_page_fault"
  for _, e in ipairs({ "kvm_exit", "kvm_entry", pf }) do
    t:ok(sh(("echo 1 > %s/events/kvm/%s/enable && echo on"):format(T, e)):match("on"),
      "tracepoint kvm/" .. e)
  end
  local vm = provium:vm("b", "default", { backend = "kvm" })
  vm:succeed("true")
  local s = vm:snapshot("trace")
  vm:_teardown()
  local file = provium.tmpdir() .. "/trace"
  for i = 1, tonumber(provium.env("PROVIUM_TRACE_RUNS") or "") or 3 do
    tracing(true)
    local t0 = S.now()
    local r = s:restore()
    r:succeed("true")
    local ms = (S.now() - t0) * 1000
    tracing(false)
    sh(("cat %s/trace > %s"):format(T, file))
    t0 = S.now()
    r:succeed("true")
    io.stderr:write(("== restore %d of the snapshot: %.0f ms to the first command done (the second: %.0f ms)\n")
      :format(i, ms, (S.now() - t0) * 1000))
    local rep = sh(("awk -f %s %s"):format(AWK, file))
    t:ok(rep:match("guest page faults [1-9]"), "the trace holds the guest's page faults")
    io.stderr:write(rep)
    r:_teardown()
  end
  s:delete()
end, { timeout = 600 })
