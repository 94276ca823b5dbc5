/* test_heap_bound.c — the memory bound of docs/security.md, per device: whatever a
 * guest does through a device, the host heap it makes the VMM hold stays under that
 * device's documented cap. Each test floods one device from a fake guest
 * (virtio_fake_driver.h) the way a hostile one would and measures heap growth with
 * heap_meter.h (mallinfo2, or ASan's own count under check-asan): never time.
 * The caps summed are the per-VM bound docs/security.md states. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/blk_store.h"
#include "devices/netpath.h"
#include "devices/serial.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "tests/unit/blk_fake_guest.h"
#include "tests/unit/heap_meter.h"
#include "tests/unit/vsock_fake_guest.h"
#include "vmm/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* Per-device caps as docs/security.md states them (bytes of host heap). */
#define KiB 1024ull
#define MiB (1024ull * 1024)
#define BLK_CACHE_CAP ((uint64_t)BLK_CACHE_MAX_SECTORS * (512 + 48) + 1 * MiB)
#define BLK_DELAYED_CAP (3 * MiB)
#define CONSOLE_CAP (64 * KiB)
#define NET_CAP (2 * (NETPATH_MAX_DELAYED_BYTES + NETPATH_MAX_DELAYED_FRAMES * 128ull) + 256 * KiB)
#define VSOCK_CAP ((uint64_t)VSOCK_MAX_RINGS * VSOCK_BUF_ALLOC + VSOCK_MAX_STREAMS * 2 * KiB + \
		   512 * KiB)
#define SMALL_CAP (64 * KiB)

static void report(const char *dev, size_t grew, uint64_t cap)
{
	print_message("# %-28s heap +%8zu KiB (cap %llu KiB)\n", dev, grew >> 10,
		      (unsigned long long)(cap >> 10));
	assert_true(grew <= cap);
}

/* ---- virtio-blk ---- */

static int setup_big(void **state)
{
	/* A disk four times the cache: 64 MiB */
	struct fix *x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	snprintf(x->path, sizeof(x->path), "/tmp/provium-test-hb-%d.img", getpid());
	unlink(x->path);
	struct virtio_blk_opts o = {.path = x->path, .size = 64 * MiB};
	if (virtio_blk_create(&o, &x->b) < 0 || fake_init(&x->f, virtio_blk_vdev(x->b), MEM) < 0 ||
	    !fake_negotiate(&x->f, ~0ull))
		return -1;
	fake_setup_queue(&x->f, 0, 128);
	fake_driver_ok(&x->f);
	*state = x;
	return 0;
}

/* Writeback on and never a flush: 64 MiB of writes cost at most the cache cap (the
 * cache writes itself back when full) and the image stays its size. */
static void test_blk_writeback_flood(void **state)
{
	struct fix *x = *state;
	assert_int_equal(virtio_blk_set_cache(x->b, VIRTIO_BLK_CACHE_WRITEBACK), 0);
	x->f.brk = 0x100000;
	uint64_t data = fake_alloc(&x->f, 1 * MiB, 4096);
	uint64_t hdr = fake_alloc(&x->f, 16, 16), st = fake_alloc(&x->f, 1, 1);
	size_t base = heap_in_use();
	for (uint64_t s = 0; s < 64 * MiB / 512; s += 2048) {
		struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_OUT, .sector = s};
		memcpy(fake_ptr(&x->f, hdr), &h, sizeof(h));
		struct fake_buf b[3] = {{hdr, 16, false}, {data, 1 * MiB, false}, {st, 1, true}};
		fake_submit(&x->f, 0, b, 3, false);
		fake_kick(&x->f, 0);
		assert_int_equal(fake_get_used(&x->f, 0, NULL, NULL), 1);
		assert_int_equal(*(uint8_t *)fake_ptr(&x->f, st), VIRTIO_BLK_S_OK);
	}
	report("virtio-blk writeback, 64 MiB", heap_growth(base), BLK_CACHE_CAP);
	assert_true(virtio_blk_dirty_bytes(x->b) <= (uint64_t)BLK_CACHE_MAX_SECTORS * 512);
	struct stat sb;
	assert_int_equal(stat(x->path, &sb), 0);
	assert_int_equal(sb.st_size, 64 * MiB);
	/* what was written back early is on the image; a crash loses only the rest */
	assert_true(virtio_blk_crash(x->b) <= BLK_CACHE_MAX_SECTORS);
}

/* A slow rule, and a guest that fills the queue with republished heads and resets
 * the device, again and again: cancelled requests wait for their timers too, but
 * never more than BLK_MAX_DELAYED of them. */
static void test_blk_slow_reset_loop(void **state)
{
	struct fix *x = *state;
	start_loop(x);
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_SLOW);
	f.delay_ms = 60000;
	assert_true(virtio_blk_fault_add(x->b, &f) > 0);
	x->f.brk = 0x100000;
	uint64_t hdr = fake_alloc(&x->f, 16, 16), st = fake_alloc(&x->f, 1, 1);
	struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_FLUSH};
	memcpy(fake_ptr(&x->f, hdr), &h, sizeof(h));
	size_t base = heap_in_use();
	for (int round = 0; round < 40; round++) {
		x->f.brk = 0x200000;
		fake_setup_queue(&x->f, 0, 128);
		if (round)
			fake_driver_ok(&x->f);
		struct fake_buf b[2] = {{hdr, 16, false}, {st, 1, true}};
		uint16_t head = fake_submit(&x->f, 0, b, 2, false);
		for (int i = 1; i < 128; i++)
			fake_publish(&x->f, 0, head);
		fake_kick(&x->f, 0);
		assert_int_not_equal(fake_negotiate(&x->f, ~0ull), 0); /* resets first */
	}
	report("virtio-blk slow + resets", heap_growth(base), BLK_DELAYED_CAP);
}

/* ---- virtio-console ---- */

static void drop_out(void *opaque, const char *d, size_t n)
{
	(void)opaque; (void)d; (void)n;
}

static void test_console_flood(void **state)
{
	(void)state;
	struct virtio_console *c;
	struct fake_drv f;
	assert_int_equal(virtio_console_create("hvc0", &c), 0);
	virtio_console_set_output(c, drop_out, NULL);
	assert_int_equal(fake_init(&f, virtio_console_vdev(c), 4 * MiB), 0);
	assert_int_not_equal(fake_negotiate(&f, ~0ull), 0);
	fake_setup_queue(&f, 0, 256);
	fake_setup_queue(&f, 1, 256);
	fake_driver_ok(&f);
	uint64_t buf = fake_alloc(&f, 1 * MiB, 64);
	struct fake_buf b[64];
	for (unsigned i = 0; i < 64; i++)
		b[i] = (struct fake_buf){buf, 1 * MiB, false};
	uint16_t head = fake_submit(&f, 1, b, 64, true);
	f.q[1].avail_idx--;
	size_t base = heap_in_use();
	for (int kick = 0; kick < 8; kick++) {
		for (unsigned i = 0; i < 256; i++)
			fake_publish(&f, 1, head);
		fake_kick(&f, 1);
		while (fake_get_used(&f, 1, NULL, NULL))
			;
	}
	/* and host input the guest never reads: held up to VIRTIO_CONSOLE_INBUF */
	static char in[4096];
	for (int i = 0; i < 1000; i++)
		virtio_console_input(c, in, sizeof(in));
	report("virtio-console", heap_growth(base), CONSOLE_CAP);
	assert_true(virtio_console_dropped(c) > 0);
	virtio_console_destroy(c);
	fake_fini(&f);
}

/* ---- virtio-net ---- */

static void test_net_latency_flood(void **state)
{
	(void)state;
	struct evloop *loop;
	struct virtio_net *n;
	struct fake_drv f;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(evloop_create(&loop), 0);
	struct virtio_net_opts o = {.fd = sv[0], .seed = 1, .loop = loop};
	assert_int_equal(virtio_net_create("net0", &o, &n), 0);
	assert_int_equal(fake_init(&f, virtio_net_vdev(n), 8 * MiB), 0);
	assert_int_equal(virtio_net_start(n, loop), 0);
	assert_int_not_equal(fake_negotiate(&f, ~0ull), 0);
	fake_setup_queue(&f, 0, 256);
	fake_setup_queue(&f, 1, 256);
	fake_driver_ok(&f);
	struct netpath_rule r = {.action = NETPATH_DELAY, .delay_ns = 60ull * 1000000000ull};
	assert_true(netpath_add_rule(virtio_net_netpath(n), &r) > 0);
	uint64_t tx = fake_alloc(&f, 65536 + 12, 64);
	memset(fake_ptr(&f, tx), 0xab, 65536 + 12);
	memset(fake_ptr(&f, tx), 0, 12);
	for (unsigned i = 0; i < 256; i++) {
		struct fake_buf b = {fake_alloc(&f, 2048, 64), 2048, true};
		fake_submit(&f, 0, &b, 1, false);
	}
	fake_kick(&f, 0);
	size_t base = heap_in_use();
	/* TX: 3000 frames of 64 KiB, one head republished */
	struct fake_buf tb = {tx, 65536 + 12, false};
	uint16_t head = fake_submit(&f, 1, &tb, 1, false);
	f.q[1].avail_idx--;
	for (int k = 0; k < 12; k++) {
		for (unsigned i = 0; i < 250; i++)
			fake_publish(&f, 1, head);
		fake_kick(&f, 1);
		while (fake_get_used(&f, 1, NULL, NULL))
			;
	}
	/* RX: the network sends 3000 frames while the guest has buffers */
	static uint8_t frame[12 + 1500];
	unsigned sent = 0;
	for (int i = 0; i < 3000; i++) {
		if (send(sv[1], frame, sizeof(frame), 0) == (ssize_t)sizeof(frame))
			sent++;
		if (i % 100 == 99)
			for (int p = 0; p < 4; p++)
				evloop_run_once(loop, 0);
	}
	for (int p = 0; p < 20; p++)
		evloop_run_once(loop, 0);
	struct virtio_net_counters c;
	virtio_net_counters(n, &c);
	print_message("# net: tx dropped %llu, rx dropped %llu of %u\n",
		      (unsigned long long)c.tx_dropped, (unsigned long long)c.rx_dropped, sent);
	report("virtio-net latency, both ways", heap_growth(base), NET_CAP);
	assert_true(c.tx_dropped >= 3000 - 32);
	virtio_net_destroy(n);
	evloop_destroy(loop);
	close(sv[1]);
	fake_fini(&f);
}

/* ---- virtio-vsock ---- */

struct accepted {
	int fds[VSOCK_MAX_STREAMS + 64];
	unsigned n;
};

static void keep_fd(void *opaque, int fd, uint32_t hp, uint32_t gp)
{
	(void)hp; (void)gp;
	struct accepted *a = opaque;
	if (a->n < sizeof(a->fds) / sizeof(a->fds[0]))
		a->fds[a->n++] = fd;
	else
		close(fd);
}

static void drain_rx(struct fguest *g)
{
	struct virtio_vsock_hdr h;
	while (fg_recv(g, &h, NULL, 0, true))
		;
}

/* 320 streams opened by the guest, and data pushed on 80 of them toward host ends
 * that never read: at most VSOCK_MAX_STREAMS streams and VSOCK_MAX_RINGS rings. */
static void test_vsock_stream_and_ring_flood(void **state)
{
	(void)state;
	struct fguest *g = calloc(1, sizeof(*g));
	static struct accepted acc;
	assert_int_equal(fg_init(g), 0);
	assert_int_equal(virtio_vsock_listen(g->s, 5000, keep_fd, &acc), 0);
	fg_post_rx(g, FG_QN, FG_RXBUF);
	size_t base = heap_in_use();
	for (uint32_t i = 0; i < VSOCK_MAX_STREAMS + 64; i++) {
		struct virtio_vsock_hdr h = fg_hdr(10000 + i, 5000, VIRTIO_VSOCK_OP_REQUEST, 0,
						   VSOCK_BUF_ALLOC, 0);
		fg_send(g, &h, NULL);
		drain_rx(g);
	}
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.streams, VSOCK_MAX_STREAMS);
	assert_int_equal(acc.n, VSOCK_MAX_STREAMS);
	static uint8_t chunk[65536];
	for (uint32_t i = 0; i < 80; i++)
		for (int k = 0; k < 6; k++) {
			struct virtio_vsock_hdr h = fg_hdr(10000 + i, 5000, VIRTIO_VSOCK_OP_RW,
							   sizeof(chunk), VSOCK_BUF_ALLOC, 0);
			fg_send(g, &h, chunk);
			drain_rx(g);
		}
	fg_pump(g);
	drain_rx(g);
	virtio_vsock_stats(g->s, &st);
	print_message("# vsock: %llu streams open, %llu RST sent\n",
		      (unsigned long long)st.streams, (unsigned long long)st.rst_sent);
	report("virtio-vsock", heap_growth(base), VSOCK_CAP);
	for (unsigned i = 0; i < acc.n; i++)
		close(acc.fds[i]);
	fg_fini(g);
	free(g);
}

/* ---- serial, virtio-rng: nothing a guest does allocates ---- */

static void test_serial_and_rng_flood(void **state)
{
	(void)state;
	struct serial *s;
	assert_int_equal(serial_new(NULL, &s), 0);
	size_t base = heap_in_use();
	uint8_t v = UART_MCR_LOOP;
	serial_bus_ops.write(s, UART_MCR, &v, 1);
	for (int i = 0; i < 1 << 20; i++) {
		v = (uint8_t)i;
		serial_bus_ops.write(s, UART_THR, &v, 1);
	}
	static char in[65536];
	for (int i = 0; i < 64; i++)
		serial_receive(s, in, sizeof(in));
	report("serial", heap_growth(base), SMALL_CAP);
	serial_free(s);

	struct virtio_rng *r;
	struct fake_drv f;
	assert_int_equal(virtio_rng_create("rng0", &r), 0);
	assert_int_equal(fake_init(&f, virtio_rng_vdev(r), 2 * MiB), 0);
	assert_int_not_equal(fake_negotiate(&f, ~0ull), 0);
	fake_setup_queue(&f, 0, 64);
	fake_driver_ok(&f);
	struct fake_buf b = {fake_alloc(&f, 64 * KiB, 64), 64 * KiB, true};
	uint16_t head = fake_submit(&f, 0, &b, 1, false);
	f.q[0].avail_idx--;
	base = heap_in_use();
	for (int k = 0; k < 16; k++) {
		for (int i = 0; i < 64; i++)
			fake_publish(&f, 0, head);
		fake_kick(&f, 0);
		while (fake_get_used(&f, 0, NULL, NULL))
			;
	}
	report("virtio-rng", heap_growth(base), SMALL_CAP);
	virtio_rng_destroy(r);
	fake_fini(&f);
}

int main(void)
{
	heap_meter_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blk_writeback_flood, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_blk_slow_reset_loop, setup, teardown),
		cmocka_unit_test(test_console_flood),
		cmocka_unit_test(test_net_latency_flood),
		cmocka_unit_test(test_vsock_stream_and_ring_flood),
		cmocka_unit_test(test_serial_and_rng_flood),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
