/* test_netpath.c — the per-NIC datapath (devices/netpath.c) on its own: counting,
 * link down, every rule action (drop, delay on a real event loop, duplicate,
 * corrupt), probability with a seed, count limits, match predicates, direction
 * masks, the capture hook and sinks that refuse frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/netpath.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

struct sink {
	atomic_int frames[2];
	atomic_ullong bytes;
	uint8_t last[2048];
	size_t last_len;
	int refuse;            /* return this (negative) */
	atomic_ullong last_ns;
	int captured;
};

static int sink_fn(void *opaque, enum netpath_dir dir, const uint8_t *frame, size_t len)
{
	struct sink *s = opaque;
	if (s->refuse)
		return s->refuse;
	atomic_fetch_add(&s->frames[dir], 1);
	atomic_fetch_add(&s->bytes, len);
	memcpy(s->last, frame, len < sizeof(s->last) ? len : sizeof(s->last));
	s->last_len = len;
	atomic_store(&s->last_ns, pv_now_ns());
	return 0;
}

static void capture_fn(void *opaque, enum netpath_dir dir, uint64_t t, const uint8_t *f, size_t len)
{
	(void)dir; (void)f; (void)len;
	struct sink *s = opaque;
	assert_true(t > 0);
	s->captured++;
}

static struct netpath *mk(struct sink *s, struct evloop *loop, uint64_t seed)
{
	struct netpath *np;
	assert_int_equal(netpath_create("t0", loop, seed, &np), 0);
	netpath_set_sink(np, NETPATH_TO_HOST, sink_fn, s);
	netpath_set_sink(np, NETPATH_TO_GUEST, sink_fn, s);
	return np;
}

static uint8_t frame[64] = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00};

static void counts_both_directions(void **st)
{
	(void)st;
	struct sink s = {0};
	struct netpath *np = mk(&s, NULL, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DELIVERED);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 60), NETPATH_DELIVERED);
	struct netpath_counters c;
	netpath_counters(np, &c);
	assert_int_equal(c.dir[NETPATH_TO_HOST].packets, 3);
	assert_int_equal(c.dir[NETPATH_TO_HOST].bytes, 192);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].packets, 1);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].bytes, 60);
	assert_int_equal(s.frames[NETPATH_TO_HOST], 3);
	assert_int_equal(s.frames[NETPATH_TO_GUEST], 1);
	netpath_reset_counters(np);
	netpath_counters(np, &c);
	assert_int_equal(c.dir[NETPATH_TO_HOST].packets, 0);
	netpath_destroy(np);
}

/* A sink that reads the counters while it takes the frame, as a receiver that acts on
 * it at once (and a test that reads nic:counters() after) would. */
struct peeking_sink {
	struct netpath *np;
	uint64_t seen_packets, seen_bytes;
	int refuse;
};

static int peeking_sink_fn(void *opaque, enum netpath_dir dir, const uint8_t *f, size_t len)
{
	struct peeking_sink *p = opaque;
	struct netpath_counters c;

	(void)f; (void)len;
	netpath_counters(p->np, &c);
	p->seen_packets = c.dir[dir].packets;
	p->seen_bytes = c.dir[dir].bytes;
	return p->refuse;
}

static void counted_before_the_receiver_sees_it(void **st)
{
	(void)st;
	struct peeking_sink p = {0};
	struct netpath_counters c;

	assert_int_equal(netpath_create("t0", NULL, 1, &p.np), 0);
	netpath_set_sink(p.np, NETPATH_TO_GUEST, peeking_sink_fn, &p);
	assert_int_equal(netpath_send(p.np, NETPATH_TO_GUEST, frame, 60), NETPATH_DELIVERED);
	assert_int_equal(p.seen_packets, 1);
	assert_int_equal(p.seen_bytes, 60);
	assert_int_equal(netpath_send(p.np, NETPATH_TO_GUEST, frame, 64), NETPATH_DELIVERED);
	assert_int_equal(p.seen_packets, 2);
	/* a refused frame moves to dropped once the sink has said so */
	p.refuse = -ENOBUFS;
	assert_int_equal(netpath_send(p.np, NETPATH_TO_GUEST, frame, 64), NETPATH_DROPPED);
	netpath_counters(p.np, &c);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].packets, 2);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].bytes, 124);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].dropped, 1);
	netpath_destroy(p.np);
}

static void link_down_drops_both_ways(void **st)
{
	(void)st;
	struct sink s = {0};
	struct netpath *np = mk(&s, NULL, 1);
	assert_true(netpath_link_up(np));
	netpath_set_link(np, false);
	assert_false(netpath_link_up(np));
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DROPPED);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 64), NETPATH_DROPPED);
	assert_int_equal(s.frames[0] + s.frames[1], 0);
	struct netpath_counters c;
	netpath_counters(np, &c);
	assert_int_equal(c.dir[0].dropped, 1);
	assert_int_equal(c.dir[1].dropped, 1);
	netpath_set_link(np, true);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 64), NETPATH_DELIVERED);
	netpath_destroy(np);
}

static void drop_rule_count_and_delete(void **st)
{
	(void)st;
	struct sink s = {0};
	struct netpath *np = mk(&s, NULL, 1);
	int id = netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DROP, .count = 2});
	assert_true(id > 0);
	assert_int_equal(netpath_rule_count(np), 1);
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DROPPED);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 64), NETPATH_DROPPED);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 64), NETPATH_DELIVERED);
	assert_int_equal(netpath_rule_hits(np, id), 2);
	int id2 = netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DROP});
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DROPPED);
	assert_int_equal(netpath_del_rule(np, id2), 0);
	assert_int_equal(netpath_del_rule(np, id2), -ENOENT);
	assert_int_equal(netpath_rule_hits(np, id2), -ENOENT);
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DELIVERED);
	assert_int_equal(netpath_add_rule(np, &(struct netpath_rule){.action = 99}), -EINVAL);
	assert_int_equal(netpath_add_rule(np, &(struct netpath_rule){.probability = 2}), -EINVAL);
	netpath_destroy(np);
}

static bool by_dst(void *o, enum netpath_dir d, const uint8_t *f, size_t len)
{
	(void)o; (void)d;
	return len >= 6 && f[5] == 0x01;
}

static void direction_mask_and_match(void **st)
{
	(void)st;
	struct sink s = {0};
	struct netpath *np = mk(&s, NULL, 1);
	netpath_add_rule(np, &(struct netpath_rule){
		.action = NETPATH_DROP, .dirs = NETPATH_DIR_BIT(NETPATH_TO_GUEST)});
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DELIVERED);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 64), NETPATH_DROPPED);
	netpath_clear_rules(np);
	assert_int_equal(netpath_rule_count(np), 0);
	/* A predicate: only frames whose destination MAC ends in 0x01 are dropped. */
	netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DROP, .match = by_dst});
	uint8_t other[64];
	memcpy(other, frame, 64);
	other[5] = 0x07;
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DROPPED);
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, other, 64), NETPATH_DELIVERED);
	netpath_destroy(np);
}

static int seeded_pattern(uint64_t seed, char *out, int n)
{
	struct sink s = {0};
	struct netpath *np = mk(&s, NULL, seed);
	netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DROP, .probability = 0.5});
	int dropped = 0;
	for (int i = 0; i < n; i++) {
		bool d = netpath_send(np, NETPATH_TO_HOST, frame, 64) == NETPATH_DROPPED;
		out[i] = d ? 'x' : '.';
		dropped += d;
	}
	netpath_destroy(np);
	return dropped;
}

static void probability_is_seeded(void **st)
{
	(void)st;
	char a[400], b[400], c[400];
	int da = seeded_pattern(42, a, 400);
	int db = seeded_pattern(42, b, 400);
	seeded_pattern(43, c, 400);
	assert_int_equal(da, db);
	assert_memory_equal(a, b, 400);
	assert_memory_not_equal(a, c, 400);
	assert_in_range(da, 140, 260); /* p = 0.5 over 400 frames */
}

static void duplicate_and_corrupt(void **st)
{
	(void)st;
	struct sink s = {0};
	struct netpath *np = mk(&s, NULL, 7);
	int id = netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DUPLICATE, .count = 1});
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 64), NETPATH_DELIVERED);
	assert_int_equal(s.frames[NETPATH_TO_GUEST], 2);
	struct netpath_counters c;
	netpath_counters(np, &c);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].packets, 2);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].duplicated, 1);
	netpath_del_rule(np, id);

	uint8_t orig[64];
	memcpy(orig, frame, 64);
	netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_CORRUPT});
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DELIVERED);
	assert_memory_equal(frame, orig, 64); /* the caller's buffer is untouched */
	int diff = 0;
	for (int i = 0; i < 64; i++)
		diff += s.last[i] != orig[i];
	assert_int_equal(diff, 1);
	netpath_counters(np, &c);
	assert_int_equal(c.dir[NETPATH_TO_HOST].corrupted, 1);
	netpath_destroy(np);
}

static void *loop_thread(void *arg)
{
	evloop_run(arg);
	return NULL;
}

static void delay_uses_the_event_loop(void **st)
{
	(void)st;
	struct sink s = {0};
	struct netpath *np = mk(&s, NULL, 1);
	assert_int_equal(netpath_add_rule(np, &(struct netpath_rule){
		.action = NETPATH_DELAY, .delay_ns = 1000000}), -ENOTSUP);
	netpath_destroy(np);

	struct evloop *loop;
	assert_int_equal(evloop_create(&loop), 0);
	pthread_t thr;
	assert_int_equal(pthread_create(&thr, NULL, loop_thread, loop), 0);
	np = mk(&s, loop, 1);
	netpath_set_capture(np, capture_fn, &s);
	netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DELAY,
		.delay_ns = 200000000, .dirs = NETPATH_DIR_BIT(NETPATH_TO_GUEST)});
	uint64_t t0 = pv_now_ns();
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 64), NETPATH_QUEUED);
	/* The other direction is not delayed, and the caller was not blocked. */
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_DELIVERED);
	assert_true(pv_now_ns() - t0 < 200000000); /* generous: shared 2-core machines */
	assert_int_equal(s.captured, 2);
	assert_int_equal(netpath_pending(np), 1);
	for (int i = 0; i < 500 && atomic_load(&s.frames[NETPATH_TO_GUEST]) == 0; i++)
		usleep(10000);
	assert_int_equal(s.frames[NETPATH_TO_GUEST], 1);
	assert_true(atomic_load(&s.last_ns) - t0 >= 200000000);
	assert_int_equal(netpath_pending(np), 0);
	struct netpath_counters c;
	netpath_counters(np, &c);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].delayed, 1);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].packets, 1);
	/* A frame still waiting when the path is destroyed is freed, never sent. */
	netpath_set_link(np, true);
	netpath_clear_rules(np);
	netpath_add_rule(np, &(struct netpath_rule){.action = NETPATH_DELAY, .delay_ns = 5000000000ull});
	assert_int_equal(netpath_send(np, NETPATH_TO_HOST, frame, 64), NETPATH_QUEUED);
	evloop_stop(loop);
	pthread_join(thr, NULL);
	netpath_destroy(np);
	evloop_destroy(loop);
}

static void refusing_sink_counts_dropped(void **st)
{
	(void)st;
	struct sink s = {.refuse = -ENOBUFS};
	struct netpath *np = mk(&s, NULL, 1);
	netpath_set_capture(np, capture_fn, &s);
	assert_int_equal(netpath_send(np, NETPATH_TO_GUEST, frame, 64), NETPATH_DROPPED);
	struct netpath_counters c;
	netpath_counters(np, &c);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].dropped, 1);
	assert_int_equal(c.dir[NETPATH_TO_GUEST].packets, 0);
	netpath_set_link(np, false);
	netpath_send(np, NETPATH_TO_GUEST, frame, 64);
	assert_int_equal(s.captured, 1); /* link-down drops are not captured */
	netpath_destroy(np);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counts_both_directions),
		cmocka_unit_test(link_down_drops_both_ways),
		cmocka_unit_test(drop_rule_count_and_delete),
		cmocka_unit_test(direction_mask_and_match),
		cmocka_unit_test(probability_is_seeded),
		cmocka_unit_test(duplicate_and_corrupt),
		cmocka_unit_test(delay_uses_the_event_loop),
		cmocka_unit_test(refusing_sink_counts_dropped),
		cmocka_unit_test(counted_before_the_receiver_sees_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
