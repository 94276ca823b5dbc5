/* host_snapshot_warm.c — a snapshotted VM's RAM handed to the next restore of its
 * snapshot (vmm/snapshot_warm.c), under the real VMM with the snapshot_count guest.
 * The guest runs on after its snapshot, and the host writes into its RAM as a device
 * would; when it is destroyed its RAM goes to the next restore, which must then hold
 * exactly the bytes of the memory file and finish the guest's work with the right
 * result; a restore while it lives maps the file, and the restored VM's destroy hands
 * the RAM on to the next restore, put back again. A later snapshot's clear ends an earlier claim, and a removed snapshot's
 * RAM is dropped. Skipped, saying why, where the kernel keeps no soft-dirty bits
 * (this project's PVM hosts; tests/kvmhost/tier.sh runs it in the simulated host). */
#include "tests/guest/host.h"
#include "tests/guest/host_snapshot_count.h"
#include "vmm/snapshot.h"

#include <sys/stat.h>

#define MIB 64
#define DEVICE_PAGE (48u << 20) /* guest RAM snapshot_count never uses */

static char base[128];
static struct guest g1, g2, ga;

static int group_setup(void **state)
{
	(void)state;
	snprintf(base, sizeof(base), "/tmp/provium-warmtest-%d", (int)getpid());
	mkdir(base, 0755);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	remove_scratch(base);
	return 0;
}

static int teardown_all(void **state)
{
	(void)state;
	guest_destroy(&g1);
	guest_destroy(&g2);
	guest_destroy(&ga);
	return 0;
}

static void need_soft_dirty(struct guest *g)
{
	struct snapshot_warm_stats s;

	snapshot_warm_stats(&s);
	if (s.usable < 0) {
		printf("# this kernel keeps no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY; arm64 has "
		       "none): every restore maps the memory file\n");
		guest_destroy(g);
		skip();
	}
}

/* Boots snapshot_count, snapshots it into base/name once it is partway (paused
 * there by vm_snapshot) and lets it run on to "progress 120000". */
static void boot_snapshot_run_on(struct guest *g, const char *name, char *dir, size_t len)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "iters=%d step=%d", ITERS, STEP);
	guest_boot(g, "snapshot_count", cmd, MIB, 1);
	guest_wait_output(g, "progress 60000", GUEST_TIMEOUT_MS);
	snprintf(dir, len, "%s/%s", base, name);
	if (vm_snapshot(g->vm, dir) < 0)
		guest_fail(g, "vm_snapshot: %s", pv_errmsg());
	need_soft_dirty(g);
	vm_resume(g->vm);
	guest_wait_output(g, "progress 120000", GUEST_TIMEOUT_MS);
}


/* RAM of g equals the memory file of dir, byte for byte. */
static void expect_ram_is_the_file(struct guest *g, const char *dir)
{
	char path[300], *d;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_MEMORY_FILE);
	if (pv_read_file(path, &d, &n) < 0)
		fail_msg("%s", pv_errmsg());
	assert_int_equal(n, vm_mem_size(g->vm));
	const uint8_t *ram = vm_mem_base(g->vm);
	for (size_t off = 0; off < n; off += 4096)
		if (memcmp(ram + off, d + off, 4096)) {
			free(d);
			fail_msg("guest RAM differs from %s at 0x%zx", path, off);
		}
	free(d);
}

/* Restores dir into g, paused: it took the snapshotted VM's RAM, which then holds
 * the memory file's bytes, or it did not, as `warm` says. */
static void restore_paused(struct guest *g, const char *dir, const char *name, bool warm)
{
	struct vm_restore_opts o = {.name = name, .paused = true};

	guest_restore(g, dir, &o);
	if (vm_ram_warm(g->vm) != warm)
		fail_msg("restore %s: %s the snapshotted VM's RAM", name,
			 warm ? "did not take" : "took");
	if (warm)
		expect_ram_is_the_file(g, dir);
}

static void test_ram_goes_to_the_next_restore(void **state)
{
	char dir[300];
	struct snapshot_warm_stats s0, s1;

	(void)state;
	boot_snapshot_run_on(&g1, "a", dir, sizeof(dir));
	/* a device's write into guest RAM after the snapshot (not through the vCPU) */
	memset((uint8_t *)vm_mem_base(g1.vm) + DEVICE_PAGE, 0x5a, 2 * 4096);
	snapshot_warm_stats(&s0);
	guest_destroy(&g1);
	snapshot_warm_stats(&s1);
	assert_int_equal(s1.given, s0.given + 1);
	assert_int_equal(s1.cached, s0.cached + 1);
	/* the guest's own writes since the snapshot and the device's two pages */
	assert_true(s1.repaired_pages >= s0.repaired_pages + 3);
	assert_true(s1.dirty_pages - s0.dirty_pages >= s1.repaired_pages - s0.repaired_pages);
	printf("# %llu pages written after the snapshot, %llu of them put back\n",
	       (unsigned long long)(s1.dirty_pages - s0.dirty_pages),
	       (unsigned long long)(s1.repaired_pages - s0.repaired_pages));

	restore_paused(&ga, dir, "warm", true);
	snapshot_warm_stats(&s0);
	assert_int_equal(s0.taken, s1.taken + 1);
	/* taken: a restore while that VM lives maps the file */
	restore_paused(&g2, dir, "cold", false);
	vm_resume(ga.vm);
	vm_resume(g2.vm);
	finish_with_salt(&ga, 5);
	guest_expect_not(&ga, "snapshot_count: start");
	finish_with_salt(&g2, 6);
	guest_destroy(&g2);
	/* the restored VM claimed it in turn: its destroy hands it on, put back again */
	guest_destroy(&ga);
	restore_paused(&g1, dir, "again", true);
	vm_resume(g1.vm);
	finish_with_salt(&g1, 4);
}

static void test_a_later_snapshot_ends_the_claim(void **state)
{
	char d1[300], d2[300];
	struct snapshot_warm_stats s0, s1;

	(void)state;
	boot_snapshot_run_on(&g1, "first", d1, sizeof(d1));
	boot_snapshot_run_on(&g2, "second", d2, sizeof(d2)); /* clears g1's bits too */
	snapshot_warm_stats(&s0);
	guest_destroy(&g1);
	snapshot_warm_stats(&s1);
	assert_int_equal(s1.given, s0.given);
	restore_paused(&ga, d1, "first-restored", false);
	vm_resume(ga.vm);
	finish_with_salt(&ga, 7);
	guest_destroy(&ga);

	guest_destroy(&g2); /* the latest claim holds */
	restore_paused(&ga, d2, "second-restored", true);
	vm_resume(ga.vm);
	finish_with_salt(&ga, 8);
}

static void test_a_removed_snapshot_drops_its_ram(void **state)
{
	char dir[300], mem[340];
	struct snapshot_warm_stats s0, s1;

	(void)state;
	boot_snapshot_run_on(&g1, "gone", dir, sizeof(dir));
	guest_destroy(&g1);
	snapshot_warm_stats(&s0);
	snprintf(mem, sizeof(mem), "%s/%s", dir, SNAPSHOT_MEMORY_FILE);
	snapshot_warm_forget(mem);
	snapshot_warm_stats(&s1);
	assert_int_equal(s1.cached, s0.cached - 1);
	restore_paused(&ga, dir, "after-forget", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_ram_goes_to_the_next_restore, teardown_all),
		cmocka_unit_test_teardown(test_a_later_snapshot_ends_the_claim, teardown_all),
		cmocka_unit_test_teardown(test_a_removed_snapshot_drops_its_ram, teardown_all),
	};

	return cmocka_run_group_tests_name("guest_snapshot_warm", tests, group_setup,
					   group_teardown);
}
