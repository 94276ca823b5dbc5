-- examples/fsync_crash_test.lua — a database-style fsync test under power loss.
-- A tiny append-only "database" acknowledges a record only after fsync (like a
-- write-ahead log), writes one more record without it, and the VM loses power
-- (vm:crash()). After the reboot every acknowledged record must be there, in order.
-- The disk runs with a writeback cache: writes the guest did not flush live only in
-- that (volatile) cache, and vm:crash() drops them, as a power cut does to a real disk.
-- kvm backend only: a sandbox VM has no disks (there vm:crash() is a plain kill).
local KVM_ONLY = provium.backend() ~= "kvm" and "needs --backend kvm (a host whose /dev/kvm runs " ..
  "Linux guests): the sandbox backend has no disks, so there is no unflushed write to lose" or nil

test("acknowledged (fsynced) records survive a power cut", function(t)
  local vm = provium:vm("db", "default", { disks = { { size = 64 * 1024 * 1024 } } })
  vm:succeed("mke2fs -q /dev/vda && mkdir -p /db && mount -t ext4 /dev/vda /db && touch /db/log")
  vm:succeed("umount /db")
  vm:disk("vda"):cache("writeback") -- from now on, only flushed writes are durable
  vm:succeed("mount -t ext4 /dev/vda /db")

  -- commit(r): append, fsync the log, then acknowledge
  local acked = {}
  for i = 1, 5 do
    vm:succeed(("echo record-%d >> /db/log && sync /db/log"):format(i))
    acked[#acked + 1] = "record-" .. i
  end
  vm:succeed("echo record-6-not-synced >> /db/log") -- never acknowledged

  local lost = vm:crash() -- power loss: the unflushed sectors are gone
  t:eq(vm:state(), "crashed")
  vm:start()
  vm:succeed("mkdir -p /db && mount -t ext4 /dev/vda /db") -- ext4 replays its journal
  local log = vm:read_file("/db/log")
  local got = {}
  for line in log:gmatch("[^\n]+") do got[#got + 1] = line end
  for i, r in ipairs(acked) do t:eq(got[i], r, "acknowledged record " .. i) end
  t:log(("%d sectors lost in the crash; the unacknowledged record %s"):format(lost,
    log:find("record-6", 1, true) and "happened to survive" or "is gone"))
end, { skip = KVM_ONLY })
