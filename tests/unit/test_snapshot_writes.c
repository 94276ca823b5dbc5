/* test_snapshot_writes.c — a restore's write set (vmm/snapshot_writes.c): the pages a
 * VM restored from a snapshot wrote are left beside it, the next restore copies them
 * in before the guest runs, pages copied in but not changed drop out, and a missing,
 * malformed or oversized set changes nothing. The "guest" here is this process
 * writing to a private mapping of the memory file, as a restored VM's RAM is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/snapshot.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096u
#define NPAGES 64u

static char dir[64], mem_path[96], set_path[96];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/provium-test-writes-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(mem_path, sizeof(mem_path), "%s/%s", dir, SNAPSHOT_MEMORY_FILE);
	snprintf(set_path, sizeof(set_path), "%s/%s", dir, SNAPSHOT_WRITES_FILE);
	/* a memory file whose every page holds its number */
	int fd = open(mem_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	uint8_t page[PAGE];
	for (unsigned i = 0; i < NPAGES; i++) {
		memset(page, (int)i, sizeof(page));
		if (pwrite(fd, page, PAGE, (off_t)i * PAGE) != PAGE)
			return -1;
	}
	return close(fd);
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A restored VM's RAM: the memory file mapped privately, with its tracker. */
struct ram {
	int fd;
	uint8_t *mem;
	struct snapshot_writes *w;
};

static void restore(struct ram *r, size_t npages)
{
	r->fd = open(mem_path, O_RDONLY);
	assert_true(r->fd >= 0);
	r->mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, r->fd, 0);
	assert_true(r->mem != MAP_FAILED);
	r->w = snapshot_writes_apply(dir, r->mem, npages * PAGE, r->fd);
	assert_non_null(r->w);
}

static void done(struct ram *r, size_t npages)
{
	assert_int_equal(snapshot_writes_save(r->w, r->mem), 0);
	snapshot_writes_free(r->w);
	munmap(r->mem, npages * PAGE);
	close(r->fd);
}

/* pagemap: present (63) and not a file page (61): a private copy of its own */
static bool copied(const void *addr)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	ssize_t n = pread(fd, &e, 8, (off_t)((uintptr_t)addr / PAGE * 8));
	close(fd);
	return n == 8 && (e >> 63) & 1 && !((e >> 61) & 1);
}

static void test_no_set_copies_nothing(void **state)
{
	(void)state;
	unlink(set_path);
	struct ram r;
	restore(&r, NPAGES);
	assert_int_equal(snapshot_writes_prewritten(r.w), 0);
	assert_false(copied(r.mem + 5 * PAGE));
	/* a VM that wrote nothing leaves no set */
	done(&r, NPAGES);
	assert_int_equal(access(set_path, F_OK), -1);
}

static void test_written_pages_are_copied_in_next_time(void **state)
{
	(void)state;
	unlink(set_path);
	struct ram r;
	restore(&r, NPAGES);
	r.mem[3 * PAGE] = 0xaa;
	r.mem[4 * PAGE + 100] = 0xbb;
	r.mem[10 * PAGE] = 0xcc;
	assert_int_equal(r.mem[11 * PAGE], 11); /* read, not written */
	done(&r, NPAGES);
	assert_int_equal(access(set_path, F_OK), 0);

	restore(&r, NPAGES);
	assert_int_equal(snapshot_writes_prewritten(r.w), 3);
	assert_true(copied(r.mem + 3 * PAGE));
	assert_true(copied(r.mem + 4 * PAGE));
	assert_true(copied(r.mem + 10 * PAGE));
	assert_false(copied(r.mem + 11 * PAGE));
	assert_false(copied(r.mem + 5 * PAGE));
	/* the copies hold the file's bytes, not the last VM's writes */
	assert_int_equal(r.mem[3 * PAGE], 3);
	assert_int_equal(r.mem[4 * PAGE + 100], 4);
	/* this VM writes page 10 again and page 20; 3 and 4 were copied in but stay
	 * as they were: they drop out of the set */
	r.mem[10 * PAGE + 1] = 0xdd;
	r.mem[20 * PAGE] = 0xee;
	done(&r, NPAGES);

	restore(&r, NPAGES);
	assert_int_equal(snapshot_writes_prewritten(r.w), 2);
	assert_true(copied(r.mem + 10 * PAGE));
	assert_true(copied(r.mem + 20 * PAGE));
	assert_false(copied(r.mem + 3 * PAGE));
	/* a VM that wrote nothing (the copies unchanged) leaves the set as it was */
	done(&r, NPAGES);
	restore(&r, NPAGES);
	assert_int_equal(snapshot_writes_prewritten(r.w), 2);
	done(&r, NPAGES);
}

/* writes a set file by hand: header fields, then (first, count) pairs */
static void write_set(uint32_t magic, uint64_t mem_size, uint32_t npages,
		      const uint32_t *pairs, uint32_t nranges)
{
	struct {
		uint32_t magic, version;
		uint64_t mem_size;
		uint32_t nranges, npages;
	} h = {magic, 1, mem_size, nranges, npages};
	int fd = open(set_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, &h, sizeof(h)), sizeof(h));
	assert_int_equal(write(fd, pairs, nranges * 8), (ssize_t)(nranges * 8));
	close(fd);
}

static void expect_ignored(void)
{
	struct ram r;
	restore(&r, NPAGES);
	assert_int_equal(snapshot_writes_prewritten(r.w), 0);
	snapshot_writes_free(r.w);
	munmap(r.mem, NPAGES * PAGE);
	close(r.fd);
}

static void test_malformed_sets_are_ignored(void **state)
{
	(void)state;
	const uint64_t size = NPAGES * PAGE;
	const uint32_t ok[] = {2, 3, 8, 1};
	write_set(0x53575650u, size, 4, ok, 2); /* well formed: taken */
	struct ram r;
	restore(&r, NPAGES);
	assert_int_equal(snapshot_writes_prewritten(r.w), 4);
	snapshot_writes_free(r.w);
	munmap(r.mem, size);
	close(r.fd);

	write_set(0x12345678u, size, 4, ok, 2); /* bad magic */
	expect_ignored();
	write_set(0x53575650u, size * 2, 4, ok, 2); /* another RAM size */
	expect_ignored();
	write_set(0x53575650u, size, 5, ok, 2); /* page count disagrees */
	expect_ignored();
	const uint32_t past_end[] = {60, 8};
	write_set(0x53575650u, size, 8, past_end, 1);
	expect_ignored();
	const uint32_t overlap[] = {2, 4, 4, 2};
	write_set(0x53575650u, size, 6, overlap, 2);
	expect_ignored();
	const uint32_t unsorted[] = {8, 1, 2, 3};
	write_set(0x53575650u, size, 4, unsorted, 2);
	expect_ignored();
	const uint32_t empty[] = {5, 0};
	write_set(0x53575650u, size, 0, empty, 1);
	expect_ignored();
	/* truncated: the header says two ranges, the file holds one */
	write_set(0x53575650u, size, 4, ok, 2);
	assert_int_equal(truncate(set_path, 24 + 8), 0);
	expect_ignored();
	unlink(set_path);
}

static void test_a_set_past_the_cap_is_not_kept(void **state)
{
	(void)state;
	const size_t npages = SNAPSHOT_WRITES_MAX_PAGES + 64;
	assert_int_equal(truncate(mem_path, (off_t)(npages * PAGE)), 0);
	unlink(set_path);
	struct ram r;
	restore(&r, npages);
	r.mem[7 * PAGE] = 1;
	done(&r, npages);
	restore(&r, npages);
	assert_int_equal(snapshot_writes_prewritten(r.w), 1);
	/* this VM writes more than the cap: the old set stays */
	for (size_t i = 0; i < SNAPSHOT_WRITES_MAX_PAGES + 1; i++)
		r.mem[i * PAGE] = 0x5a;
	done(&r, npages);
	restore(&r, npages);
	assert_int_equal(snapshot_writes_prewritten(r.w), 1);
	done(&r, npages);
	assert_int_equal(truncate(mem_path, (off_t)(NPAGES * PAGE)), 0);
	unlink(set_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_set_copies_nothing),
		cmocka_unit_test(test_written_pages_are_copied_in_next_time),
		cmocka_unit_test(test_malformed_sets_are_ignored),
		cmocka_unit_test(test_a_set_past_the_cap_is_not_kept),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
