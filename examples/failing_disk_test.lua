-- examples/failing_disk_test.lua — ext4 on a disk that starts failing writes.
-- The guest formats and uses a healthy disk; then every write starts returning EIO
-- (d:fail_writes(); its from/to/count/probability options narrow that down). The
-- program writing to ext4 sees the I/O error and reads keep working. (ext4 usually
-- aborts its journal on such an error and goes read-only: `dmesg` in the guest says.)
-- Once the fault is cleared the disk takes writes again.
-- kvm backend only: a sandbox VM has no disks.
local KVM_ONLY = provium.backend() ~= "kvm" and "needs --backend kvm (a host whose /dev/kvm runs " ..
  "Linux guests): the sandbox backend has no disks (docs/disk.md)" or nil

test("ext4 on a disk that starts failing writes: the program sees EIO", function(t)
  local vm = provium:vm("ext4", "default", { disks = { { size = 64 * 1024 * 1024 } } })
  local disk = vm:disk("vda")
  vm:succeed("mke2fs -q /dev/vda && mkdir -p /data && mount -t ext4 /dev/vda /data")
  vm:succeed("echo written while healthy > /data/before && sync")

  disk:fail_writes() -- every guest write from now on fails with EIO
  t:eq(disk:faults()[1].kind, "fail_writes")
  local r = vm:run("dd if=/dev/zero of=/data/after bs=4096 count=64 conv=fsync")
  t:ne(r.code, 0, "dd must fail")
  t:match(r.stderr, "Input/output error") -- EIO, as strerror says it
  t:gt(disk:stats().errors, 0, "the disk counted the failed requests")
  -- reads are not affected: the file written while healthy, straight from the device
  -- (not /dev/vda itself: a direct read there first writes back the block device's
  -- dirty pages, which now fails)
  local reads = disk:stats().reads
  t:eq(vm:succeed("dd if=/data/before bs=4096 count=1 iflag=direct 2>/dev/null"), "written while healthy\n")
  t:gt(disk:stats().reads, reads)

  disk:clear_faults() -- the disk recovers: after umount, raw writes succeed again
  vm:run("umount /data")
  vm:succeed("dd if=/dev/zero of=/dev/vda bs=4096 count=1 seek=100 conv=fsync 2>/dev/null")
end, { skip = KVM_ONLY })
