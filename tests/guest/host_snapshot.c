/* host_snapshot.c — snapshots under the real VMM with the snapshot_count guest:
 * a guest snapshotted mid-work and destroyed finishes with the right result in a
 * restored VM (and does not start over); two restores of one snapshot are
 * independent VMs that each finish right, without changing the snapshot; a
 * corrupted, truncated or other-version state file is refused with a message
 * naming the file and the problem; a virtio-rng device comes back at the same
 * address and keeps working; a restored VM's destroy makes the next restore's KVM VM
 * ahead. */
#include "tests/guest/host.h"
#include "tests/guest/host_snapshot_count.h"
#include "vmm/snapshot.h"

#include <sys/stat.h>

static char snapdir[256];
static char base[128];

static uint32_t file_crc(const char *path)
{
	char *d;
	size_t n;

	if (pv_read_file(path, &d, &n) < 0)
		fail_msg("%s", pv_errmsg());
	uint32_t c = snapshot_crc32(0, d, n);
	free(d);
	return c;
}

/* Boots the guest, lets it get partway, snapshots it and destroys it. */
static int group_setup(void **state)
{
	static struct guest g;
	char cmd[64];
	int r;

	(void)state;
	snprintf(base, sizeof(base), "/tmp/provium-snaptest-%d", (int)getpid());
	mkdir(base, 0755);
	snprintf(snapdir, sizeof(snapdir), "%s/snap", base);
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		return 0;
	snprintf(cmd, sizeof(cmd), "iters=%d step=%d", ITERS, STEP);
	guest_boot(&g, "snapshot_count", cmd, 64, 1);
	guest_wait_output(&g, "progress 60000", GUEST_TIMEOUT_MS);
	r = vm_snapshot(g.vm, snapdir);
	if (r < 0)
		guest_fail(&g, "vm_snapshot: %s", pv_errmsg());
	guest_fetch_log(&g);
	if (strstr(g.log, "progress 300000"))
		guest_fail(&g, "the guest finished its loop before the snapshot: not mid-work");
	guest_destroy(&g);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	remove_scratch(base);
	return 0;
}

static struct guest ga, gb;

static void restore_into(struct guest *g, const char *dir, const char *name)
{
	struct vm_restore_opts o = {.name = name};

	guest_restore(g, dir, &o);
}

static int teardown_ab(void **state)
{
	(void)state;
	guest_destroy(&ga);
	guest_destroy(&gb);
	return 0;
}

static void test_restore_finishes_the_work(void **state)
{
	(void)state;
	restore_into(&ga, snapdir, "restored");
	finish_with_salt(&ga, 7);
	/* It continued where it was: no second start, and the last progress line. */
	guest_expect_not(&ga, "snapshot_count: start");
	guest_expect(&ga, "progress 300000");
}

static void test_two_restores_are_independent(void **state)
{
	char mem[300];

	(void)state;
	snprintf(mem, sizeof(mem), "%s/memory", snapdir);
	uint32_t before = file_crc(mem);
	restore_into(&ga, snapdir, "first");
	restore_into(&gb, snapdir, "second");
	/* Both run at once; the first one's writes must not show in the second. */
	finish_with_salt(&ga, 1);
	finish_with_salt(&gb, 2);
	assert_int_equal(file_crc(mem), before);
}

/* A restored VM's destroy makes the next restore's KVM VM ahead (vmm/vm_spare.c);
 * the next restore takes it, and its guest finishes right. */
static void test_next_restore_takes_the_spare_vm(void **state)
{
	struct vm_spare_stats s0, s1 = {0, 0};

	(void)state;
	restore_into(&ga, snapdir, "before-spare"); /* takes any spare already made */
	vm_spare_stats(&s0);
	guest_destroy(&ga);
	for (int i = 0; i < 500; i++) {
		vm_spare_stats(&s1);
		if (s1.made > s0.made)
			break;
		usleep(10000);
	}
	assert_int_equal(s1.made, s0.made + 1);
	restore_into(&ga, snapdir, "on-spare");
	vm_spare_stats(&s1);
	assert_int_equal(s1.taken, s0.taken + 1);
	finish_with_salt(&ga, 3);
	guest_expect_not(&ga, "snapshot_count: start");
}

/* A restored VM (private memory mapping) snapshotted again mid-work: the second
 * generation holds the pages it changed since the first and finishes right. */
static void test_snapshot_of_a_restored_vm(void **state)
{
	char gen2[300];
	struct vm_restore_opts o = {.name = "gen1", .paused = true};

	(void)state;
	guest_require_kvm();
	memset(&ga, 0, sizeof(ga));
	ga.name = "gen1";
	if (vm_restore(snapdir, &o, &ga.vm) < 0)
		fail_msg("vm_restore: %s", pv_errmsg());
	usleep(100000);
	guest_fetch_log(&ga);
	assert_int_equal(ga.log_len, 0); /* paused: it has not run */
	vm_resume(ga.vm);
	guest_wait_output(&ga, "progress 120000", GUEST_TIMEOUT_MS);
	snprintf(gen2, sizeof(gen2), "%s/gen2", base);
	if (vm_snapshot(ga.vm, gen2) < 0)
		guest_fail(&ga, "vm_snapshot of a restored VM: %s", pv_errmsg());
	guest_fetch_log(&ga);
	if (strstr(ga.log, "progress 300000"))
		guest_fail(&ga, "the guest finished before the second snapshot");
	guest_destroy(&ga);
	restore_into(&gb, gen2, "gen2");
	finish_with_salt(&gb, 9);
	guest_expect_not(&gb, "progress 60000\r");
}

/* A copy of the snapshot whose vm.state is changed by `mangle`. */
static void broken_copy(const char *name, void (*mangle)(char *d, size_t *n), char *dir,
			size_t dlen)
{
	char src[300], dst[300], *d;
	size_t n;

	snprintf(dir, dlen, "%s/%s", base, name);
	mkdir(dir, 0755);
	snprintf(src, sizeof(src), "%s/memory", snapdir);
	snprintf(dst, sizeof(dst), "%s/memory", dir);
	if (snapshot_copy_file(src, dst) < 0)
		fail_msg("%s", pv_errmsg());
	snprintf(src, sizeof(src), "%s/vm.state", snapdir);
	if (pv_read_file(src, &d, &n) < 0)
		fail_msg("%s", pv_errmsg());
	mangle(d, &n);
	snprintf(dst, sizeof(dst), "%s/vm.state", dir);
	FILE *f = fopen(dst, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, n, f), n);
	fclose(f);
	free(d);
}

static void flip_middle(char *d, size_t *n) { d[*n / 2] ^= 0x10; }
static void truncate_half(char *d, size_t *n) { (void)d; *n /= 2; }
static void version_2(char *d, size_t *n) { (void)n; d[8] = 2; }
static void bad_magic(char *d, size_t *n) { (void)n; d[0] = 'X'; }

static void expect_refused(const char *name, void (*mangle)(char *, size_t *),
			   const char *why)
{
	char dir[300];
	struct vm *vm = NULL;

	broken_copy(name, mangle, dir, sizeof(dir));
	int r = vm_restore(dir, NULL, &vm);
	if (r == 0) {
		vm_destroy(vm);
		fail_msg("%s: a %s state file was restored", name, why);
	}
	const char *msg = pv_errmsg();
	printf("# %s: %s\n", name, msg);
	if (!strstr(msg, dir) || !strstr(msg, "vm.state") || !strstr(msg, why))
		fail_msg("%s: the error \"%s\" does not name the file and \"%s\"", name, msg, why);
}

static void test_corrupt_state_refused(void **state)
{
	(void)state;
	guest_require_kvm();
	expect_refused("flipped", flip_middle, "CRC mismatch");
	expect_refused("truncated", truncate_half, "truncated");
	expect_refused("version", version_2, "format version 2");
	expect_refused("magic", bad_magic, "bad magic");
}

static void test_truncated_memory_refused(void **state)
{
	char dir[300], mem[340];

	(void)state;
	guest_require_kvm();
	broken_copy("shortmem", flip_middle, dir, sizeof(dir));
	/* a good state file with a short memory file */
	char src[300], dst[340];
	snprintf(src, sizeof(src), "%s/vm.state", snapdir);
	snprintf(dst, sizeof(dst), "%s/vm.state", dir);
	assert_int_equal(snapshot_copy_file(src, dst), 0);
	snprintf(mem, sizeof(mem), "%s/memory", dir);
	assert_int_equal(truncate(mem, 1 << 20), 0);
	struct vm *vm = NULL;
	int r = vm_restore(dir, NULL, &vm);
	if (r == 0) {
		vm_destroy(vm);
		fail_msg("a truncated memory file was restored");
	}
	if (!strstr(pv_errmsg(), "memory") || !strstr(pv_errmsg(), "truncated"))
		fail_msg("error \"%s\" does not say the memory file is truncated", pv_errmsg());
}

static void test_info(void **state)
{
	struct vm_snapshot_info info;

	(void)state;
	guest_require_kvm();
	if (vm_snapshot_info(snapdir, &info) < 0)
		fail_msg("%s", pv_errmsg());
	assert_string_equal(info.name, "snapshot_count");
	assert_int_equal(info.memory_mib, 64);
	assert_int_equal(info.cpus, 1);
	assert_true(info.created_ns > 0);
	assert_non_null(strstr(info.kernel, "snapshot_count.elf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_restore_finishes_the_work, teardown_ab),
		cmocka_unit_test_teardown(test_two_restores_are_independent, teardown_ab),
		cmocka_unit_test_teardown(test_snapshot_of_a_restored_vm, teardown_ab),
		cmocka_unit_test_teardown(test_next_restore_takes_the_spare_vm, teardown_ab),
		cmocka_unit_test(test_corrupt_state_refused),
		cmocka_unit_test(test_truncated_memory_refused),
		cmocka_unit_test(test_info),
	};

	return cmocka_run_group_tests_name("guest_snapshot", tests, group_setup, group_teardown);
}
