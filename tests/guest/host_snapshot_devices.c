/* host_snapshot_devices.c — a guest using virtio-rng and virtio-blk is snapshotted
 * while waiting, destroyed, and restored twice: each restored VM finds its devices
 * at the same addresses with the same ring state (rng and disk requests go on),
 * sees the disk as it was, and writes to its own private copy: the original image
 * and the snapshot's copy are never written. The disk is in writeback mode: a write
 * the guest did not flush is carried in the snapshot (the device's cache), and a
 * crash of the restored VM loses it while flushed data stays. */
#include "tests/guest/host.h"
#include "tests/guest/host_virtio.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_rng.h"
#include "vmm/snapshot.h"

#include <sys/stat.h>

static char img[128], snap[128];
static struct guest ga, gb;

static void pattern(uint8_t *p, unsigned seed)
{
	for (unsigned i = 0; i < 512; i++)
		p[i] = (uint8_t)(i * seed + 1);
}

static void read_sector(const char *path, unsigned lba, uint8_t *out)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, out, 512, (off_t)lba * 512), 512);
	close(fd);
}

static int group_setup(void **state)
{
	static struct guest g;
	struct virtio_rng *r;
	struct virtio_blk *b;
	uint8_t s[512];

	(void)state;
	snprintf(img, sizeof(img), "/tmp/provium-snapdev-%d.img", (int)getpid());
	snprintf(snap, sizeof(snap), "/tmp/provium-snapdev-%d.snap", (int)getpid());
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		return 0;
	unlink(img);
	vguest_create(&g, "snapshot_devices", "", NULL, NULL);
	struct virtio_blk_opts o = {.path = img, .size = 1 << 20};
	if (virtio_rng_create("rng0", &r) < 0 || virtio_rng_attach(r, g.vm) < 0 ||
	    virtio_blk_create(&o, &b) < 0 || virtio_blk_attach(b, g.vm) < 0)
		fail_msg("devices: %s", pv_errmsg());
	pattern(s, 7);
	assert_int_equal(virtio_blk_write_sectors(b, 1, s, 1), 0);
	assert_int_equal(virtio_blk_set_cache(b, VIRTIO_BLK_CACHE_WRITEBACK), 0);
	vguest_start(&g);
	guest_wait_output(&g, "\nready", GUEST_TIMEOUT_MS); /* not "PASS: rng ready" */
	guest_expect_not(&g, "FAIL: ");
	if (vm_snapshot(g.vm, snap) < 0)
		guest_fail(&g, "vm_snapshot: %s", pv_errmsg());
	guest_destroy(&g);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[300];
	(void)state;
	unlink(img);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap);
	return system(cmd) == 0 ? 0 : -1;
}

static void restore_salted(struct guest *g, const char *name, unsigned salt)
{
	struct vm_restore_opts o = {.name = name};
	char line[32];

	guest_restore(g, snap, &o);
	snprintf(line, sizeof(line), "%u\n", salt);
	vm_console_input(g->vm, line, strlen(line));
	guest_wait_exit(g, GUEST_TIMEOUT_MS);
	guest_expect_exit(g, 0);
	guest_expect(g, "PASS: rng read after the restore");
	guest_expect(g, "PASS: sector 3 read back");
	guest_expect(g, "PASS: sector 4 written");
}

static void test_devices_go_on_and_disks_stay_private(void **state)
{
	char copy[200];
	uint8_t got[512], want[512], zero[512] = {0};

	(void)state;
	restore_salted(&ga, "dev-a", 21);
	restore_salted(&gb, "dev-b", 22);
	/* The original image: what the first VM wrote before the snapshot, nothing
	 * from either restored VM. */
	read_sector(img, 3, got);
	pattern(want, 11);
	assert_memory_equal(got, want, 512);
	read_sector(img, 4, got);
	assert_memory_equal(got, zero, 512);
	/* The snapshot's copy is not written either. */
	snprintf(copy, sizeof(copy), "%s/disk-vda.img", snap);
	read_sector(copy, 3, got);
	assert_memory_equal(got, want, 512);
	read_sector(copy, 4, got);
	assert_memory_equal(got, zero, 512);
}

/* vm_restore's device hook: builds the disk itself (on its own copy) to keep a
 * handle for crashing it; other kinds go to the built-in factories. */
static struct virtio_blk *hooked;
static char hooked_path[128];

static int make_disk(void *opaque, struct vm *vm, const char *kind, const char *id,
		     const struct msgpack_object *state, const char *files_dir)
{
	char src[300];
	(void)opaque;
	(void)state;
	if (strcmp(kind, "virtio-blk"))
		return -ENOENT;
	snprintf(src, sizeof(src), "%s/disk-%s.img", files_dir, id);
	snprintf(hooked_path, sizeof(hooked_path), "/tmp/provium-snapdev-%d-hooked.img",
		 (int)getpid());
	if (snapshot_copy_file(src, hooked_path) < 0)
		return -EIO;
	struct virtio_blk_opts o = {.id = id, .path = hooked_path};
	int err = virtio_blk_create(&o, &hooked);
	if (!err && (err = virtio_blk_attach(hooked, vm)) < 0)
		virtio_blk_destroy(hooked);
	return err;
}

static void test_unflushed_write_carried_and_lost_on_crash(void **state)
{
	struct vm_restore_opts o = {.name = "dev-crash", .device_hook = make_disk};
	uint8_t got[512], want[512], zero[512] = {0};

	(void)state;
	guest_restore(&ga, snap, &o);
	assert_non_null(hooked);
	assert_int_equal(virtio_blk_get_cache(hooked), VIRTIO_BLK_CACHE_WRITEBACK);
	/* The unflushed sector came back with the device state ... */
	assert_int_equal(virtio_blk_dirty_bytes(hooked), 512);
	pattern(want, 13);
	assert_int_equal(virtio_blk_read_sectors(hooked, 6, 1, got), 0);
	assert_memory_equal(got, want, 512);
	/* ... and a crash (power loss) loses it; the flushed sector 3 stays. */
	assert_int_equal(virtio_blk_crash(hooked), 1);
	assert_int_equal(virtio_blk_read_sectors(hooked, 6, 1, got), 0);
	assert_memory_equal(got, zero, 512);
	assert_int_equal(virtio_blk_read_sectors(hooked, 3, 1, got), 0);
	pattern(want, 11);
	assert_memory_equal(got, want, 512);
	guest_destroy(&ga);
	hooked = NULL;
	read_sector(hooked_path, 6, got);
	assert_memory_equal(got, zero, 512);
	unlink(hooked_path);
}

static int teardown_ab(void **state)
{
	(void)state;
	guest_destroy(&ga);
	guest_destroy(&gb);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_devices_go_on_and_disks_stay_private, teardown_ab),
		cmocka_unit_test_teardown(test_unflushed_write_carried_and_lost_on_crash,
					  teardown_ab),
	};
	return cmocka_run_group_tests_name("guest_snapshot_devices", tests, group_setup,
					   group_teardown);
}
