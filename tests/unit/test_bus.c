/* test_bus.c — the I/O bus: dispatch with offsets, overlap rejection, unregister,
 * unclaimed reads as all-ones and logged once per address, many ranges kept sorted, concurrent lookups while
 * registering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/util.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rec {
	int id;
	uint64_t off;
	unsigned len, reads, writes;
	uint8_t last[8];
};

static void rec_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct rec *r = opaque;
	r->off = off;
	r->len = len;
	r->reads++;
	memset(data, r->id, len);
}

static void rec_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct rec *r = opaque;
	r->off = off;
	r->len = len;
	r->writes++;
	memcpy(r->last, data, len);
}

static const struct bus_ops rec_ops = {.read = rec_read, .write = rec_write};

static void test_dispatch_with_offset(void **state)
{
	(void)state;
	struct bus *b = bus_create("pio");
	struct rec a = {.id = 0x11}, c = {.id = 0x22};
	assert_int_equal(bus_register(b, 0x3f8, 8, &rec_ops, &a), 0);
	assert_int_equal(bus_register(b, 0x60, 5, &rec_ops, &c), 0);
	uint8_t v[4] = {0};
	assert_true(bus_access(b, 0x3fd, v, 1, false));
	assert_int_equal(a.off, 5);
	assert_int_equal(a.reads, 1);
	assert_int_equal(v[0], 0x11);
	uint32_t w = 0xdeadbeef;
	assert_true(bus_access(b, 0x64, &w, 4, true));
	assert_int_equal(c.off, 4);
	assert_int_equal(c.len, 4);
	assert_memory_equal(c.last, &w, 4);
	assert_int_equal(a.writes, 0);
	bus_destroy(b);
}

static void test_unclaimed_reads_all_ones(void **state)
{
	(void)state;
	struct bus *b = bus_create("mmio");
	struct rec a = {.id = 1};
	assert_int_equal(bus_register(b, 0x1000, 0x100, &rec_ops, &a), 0);
	uint64_t v = 0;
	assert_false(bus_access(b, 0x1100, &v, 8, false)); /* just past the end */
	assert_true(v == ~0ull);
	v = 0;
	assert_false(bus_access(b, 0xfff, &v, 2, false)); /* just before */
	assert_int_equal(v, 0xffff);
	uint32_t w = 5;
	assert_false(bus_access(b, 0x2000, &w, 4, true));
	assert_int_equal(a.reads + a.writes, 0);
	bus_destroy(b);
}

/* Counts the lines of `text` that contain `needle`. */
static int count_lines(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The first unclaimed access to an address is logged (on stderr), later ones to the
 * same address are not; another address is logged again. */
static void test_unclaimed_logged_once_per_address(void **state)
{
	(void)state;
	char path[] = "/tmp/provium-test-bus.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);

	struct bus *b = bus_create("mmio");
	uint64_t v = 0;
	uint32_t w = 1;
	for (int i = 0; i < 5; i++)
		bus_access(b, 0xe0000000, &v, 1, false);
	for (int i = 0; i < 3; i++)
		bus_access(b, 0xe0000010, &w, 4, true);
	bus_access(b, 0xe0000000, &v, 4, false); /* same address, other size: not again */

	dup2(saved, 2);
	close(saved);
	bus_destroy(b);
	char log[4096] = "";
	ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
	close(fd);
	assert_true(n > 0);
	log[n] = 0;
	assert_int_equal(count_lines(log, "mmio: unclaimed"), 2);
	assert_int_equal(count_lines(log, "unclaimed 1-byte read at 0xe0000000"), 1);
	assert_int_equal(count_lines(log, "unclaimed 4-byte write of 0x1 to 0xe0000010"), 1);
	assert_non_null(strstr(log, "logged once per address"));
}

static void test_overlap_rejected(void **state)
{
	(void)state;
	struct bus *b = bus_create("pio");
	struct rec a = {0};
	assert_int_equal(bus_register(b, 0x100, 0x10, &rec_ops, &a), 0);
	assert_int_equal(bus_register(b, 0x10f, 1, &rec_ops, &a), -EEXIST);
	assert_non_null(strstr(pv_errmsg(), "overlaps"));
	assert_int_equal(bus_register(b, 0xf8, 0x9, &rec_ops, &a), -EEXIST);
	assert_int_equal(bus_register(b, 0x0, 0x1000, &rec_ops, &a), -EEXIST);
	assert_int_equal(bus_register(b, 0xf0, 0x10, &rec_ops, &a), 0);  /* adjacent below */
	assert_int_equal(bus_register(b, 0x110, 0x10, &rec_ops, &a), 0); /* adjacent above */
	assert_int_equal(bus_register(b, 0x200, 0, &rec_ops, &a), -EINVAL);
	bus_destroy(b);
}

static void test_unregister(void **state)
{
	(void)state;
	struct bus *b = bus_create("mmio");
	struct rec a = {.id = 7};
	assert_int_equal(bus_register(b, 0xd0000000, 0x200, &rec_ops, &a), 0);
	uint8_t v;
	assert_true(bus_access(b, 0xd0000010, &v, 1, false));
	assert_int_equal(bus_unregister(b, 0xd0000000), 0);
	assert_false(bus_access(b, 0xd0000010, &v, 1, false));
	assert_int_equal(v, 0xff);
	assert_int_equal(bus_unregister(b, 0xd0000000), -ENOENT);
	/* The range can be taken again. */
	assert_int_equal(bus_register(b, 0xd0000000, 0x200, &rec_ops, &a), 0);
	bus_destroy(b);
}

static void test_many_ranges_sorted_lookup(void **state)
{
	(void)state;
	struct bus *b = bus_create("mmio");
	static struct rec recs[100];
	/* Registered in a scrambled order; each lookup must find its own device. */
	for (int k = 0; k < 100; k++) {
		int i = (k * 37) % 100;
		recs[i].id = i + 1;
		assert_int_equal(bus_register(b, 0x10000 + i * 0x1000, 0x800, &rec_ops, &recs[i]), 0);
	}
	for (int i = 0; i < 100; i++) {
		uint8_t v = 0;
		assert_true(bus_access(b, 0x10000 + i * 0x1000 + 0x7ff, &v, 1, false));
		assert_int_equal(v, i + 1);
		assert_false(bus_access(b, 0x10000 + i * 0x1000 + 0x800, &v, 1, false));
	}
	bus_destroy(b);
}

struct race {
	struct bus *b;
	atomic_bool done;
	atomic_int hits, bad;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&r->done)) {
		uint8_t v;
		if (bus_access(r->b, 0x10, &v, 1, false) && v == 0x42)
			atomic_fetch_add(&r->hits, 1);
		else
			atomic_fetch_add(&r->bad, 1);
	}
	return NULL;
}

static void test_concurrent_register_and_access(void **state)
{
	(void)state;
	struct race r = {.b = bus_create("pio")};
	struct rec a = {.id = 0x42}, other = {.id = 1};
	assert_int_equal(bus_register(r.b, 0x10, 1, &rec_ops, &a), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, reader, &r), 0);
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(bus_register(r.b, 0x1000 + i, 1, &rec_ops, &other), 0);
		if (i % 2)
			assert_int_equal(bus_unregister(r.b, 0x1000 + i - 1), 0);
	}
	uint64_t t0 = pv_now_ns();
	while (atomic_load(&r.hits) < 1000 && pv_now_ns() - t0 < 5000000000ull)
		sched_yield();
	atomic_store(&r.done, true);
	pthread_join(t, NULL);
	assert_true(atomic_load(&r.hits) >= 1000);
	assert_int_equal(atomic_load(&r.bad), 0);
	bus_destroy(r.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch_with_offset),
		cmocka_unit_test(test_unclaimed_reads_all_ones),
		cmocka_unit_test(test_unclaimed_logged_once_per_address),
		cmocka_unit_test(test_overlap_rejected),
		cmocka_unit_test(test_unregister),
		cmocka_unit_test(test_many_ranges_sorted_lookup),
		cmocka_unit_test(test_concurrent_register_and_access),
	};
	return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
