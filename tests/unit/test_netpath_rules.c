/* test_netpath_rules.c — faults as netpath rules (devices/netpath_rules.c): which
 * frames a peer-limited fault meets in each direction (unicast on the sender's
 * egress, broadcast on the receiver's ingress, gateway frames on ingress), isolate,
 * seeded drop rates that repeat for the same seed and differ for another, separate
 * PRNG streams per direction, rules changed from another thread while frames flow,
 * and MAC parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/netpath.h"
#include "devices/netpath_rules.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static atomic_int delivered;

static int sink(void *o, enum netpath_dir d, const uint8_t *f, size_t n)
{
	(void)o; (void)d; (void)f; (void)n;
	atomic_fetch_add(&delivered, 1);
	return 0;
}

static const uint8_t A[6] = {2, 0, 0, 0, 0, 0xa}, B[6] = {2, 0, 0, 0, 0, 0xb},
		     C[6] = {2, 0, 0, 0, 0, 0xc}, GW[6] = {2, 0, 0, 0, 0, 0x1},
		     BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void frame(uint8_t *f, const uint8_t *dst, const uint8_t *src)
{
	memset(f, 0, 64);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 8;
}

static struct netpath *mk(void)
{
	struct netpath *np;
	assert_int_equal(netpath_create("a@net", NULL, 1, &np), 0);
	netpath_set_sink(np, NETPATH_TO_HOST, sink, NULL);
	netpath_set_sink(np, NETPATH_TO_GUEST, sink, NULL);
	return np;
}

/* A's NIC with a drop fault toward B only. */
static void peer_fault_meets_each_frame_once(void **state)
{
	(void)state;
	struct netpath *np = mk();
	const uint8_t peers[1][6] = {{2, 0, 0, 0, 0, 0xb}};
	const uint8_t locals[3][6] = {{2, 0, 0, 0, 0, 0xa}, {2, 0, 0, 0, 0, 0xb}, {2, 0, 0, 0, 0, 0xc}};
	struct netpath_fault f = {.action = NETPATH_DROP, .rate = 1, .peers = peers, .npeers = 1,
				  .locals = locals, .nlocals = 3};
	assert_true(netpath_fault_add(np, &f) > 0);
	uint8_t fr[64];
	frame(fr, B, A); /* A -> B unicast: dropped on A's egress */
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, fr, 64), NETPATH_DROPPED);
	frame(fr, C, A); /* A -> C: passes */
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, fr, 64), NETPATH_DELIVERED);
	frame(fr, A, B); /* B -> A unicast arriving: B's own egress rule handles it */
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, fr, 64), NETPATH_DELIVERED);
	frame(fr, BCAST, B); /* B's broadcast (ARP) arriving at A: dropped on ingress */
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, fr, 64), NETPATH_DROPPED);
	frame(fr, BCAST, C);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, fr, 64), NETPATH_DELIVERED);
	frame(fr, BCAST, A); /* A's own broadcast leaving: receivers decide */
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, fr, 64), NETPATH_DELIVERED);
	netpath_destroy(np);
}

/* A bridge-wide fault (no peers) also meets unicast frames from the gateway. */
static void bridge_wide_fault_and_gateway(void **state)
{
	(void)state;
	struct netpath *np = mk();
	const uint8_t locals[2][6] = {{2, 0, 0, 0, 0, 0xa}, {2, 0, 0, 0, 0, 0xb}};
	struct netpath_fault f = {.action = NETPATH_DROP, .rate = 1, .locals = locals, .nlocals = 2};
	assert_true(netpath_fault_add(np, &f) > 0);
	uint8_t fr[64];
	frame(fr, A, GW);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, fr, 64), NETPATH_DROPPED);
	frame(fr, A, B);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, fr, 64), NETPATH_DELIVERED);
	frame(fr, GW, A);
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, fr, 64), NETPATH_DROPPED);
	netpath_destroy(np);
}

static void isolate_drops_everything(void **state)
{
	(void)state;
	struct netpath *np = mk();
	struct netpath_fault f = {.action = NETPATH_DROP, .rate = 1, .everything = true};
	int id = netpath_fault_add(np, &f);
	assert_true(id > 0);
	uint8_t fr[64];
	frame(fr, BCAST, A);
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, fr, 64), NETPATH_DROPPED);
	frame(fr, A, GW);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, fr, 10), NETPATH_DROPPED);
	assert_int_equal(netpath_del_rule(np, id), 0);
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, fr, 64), NETPATH_DELIVERED);
	netpath_destroy(np);
}

/* How many of n unicast frames A -> B a drop fault at `rate` with `seed` drops;
 * noise: broadcast frames arriving in between (another PRNG stream). */
static int drops(double rate, uint64_t seed, int n, bool noise)
{
	struct netpath *np = mk();
	struct netpath_fault f = {.action = NETPATH_DROP, .rate = rate,
				  .seed = netpath_fault_seed(42, "a@net", seed)};
	assert_true(netpath_fault_add(np, &f) > 0);
	uint8_t fr[64], bc[64];
	frame(fr, B, A);
	frame(bc, BCAST, C);
	int dropped = 0;
	for (int i = 0; i < n; i++) {
		if (noise && i % 7 == 0)
			netpath_send(np, NETPATH_TO_GUEST, bc, 64);
		dropped += netpath_send(np, NETPATH_TO_HOST, fr, 64) == NETPATH_DROPPED;
	}
	netpath_destroy(np);
	return dropped;
}

static void drop_rate_is_seeded(void **state)
{
	(void)state;
	int d1 = drops(0.3, 7, 10000, false);
	assert_in_range(d1, 2850, 3150); /* mean 3000, sd 46 */
	assert_int_equal(drops(0.3, 7, 10000, false), d1);
	assert_int_equal(drops(0.3, 7, 10000, true), d1); /* ingress noise does not shift it */
	assert_int_not_equal(drops(0.3, 8, 10000, false), d1);
	assert_int_equal(drops(1.0, 1, 100, false), 100);
	assert_int_not_equal(netpath_fault_seed(1, "a@net", 0), netpath_fault_seed(1, "b@net", 0));
}

static void bad_faults_are_refused(void **state)
{
	(void)state;
	struct netpath *np = mk();
	struct netpath_fault f = {.action = NETPATH_DROP, .rate = 0};
	assert_int_equal(netpath_fault_add(np, &f), -EINVAL);
	f.rate = 1.5;
	assert_int_equal(netpath_fault_add(np, &f), -EINVAL);
	f = (struct netpath_fault){.action = NETPATH_DELAY, .delay_ns = 1000};
	assert_int_equal(netpath_fault_add(np, &f), -ENOTSUP); /* no event loop */
	assert_int_equal(netpath_rule_count(np), 0);
	netpath_destroy(np);
}

static atomic_bool stop;

static void *churn(void *arg)
{
	struct netpath *np = arg;
	const uint8_t peers[1][6] = {{2, 0, 0, 0, 0, 0xb}};
	while (!atomic_load(&stop)) {
		struct netpath_fault f = {.action = NETPATH_DROP, .rate = 0.5, .peers = peers, .npeers = 1};
		int id = netpath_fault_add(np, &f);
		assert_true(id > 0);
		assert_int_equal(netpath_del_rule(np, id), 0);
	}
	return NULL;
}

/* Faults change while frames flow (the API's "changeable while traffic flows"). */
static void rules_change_under_traffic(void **state)
{
	(void)state;
	struct netpath *np = mk();
	pthread_t t;
	atomic_store(&stop, false);
	assert_int_equal(pthread_create(&t, NULL, churn, np), 0);
	uint8_t fr[64];
	frame(fr, B, A);
	int passed = 0;
	for (int i = 0; i < 200000; i++)
		passed += netpath_send(np, NETPATH_TO_HOST, fr, 64) == NETPATH_DELIVERED;
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	assert_true(passed > 0 && passed <= 200000);
	struct netpath_counters c;
	netpath_counters(np, &c);
	assert_int_equal(c.dir[NETPATH_TO_HOST].packets + c.dir[NETPATH_TO_HOST].dropped, 200000);
	netpath_destroy(np);
}

static void mac_parsing(void **state)
{
	(void)state;
	uint8_t m[6];
	assert_int_equal(netpath_parse_mac("02:70:76:0a:ff:01", m), 0);
	assert_memory_equal(m, ((uint8_t[]){2, 0x70, 0x76, 0xa, 0xff, 1}), 6);
	assert_int_equal(netpath_parse_mac("02:70:76:0a:ff", m), -EINVAL);
	assert_int_equal(netpath_parse_mac("02:70:76:0a:ff:01:02", m), -EINVAL);
	assert_int_equal(netpath_parse_mac("02:70:76:0a:ff:100", m), -EINVAL);
	assert_int_equal(netpath_parse_mac(NULL, m), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(peer_fault_meets_each_frame_once),
		cmocka_unit_test(bridge_wide_fault_and_gateway),
		cmocka_unit_test(isolate_drops_everything),
		cmocka_unit_test(drop_rate_is_seeded),
		cmocka_unit_test(bad_faults_are_refused),
		cmocka_unit_test(rules_change_under_traffic),
		cmocka_unit_test(mac_parsing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
