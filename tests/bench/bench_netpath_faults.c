/* bench_netpath_faults.c — cost of the networking faults (devices/netpath_rules.c)
 * per frame through netpath_send: no rules, a partition rule that does not match,
 * a full set of rate faults, and delayed frames through the event loop's timer
 * queue (frames/s and how late they arrive). */
#include "devices/netpath.h"
#include "devices/netpath_rules.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_ullong got, late_sum;

static int sink(void *o, enum netpath_dir d, const uint8_t *f, size_t n)
{
	(void)o; (void)d; (void)f; (void)n;
	atomic_fetch_add(&got, 1);
	return 0;
}

static int late_sink(void *o, enum netpath_dir d, const uint8_t *f, size_t n)
{
	(void)o; (void)d; (void)n;
	uint64_t t;
	memcpy(&t, f + 20, 8);
	atomic_fetch_add(&late_sum, pv_now_ns() - t);
	atomic_fetch_add(&got, 1);
	return 0;
}

static const uint8_t B[1][6] = {{2, 0, 0, 0, 0, 0xb}}, LOC[2][6] = {{2, 0, 0, 0, 0, 0xa}, {2, 0, 0, 0, 0, 0xb}};

static void run(const char *what, int nfaults)
{
	struct netpath *np;
	netpath_create("a@b", NULL, 1, &np);
	netpath_set_sink(np, NETPATH_TO_HOST, sink, NULL);
	if (nfaults >= 1) {
		const uint8_t other[1][6] = {{2, 0, 0, 0, 0, 0xc}};
		struct netpath_fault f = {.action = NETPATH_DROP, .rate = 1, .peers = other, .npeers = 1,
					  .locals = LOC, .nlocals = 2};
		netpath_fault_add(np, &f);
	}
	enum netpath_action acts[] = {NETPATH_DROP, NETPATH_DUPLICATE, NETPATH_CORRUPT};
	for (int i = 0; nfaults >= 4 && i < 3; i++) {
		struct netpath_fault f = {.action = acts[i], .rate = 0.01, .locals = LOC, .nlocals = 2, .seed = (uint64_t)i};
		netpath_fault_add(np, &f);
	}
	uint8_t fr[1514] = {0};
	memcpy(fr, B[0], 6);
	memcpy(fr + 6, LOC[0], 6);
	const int n = 2000000;
	uint64_t t0 = pv_now_ns();
	for (int i = 0; i < n; i++)
		netpath_send(np, NETPATH_TO_HOST, fr, 1514);
	uint64_t dt = pv_now_ns() - t0;
	printf("%-34s %8.1f ns/frame %8.2f Mframes/s\n", what, (double)dt / n, n / (dt / 1e3));
	netpath_destroy(np);
}

static void *loop_main(void *l)
{
	evloop_run(l);
	return NULL;
}

/* Sends n delayed frames keeping at most `window` in flight (the delay queue holds
 * NETPATH_MAX_DELAYED_FRAMES per direction and drops the rest as overflowed); a frame
 * lost anyway ends the wait at a deadline rather than spinning forever. */
static int delayed(struct netpath *np, const char *what, unsigned long long n,
		   unsigned long long window)
{
	uint8_t fr[98] = {0};
	memcpy(fr, B[0], 6);
	netpath_reset_counters(np);
	atomic_store(&got, 0);
	atomic_store(&late_sum, 0);
	uint64_t t0 = pv_now_ns(), deadline = t0 + 60ull * 1000000000ull;
	for (unsigned long long i = 0; i < n; i++) {
		while (i - atomic_load(&got) >= window && pv_now_ns() < deadline)
			;
		uint64_t now = pv_now_ns();
		memcpy(fr + 20, &now, 8);
		netpath_send(np, NETPATH_TO_HOST, fr, sizeof(fr));
	}
	while (atomic_load(&got) < n && pv_now_ns() < deadline)
		;
	uint64_t dt = pv_now_ns() - t0;
	if (atomic_load(&got) != n) {
		struct netpath_counters c;
		netpath_counters(np, &c);
		fprintf(stderr, "bench_netpath_faults: %s: %llu of %llu delayed frames arrived (%llu overflowed)\n",
			what, atomic_load(&got), n, (unsigned long long)c.dir[NETPATH_TO_HOST].overflowed);
		return 1;
	}
	printf("%-34s %8.3f Mframes/s, mean arrival %.3f ms after send\n", what, n / (dt / 1e3),
	       (double)atomic_load(&late_sum) / n / 1e6);
	return 0;
}

int main(void)
{
	run("no rules", 0);
	run("partition rule (not matching)", 1);
	run("partition + drop/dup/corrupt 1%", 4);

	struct evloop *l;
	pthread_t t;
	evloop_create(&l);
	pthread_create(&t, NULL, loop_main, l);
	struct netpath *np;
	netpath_create("a@b", l, 1, &np);
	netpath_set_sink(np, NETPATH_TO_HOST, late_sink, NULL);
	struct netpath_fault f = {.action = NETPATH_DELAY, .delay_ns = 1000000, .locals = LOC, .nlocals = 2};
	netpath_fault_add(np, &f);
	/* one frame at a time: how late the timer queue delivers; half the queue's cap
	 * in flight: its throughput, and the wait behind the frames due before */
	int status = delayed(np, "delay 1 ms, 1 in flight", 2000, 1);
	status |= delayed(np, "delay 1 ms, 512 in flight", 100000, NETPATH_MAX_DELAYED_FRAMES / 2);
	evloop_stop(l);
	pthread_join(t, NULL);
	netpath_destroy(np);
	evloop_destroy(l);
	return status;
}
