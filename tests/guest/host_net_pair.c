/* host_net_pair.c — two test-guest VMs (tests/guest/net_pair.c), each with a
 * virtio-net NIC, wired to each other through netpath: NIC A's backend is one end
 * of a SOCK_SEQPACKET socketpair and NIC B's the other, so every frame A's guest
 * sends crosses A's netpath (NETPATH_TO_HOST), the socketpair and B's netpath
 * (NETPATH_TO_GUEST) before B's guest sees it. No host interface or namespace is
 * involved. A capture hook on both netpaths timestamps every frame that passes.
 * Checked, with the fault rules of devices/netpath_rules.h:
 *   - frames pass both ways;
 *   - a partition (a DROP fault on each NIC toward the other's MAC) drops them
 *     both ways, counted as dropped on the sender's egress, never reaching the
 *     socketpair or the peer; removing the rules heals it;
 *   - a 200 ms latency fault on A delivers A's frame to B no sooner than 200 ms
 *     after A's netpath saw it (host timestamps from the two captures).
 * docs/devices/netpath.md, "Two VMs through netpath". */
#include "tests/guest/host_virtio.h"
#include "devices/netpath.h"
#include "devices/netpath_rules.h"
#include "devices/virtio.h"
#include "devices/virtio_net.h"

#include <pthread.h>
#include <sys/socket.h>

#define LATENCY_NS (200ull * 1000 * 1000)

static struct guest ga, gb;
static struct virtio_net *na, *nb;
static const uint8_t mac_a[6] = {0x02, 0x50, 0x52, 0x00, 0x00, 0x0a};
static const uint8_t mac_b[6] = {0x02, 0x50, 0x52, 0x00, 0x00, 0x0b};
static const uint8_t macs[2][6] = {{0x02, 0x50, 0x52, 0x00, 0x00, 0x0a},
				   {0x02, 0x50, 0x52, 0x00, 0x00, 0x0b}};

/* ---- capture: (nic, direction, time, payload) of every 0x88b5 frame that passed ---- */
struct rec {
	int nic;
	enum netpath_dir dir;
	uint64_t t;
	char tag[32];
};
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec recs[64];
static unsigned nrec;

static void capture(void *opaque, enum netpath_dir dir, uint64_t time_ns, const uint8_t *frame,
		    size_t len)
{
	if (len <= 14 || frame[12] != 0x88 || frame[13] != 0xb5)
		return;
	pthread_mutex_lock(&rec_lock);
	if (nrec < PV_ARRAY_SIZE(recs)) {
		struct rec *r = &recs[nrec++];
		size_t n = PV_MIN(len - 14, sizeof(r->tag) - 1);
		r->nic = (int)(intptr_t)opaque;
		r->dir = dir;
		r->t = time_ns;
		memcpy(r->tag, frame + 14, n);
		r->tag[n] = 0;
	}
	pthread_mutex_unlock(&rec_lock);
}

static bool seen(int nic, enum netpath_dir dir, const char *tag, uint64_t *t)
{
	bool found = false;
	pthread_mutex_lock(&rec_lock);
	for (unsigned i = 0; i < nrec && !found; i++)
		if (recs[i].nic == nic && recs[i].dir == dir && !strcmp(recs[i].tag, tag)) {
			found = true;
			if (t)
				*t = recs[i].t;
		}
	pthread_mutex_unlock(&rec_lock);
	return found;
}

/* ---- driving the guests (no tag is a prefix of another: the console has CRLF) ---- */
static void cmd(struct guest *g, const char *fmt, const char *arg)
{
	char line[64];
	int n = snprintf(line, sizeof(line), fmt, arg);
	if (vm_console_input(g->vm, line, (size_t)n) < 0)
		guest_fail(g, "console input to %s: %s", g->name, pv_errmsg());
}

/* Asks g to send `tag` and waits until its device has taken the frame (the guest
 * prints "TX tag" after the TX completion, so netpath has already decided). */
static void send_tag(struct guest *g, const char *tag)
{
	char want[64];
	cmd(g, "tx %s\n", tag);
	snprintf(want, sizeof(want), "TX %s", tag);
	guest_wait_output(g, want, GUEST_TIMEOUT_MS);
}

static void expect_rx(struct guest *g, const char *tag)
{
	char want[64];
	snprintf(want, sizeof(want), "RX %s", tag);
	guest_wait_output(g, want, GUEST_TIMEOUT_MS);
}

static void expect_no_rx(struct guest *g, const char *tag)
{
	char want[64];
	snprintf(want, sizeof(want), "RX %s", tag);
	guest_expect_not(g, want);
}

static struct netpath_dir_counters ctr(struct virtio_net *n, enum netpath_dir d)
{
	struct netpath_counters c;
	netpath_counters(virtio_net_netpath(n), &c);
	return c.dir[d];
}

static int add_fault(struct virtio_net *n, enum netpath_action a, const uint8_t peer[6],
		     uint64_t delay_ns, const char *label)
{
	struct netpath_fault f = {
		.action = a, .rate = 1, .delay_ns = delay_ns,
		.peers = (const uint8_t(*)[6])peer, .npeers = 1,
		.locals = macs, .nlocals = 2,
		.seed = netpath_fault_seed(1, label, 0), .label = label,
	};
	int id = netpath_fault_add(virtio_net_netpath(n), &f);
	if (id < 0)
		fail_msg("netpath_fault_add(%s): %s", label, pv_errmsg());
	return id;
}

static struct virtio_net *nic(struct guest *g, const char *id, int fd, const uint8_t mac[6],
			      int index)
{
	struct virtio_net *n;
	struct virtio_net_opts o = {.fd = fd};
	memcpy(o.mac, mac, 6);
	if (virtio_net_create(id, &o, &n) < 0)
		fail_msg("virtio_net_create(%s): %s", id, pv_errmsg());
	netpath_set_capture(virtio_net_netpath(n), capture, (void *)(intptr_t)index);
	if (virtio_net_attach(n, g->vm) < 0) {
		virtio_net_destroy(n);
		fail_msg("virtio_net_attach(%s): %s", id, pv_errmsg());
	}
	return n;
}

static void test_two_vms_through_netpath(void **state)
{
	(void)state;
	guest_require_kvm();
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0)
		fail_msg("socketpair: %s", strerror(errno));
	vguest_create(&ga, "net_pair", "console=ttyS0 peer=11", NULL, NULL);
	ga.name = "net_pair A";
	vguest_create(&gb, "net_pair", "console=ttyS0 peer=10", NULL, NULL);
	gb.name = "net_pair B";
	na = nic(&ga, "netA", sp[0], mac_a, 0);
	nb = nic(&gb, "netB", sp[1], mac_b, 1);
	vguest_start(&ga);
	vguest_start(&gb);
	guest_wait_output(&ga, "NET: ready 0a -> 0b", GUEST_TIMEOUT_MS);
	guest_wait_output(&gb, "NET: ready 0b -> 0a", GUEST_TIMEOUT_MS);

	/* 1. Frames pass both ways, through both netpaths. */
	send_tag(&ga, "a2b");
	expect_rx(&gb, "a2b");
	send_tag(&gb, "b2a");
	expect_rx(&ga, "b2a");
	assert_true(seen(0, NETPATH_TO_HOST, "a2b", NULL) && seen(1, NETPATH_TO_GUEST, "a2b", NULL));
	assert_true(seen(1, NETPATH_TO_HOST, "b2a", NULL) && seen(0, NETPATH_TO_GUEST, "b2a", NULL));

	/* 2. Partition: each NIC drops what it sends to the other. */
	int pa = add_fault(na, NETPATH_DROP, mac_b, 0, "partition A-B on A");
	int pb = add_fault(nb, NETPATH_DROP, mac_a, 0, "partition A-B on B");
	struct netpath_dir_counters a_out = ctr(na, NETPATH_TO_HOST), b_out = ctr(nb, NETPATH_TO_HOST);
	struct netpath_dir_counters a_in = ctr(na, NETPATH_TO_GUEST), b_in = ctr(nb, NETPATH_TO_GUEST);
	send_tag(&ga, "part-a2b");
	send_tag(&gb, "part-b2a");
	/* A frame that got through would reach the peer in well under a second. */
	usleep(1500 * 1000);
	expect_no_rx(&gb, "part-a2b");
	expect_no_rx(&ga, "part-b2a");
	assert_int_equal(ctr(na, NETPATH_TO_HOST).dropped, a_out.dropped + 1);
	assert_int_equal(ctr(nb, NETPATH_TO_HOST).dropped, b_out.dropped + 1);
	assert_int_equal(ctr(na, NETPATH_TO_HOST).packets, a_out.packets);
	assert_int_equal(ctr(nb, NETPATH_TO_HOST).packets, b_out.packets);
	assert_int_equal(ctr(na, NETPATH_TO_GUEST).packets, a_in.packets);
	assert_int_equal(ctr(nb, NETPATH_TO_GUEST).packets, b_in.packets);
	assert_int_equal(netpath_rule_hits(virtio_net_netpath(na), pa), 1);
	assert_int_equal(netpath_rule_hits(virtio_net_netpath(nb), pb), 1);
	assert_false(seen(0, NETPATH_TO_HOST, "part-a2b", NULL));
	assert_false(seen(1, NETPATH_TO_HOST, "part-b2a", NULL));
	struct virtio_net_counters vc;
	virtio_net_counters(na, &vc);
	assert_true(vc.tx_dropped >= 1);

	/* Heal: without the rules frames pass again. */
	assert_int_equal(netpath_del_rule(virtio_net_netpath(na), pa), 0);
	assert_int_equal(netpath_del_rule(virtio_net_netpath(nb), pb), 0);
	send_tag(&ga, "heal-a2b");
	expect_rx(&gb, "heal-a2b");
	send_tag(&gb, "heal-b2a");
	expect_rx(&ga, "heal-b2a");

	/* 3. Latency of 200 ms on A's frames to B. */
	uint64_t delayed = ctr(na, NETPATH_TO_HOST).delayed;
	int la = add_fault(na, NETPATH_DELAY, mac_b, LATENCY_NS, "latency A->B");
	uint64_t t_cmd = pv_wall_ns();
	send_tag(&ga, "lat-a2b");
	expect_rx(&gb, "lat-a2b");
	uint64_t t_rx = pv_wall_ns();
	uint64_t t_sent = 0, t_arrived = 0;
	assert_true(seen(0, NETPATH_TO_HOST, "lat-a2b", &t_sent));
	assert_true(seen(1, NETPATH_TO_GUEST, "lat-a2b", &t_arrived));
	printf("# latency fault %llu ms: A's netpath saw the frame at +%.1f ms, B's at +%.1f ms "
	       "(%.1f ms later); B's guest printed it by +%.1f ms\n",
	       (unsigned long long)(LATENCY_NS / 1000000), (double)(t_sent - t_cmd) / 1e6,
	       (double)(t_arrived - t_cmd) / 1e6, (double)(t_arrived - t_sent) / 1e6,
	       (double)(t_rx - t_cmd) / 1e6);
	assert_true(t_arrived >= t_sent + LATENCY_NS);
	assert_int_equal(ctr(na, NETPATH_TO_HOST).delayed, delayed + 1);
	assert_int_equal(netpath_rule_hits(virtio_net_netpath(na), la), 1);
	/* The fault is one-way: B's frames to A are not delayed (counter unchanged). */
	uint64_t b_delayed = ctr(nb, NETPATH_TO_HOST).delayed;
	send_tag(&gb, "lat-b2a");
	expect_rx(&ga, "lat-b2a");
	assert_int_equal(ctr(nb, NETPATH_TO_HOST).delayed, b_delayed);
	assert_int_equal(ctr(na, NETPATH_TO_GUEST).delayed, 0);

	cmd(&ga, "%s\n", "quit");
	cmd(&gb, "%s\n", "quit");
	guest_wait_exit(&ga, GUEST_TIMEOUT_MS);
	guest_wait_exit(&gb, GUEST_TIMEOUT_MS);
	if (getenv("PROVIUM_GUEST_LOG")) {
		guest_print_log(&ga);
		guest_print_log(&gb);
	}
	guest_expect_exit(&ga, 0);
	guest_expect_exit(&gb, 0);
}

static int pair_teardown(void **state)
{
	(void)state;
	struct guest *gs[2] = {&ga, &gb};
	for (int i = 0; i < 2; i++)
		if (gs[i]->vm) {
			vm_stop(gs[i]->vm);
			vm_destroy(gs[i]->vm);
			gs[i]->vm = NULL;
		}
	guest_current = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_two_vms_through_netpath, pair_teardown),
	};
	return cmocka_run_group_tests_name("guest_net_pair", tests, NULL, NULL);
}
