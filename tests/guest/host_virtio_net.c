/* host_virtio_net.c — boots the virtio_net guest with a virtio-net device on a
 * real TAP. The test process first moves into a network namespace of its own
 * (unshare(CLONE_NEWNET)), so the TAP and every frame stay there and vanish with
 * the process; the host's interfaces are never touched. An AF_PACKET socket on the
 * TAP is "the network": it reads what the guest sent and injects frames for it.
 * Checked: guest -> TAP, TAP -> guest, link down (both ways dropped and counted,
 * the guest sees the status bit cleared with a config interrupt), link up. */
#include "tests/guest/host_virtio.h"
#include "devices/virtio.h"
#include "devices/virtio_net.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static struct guest g;

static int if_up(const char *ifname)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	int r = s < 0 ? -1 : ioctl(s, SIOCGIFFLAGS, &ifr);
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (s >= 0)
		close(s);
	return r;
}

static int packet_socket(const char *ifname)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (s < 0)
		return -1;
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)if_nametoindex(ifname)};
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* Waits for a 0x88b5 frame on the packet socket; copies its payload. */
static bool wait_frame(int ps, uint8_t *frame, char *payload, size_t cap, int timeout_ms)
{
	uint64_t end = pv_now_ns() + (uint64_t)timeout_ms * 1000000;
	while (pv_now_ns() < end) {
		struct pollfd p = {ps, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		uint8_t buf[2048];
		ssize_t n = recv(ps, buf, sizeof(buf), 0);
		if (n < 14 || buf[12] != 0x88 || buf[13] != 0xb5)
			continue;
		memcpy(frame, buf, 14);
		size_t k = PV_MIN((size_t)n - 14, cap - 1);
		memcpy(payload, buf + 14, k);
		payload[k] = 0;
		return true;
	}
	return false;
}

static void inject(int ps, const uint8_t mac[6], const char *payload)
{
	uint8_t f[128] = {0};
	memcpy(f, mac, 6);
	memcpy(f + 6, (uint8_t[]){0x02, 0x11, 0x22, 0x33, 0x44, 0x55}, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	size_t n = strlen(payload);
	memcpy(f + 14, payload, n);
	size_t len = PV_MAX(14 + n, (size_t)60);
	if (send(ps, f, len, 0) != (ssize_t)len)
		guest_fail(&g, "inject: %s", strerror(errno));
}

static void test_tap_frames_and_link(void **state)
{
	bool fallback = *state != NULL; /* MMIO-exit notify, KVM_IRQ_LINE */
	guest_require_kvm();
	if (unshare(CLONE_NEWNET) < 0) {
		printf("# unshare(CLONE_NEWNET): %s: needs a private network namespace\n",
		       strerror(errno));
		skip();
	}
	/* No IPv6 in this namespace: otherwise the kernel sends its own frames (MLD
	 * reports, router solicitations) out of the TAP when it comes up, at random
	 * moments, and one can land in the guest just before the link goes down. */
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(i ? "/proc/sys/net/ipv6/conf/default/disable_ipv6"
				  : "/proc/sys/net/ipv6/conf/all/disable_ipv6", "w");
		if (f) {
			fputs("1", f);
			fclose(f);
		}
	}
	char ifname[IFNAMSIZ];
	int tap = virtio_net_open_tap("pvtap%d", ifname);
	if (tap < 0)
		fail_msg("open tap: %s", pv_errmsg());
	if (if_up(ifname) < 0)
		fail_msg("bring %s up: %s", ifname, strerror(errno));
	int ps = packet_socket(ifname);
	if (ps < 0)
		fail_msg("packet socket on %s: %s", ifname, strerror(errno));

	vguest_create(&g, "virtio_net", "console=ttyS0", NULL, NULL);
	struct virtio_net *n;
	struct virtio_net_opts o = {.fd = tap, .mac = {0x02, 0x50, 0x52, 0x56, 0x00, 0x07}};
	if (virtio_net_create("net0", &o, &n) < 0)
		fail_msg("virtio_net_create: %s", pv_errmsg());
	virtio_net_vdev(n)->no_eventfds = fallback;
	if (virtio_net_attach(n, g.vm) < 0) {
		virtio_net_destroy(n);
		fail_msg("virtio_net_attach: %s", pv_errmsg());
	}
	vguest_start(&g);

	guest_wait_output(&g, "NET: sent", GUEST_TIMEOUT_MS);
	guest_expect(&g, "NET: mac 02:50:52:56:00:07");
	uint8_t hdr[14];
	char payload[256];
	if (!wait_frame(ps, hdr, payload, sizeof(payload), 10000))
		guest_fail(&g, "no frame from the guest on %s", ifname);
	assert_string_equal(payload, "guest->host");
	assert_memory_equal(hdr + 6, o.mac, 6); /* source: the guest's MAC */

	inject(ps, o.mac, "host->guest");
	guest_wait_output(&g, "NET: got host frame", GUEST_TIMEOUT_MS);
	struct virtio_net_counters c;
	virtio_net_counters(n, &c);
	assert_true(c.tx_packets >= 1);
	assert_true(c.rx_packets >= 1);

	virtio_net_set_link(n, false);
	assert_false(virtio_net_link_up(n));
	guest_wait_output(&g, "NET: down-sent", GUEST_TIMEOUT_MS);
	/* The guest's frame never reaches the TAP ... */
	assert_false(wait_frame(ps, hdr, payload, sizeof(payload), 1500));
	struct virtio_net_counters c2;
	virtio_net_counters(n, &c2);
	assert_true(c2.tx_dropped >= 1);
	assert_int_equal(c2.tx_packets, c.tx_packets);
	/* ... and a frame for the guest is read from the TAP and dropped. */
	uint64_t rx_drop = c2.rx_dropped;
	inject(ps, o.mac, "while-down");
	for (int i = 0; i < 500 && c2.rx_dropped == rx_drop; i++) {
		usleep(10000);
		virtio_net_counters(n, &c2);
	}
	assert_true(c2.rx_dropped > rx_drop);
	assert_int_equal(c2.rx_packets, c.rx_packets);
	if (vm_console_input(g.vm, "checked\n", 8) < 0)
		guest_fail(&g, "console input: %s", pv_errmsg());

	virtio_net_set_link(n, true);
	if (!wait_frame(ps, hdr, payload, sizeof(payload), GUEST_TIMEOUT_MS))
		guest_fail(&g, "no frame after link up");
	assert_string_equal(payload, "guest->host again");
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	if (getenv("PROVIUM_GUEST_LOG"))
		guest_print_log(&g);
	guest_expect_exit(&g, 0);
	guest_expect(&g, "PASS: link status bit cleared");
	guest_expect(&g, "PASS: config-change interrupt");
	guest_expect(&g, "PASS: no frame received while the link was down");
	guest_expect(&g, "PASS: link status bit set again");
	close(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_tap_frames_and_link, guest_teardown),
		{"test_tap_frames_and_link_exit_path_fallback", test_tap_frames_and_link, NULL, guest_teardown, (void *)1},
	};
	return cmocka_run_group_tests_name("guest_virtio_net", tests, NULL, NULL);
}
