/* host_virtio_blk.c — boots the virtio_blk guest with a virtio-blk disk under the
 * real VMM and checks, from the host: the guest reads a pattern the host wrote
 * and writes one the host reads back (host-side sector access) and flushes; a
 * fail-writes rule fails exactly the writes it covers; a slow rule delays the
 * completion by at least its delay without stopping the vCPU; writeback + crash
 * loses the unflushed write and keeps the flushed one; a live detach gives the
 * guest IOERR and DEVICE_NEEDS_RESET without losing completed writes; a counted
 * fail-reads rule and a corrupt rule show up in what the guest reads. */
#include "tests/guest/host_virtio.h"
#include "devices/virtio_blk.h"

#include <pthread.h>

static struct guest g;
static char img[128];

static uint8_t pat(unsigned i, unsigned seed) { return (uint8_t)(i * seed + 1); }

static void fill(uint8_t *p, unsigned seed)
{
	for (unsigned i = 0; i < 512; i++)
		p[i] = pat(i, seed);
}

/* Timestamps of console markers, taken in the console callback (vCPU thread). */
struct marks {
	pthread_mutex_t lock;
	char tail[64];
	uint64_t kick_ns, done_ns;
};

static void on_console(void *opaque, const char *data, size_t len)
{
	struct marks *m = opaque;
	uint64_t now = pv_now_ns();
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < len; i++) {
		size_t l = strlen(m->tail);
		if (l == sizeof(m->tail) - 1) {
			memmove(m->tail, m->tail + 1, l);
			l--;
		}
		m->tail[l] = data[i];
		m->tail[l + 1] = 0;
		if (!m->kick_ns && strstr(m->tail, "slow: kick"))
			m->kick_ns = now;
		if (!m->done_ns && strstr(m->tail, "slow: done"))
			m->done_ns = now;
	}
	pthread_mutex_unlock(&m->lock);
}

static struct virtio_blk *boot_with_disk(const char *mode, struct marks *m)
{
	char cmdline[64];
	struct virtio_blk *b;
	snprintf(img, sizeof(img), "/tmp/provium-host-blk-%d.img", getpid());
	unlink(img);
	struct virtio_blk_opts o = {.path = img, .size = 1 << 20, .serial = "PROVIUM-SN"};
	snprintf(cmdline, sizeof(cmdline), "console=ttyS0 blk=%s", mode);
	vguest_create(&g, "virtio_blk", cmdline, m ? on_console : NULL, m);
	if (virtio_blk_create(&o, &b) < 0)
		fail_msg("virtio_blk_create: %s", pv_errmsg());
	if (virtio_blk_attach(b, g.vm) < 0) {
		virtio_blk_destroy(b);
		fail_msg("virtio_blk_attach: %s", pv_errmsg());
	}
	return b;
}

static int teardown(void **state)
{
	guest_teardown(state);
	unlink(img);
	return 0;
}

static void show_log(void)
{
	if (getenv("PROVIUM_GUEST_LOG"))
		guest_print_log(&g);
}

static void test_read_write_flush(void **state)
{
	(void)state;
	struct virtio_blk *b = boot_with_disk("basic", NULL);
	uint8_t s[512], r[512];
	fill(s, 13);
	assert_int_equal(virtio_blk_write_sectors(b, 1, s, 1), 0);
	vguest_start(&g);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	show_log();
	guest_expect_exit(&g, 0);
	guest_expect(&g, "PASS: sector 1 holds the host's pattern");
	guest_expect(&g, "capacity 2048 sectors");
	guest_expect(&g, "serial: PROVIUM-SN");
	fill(s, 31);
	assert_int_equal(virtio_blk_read_sectors(b, 2, 1, r), 0);
	assert_memory_equal(r, s, 512);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(b, &st);
	assert_int_equal(st.reads, 1);
	assert_int_equal(st.writes, 1);
	assert_int_equal(st.flushes, 1);
	assert_int_equal(st.errors, 0);
}

static void test_fail_writes_rule(void **state)
{
	(void)state;
	struct virtio_blk *b = boot_with_disk("fail", NULL);
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_FAIL_WRITES);
	f.from = 100;
	f.to = 103;
	assert_true(virtio_blk_fault_add(b, &f) > 0);
	vguest_start(&g);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	show_log();
	guest_expect_exit(&g, 0);
	for (unsigned lba = 96; lba < 108; lba++) {
		char want[64];
		snprintf(want, sizeof(want), "write lba=%u status=%d", lba,
			 lba >= 100 && lba <= 103 ? 1 : 0);
		guest_expect(&g, want);
	}
	struct virtio_blk_stats st;
	virtio_blk_get_stats(b, &st);
	assert_int_equal(st.errors, 4);
	assert_int_equal(st.writes, 8);
	/* Failed writes left nothing behind; the others landed. */
	uint8_t r[512], z[512] = {0}, s[512];
	fill(s, 5);
	assert_int_equal(virtio_blk_read_sectors(b, 101, 1, r), 0);
	assert_memory_equal(r, z, 512);
	assert_int_equal(virtio_blk_read_sectors(b, 104, 1, r), 0);
	assert_memory_equal(r, s, 512);
}

static void test_slow_io(void **state)
{
	(void)state;
	static struct marks m = {.lock = PTHREAD_MUTEX_INITIALIZER};
	const unsigned delay_ms = 300;
	struct virtio_blk *b = boot_with_disk("slow", &m);
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_SLOW);
	f.delay_ms = delay_ms;
	f.reads_only = true;
	assert_true(virtio_blk_fault_add(b, &f) > 0);
	vguest_start(&g);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	show_log();
	guest_expect_exit(&g, 0);
	guest_expect(&g, "PASS: request still pending right after the kick");
	assert_true(m.kick_ns && m.done_ns);
	uint64_t ms = (m.done_ns - m.kick_ns) / 1000000;
	printf("# slow read: completion seen %lu ms after the kick line (rule: %u ms)\n",
	       (unsigned long)ms, delay_ms);
	assert_true(m.done_ns - m.kick_ns >= delay_ms * 1000000ull);
}

static void test_writeback_crash(void **state)
{
	(void)state;
	struct virtio_blk *b = boot_with_disk("crash", NULL);
	assert_int_equal(virtio_blk_set_cache(b, VIRTIO_BLK_CACHE_WRITEBACK), 0);
	vguest_start(&g);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	show_log();
	guest_expect_exit(&g, 0);
	uint8_t r[512], s[512], z[512] = {0};
	/* Before the crash the host sees both writes (through the cache). */
	fill(s, 7);
	assert_int_equal(virtio_blk_read_sectors(b, 11, 1, r), 0);
	assert_memory_equal(r, s, 512);
	assert_int_equal(virtio_blk_crash(b), 1);
	fill(s, 3);
	assert_int_equal(virtio_blk_read_sectors(b, 10, 1, r), 0);
	assert_memory_equal(r, s, 512); /* flushed: kept */
	assert_int_equal(virtio_blk_read_sectors(b, 11, 1, r), 0);
	assert_memory_equal(r, z, 512); /* unflushed: lost */
}

static void test_live_detach(void **state)
{
	(void)state;
	struct virtio_blk *b = boot_with_disk("detach", NULL);
	assert_int_equal(virtio_blk_set_cache(b, VIRTIO_BLK_CACHE_WRITEBACK), 0);
	vguest_start(&g);
	guest_wait_output(&g, "detach: ready", GUEST_TIMEOUT_MS);
	assert_int_equal(virtio_blk_detach(b), 0);
	if (vm_console_input(g.vm, "go\n", 3) < 0)
		guest_fail(&g, "vm_console_input: %s", pv_errmsg());
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	show_log();
	guest_expect_exit(&g, 0);
	guest_expect(&g, "PASS: read after detach fails with IOERR");
	guest_expect(&g, "PASS: device signals DEVICE_NEEDS_RESET");
	/* The write completed before the detach reached the image file itself. */
	uint8_t r[512], s[512];
	fill(s, 9);
	int fd = open(img, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, r, 512, 20 * 512), 512);
	close(fd);
	assert_memory_equal(r, s, 512);
}

/* fail_reads with count=1 fails only the first read of sector 5; corrupt flips
 * byte 3 of sector 6 in what the guest reads (the image is untouched). */
static void test_fail_reads_and_corrupt(void **state)
{
	(void)state;
	struct virtio_blk *b = boot_with_disk("faults", NULL);
	uint8_t s[512], r[512];
	for (unsigned i = 0; i < 512; i++)
		s[i] = (uint8_t)(0x40 + i);
	assert_int_equal(virtio_blk_write_sectors(b, 6, s, 1), 0);
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_FAIL_READS);
	f.from = f.to = 5;
	f.count = 1;
	assert_true(virtio_blk_fault_add(b, &f) > 0);
	virtio_blk_fault_init(&f, VIRTIO_BLK_CORRUPT);
	f.from = f.to = 6;
	f.offset = 3;
	f.xor = 0xff;
	assert_true(virtio_blk_fault_add(b, &f) > 0);
	vguest_start(&g);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	show_log();
	guest_expect_exit(&g, 0);
	guest_expect(&g, "read 5: first status=1 second status=0");
	guest_expect(&g, "sector 6 bytes 2..4: 42 bc 44"); /* 0x43 ^ 0xff = 0xbc */
	assert_int_equal(virtio_blk_read_sectors(b, 6, 1, r), 0);
	assert_memory_equal(r, s, 512);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_read_write_flush, teardown),
		cmocka_unit_test_teardown(test_fail_writes_rule, teardown),
		cmocka_unit_test_teardown(test_slow_io, teardown),
		cmocka_unit_test_teardown(test_writeback_crash, teardown),
		cmocka_unit_test_teardown(test_live_detach, teardown),
		cmocka_unit_test_teardown(test_fail_reads_and_corrupt, teardown),
	};
	return cmocka_run_group_tests_name("guest_virtio_blk", tests, NULL, NULL);
}
