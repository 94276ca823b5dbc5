/* test_virtio_blk.c — virtio-blk without KVM: a fake driver (virtio_fake_driver.h)
 * submits requests into a buffer standing for guest RAM and the device serves
 * them through its mmio ops. Covers read/write/flush/get-id/discard/write-zeroes,
 * bad requests, read-only disks, sparse images, every fault rule (range, count,
 * seeded probability, slow completions on a real event loop, drop, corrupt),
 * writeback cache + crash, host-side sector access, stats, detach, and the
 * console and rng devices' host sides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "tests/unit/blk_fake_guest.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_sparse_image_and_config(void **state)
{
	struct fix *x = *state;
	struct stat st;
	assert_int_equal(stat(x->path, &st), 0);
	assert_int_equal(st.st_size, SECTORS * 512);
	assert_true(st.st_blocks * 512 < st.st_size); /* sparse */
	assert_int_equal(virtio_blk_size(x->b), SECTORS * 512ull);
	uint64_t cap;
	x->f.v->dev.ops->mmio_read(&x->f.v->dev, VIRTIO_MMIO_CONFIG, &cap, 8);
	assert_int_equal(cap, SECTORS);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	assert_true(x->f.v->driver_features & (1ull << VIRTIO_BLK_F_FLUSH));
	assert_false(x->f.v->driver_features & (1ull << VIRTIO_BLK_F_RO));
}

static void test_read_host_pattern_write_seen_by_host(void **state)
{
	struct fix *x = *state;
	uint8_t w[1024], r[1024];
	fill(w, sizeof(w), 3);
	assert_int_equal(virtio_blk_write_sectors(x->b, 10, w, 2), 0);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 10, r, 1024), VIRTIO_BLK_S_OK);
	assert_memory_equal(r, w, 1024);

	fill(w, sizeof(w), 99);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 100, w, 1024), VIRTIO_BLK_S_OK);
	assert_int_equal(virtio_blk_read_sectors(x->b, 100, 2, r), 0);
	assert_memory_equal(r, w, 1024);
	assert_int_equal(run(x, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);

	struct virtio_blk_stats s;
	virtio_blk_get_stats(x->b, &s);
	assert_int_equal(s.reads, 1);
	assert_int_equal(s.writes, 1);
	assert_int_equal(s.read_bytes, 1024);
	assert_int_equal(s.write_bytes, 1024);
	assert_int_equal(s.flushes, 1);
	assert_int_equal(s.errors, 0);
	/* Host-side access outside the disk is refused with a message. */
	assert_int_equal(virtio_blk_read_sectors(x->b, SECTORS - 1, 2, r), -ERANGE);
	assert_non_null(strstr(pv_errmsg(), "beyond the end"));
}

static void test_get_id_and_bad_requests(void **state)
{
	struct fix *x = *state;
	char id[20] = {0};
	assert_int_equal(run(x, VIRTIO_BLK_T_GET_ID, 0, id, 20), VIRTIO_BLK_S_OK);
	assert_string_equal(id, "SN-1234");
	uint8_t buf[512];
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, SECTORS, buf, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, UINT64_MAX, buf, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 0, buf, 100), VIRTIO_BLK_S_IOERR); /* not whole sectors */
	assert_int_equal(run(x, 77, 0, NULL, 0), VIRTIO_BLK_S_UNSUPP);
	struct virtio_blk_stats s;
	virtio_blk_get_stats(x->b, &s);
	assert_int_equal(s.errors, 4);
	assert_false(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_discard_and_write_zeroes(void **state)
{
	struct fix *x = *state;
	uint8_t w[4096], r[4096];
	fill(w, sizeof(w), 1);
	assert_int_equal(virtio_blk_write_sectors(x->b, 200, w, 8), 0);
	struct virtio_blk_discard_write_zeroes seg = {.sector = 201, .num_sectors = 2};
	assert_int_equal(run(x, VIRTIO_BLK_T_DISCARD, 0, &seg, sizeof(seg)), VIRTIO_BLK_S_OK);
	seg = (struct virtio_blk_discard_write_zeroes){.sector = 205, .num_sectors = 1};
	assert_int_equal(run(x, VIRTIO_BLK_T_WRITE_ZEROES, 0, &seg, sizeof(seg)), VIRTIO_BLK_S_OK);
	assert_int_equal(virtio_blk_read_sectors(x->b, 200, 8, r), 0);
	static const uint8_t zero[1024];
	assert_memory_equal(r, w, 512);
	assert_memory_equal(r + 512, zero, 1024);
	assert_memory_equal(r + 1536, w + 1536, 1024);
	assert_memory_equal(r + 2560, zero, 512);
	assert_memory_equal(r + 3072, w + 3072, 1024);
	seg = (struct virtio_blk_discard_write_zeroes){.sector = SECTORS - 1, .num_sectors = 2};
	assert_int_equal(run(x, VIRTIO_BLK_T_DISCARD, 0, &seg, sizeof(seg)), VIRTIO_BLK_S_IOERR);
}

static void test_readonly_disk(void **state)
{
	(void)state;
	struct fix *x = calloc(1, sizeof(*x));
	snprintf(x->path, sizeof(x->path), "/tmp/provium-test-blk-%d-%p.img", getpid(), (void *)x);
	FILE *fp = fopen(x->path, "w");
	assert_non_null(fp);
	assert_int_equal(ftruncate(fileno(fp), SECTORS * 512), 0);
	fclose(fp);
	struct virtio_blk_opts o = {.path = x->path, .readonly = true};
	assert_int_equal(virtio_blk_create(&o, &x->b), 0);
	assert_int_equal(fake_init(&x->f, virtio_blk_vdev(x->b), MEM), 0);
	uint64_t acc = fake_negotiate(&x->f, ~0ull);
	assert_true(acc & (1ull << VIRTIO_BLK_F_RO));
	fake_setup_queue(&x->f, 0, 16);
	fake_driver_ok(&x->f);
	uint8_t buf[512] = {1};
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 0, buf, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 0, buf, 512), VIRTIO_BLK_S_OK);
	void *s = x;
	teardown(&s);
}

static void test_fail_writes_by_range_and_count(void **state)
{
	struct fix *x = *state;
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_FAIL_WRITES);
	f.from = 100;
	f.to = 109;
	int id = virtio_blk_fault_add(x->b, &f);
	assert_true(id > 0);
	uint8_t w[1024];
	fill(w, sizeof(w), 5);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 98, w, 1024), VIRTIO_BLK_S_OK);    /* 98-99 */
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 99, w, 1024), VIRTIO_BLK_S_IOERR); /* 99-100 */
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 109, w, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 110, w, 1024), VIRTIO_BLK_S_OK);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 100, w, 512), VIRTIO_BLK_S_OK); /* reads fine */
	assert_int_equal(run(x, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	/* A failed write wrote nothing. */
	uint8_t r[512];
	static const uint8_t zero[512];
	assert_int_equal(virtio_blk_read_sectors(x->b, 109, 1, r), 0);
	assert_memory_equal(r, zero, 512);
	struct virtio_blk_fault list[4];
	assert_int_equal(virtio_blk_faults_list(x->b, list, 4), 1);
	assert_int_equal(list[0].hits, 2);
	assert_int_equal(list[0].kind, VIRTIO_BLK_FAIL_WRITES);
	assert_int_equal(virtio_blk_fault_remove(x->b, id), 0);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 100, w, 512), VIRTIO_BLK_S_OK);

	/* count: only the first 3 matching requests fail. */
	virtio_blk_fault_init(&f, VIRTIO_BLK_FAIL_WRITES);
	f.count = 3;
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
	int fails = 0;
	for (int i = 0; i < 6; i++)
		fails += run(x, VIRTIO_BLK_T_OUT, (uint64_t)i, w, 512) == VIRTIO_BLK_S_IOERR;
	assert_int_equal(fails, 3);
	assert_int_equal(virtio_blk_faults_list(x->b, list, 4), 1);
	assert_int_equal(list[0].hits, 3);
	virtio_blk_faults_clear(x->b);
	assert_int_equal(virtio_blk_faults_list(x->b, list, 4), 0);
	struct virtio_blk_stats s;
	virtio_blk_get_stats(x->b, &s);
	assert_int_equal(s.errors, 5);
}

static unsigned prob_pattern(struct fix *x, uint64_t seed, uint8_t *pattern, unsigned n)
{
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_FAIL_READS);
	f.probability = 0.5;
	f.seed = seed;
	virtio_blk_faults_clear(x->b);
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
	uint8_t buf[512];
	unsigned fails = 0;
	for (unsigned i = 0; i < n; i++) {
		pattern[i] = run(x, VIRTIO_BLK_T_IN, i, buf, 512);
		fails += pattern[i] == VIRTIO_BLK_S_IOERR;
	}
	return fails;
}

static void test_fail_reads_probability_is_seeded(void **state)
{
	struct fix *x = *state;
	uint8_t a[200], b[200], c[200];
	unsigned fa = prob_pattern(x, 42, a, 200);
	unsigned fb = prob_pattern(x, 42, b, 200);
	unsigned fc = prob_pattern(x, 43, c, 200);
	assert_true(fa > 60 && fa < 140);
	assert_int_equal(fa, fb);
	assert_memory_equal(a, b, 200);
	assert_true(fc > 60 && fc < 140);
	assert_memory_not_equal(a, c, 200);
	struct virtio_blk_fault bad;
	virtio_blk_fault_init(&bad, VIRTIO_BLK_FAIL_READS);
	bad.probability = 1.5;
	assert_int_equal(virtio_blk_fault_add(x->b, &bad), -EINVAL);
	virtio_blk_fault_init(&bad, VIRTIO_BLK_FAIL_READS);
	bad.from = 10;
	bad.to = 5;
	assert_int_equal(virtio_blk_fault_add(x->b, &bad), -EINVAL);
}

static void test_drop_writes_and_corrupt(void **state)
{
	struct fix *x = *state;
	uint8_t w[512], r[512], orig[512];
	fill(orig, 512, 11);
	assert_int_equal(virtio_blk_write_sectors(x->b, 50, orig, 1), 0);
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_DROP_WRITES);
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
	fill(w, 512, 200);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 50, w, 512), VIRTIO_BLK_S_OK); /* "success" */
	assert_int_equal(virtio_blk_read_sectors(x->b, 50, 1, r), 0);
	assert_memory_equal(r, orig, 512); /* nothing reached the image */
	virtio_blk_faults_clear(x->b);

	virtio_blk_fault_init(&f, VIRTIO_BLK_CORRUPT);
	f.from = f.to = 51;
	f.offset = 7;
	f.xor = 0x5a;
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
	uint8_t two[1024], good[1024];
	fill(good, 1024, 77);
	assert_int_equal(virtio_blk_write_sectors(x->b, 50, good, 2), 0);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 50, two, 1024), VIRTIO_BLK_S_OK);
	assert_memory_equal(two, good, 512);               /* sector 50 untouched */
	assert_int_equal(two[512 + 7], good[512 + 7] ^ 0x5a); /* sector 51 byte 7 flipped */
	assert_memory_equal(two + 520, good + 520, 504);
	assert_int_equal(virtio_blk_read_sectors(x->b, 50, 2, two), 0);
	assert_memory_equal(two, good, 1024);               /* the image is intact */
	virtio_blk_fault_init(&f, VIRTIO_BLK_CORRUPT);
	f.offset = 512;
	assert_int_equal(virtio_blk_fault_add(x->b, &f), -EINVAL);
}

static void test_writeback_crash_loses_unflushed(void **state)
{
	struct fix *x = *state;
	assert_int_equal(virtio_blk_set_cache(x->b, VIRTIO_BLK_CACHE_WRITEBACK), 0);
	uint8_t a[512], b[512], r[512];
	static const uint8_t zero[512];
	fill(a, 512, 1);
	fill(b, 512, 2);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 300, a, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(run(x, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 301, b, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(virtio_blk_dirty_bytes(x->b), 512);
	/* Guest and host both see the cached write before the crash. */
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 301, r, 512), VIRTIO_BLK_S_OK);
	assert_memory_equal(r, b, 512);
	assert_int_equal(virtio_blk_read_sectors(x->b, 301, 1, r), 0);
	assert_memory_equal(r, b, 512);
	/* ...but the image file does not have it. */
	FILE *fp = fopen(x->path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 301 * 512, SEEK_SET), 0);
	assert_int_equal(fread(r, 1, 512, fp), 512);
	fclose(fp);
	assert_memory_equal(r, zero, 512);
	assert_int_equal(virtio_blk_crash(x->b), 1);
	assert_int_equal(virtio_blk_read_sectors(x->b, 300, 1, r), 0);
	assert_memory_equal(r, a, 512);   /* flushed: kept */
	assert_int_equal(virtio_blk_read_sectors(x->b, 301, 1, r), 0);
	assert_memory_equal(r, zero, 512); /* unflushed: lost */
	/* A host write replaces a cached sector (host wins, durable). */
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 302, a, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(virtio_blk_write_sectors(x->b, 302, b, 1), 0);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 302, r, 512), VIRTIO_BLK_S_OK);
	assert_memory_equal(r, b, 512);
	/* Switching back to "none" writes the cache out. */
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 303, a, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(virtio_blk_set_cache(x->b, VIRTIO_BLK_CACHE_NONE), 0);
	assert_int_equal(virtio_blk_crash(x->b), 0);
	assert_int_equal(virtio_blk_read_sectors(x->b, 303, 1, r), 0);
	assert_memory_equal(r, a, 512);
}

static void test_slow_completion_waits_on_timer(void **state)
{
	struct fix *x = *state;
	start_loop(x);
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_SLOW);
	f.delay_ms = 150;
	f.writes_only = true;
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
	uint8_t w[512];
	fill(w, 512, 9);
	uint64_t t0 = pv_now_ns();
	struct req slow = submit(x, VIRTIO_BLK_T_OUT, 7, w, 512);
	fake_kick(&x->f, 0); /* returns at once: the vCPU would not wait */
	uint64_t kick_ns = pv_now_ns() - t0;
	assert_true(kick_ns < 100 * 1000000ull);
	/* A read (not slowed) submitted after it completes first. */
	struct req fast = submit(x, VIRTIO_BLK_T_IN, 0, NULL, 512);
	fake_kick(&x->f, 0);
	uint32_t id = 0xffff;
	assert_int_equal(fake_get_used(&x->f, 0, &id, NULL), 1);
	assert_int_equal(id, fast.head);
	assert_int_equal(status_of(x, &slow), 0xee); /* not completed yet */
	assert_int_equal(wait_used(x, &id, 5000), 1);
	uint64_t waited = pv_now_ns() - t0;
	assert_int_equal(id, slow.head);
	assert_int_equal(status_of(x, &slow), VIRTIO_BLK_S_OK);
	assert_true(waited >= 150 * 1000000ull);
	assert_true(atomic_load(&x->f.irqs) >= 2);
	uint8_t r[512];
	assert_int_equal(virtio_blk_read_sectors(x->b, 7, 1, r), 0);
	assert_memory_equal(r, w, 512);
}

static void test_detach_fails_requests_and_keeps_writes(void **state)
{
	struct fix *x = *state;
	start_loop(x);
	assert_int_equal(virtio_blk_set_cache(x->b, VIRTIO_BLK_CACHE_WRITEBACK), 0);
	uint8_t w[512], r[512];
	fill(w, 512, 33);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 400, w, 512), VIRTIO_BLK_S_OK);
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_SLOW);
	f.delay_ms = 2000;
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
	struct req pending = submit(x, VIRTIO_BLK_T_OUT, 401, w, 512);
	fake_kick(&x->f, 0);
	assert_int_equal(virtio_blk_detach(x->b), 0);
	assert_true(virtio_blk_detached(x->b));
	/* The in-flight request completed at once with IOERR. */
	uint32_t id;
	assert_int_equal(fake_get_used(&x->f, 0, &id, NULL), 1);
	assert_int_equal(id, pending.head);
	assert_int_equal(status_of(x, &pending), VIRTIO_BLK_S_IOERR);
	uint32_t st = fake_rd32(&x->f, VIRTIO_MMIO_STATUS);
	assert_true(st & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	/* Without a reset the queue still answers, with IOERR. */
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 400, r, 512), VIRTIO_BLK_S_IOERR);
	/* The completed (cached) write is in the image file itself. */
	int fd = open(x->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, r, 512, 400 * 512), 512);
	close(fd);
	assert_memory_equal(r, w, 512);
	/* After a reset and re-init, every request still fails. */
	virtio_blk_faults_clear(x->b);
	assert_int_not_equal(fake_negotiate(&x->f, ~0ull), 0);
	fake_setup_queue(&x->f, 0, 16);
	fake_driver_ok(&x->f);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 400, r, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run(x, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_IOERR);
	/* The host side still works. */
	assert_int_equal(virtio_blk_read_sectors(x->b, 400, 1, r), 0);
	assert_memory_equal(r, w, 512);
}

struct churn {
	struct virtio_blk *b;
	atomic_bool stop;
	unsigned rounds;
};

/* Host thread: changes rules, cache mode and sectors while the guest side runs. */
static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	uint8_t buf[512];
	memset(buf, 0xab, sizeof(buf));
	while (!atomic_load(&c->stop)) {
		struct virtio_blk_fault f;
		virtio_blk_fault_init(&f, VIRTIO_BLK_FAIL_READS);
		f.probability = 0.3;
		f.seed = c->rounds + 1;
		virtio_blk_fault_add(c->b, &f);
		virtio_blk_fault_init(&f, VIRTIO_BLK_SLOW);
		f.delay_ms = 1;
		virtio_blk_fault_add(c->b, &f);
		virtio_blk_set_cache(c->b, c->rounds & 1 ? VIRTIO_BLK_CACHE_WRITEBACK
							 : VIRTIO_BLK_CACHE_NONE);
		virtio_blk_write_sectors(c->b, 1000 + c->rounds % 16, buf, 1);
		struct virtio_blk_fault list[8];
		virtio_blk_faults_list(c->b, list, 8);
		if (c->rounds % 3 == 0)
			virtio_blk_crash(c->b);
		virtio_blk_faults_clear(c->b);
		c->rounds++;
	}
	return NULL;
}

static void test_host_api_concurrent_with_requests(void **state)
{
	struct fix *x = *state;
	start_loop(x);
	struct churn c = {.b = x->b};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, churn_thread, &c), 0);
	uint8_t w[4096];
	fill(w, sizeof(w), 4);
	unsigned done = 0, bad = 0;
	uint64_t t0 = pv_now_ns();
	while (pv_now_ns() - t0 < 500 * 1000000ull) {
		struct req r[8];
		for (int i = 0; i < 8; i++)
			r[i] = submit(x, i & 1 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
				      (uint64_t)(done + i) % 1000, w, 4096);
		fake_kick(&x->f, 0);
		for (int i = 0; i < 8; i++) {
			assert_int_equal(wait_used(x, NULL, 5000), 1);
		}
		for (int i = 0; i < 8; i++) {
			uint8_t st = status_of(x, &r[i]);
			bad += st != VIRTIO_BLK_S_OK && st != VIRTIO_BLK_S_IOERR;
		}
		done += 8;
		x->f.brk = 0x100000; /* reuse request memory (rings live below) */
	}
	atomic_store(&c.stop, true);
	pthread_join(t, NULL);
	print_message("%u requests, %u host rounds\n", done, c.rounds);
	assert_int_equal(bad, 0);
	assert_true(c.rounds > 0 && done > 0);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(x->b, &st);
	assert_int_equal(st.reads + st.writes + st.errors, done);
}

/* Random requests: header split over descriptors, odd lengths, missing status,
 * unknown types, sectors near and past the end, discard segment lists. The device
 * must answer each one (or need a reset) and never touch memory it was not given
 * (ASan in check-asan) nor grow the image. */
static void test_fuzz_requests(void **state)
{
	struct fix *x = *state;
	uint64_t seed = 99;
	static const uint32_t lens[] = {0, 1, 15, 16, 17, 511, 512, 513, 1024, 4096};
	static const uint32_t types[] = {0, 1, 4, 8, 11, 13, 2, 77};
	unsigned answered = 0;
	for (int it = 0; it < 3000; it++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t r = seed >> 11;
		x->f.brk = 0x100000;
		uint64_t h = fake_alloc(&x->f, 64, 8);
		struct virtio_blk_outhdr hdr = {.type = types[r % 8]};
		uint64_t sect[] = {0, SECTORS - 1, SECTORS, SECTORS + 1, UINT64_MAX, r % SECTORS};
		hdr.sector = sect[(r >> 3) % 6];
		memcpy(fake_ptr(&x->f, h), &hdr, sizeof(hdr));
		/* a discard/write-zeroes payload right after the header */
		struct virtio_blk_discard_write_zeroes dz = {.sector = sect[(r >> 6) % 6],
							     .num_sectors = (uint32_t)(r >> 9) % 5,
							     .flags = (uint32_t)(r >> 12) % 3};
		memcpy(fake_ptr(&x->f, h + 16), &dz, sizeof(dz));
		uint32_t hlen = (uint32_t)(r >> 14) % 3 ? 16 : (uint32_t)(r >> 16) % 40;
		struct fake_buf b[5];
		unsigned n = 0;
		if ((r >> 20) & 1) { /* header split in two */
			b[n++] = (struct fake_buf){h, hlen / 2, false};
			b[n++] = (struct fake_buf){h + hlen / 2, hlen - hlen / 2, false};
		} else {
			b[n++] = (struct fake_buf){h, hlen, false};
		}
		uint32_t dlen = lens[(r >> 22) % 10];
		uint64_t data = fake_alloc(&x->f, dlen + 1, 8);
		b[n++] = (struct fake_buf){data, dlen, (r >> 26) & 1};
		if ((r >> 27) % 4)
			b[n++] = (struct fake_buf){fake_alloc(&x->f, 1, 1), 1, true};
		fake_submit(&x->f, 0, b, n, (r >> 29) & 1);
		fake_kick(&x->f, 0);
		if (fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET) {
			assert_int_not_equal(fake_negotiate(&x->f, ~0ull), 0);
			fake_setup_queue(&x->f, 0, 128);
			fake_driver_ok(&x->f);
			continue;
		}
		uint32_t len;
		assert_int_equal(fake_get_used(&x->f, 0, NULL, &len), 1);
		assert_true(len <= dlen + 1);
		answered++;
	}
	print_message("%u random requests answered\n", answered);
	assert_true(answered > 2000);
	struct stat st;
	assert_int_equal(stat(x->path, &st), 0);
	assert_int_equal(st.st_size, SECTORS * 512);
}

static void test_broken_chain_marks_needs_reset(void **state)
{
	struct fix *x = *state;
	struct vring_desc *d = fake_desc(&x->f, 0);
	d[0] = (struct vring_desc){(uint64_t)MEM - 4, 16, VRING_DESC_F_NEXT, 1};
	d[1] = (struct vring_desc){0x100, 1, VRING_DESC_F_WRITE, 0};
	fake_publish(&x->f, 0, 0);
	fake_kick(&x->f, 0);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(fake_get_used(&x->f, 0, NULL, NULL), 0);
}

static void test_temp_image_and_errors(void **state)
{
	(void)state;
	struct virtio_blk *b;
	struct virtio_blk_opts o = {.size = 4096};
	assert_int_equal(virtio_blk_create(&o, &b), 0);
	char path[4096];
	snprintf(path, sizeof(path), "%s", virtio_blk_path(b));
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(virtio_blk_size(b), 4096);
	virtio_blk_destroy(b);
	assert_int_equal(access(path, F_OK), -1); /* removed */
	struct virtio_blk_opts missing = {.path = "/nonexistent/dir/x.img"};
	assert_int_equal(virtio_blk_create(&missing, &b), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "/nonexistent/dir/x.img"));
	struct virtio_blk_opts none = {0};
	assert_int_equal(virtio_blk_create(&none, &b), -EINVAL);
}

static void test_save_state_has_transport(void **state)
{
	struct fix *x = *state;
	/* An unflushed write in the writeback cache is part of the saved state. */
	assert_int_equal(virtio_blk_set_cache(x->b, VIRTIO_BLK_CACHE_WRITEBACK), 0);
	uint8_t w[512], r[512];
	fill(w, 512, 61);
	assert_int_equal(run(x, VIRTIO_BLK_T_OUT, 77, w, 512), VIRTIO_BLK_S_OK);
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	assert_int_equal(fake_save_state(&x->f.v->dev, &sb, &up), 0);
	const msgpack_object *t = virtio_msgpack_get(&up.data, "transport");
	assert_non_null(t);
	const msgpack_object *st = virtio_msgpack_get(t, "status");
	assert_non_null(st);
	assert_true(st->via.u64 & VIRTIO_CONFIG_S_DRIVER_OK);
	const msgpack_object *cache = virtio_msgpack_get(&up.data, "cache");
	assert_non_null(cache);
	assert_int_equal(cache->via.array.size, 1);
	assert_int_equal(virtio_blk_crash(x->b), 1); /* gone ... */
	assert_int_equal(x->f.v->dev.ops->load(&x->f.v->dev, &up.data), 0);
	assert_int_equal(virtio_blk_dirty_bytes(x->b), 512); /* ... and back */
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 77, r, 512), VIRTIO_BLK_S_OK);
	assert_memory_equal(r, w, 512);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- virtio-console host side ---- */

struct outbuf {
	char data[256];
	size_t len;
};

static void collect(void *opaque, const char *d, size_t n)
{
	struct outbuf *o = opaque;
	memcpy(o->data + o->len, d, PV_MIN(n, sizeof(o->data) - o->len));
	o->len += PV_MIN(n, sizeof(o->data) - o->len);
}

static void test_console_input_and_output(void **state)
{
	(void)state;
	struct virtio_console *c;
	struct fake_drv f;
	struct outbuf out = {0};
	assert_int_equal(virtio_console_create("hvc0", &c), 0);
	virtio_console_set_output(c, collect, &out);
	assert_int_equal(fake_init(&f, virtio_console_vdev(c), MEM), 0);
	assert_int_not_equal(fake_negotiate(&f, ~0ull), 0);
	fake_setup_queue(&f, 0, 16);
	fake_setup_queue(&f, 1, 16);
	fake_driver_ok(&f);
	/* Input before any receive buffer waits, then arrives. */
	virtio_console_input(c, "hello", 5);
	uint64_t rx = fake_alloc(&f, 64, 8);
	struct fake_buf fb = {rx, 64, true};
	fake_submit(&f, 0, &fb, 1, false);
	fake_kick(&f, 0);
	uint32_t len;
	assert_int_equal(fake_get_used(&f, 0, NULL, &len), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(fake_ptr(&f, rx), "hello", 5);
	/* Output: two segments of one chain land in order. */
	uint64_t tx = fake_alloc(&f, 16, 8);
	memcpy(fake_ptr(&f, tx), "abcdefgh", 8);
	struct fake_buf tb[2] = {{tx, 3, false}, {tx + 3, 5, false}};
	fake_submit(&f, 1, tb, 2, false);
	fake_kick(&f, 1);
	assert_int_equal(fake_get_used(&f, 1, NULL, NULL), 1);
	assert_int_equal(out.len, 8);
	assert_memory_equal(out.data, "abcdefgh", 8);
	assert_int_equal(virtio_console_dropped(c), 0);
	virtio_console_destroy(c);
	fake_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sparse_image_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_host_pattern_write_seen_by_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_and_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_and_write_zeroes, setup, teardown),
		cmocka_unit_test(test_readonly_disk),
		cmocka_unit_test_setup_teardown(test_fail_writes_by_range_and_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_reads_probability_is_seeded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_writes_and_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writeback_crash_loses_unflushed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_completion_waits_on_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_fails_requests_and_keeps_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_api_concurrent_with_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fuzz_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_chain_marks_needs_reset, setup, teardown),
		cmocka_unit_test(test_temp_image_and_errors),
		cmocka_unit_test_setup_teardown(test_save_state_has_transport, setup, teardown),
		cmocka_unit_test(test_console_input_and_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
