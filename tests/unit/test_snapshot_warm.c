/* test_snapshot_warm.c — a snapshotted VM's RAM handed to the next restore
 * (vmm/snapshot_warm.c), without KVM: the "VM" is this process writing to anonymous
 * memory after "snapshotting" it into a memory file. What is written after the clear
 * is put back from the file, pages written with their old bytes are not counted as
 * changed, the RAM is found by the file it was claimed on and only once, a later
 * clear ends a claim, a changed or removed file is refused, the oldest cached RAM
 * goes for a third, and a forked child finds none. The kernel must keep soft-dirty
 * bits for most of this (tests/kvmhost/tier.sh runs it in the simulated host too);
 * where it does not, those cases skip saying so, and one case checks that then
 * nothing is claimed at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/tmpdir_util.h"
#include "vmm/snapshot.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096u
#define NPAGES 1024u /* 4 MiB: two huge pages where the kernel gives them */
#define SIZE ((uint64_t)NPAGES * PAGE)

/* The kernel's answer, asked independently of the code under test. */
static bool kernel_keeps_soft_dirty(void)
{
	uint8_t *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/clear_refs", O_WRONLY), pm = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	bool ok = false;
	if (p != MAP_FAILED && fd >= 0 && pm >= 0) {
		p[0] = 1;
		if (write(fd, "4", 1) == 1) {
			((volatile uint8_t *)p)[0] = 2;
			ok = pread(pm, &e, 8, (off_t)((uintptr_t)p / PAGE * 8)) == 8 && (e >> 55 & 1);
		}
	}
	if (fd >= 0)
		close(fd);
	if (pm >= 0)
		close(pm);
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	return ok;
}

static void need_soft_dirty(void)
{
	if (!kernel_keeps_soft_dirty()) {
		printf("# this kernel keeps no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY; arm64 has "
		       "none): nothing is claimed, every restore maps the memory file\n");
		skip();
	}
}

/* A VM's RAM: anonymous, every page holding its number and `salt`. */
static uint8_t *new_ram(uint8_t salt)
{
	uint8_t *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	madvise(m, SIZE, MADV_HUGEPAGE);
	for (unsigned i = 0; i < NPAGES; i++)
		memset(m + (uint64_t)i * PAGE, (int)(uint8_t)(i + salt), PAGE);
	return m;
}

/* A "snapshot" of ram into dir/name/memory: the clear, the file, the claim. */
static struct snapshot_warm *snapshot(const uint8_t *ram, const char *name, char *path,
				      size_t len)
{
	char d[128];
	snprintf(d, sizeof(d), "%s/%s", dir, name);
	mkdir(d, 0755);
	snprintf(path, len, "%s/%s", d, SNAPSHOT_MEMORY_FILE);
	uint64_t gen = snapshot_warm_begin();
	assert_true(gen > 0);
	assert_int_equal(snapshot_memory_write(path, ram, SIZE, -1), 0);
	struct snapshot_warm *c = snapshot_warm_claim(gen, path);
	assert_non_null(c);
	return c;
}

/* The RAM cached for the file at path, or NULL. */
static void *take(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	void *m = snapshot_warm_take(fd, SIZE);
	close(fd);
	return m;
}

static void expect_file_bytes(const uint8_t *ram, const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t page[PAGE];
	for (unsigned i = 0; i < NPAGES; i++) {
		assert_int_equal(pread(fd, page, PAGE, (off_t)i * PAGE), PAGE);
		if (memcmp(page, ram + (uint64_t)i * PAGE, PAGE))
			fail_msg("page %u differs from the file", i);
	}
	close(fd);
}

static void test_nothing_claimed_without_soft_dirty(void **state)
{
	(void)state;
	if (kernel_keeps_soft_dirty()) {
		printf("# this kernel keeps soft-dirty bits: the other cases check the claims\n");
		skip();
	}
	uint64_t gen = snapshot_warm_begin();
	assert_int_equal(gen, 0);
	assert_null(snapshot_warm_claim(gen, "/dev/null"));
	struct snapshot_warm_stats s;
	snapshot_warm_stats(&s);
	assert_int_equal(s.usable, -1);
}

static void test_written_pages_are_put_back(void **state)
{
	char path[160];
	struct snapshot_warm_stats s0, s1;
	(void)state;
	need_soft_dirty();
	uint8_t *ram = new_ram(0);
	struct snapshot_warm *c = snapshot(ram, "back", path, sizeof(path));
	/* after the snapshot: three pages changed, one written with the bytes it had */
	ram[5 * PAGE] ^= 1;
	memset(ram + 700 * PAGE, 0xee, 2 * PAGE);
	memset(ram + 9 * PAGE, 9, PAGE);
	snapshot_warm_stats(&s0);
	assert_true(snapshot_warm_give(c, ram, SIZE));
	snapshot_warm_free(c);
	snapshot_warm_stats(&s1);
	assert_int_equal(s1.repaired_pages - s0.repaired_pages, 3);
	assert_true(s1.dirty_pages - s0.dirty_pages >= 4);
	assert_int_equal(s1.given, s0.given + 1);
	expect_file_bytes(ram, path);
	/* found by its file, once */
	assert_ptr_equal(take(path), ram);
	assert_null(take(path));
	munmap(ram, SIZE);
}

static void test_a_later_clear_ends_the_claim(void **state)
{
	char p1[160], p2[160];
	(void)state;
	need_soft_dirty();
	uint8_t *a = new_ram(1), *b = new_ram(2);
	struct snapshot_warm *ca = snapshot(a, "a", p1, sizeof(p1));
	struct snapshot_warm *cb = snapshot(b, "b", p2, sizeof(p2));
	a[3 * PAGE] ^= 1; /* the second clear would hide this write */
	assert_false(snapshot_warm_give(ca, a, SIZE));
	assert_true(snapshot_warm_give(cb, b, SIZE));
	snapshot_warm_free(ca);
	snapshot_warm_free(cb);
	assert_null(take(p1));
	assert_ptr_equal(take(p2), b);
	munmap(a, SIZE);
	munmap(b, SIZE);
}

static void test_a_changed_or_removed_file_is_refused(void **state)
{
	char p1[160], p2[160];
	(void)state;
	need_soft_dirty();
	uint8_t *a = new_ram(3);
	struct snapshot_warm *ca = snapshot(a, "changed", p1, sizeof(p1));
	int fd = open(p1, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "x", 1, 100), 1); /* someone else's write: a new mtime */
	close(fd);
	struct timespec ts[2] = {{0, UTIME_OMIT}, {1, 0}};
	utimensat(AT_FDCWD, p1, ts, 0);
	assert_false(snapshot_warm_give(ca, a, SIZE));
	snapshot_warm_free(ca);
	uint8_t *b = new_ram(4);
	struct snapshot_warm *cb = snapshot(b, "removed", p2, sizeof(p2));
	assert_int_equal(unlink(p2), 0);
	assert_false(snapshot_warm_give(cb, b, SIZE));
	snapshot_warm_free(cb);
	munmap(a, SIZE);
	munmap(b, SIZE);
}

static void test_the_oldest_goes_and_forget_drops(void **state)
{
	char p[SNAPSHOT_WARM_MAX + 1][160], name[16];
	uint8_t *r[SNAPSHOT_WARM_MAX + 1];
	struct snapshot_warm_stats s0, s1;
	(void)state;
	need_soft_dirty();
	snapshot_warm_stats(&s0);
	for (unsigned i = 0; i <= SNAPSHOT_WARM_MAX; i++) {
		snprintf(name, sizeof(name), "ev%u", i);
		r[i] = new_ram((uint8_t)(10 + i));
		struct snapshot_warm *c = snapshot(r[i], name, p[i], sizeof(p[i]));
		assert_true(snapshot_warm_give(c, r[i], SIZE)); /* r[i] is the cache's now */
		snapshot_warm_free(c);
	}
	snapshot_warm_stats(&s1);
	assert_int_equal(s1.cached, SNAPSHOT_WARM_MAX);
	assert_true(s1.evicted > s0.evicted);
	assert_null(take(p[0])); /* the oldest went (and was unmapped) */
	snapshot_warm_forget(p[1]);
	assert_null(take(p[1]));
	void *last = take(p[SNAPSHOT_WARM_MAX]);
	assert_ptr_equal(last, r[SNAPSHOT_WARM_MAX]);
	munmap(last, SIZE);
}

static void test_a_forked_child_finds_none(void **state)
{
	char path[160];
	(void)state;
	need_soft_dirty();
	uint8_t *ram = new_ram(20);
	madvise(ram, SIZE, MADV_DONTFORK); /* as guest RAM is */
	struct snapshot_warm *c = snapshot(ram, "fork", path, sizeof(path));
	assert_true(snapshot_warm_give(c, ram, SIZE));
	snapshot_warm_free(c);
	pid_t pid = fork();
	if (pid == 0)
		_exit(take(path) == NULL ? 0 : 1); /* it has no such mapping */
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_ptr_equal(take(path), ram); /* the parent still has it */
	munmap(ram, SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_claimed_without_soft_dirty),
		cmocka_unit_test(test_written_pages_are_put_back),
		cmocka_unit_test(test_a_later_clear_ends_the_claim),
		cmocka_unit_test(test_a_changed_or_removed_file_is_refused),
		cmocka_unit_test(test_the_oldest_goes_and_forget_drops),
		cmocka_unit_test(test_a_forked_child_finds_none),
	};
	tmpdir_name = "warm";
	return cmocka_run_group_tests_name("snapshot_warm", tests, tmpdir_setup, tmpdir_teardown);
}
