/* test_hostile_devices.c — regressions for what a hostile guest did to the host
 * through the devices (issue 11, docs/security.md), one test per finding:
 *  - virtio-blk read a DISCARD / WRITE_ZEROES segment twice: a guest that rewrote
 *    it while a `slow` rule held the request zeroed past the disk's end (the image
 *    grew) or filled the writeback cache with sectors beyond it;
 *  - a `corrupt` rule and a zero-length read wrapped `sector + nsect - 1` and
 *    walked the rule's whole range with the device locks held;
 *  - virtio-blk with a `slow` rule held every request the guest republished (no cap);
 *  - virtio-console gathered 256 aliased chains into one growing buffer;
 *  - netpath copied every delayed frame into an unbounded queue;
 *  - a guest republishing from another vCPU kept a queue's notify (the event loop
 *    thread, with ioeventfd) busy as long as it liked.
 * Memory is measured (heap_meter.h), never time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/netpath.h"
#include "devices/virtio_net.h"
#include "devices/virtio_console.h"
#include "tests/unit/blk_fake_guest.h"
#include "tests/unit/heap_meter.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <string.h>
#include <sys/stat.h>

/* Submits a discard/write-zeroes request with one segment; returns it. */
static struct req submit_dz(struct fix *x, uint32_t type, uint64_t sector, uint32_t n)
{
	struct virtio_blk_discard_write_zeroes seg = {.sector = sector, .num_sectors = n};
	return submit(x, type, 0, &seg, sizeof(seg));
}

static void rewrite_seg(struct fix *x, const struct req *r, uint64_t sector, uint32_t n)
{
	struct virtio_blk_discard_write_zeroes seg = {.sector = sector, .num_sectors = n};
	memcpy(fake_ptr(&x->f, r->data), &seg, sizeof(seg));
}

static void add_slow(struct fix *x, unsigned ms)
{
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_SLOW);
	f.delay_ms = ms;
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
}

/* Finding 1: the segment the device checked is the one it uses. */
static void test_blk_zeroes_segment_rewritten_in_flight(void **state)
{
	struct fix *x = *state;
	start_loop(x);
	add_slow(x, 30);
	uint8_t w[512], r[512];
	fill(w, sizeof(w), 5);
	assert_int_equal(virtio_blk_write_sectors(x->b, SECTORS - 1, w, 1), 0);
	struct req q = submit_dz(x, VIRTIO_BLK_T_WRITE_ZEROES, 0, 1);
	fake_kick(&x->f, 0);
	/* While the request waits on its timer, the guest points the segment at the
	 * last sector and 4096 past it. */
	rewrite_seg(x, &q, SECTORS - 1, 4096);
	uint32_t id;
	assert_int_equal(wait_used(x, &id, 5000), 1);
	assert_int_equal(id, q.head);
	assert_int_equal(status_of(x, &q), VIRTIO_BLK_S_OK); /* sector 0, as checked */
	struct stat st;
	assert_int_equal(stat(x->path, &st), 0);
	assert_int_equal(st.st_size, SECTORS * 512ull); /* the image did not grow */
	assert_int_equal(virtio_blk_read_sectors(x->b, SECTORS - 1, 1, r), 0);
	assert_memory_equal(r, w, 512);                  /* nor was the last sector hit */
}

static void test_blk_discard_rewritten_in_flight_writeback(void **state)
{
	struct fix *x = *state;
	start_loop(x);
	assert_int_equal(virtio_blk_set_cache(x->b, VIRTIO_BLK_CACHE_WRITEBACK), 0);
	add_slow(x, 30);
	struct req q = submit_dz(x, VIRTIO_BLK_T_DISCARD, 0, 1);
	fake_kick(&x->f, 0);
	rewrite_seg(x, &q, SECTORS - 8, 100000);
	assert_int_equal(wait_used(x, NULL, 5000), 1);
	assert_int_equal(status_of(x, &q), VIRTIO_BLK_S_OK);
	/* One cached sector (sector 0), none past the end for a flush to write. */
	assert_int_equal(virtio_blk_dirty_bytes(x->b), 512);
	assert_int_equal(virtio_blk_set_cache(x->b, VIRTIO_BLK_CACHE_NONE), 0);
	struct stat st;
	assert_int_equal(stat(x->path, &st), 0);
	assert_int_equal(st.st_size, SECTORS * 512ull);
}

/* Finding 2: a zero-length read covers no sectors; a corrupt rule neither hits
 * it nor walks its range. */
static void test_blk_corrupt_rule_and_zero_length_read(void **state)
{
	struct fix *x = *state;
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_CORRUPT);
	f.to = 4096;
	int id = virtio_blk_fault_add(x->b, &f);
	assert_true(id > 0);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 0, NULL, 0), VIRTIO_BLK_S_OK);
	struct virtio_blk_fault list[4];
	assert_int_equal(virtio_blk_faults_list(x->b, list, 4), 1);
	assert_int_equal(list[0].hits, 0);
	/* The C default range (to UINT64_MAX) once hung the device here. */
	virtio_blk_faults_clear(x->b);
	virtio_blk_fault_init(&f, VIRTIO_BLK_CORRUPT);
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 0, NULL, 0), VIRTIO_BLK_S_OK);
	uint8_t buf[512];
	assert_int_equal(run(x, VIRTIO_BLK_T_IN, 3, buf, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(virtio_blk_faults_list(x->b, list, 4), 1);
	assert_int_equal(list[0].hits, 1); /* the real read still gets corrupted */
}

/* Finding 5 (disk): a guest republishing one head under a `slow` rule gets at most
 * a queue's worth of delayed requests; the rest complete at once with IOERR. */
static void test_blk_slow_flood_is_capped(void **state)
{
	struct fix *x = *state;
	start_loop(x);
	add_slow(x, 60000);
	uint8_t w[512] = {1};
	struct req q = submit(x, VIRTIO_BLK_T_OUT, 0, w, 512);
	x->f.q[0].avail_idx--; /* submit() published it once; republish below */
	size_t base = heap_in_use();
	const unsigned total = 20000, qn = x->f.q[0].num;
	unsigned used = 0;
	for (unsigned done = 0; done < total;) {
		unsigned n = PV_MIN(qn, total - done);
		for (unsigned i = 0; i < n; i++)
			fake_publish(&x->f, 0, q.head);
		fake_kick(&x->f, 0);
		done += n;
		while (fake_get_used(&x->f, 0, NULL, NULL))
			used++;
	}
	size_t grew = heap_growth(base);
	print_message("# %u republished, %u answered at once, heap +%zu KiB\n", total, used,
		      grew >> 10);
	assert_false(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(used, total - qn); /* a queue's worth still waits */
	assert_int_equal(status_of(x, &q), VIRTIO_BLK_S_IOERR);
	struct virtio_blk_stats s;
	virtio_blk_get_stats(x->b, &s);
	assert_int_equal(s.errors, total - qn);
	assert_true(grew < (2u << 20));
}

/* A guest that keeps republishing from another vCPU: one notify takes at most
 * VIRTIO_NOTIFY_BUDGET chains, then hands the rest back to the event loop (the
 * queue's ioeventfd is made readable again) instead of keeping the loop thread.
 * The "other vCPU" is netpath's capture hook, which runs for every frame the
 * device transmits (without device locks) and publishes the head once more. */
struct republisher {
	struct fake_drv *f;
	uint16_t head;
	unsigned published;
};

static void republish(void *opaque, enum netpath_dir dir, uint64_t t, const uint8_t *fr,
		      size_t len)
{
	(void)dir; (void)t; (void)fr; (void)len;
	struct republisher *r = opaque;
	if (r->published < 100000) {
		fake_publish(r->f, 1, r->head);
		r->published++;
	}
}

static void test_net_notify_budget(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	struct virtio_net_opts o = {.fd = sv[0], .seed = 1};
	struct virtio_net *n;
	struct fake_drv f;
	assert_int_equal(virtio_net_create("net0", &o, &n), 0);
	struct virtio_dev *v = virtio_net_vdev(n);
	assert_int_equal(fake_init(&f, v, 1u << 20), 0);
	assert_int_not_equal(fake_negotiate(&f, ~0ull), 0);
	fake_setup_queue(&f, 0, 16);
	fake_setup_queue(&f, 1, 16);
	fake_driver_ok(&f);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	v->ioeventfd[1] = efd; /* as virtio_mmio_attach sets it */
	uint64_t tx = fake_alloc(&f, 12 + 60, 64);
	struct fake_buf b = {tx, 12 + 60, false};
	struct republisher r = {.f = &f, .head = fake_submit(&f, 1, &b, 1, false)};
	netpath_set_capture(virtio_net_netpath(n), republish, &r);
	struct vring_used *u = fake_ptr(&f, f.q[1].used);
	fake_kick(&f, 1);
	unsigned first = u->idx;
	uint64_t cnt = 0;
	bool handed_back = read(efd, &cnt, sizeof(cnt)) == sizeof(cnt);
	print_message("# one kick took %u chains (%u republished); handed back: %s\n", first,
		      r.published, handed_back ? "yes" : "no");
	assert_true(first <= VIRTIO_NOTIFY_BUDGET + 1);
	assert_true(handed_back);
	/* what the event loop does next: the queue is served again, and again bounded */
	fake_kick(&f, 1);
	assert_true((uint16_t)(u->idx - first) <= VIRTIO_NOTIFY_BUDGET + 1);
	v->ioeventfd[1] = -1;
	close(efd);
	virtio_net_destroy(n);
	close(sv[1]);
	fake_fini(&f);
}

/* ---- virtio-console ---- */

struct con_out {
	size_t base, peak, bytes;
	unsigned calls;
};

static void con_collect(void *opaque, const char *d, size_t n)
{
	(void)d;
	struct con_out *o = opaque;
	o->bytes += n;
	o->calls++;
	size_t g = heap_growth(o->base);
	if (g > o->peak)
		o->peak = g;
}

/* Finding 3: 256 chains of 1 MiB, all aliasing one 64 KiB guest buffer and all the
 * same head, make the host hold at most the fixed TX buffer. */
static void test_console_tx_aliased_chains_bounded(void **state)
{
	(void)state;
	struct virtio_console *c;
	struct fake_drv f;
	struct con_out out = {0};
	assert_int_equal(virtio_console_create("hvc0", &c), 0);
	virtio_console_set_output(c, con_collect, &out);
	assert_int_equal(fake_init(&f, virtio_console_vdev(c), 1u << 20), 0);
	assert_int_not_equal(fake_negotiate(&f, ~0ull), 0);
	fake_setup_queue(&f, 0, 16);
	fake_setup_queue(&f, 1, 256);
	fake_driver_ok(&f);
	uint64_t buf = fake_alloc(&f, 64 << 10, 64);
	memset(fake_ptr(&f, buf), 'x', 64 << 10);
	struct fake_buf b[16];
	for (unsigned i = 0; i < 16; i++)
		b[i] = (struct fake_buf){buf, 64 << 10, false};
	uint16_t head = fake_submit(&f, 1, b, 16, true);
	for (unsigned i = 1; i < 256; i++)
		fake_publish(&f, 1, head);
	out.base = heap_in_use();
	fake_kick(&f, 1);
	size_t after = heap_growth(out.base);
	unsigned used = 0;
	while (fake_get_used(&f, 1, NULL, NULL))
		used++;
	print_message("# console: %zu bytes out in %u calls, heap peak +%zu KiB, after +%zu KiB\n",
		      out.bytes, out.calls, out.peak >> 10, after >> 10);
	assert_int_equal(used, 256);
	/* Each chain is cut at VIRTIO_CONSOLE_TX_CHAIN_MAX; the rest is counted. */
	assert_int_equal(out.bytes, 256ull * VIRTIO_CONSOLE_TX_CHAIN_MAX);
	assert_int_equal(virtio_console_tx_dropped(c),
			 256ull * ((1u << 20) - VIRTIO_CONSOLE_TX_CHAIN_MAX));
	assert_true(out.peak < (256u << 10));
	assert_true(after < (64u << 10));
	virtio_console_destroy(c);
	fake_fini(&f);
}

/* ---- netpath ---- */

static int null_sink(void *opaque, enum netpath_dir dir, const uint8_t *frame, size_t len)
{
	(void)opaque; (void)dir; (void)frame; (void)len;
	return 0;
}

/* Finding 5 (network): frames under a latency rule queue up to the cap; beyond it
 * they are dropped and counted, never copied. */
static void test_netpath_delay_queue_capped(void **state)
{
	(void)state;
	struct evloop *loop;
	struct netpath *np;
	assert_int_equal(evloop_create(&loop), 0);
	assert_int_equal(netpath_create("net0", loop, 1, &np), 0);
	netpath_set_sink(np, NETPATH_TO_HOST, null_sink, NULL);
	struct netpath_rule r = {.action = NETPATH_DELAY, .delay_ns = 60ull * 1000000000ull};
	assert_true(netpath_add_rule(np, &r) > 0);
	static uint8_t frame[65536];
	size_t base = heap_in_use();
	unsigned queued = 0;
	for (int i = 0; i < 2000; i++)
		queued += netpath_send(np, NETPATH_TO_HOST, frame, sizeof(frame)) == NETPATH_QUEUED;
	size_t grew = heap_growth(base);
	struct netpath_counters c;
	netpath_counters(np, &c);
	print_message("# netpath: %u of 2000 queued, %llu dropped, heap +%zu KiB\n", queued,
		      (unsigned long long)c.dir[NETPATH_TO_HOST].dropped, grew >> 10);
	assert_int_equal(netpath_pending(np), queued);
	assert_true(queued * sizeof(frame) <= NETPATH_MAX_DELAYED_BYTES);
	assert_int_equal(c.dir[NETPATH_TO_HOST].dropped, 2000 - queued);
	assert_true(grew < NETPATH_MAX_DELAYED_BYTES + (512u << 10));
	/* Small frames: the frame count caps them. */
	netpath_destroy(np);
	assert_int_equal(netpath_create("net0", loop, 1, &np), 0);
	netpath_set_sink(np, NETPATH_TO_GUEST, null_sink, NULL);
	assert_true(netpath_add_rule(np, &r) > 0);
	for (int i = 0; i < 5000; i++)
		netpath_send(np, NETPATH_TO_GUEST, frame, 60);
	assert_int_equal(netpath_pending(np), NETPATH_MAX_DELAYED_FRAMES);
	netpath_destroy(np);
	evloop_destroy(loop);
}

int main(void)
{
	heap_meter_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blk_zeroes_segment_rewritten_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_discard_rewritten_in_flight_writeback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_corrupt_rule_and_zero_length_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blk_slow_flood_is_capped, setup, teardown),
		cmocka_unit_test(test_net_notify_budget),
		cmocka_unit_test(test_console_tx_aliased_chains_bounded),
		cmocka_unit_test(test_netpath_delay_queue_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
