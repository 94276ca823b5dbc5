-- A profile with its own rootfs, relative to this file (tests/lua/profile_test.lua).
return { rootfs = "../no-such-rootfs-dir" }
