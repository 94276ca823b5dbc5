/* test_virtio_net.c — virtio-net without KVM: a fake driver (virtio_fake_driver.h)
 * posts RX/TX chains into a buffer standing for guest RAM; the backend is a
 * SOCK_SEQPACKET socketpair carrying "vnet header + frame" messages exactly as a
 * TAP with IFF_VNET_HDR does, and the device's event loop is pumped by hand.
 * Covers config space (MAC, status), TX and RX with headers, RX backpressure,
 * link down/up (config interrupt, drops both ways), netpath rules on the device,
 * malformed chains, oversize frames, and a real TAP's flags inside a private
 * network namespace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/netpath.h"
#include "devices/virtio_net.h"
#include "tests/unit/virtio_fake_driver.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEM (4u << 20)
#define BUF 2048

struct fix {
	struct virtio_net *n;
	struct fake_drv f;
	struct evloop *loop;
	int peer;               /* the "network" end of the backend */
	uint64_t rx_gpa[64];
	uint64_t tx_gpa;
};

static const uint8_t MAC[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01};

static int setup(void **state)
{
	struct fix *x = calloc(1, sizeof(*x));
	int sv[2];
	if (!x || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	x->peer = sv[1];
	if (evloop_create(&x->loop) < 0)
		return -1;
	struct virtio_net_opts o = {.fd = sv[0], .seed = 1};
	memcpy(o.mac, MAC, 6);
	if (virtio_net_create("net0", &o, &x->n) < 0)
		return -1;
	if (fake_init(&x->f, virtio_net_vdev(x->n), MEM) < 0)
		return -1;
	if (virtio_net_start(x->n, x->loop) < 0)
		return -1;
	if (!fake_negotiate(&x->f, ~0ull))
		return -1;
	fake_setup_queue(&x->f, 0, 64);
	fake_setup_queue(&x->f, 1, 64);
	fake_driver_ok(&x->f);
	for (int i = 0; i < 64; i++)
		x->rx_gpa[i] = fake_alloc(&x->f, BUF, 64);
	x->tx_gpa = fake_alloc(&x->f, 65536 + 12, 64);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fix *x = *state;
	virtio_net_destroy(x->n);
	evloop_destroy(x->loop);
	close(x->peer);
	fake_fini(&x->f);
	free(x);
	return 0;
}

static void pump(struct fix *x)
{
	for (int i = 0; i < 4; i++)
		evloop_run_once(x->loop, 0);
}

static void post_rx(struct fix *x, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = x->f.q[0].next_desc;
		struct fake_buf b = {x->rx_gpa[slot], size, true};
		fake_submit(&x->f, 0, &b, 1, false);
	}
	fake_kick(&x->f, 0);
}

static void make_frame(uint8_t *f, size_t len, uint8_t tag)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, MAC, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(tag + i);
}

static void guest_tx(struct fix *x, size_t frame_len, uint8_t tag)
{
	uint8_t *p = fake_ptr(&x->f, x->tx_gpa);
	memset(p, 0, 12);
	make_frame(p + 12, frame_len, tag);
	struct fake_buf b = {x->tx_gpa, (uint32_t)(12 + frame_len), false};
	fake_submit(&x->f, 1, &b, 1, false);
	fake_kick(&x->f, 1);
}

static void peer_send(struct fix *x, size_t frame_len, uint8_t tag)
{
	uint8_t m[12 + 1600] = {0};
	make_frame(m + 12, frame_len, tag);
	assert_int_equal(send(x->peer, m, 12 + frame_len, 0), (ssize_t)(12 + frame_len));
}

/* The next frame the guest received: its length (without header) or -1. */
static int guest_rx(struct fix *x, uint8_t *frame)
{
	uint32_t id, len;
	if (!fake_get_used(&x->f, 0, &id, &len))
		return -1;
	struct virtio_net_hdr_v1 *h = fake_ptr(&x->f, x->rx_gpa[id]);
	assert_int_equal(h->num_buffers, 1);
	assert_int_equal(h->flags, 0);
	assert_true(len >= 12);
	memcpy(frame, (uint8_t *)h + 12, len - 12);
	return (int)len - 12;
}

static void config_has_mac_and_status(void **state)
{
	struct fix *x = *state;
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	fake_wr32(&x->f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t feat = fake_rd32(&x->f, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_true(feat & (1u << VIRTIO_NET_F_MAC));
	assert_true(feat & (1u << VIRTIO_NET_F_STATUS));
	assert_false(feat & (1u << VIRTIO_NET_F_CSUM)); /* no offloads */
	uint32_t m0 = fake_rd32(&x->f, VIRTIO_MMIO_CONFIG), m1 = fake_rd32(&x->f, VIRTIO_MMIO_CONFIG + 4);
	uint8_t mac[6] = {(uint8_t)m0, (uint8_t)(m0 >> 8), (uint8_t)(m0 >> 16), (uint8_t)(m0 >> 24),
			  (uint8_t)m1, (uint8_t)(m1 >> 8)};
	assert_memory_equal(mac, MAC, 6);
	assert_int_equal(m1 >> 16, VIRTIO_NET_S_LINK_UP);
	/* Without a MAC in the options: random, unicast, locally administered. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct virtio_net *n2;
	struct virtio_net_opts o = {.fd = sv[0], .link_down = true};
	assert_int_equal(virtio_net_create("net1", &o, &n2), 0);
	uint8_t r[6];
	virtio_net_mac(n2, r);
	assert_int_equal(r[0] & 3, 2);
	assert_false(virtio_net_link_up(n2));
	virtio_net_destroy(n2);
	close(sv[1]);
}

static void tx_reaches_the_backend(void **state)
{
	struct fix *x = *state;
	guest_tx(x, 60, 1);
	uint32_t id, len;
	assert_int_equal(fake_get_used(&x->f, 1, &id, &len), 1);
	uint8_t m[2048];
	ssize_t r = recv(x->peer, m, sizeof(m), MSG_DONTWAIT);
	assert_int_equal(r, 12 + 60);
	static const uint8_t zero[12];
	assert_memory_equal(m, zero, 12);
	uint8_t want[60];
	make_frame(want, 60, 1);
	assert_memory_equal(m + 12, want, 60);
	struct virtio_net_counters c;
	virtio_net_counters(x->n, &c);
	assert_int_equal(c.tx_packets, 1);
	assert_int_equal(c.tx_bytes, 60);
	assert_int_equal(c.tx_dropped, 0);
}

static void rx_reaches_the_guest_with_backpressure(void **state)
{
	struct fix *x = *state;
	/* No receive buffers yet: frames wait in the backend, nothing is dropped. */
	for (uint8_t t = 0; t < 3; t++)
		peer_send(x, 100 + t, t);
	pump(x);
	uint8_t f[2048];
	assert_int_equal(guest_rx(x, f), -1);
	struct virtio_net_counters c;
	virtio_net_counters(x->n, &c);
	assert_int_equal(c.rx_dropped, 0);
	post_rx(x, 8, BUF);
	pump(x);
	for (uint8_t t = 0; t < 3; t++) {
		assert_int_equal(guest_rx(x, f), 100 + t);
		uint8_t want[120];
		make_frame(want, 100 + t, t);
		assert_memory_equal(f, want, 100 + t);
	}
	assert_true(x->f.irqs > 0);
	virtio_net_counters(x->n, &c);
	assert_int_equal(c.rx_packets, 3);
	assert_int_equal(c.rx_bytes, 303);
}

static void link_down_and_up(void **state)
{
	struct fix *x = *state;
	post_rx(x, 8, BUF);
	uint32_t gen = fake_rd32(&x->f, VIRTIO_MMIO_CONFIG_GENERATION);
	virtio_net_set_link(x->n, false);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_CONFIG + 4) >> 16, 0);
	assert_int_not_equal(fake_rd32(&x->f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	guest_tx(x, 60, 2);
	assert_int_equal(fake_get_used(&x->f, 1, NULL, NULL), 1); /* completed, not sent */
	uint8_t m[2048];
	assert_int_equal(recv(x->peer, m, sizeof(m), MSG_DONTWAIT), -1);
	peer_send(x, 60, 3);
	pump(x);
	assert_int_equal(guest_rx(x, m), -1);
	struct virtio_net_counters c;
	virtio_net_counters(x->n, &c);
	assert_int_equal(c.tx_dropped, 1);
	assert_int_equal(c.rx_dropped, 1);
	assert_int_equal(c.tx_packets + c.rx_packets, 0);
	virtio_net_set_link(x->n, true);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_CONFIG + 4) >> 16, VIRTIO_NET_S_LINK_UP);
	peer_send(x, 60, 4);
	pump(x);
	assert_int_equal(guest_rx(x, m), 60);
}

static void netpath_rules_apply(void **state)
{
	struct fix *x = *state;
	post_rx(x, 8, BUF);
	struct netpath *np = virtio_net_netpath(x->n);
	int id = netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DROP,
		.dirs = NETPATH_DIR_BIT(NETPATH_TO_GUEST), .count = 1});
	assert_true(id > 0);
	peer_send(x, 60, 5);
	peer_send(x, 61, 6);
	pump(x);
	uint8_t f[2048];
	assert_int_equal(guest_rx(x, f), 61); /* the first was dropped by the rule */
	assert_int_equal(guest_rx(x, f), -1);
	/* A delayed frame arrives through the event loop, later. */
	netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DELAY, .delay_ns = 300000000});
	uint64_t t0 = pv_now_ns();
	peer_send(x, 62, 7);
	pump(x);
	assert_int_equal(guest_rx(x, f), -1);
	while (guest_rx(x, f) < 0 && pv_now_ns() - t0 < 2000000000ull)
		evloop_run_once(x->loop, 10);
	assert_true(pv_now_ns() - t0 >= 300000000);
	struct netpath_counters c;
	netpath_counters(np, &c);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].delayed, 1);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].packets, 2);
}

static void malformed_and_oversize(void **state)
{
	struct fix *x = *state;
	/* TX shorter than the header: completed, counted, not sent. */
	struct fake_buf b = {x->tx_gpa, 8, false};
	fake_submit(&x->f, 1, &b, 1, false);
	fake_kick(&x->f, 1);
	assert_int_equal(fake_get_used(&x->f, 1, NULL, NULL), 1);
	struct virtio_net_counters c;
	virtio_net_counters(x->n, &c);
	assert_int_equal(c.tx_dropped, 1);
	/* A receive buffer too small for the frame: the frame is dropped, the buffer
	 * kept for the next frame that fits. */
	post_rx(x, 1, 12 + 100);
	peer_send(x, 500, 8);
	peer_send(x, 80, 9);
	pump(x);
	uint8_t f[2048];
	assert_int_equal(guest_rx(x, f), 80);
	virtio_net_counters(x->n, &c);
	assert_int_equal(c.rx_dropped, 1);
	assert_false(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* A writable buffer before a readable one on TX breaks the ring rules. */
	struct fake_buf bad[2] = {{x->tx_gpa, 64, true}, {x->tx_gpa + 64, 64, false}};
	fake_submit(&x->f, 1, bad, 2, false);
	fake_kick(&x->f, 1);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Snapshot: save, change the MAC and link, load: both come back, and the device
 * keeps moving frames on the restored rings. */
static void save_and_load(void **state)
{
	struct fix *x = *state;
	struct device *d = &virtio_net_vdev(x->n)->dev;
	/* The device holds a receive buffer too small for the frame it read ... */
	post_rx(x, 1, 12 + 100);
	peer_send(x, 500, 1);
	pump(x);
	virtio_net_set_link(x->n, false);
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	assert_int_equal(fake_save_state(d, &sb, &up), 0);
	const msgpack_object *mac = virtio_msgpack_get(&up.data, "mac");
	assert_non_null(mac);
	assert_memory_equal(mac->via.bin.ptr, MAC, 6);
	virtio_net_set_link(x->n, true);
	assert_int_equal(d->ops->load(d, &up.data), 0);
	assert_false(virtio_net_link_up(x->n));
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_CONFIG + 4) >> 16, 0);
	uint8_t m[2048];
	virtio_net_set_link(x->n, true);
	/* ... and the saved rings give it back: a small frame lands in it. */
	peer_send(x, 80, 2);
	pump(x);
	assert_int_equal(guest_rx(x, m), 80);
	guest_tx(x, 60, 9);
	assert_int_equal(recv(x->peer, m, sizeof(m), MSG_DONTWAIT), 72);
	/* A state without the MAC is refused. */
	msgpack_object bad = {.type = MSGPACK_OBJECT_MAP};
	assert_int_equal(d->ops->load(d, &bad), -EINVAL);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* A real TAP in a private network namespace (a forked child, so the test process
 * and the host's interfaces are untouched). */
static void tap_has_vnet_header(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0)
			_exit(77);
		char ifname[IFNAMSIZ];
		int fd = virtio_net_open_tap("pvt%d", ifname);
		if (fd < 0)
			_exit(fd == -ENOENT || fd == -EPERM ? 77 : 1);
		struct ifreq ifr = {0};
		int sz = 0;
		if (ioctl(fd, TUNGETIFF, &ifr) < 0 || ioctl(fd, TUNGETVNETHDRSZ, &sz) < 0)
			_exit(2);
		if ((ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) !=
		    (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
			_exit(3);
		_exit(sz == 12 && !strncmp(ifname, "pvt", 3) ? 0 : 4);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77) {
		printf("# no network namespace or /dev/net/tun here\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(config_has_mac_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(tx_reaches_the_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(rx_reaches_the_guest_with_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(link_down_and_up, setup, teardown),
		cmocka_unit_test_setup_teardown(netpath_rules_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_and_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(save_and_load, setup, teardown),
		cmocka_unit_test(tap_has_vnet_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
