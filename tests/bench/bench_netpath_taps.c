/* bench_netpath_taps.c — what netpath costs on the real bridge path (issue 7): in a
 * private network namespace (unshare; it dies with this process, nothing on the
 * host is touched), a Linux bridge with TAP ports. Frames of one size are written
 * and read back from the bridge's output TAP, three ways:
 *   direct   write into TAP a (a bridge port) -> bridge -> read from TAP out
 *   netpath  netpath_send (no rules) -> sink writes TAP h (a bridge port) -> bridge
 *            -> read from TAP out (the relay's hop without the guest side)
 *   relay    what a kvm NIC does: a "vnet header + frame" message on a
 *            SOCK_SEQPACKET socketpair (as virtio-net delivers it) -> relay thread
 *            strips the header, netpath_send -> TAP h -> bridge -> read from out
 * Reports frames/s (a window of 256 frames in flight, so the TAP queues never
 * overflow) and the per-frame latency (one frame in flight: write to read,
 * median and p99) with the difference to the direct path; best of three
 * interleaved rounds. BENCH_FRAMES=n changes the frames per run (100000).
 * Usage: bench_netpath_taps [BUILD_DIR]   (tests/bench/run.sh runs it) */
#include "devices/netpath.h"
#include "runner/bridge.h"
#include "vmm/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define WINDOW 256
#define NLAT 2000

enum mode { DIRECT, NETPATH, RELAY };
static const char *const mode_name[] = {"direct TAP->bridge->TAP", "netpath (no faults)",
					"relay (kvm NIC: socket->netpath)"};

struct path {
	int in_tap;      /* direct: the TAP written into */
	int h_tap;       /* netpath/relay: the TAP the sink writes into */
	int out_tap;     /* read side */
	int sp[2];       /* relay: [0] the device's end (written), [1] the relay's */
	struct netpath *np;
	pthread_t relay;
	atomic_bool stop;
};

static int sink(void *opaque, enum netpath_dir dir, const uint8_t *f, size_t len)
{
	(void)dir;
	struct path *p = opaque;
	return write(p->h_tap, f, len) == (ssize_t)len ? 0 : -EIO;
}

static void *relay_main(void *arg)
{
	struct path *p = arg;
	uint8_t buf[65536];
	struct pollfd pf = {.fd = p->sp[1], .events = POLLIN};
	while (!atomic_load(&p->stop)) {
		if (poll(&pf, 1, 100) <= 0)
			continue;
		for (;;) {
			ssize_t n = recv(p->sp[1], buf, sizeof(buf), MSG_DONTWAIT);
			if (n <= 12)
				break;
			netpath_send(p->np, NETPATH_TO_HOST, buf + 12, (size_t)n - 12);
		}
	}
	return NULL;
}

static void put(struct path *p, enum mode m, const uint8_t *f, size_t len)
{
	if (m == DIRECT) {
		if (write(p->in_tap, f, len) < 0)
			perror("write tap");
	} else if (m == NETPATH) {
		netpath_send(p->np, NETPATH_TO_HOST, f, len);
	} else {
		static const uint8_t hdr[12];
		struct iovec iov[2] = {{(void *)hdr, 12}, {(void *)f, len}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		while (sendmsg(p->sp[0], &mh, 0) < 0 && errno == EINTR)
			;
	}
}

/* Reads what is there; returns the number of test frames (ethertype 0x88b5). */
static int drain(int fd, int wait_ms)
{
	uint8_t buf[65536];
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	int got = 0;
	if (poll(&pf, 1, wait_ms) <= 0)
		return 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (n >= 14 && buf[12] == 0x88 && buf[13] == 0xb5)
			got++;
	}
	return got;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct result {
	double fps;
	uint64_t lat_med, lat_p99;
	int lost;
};

static void run(struct path *p, enum mode m, size_t len, int nframes, struct result *r)
{
	uint8_t f[2048] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
			   0x88, 0xb5};
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)i;
	while (drain(p->out_tap, 10) > 0)
		;
	/* throughput: at most WINDOW frames in flight */
	uint64_t t0 = pv_now_ns();
	int sent = 0, recvd = 0, lost = 0;
	while (recvd + lost < nframes) {
		while (sent < nframes && sent - recvd - lost < WINDOW)
			put(p, m, f, len), sent++;
		int g = drain(p->out_tap, 100);
		recvd += g;
		if (!g) /* nothing for 100 ms: what is in flight is lost */
			lost = sent - recvd;
	}
	uint64_t t1 = pv_now_ns();
	r->fps = recvd / ((double)(t1 - t0) / 1e9);
	r->lost = lost;
	/* latency: one frame at a time */
	static uint64_t lat[NLAT];
	int n = 0;
	for (int i = 0; i < NLAT; i++) {
		uint64_t a = pv_now_ns();
		put(p, m, f, len);
		if (drain(p->out_tap, 1000) <= 0)
			continue;
		lat[n++] = pv_now_ns() - a;
	}
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_u64);
	r->lat_med = n ? lat[n / 2] : 0;
	r->lat_p99 = n ? lat[n * 99 / 100] : 0;
}

static int setup(struct path *p)
{
	char name[16];
	int fd;
	nb_sysctl(-1, "net/ipv6/conf/default/disable_ipv6", "1");
	nb_sysctl(-1, "net/ipv6/conf/all/disable_ipv6", "1");
	if (nb_bridge_add(-1, "bbr0") < 0 || nb_link_set(-1, "bbr0", NULL, true, NULL) < 0)
		return -1;
	if ((fd = nb_tap_open(-1, "bta%d", name)) < 0 || nb_link_set(-1, name, "bbr0", true, NULL) < 0)
		return -1;
	p->in_tap = fd;
	if ((fd = nb_tap_open(-1, "bth%d", name)) < 0 || nb_link_set(-1, name, "bbr0", true, NULL) < 0)
		return -1;
	p->h_tap = fd;
	if ((fd = nb_tap_open(-1, "bto%d", name)) < 0 || nb_link_set(-1, name, "bbr0", true, NULL) < 0)
		return -1;
	p->out_tap = fd;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->sp) < 0)
		return pv_error(errno, "socketpair: %s", strerror(errno));
	int big = 4 << 20;
	setsockopt(p->sp[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(p->sp[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	int e = netpath_create("bench", NULL, 1, &p->np);
	if (e < 0)
		return e;
	netpath_set_sink(p->np, NETPATH_TO_HOST, sink, p);
	return pthread_create(&p->relay, NULL, relay_main, p) ? -1 : 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (unshare(CLONE_NEWNET) < 0) {
		printf("skipped: unshare(CLONE_NEWNET): %s (needs root)\n", strerror(errno));
		return 0;
	}
	struct path p = {.in_tap = -1, .h_tap = -1, .out_tap = -1, .sp = {-1, -1}};
	if (setup(&p) < 0) {
		printf("skipped: cannot build the bridge in a private namespace: %s\n", pv_errmsg());
		return 0;
	}
	static const size_t sizes[] = {64, 1514};
	int nframes = getenv("BENCH_FRAMES") ? atoi(getenv("BENCH_FRAMES")) : 100000;
	printf("%d frames per run, %d in flight; latency over %d single frames "
	       "(a private namespace, bridge with 3 TAP ports)\n", nframes, WINDOW, NLAT);
	printf("%-34s %6s %12s %8s %10s %10s %12s\n", "path", "bytes", "frames/s", "vs dir",
	       "lat med", "lat p99", "added (med)");
	for (size_t s = 0; s < PV_ARRAY_SIZE(sizes); s++) {
		struct result r[3];
		/* three rounds, interleaved; the best of each (the machine is shared) */
		memset(r, 0, sizeof(r));
		for (int round = 0; round < 3; round++) {
			for (int m = DIRECT; m <= RELAY; m++) {
				struct result x;
				run(&p, (enum mode)m, sizes[s], nframes, &x);
				if (round == 0 || x.fps > r[m].fps)
					r[m].fps = x.fps;
				if (round == 0 || x.lat_med < r[m].lat_med)
					r[m].lat_med = x.lat_med, r[m].lat_p99 = x.lat_p99;
				r[m].lost += x.lost;
			}
		}
		for (int m = DIRECT; m <= RELAY; m++) {
			printf("%-34s %6zu %12.0f %7.2fx %8.2fus %8.2fus %10.2fus%s%.0d\n", mode_name[m],
			       sizes[s], r[m].fps, r[m].fps / r[DIRECT].fps, r[m].lat_med / 1e3,
			       r[m].lat_p99 / 1e3, ((double)r[m].lat_med - (double)r[DIRECT].lat_med) / 1e3,
			       r[m].lost ? " lost " : "", r[m].lost);
		}
	}
	struct netpath_counters c;
	netpath_counters(p.np, &c);
	printf("netpath delivered %llu frames, dropped %llu\n",
	       (unsigned long long)c.dir[NETPATH_TO_HOST].packets,
	       (unsigned long long)c.dir[NETPATH_TO_HOST].dropped);
	atomic_store(&p.stop, true);
	pthread_join(p.relay, NULL);
	netpath_destroy(p.np);
	return 0;
}
