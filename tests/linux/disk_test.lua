-- disk_test.lua — kvm-only: disks under a Linux guest (tests/linux, hardware KVM).
-- ext4 on a disk with fail_writes surfaces EIO to a guest program; writeback cache +
-- vm:crash loses what was not fsynced and keeps what was.
-- Only meaningful on Linux microVMs: skipped (with the reason) on the sandbox backend.
local KVM_ONLY = provium.backend() ~= "kvm" and "Linux-guest test: needs --backend kvm on a hardware-KVM host (tests/linux/run.sh)" or nil
local function test(name, fn) return _G.test(name, fn, { skip = KVM_ONLY, tags = { "linux" } }) end

local MiB = 1024 * 1024

local function mkfs_mount(vm)
  vm:succeed("mke2fs -q /dev/vda && mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d")
end

test("fail_writes under ext4: the guest program sees EIO", function(t)
  local vm = provium:vm("eio", "default", { disks = { { size = 64 * MiB } } })
  mkfs_mount(vm)
  local d = vm:disk("vda")
  t:eq(d.name, "vda")
  d:fail_writes()
  local r = vm:run("dd if=/dev/zero of=/mnt/d/f bs=4096 count=64 conv=fsync")
  t:ne(r.code, 0, "dd must fail")
  -- EIO's text: "I/O error" (glibc, busybox's own messages) or "Input/output error"
  t:ok(r.stderr:find("I/O error", 1, true) or r.stderr:find("Input/output error", 1, true),
    "dd reports EIO: " .. r.stderr)
  t:gt(d:stats().errors, 0)
  d:clear_faults()
  t:eq(#d:faults(), 0)
end)

test("write without fsync + crash loses the data; with fsync it is kept", function(t)
  local vm = provium:vm("crashy", "default", { disks = { { size = 64 * MiB } } })
  mkfs_mount(vm)
  vm:succeed("umount /mnt/d")
  local d = vm:disk(1)
  d:cache("writeback")
  vm:succeed("mount -t ext4 /dev/vda /mnt/d")
  vm:succeed("echo kept > /mnt/d/synced && sync /mnt/d/synced && sync")
  vm:succeed("echo lost > /mnt/d/unsynced")
  t:ok(vm:crash() >= 0)
  t:eq(vm:state(), "crashed")
  vm:start()
  vm:succeed("mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d")
  t:eq(vm:read_file("/mnt/d/synced"), "kept\n")
  local r = vm:run("cat /mnt/d/unsynced")
  t:ok(r.code ~= 0 or r.stdout ~= "lost\n", "the unsynced file did not survive the power loss")
end)

test("host-side sector I/O sees what the guest wrote with O_DIRECT", function(t)
  local vm = provium:vm("sectors", "default", { disks = { { size = 8 * MiB, serial = "SN-1" } } })
  local d = vm:disk("vda")
  d:write_sectors(4, string.rep("h", 512))
  t:eq(vm:succeed("dd if=/dev/vda bs=512 skip=4 count=1 iflag=direct 2>/dev/null"), string.rep("h", 512))
  vm:succeed("printf 'g%.0s' $(seq 512) | dd of=/dev/vda bs=512 seek=9 count=1 oflag=direct 2>/dev/null")
  t:eq(d:read_sectors(9, 1), string.rep("g", 512))
  t:eq(vm:succeed("cat /sys/block/vda/serial"), "SN-1")
end)

test("attach_disk on a running Linux VM: the slot's capacity change reaches the guest", function(t)
  local vm = provium:vm("hotplug", "default")
  local d = vm:attach_disk({ size = 4 * MiB, serial = "HOT-1" })
  t:eq(d.name, "vda", "the first empty slot")
  vm:wait_until_succeeds("test \"$(cat /sys/block/vda/size)\" = 8192", { timeout = 10 })
  vm:succeed("mke2fs -q /dev/vda && mkdir -p /mnt/h && mount -t ext4 /dev/vda /mnt/h && echo hi > /mnt/h/f && sync")
  t:eq(vm:read_file("/mnt/h/f"), "hi\n")
end)
