/* bench_netpath.c — frames per second, no guest: (1) netpath alone, no rules, into
 * a sink that only counts (the cost of the per-frame hook); (2) virtio-net TX: a
 * host-side fake driver (tests/unit/virtio_fake_driver.h) queues 1514-byte frames
 * in batches, the device sends them through netpath to a SOCK_SEQPACKET backend
 * (the same "vnet header + frame" messages a TAP takes) drained by a thread;
 * (3) the plain path without device or netpath: the same messages written to the
 * same kind of socket. Prints frames/s and ratios to the plain path.
 * Usage: bench_netpath [BUILD_DIR]   (tests/bench/run.sh passes it) */
#include "devices/netpath.h"
#include "devices/virtio_net.h"
#include "tests/unit/virtio_fake_driver.h"
#include "vmm/util.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME 1514
#define NFRAMES 400000
#define BATCH 32

static int sink_count(void *opaque, enum netpath_dir dir, const uint8_t *f, size_t len)
{
	(void)dir; (void)f;
	*(uint64_t *)opaque += len;
	return 0;
}

struct drain {
	int fd;
	uint64_t frames;
	volatile bool stop;
};

static void *drainer(void *arg)
{
	struct drain *d = arg;
	static uint8_t buf[65536];
	while (d->frames < NFRAMES) {
		ssize_t r = recv(d->fd, buf, sizeof(buf), 0);
		if (r <= 0)
			break;
		d->frames++;
	}
	return NULL;
}

static double netpath_only(void)
{
	struct netpath *np;
	uint64_t bytes = 0;
	if (netpath_create("bench", NULL, 1, &np) < 0)
		return 0;
	netpath_set_sink(np, NETPATH_TO_HOST, sink_count, &bytes);
	static uint8_t frame[FRAME];
	uint64_t t0 = pv_now_ns();
	for (int i = 0; i < NFRAMES * 5; i++)
		netpath_send(np, NETPATH_TO_HOST, frame, FRAME);
	double s = (double)(pv_now_ns() - t0) / 1e9;
	netpath_destroy(np);
	return NFRAMES * 5 / s;
}

static double plain(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		return 0;
	struct drain d = {sv[1], 0, false};
	pthread_t t;
	static uint8_t msg[12 + FRAME];
	uint64_t t0 = pv_now_ns();
	pthread_create(&t, NULL, drainer, &d);
	for (int i = 0; i < NFRAMES; i++)
		if (send(sv[0], msg, sizeof(msg), 0) < 0)
			break;
	pthread_join(t, NULL);
	double s = (double)(pv_now_ns() - t0) / 1e9;
	close(sv[0]);
	close(sv[1]);
	return (double)d.frames / s;
}

static double device_tx(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	struct virtio_net *n;
	struct virtio_net_opts o = {.fd = sv[0], .mac = {2, 0, 0, 0, 0, 1}};
	if (virtio_net_create("net0", &o, &n) < 0)
		return 0;
	struct fake_drv f;
	if (fake_init(&f, virtio_net_vdev(n), 8u << 20) < 0 || !fake_negotiate(&f, ~0ull))
		return 0;
	fake_setup_queue(&f, 0, 256);
	fake_setup_queue(&f, 1, 256);
	fake_driver_ok(&f);
	uint64_t bufs[BATCH];
	for (int i = 0; i < BATCH; i++)
		bufs[i] = fake_alloc(&f, 12 + FRAME, 64);
	struct drain d = {sv[1], 0, false};
	pthread_t t;
	uint64_t t0 = pv_now_ns();
	pthread_create(&t, NULL, drainer, &d);
	for (int done = 0; done < NFRAMES; done += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			struct fake_buf b = {bufs[i], 12 + FRAME, false};
			fake_submit(&f, 1, &b, 1, false);
		}
		fake_kick(&f, 1);
		while (fake_get_used(&f, 1, NULL, NULL))
			;
	}
	pthread_join(t, NULL);
	double s = (double)(pv_now_ns() - t0) / 1e9;
	struct virtio_net_counters c;
	virtio_net_counters(n, &c);
	if (c.tx_packets < NFRAMES)
		fprintf(stderr, "bench_netpath: only %llu frames sent (%llu dropped)\n",
			(unsigned long long)c.tx_packets, (unsigned long long)c.tx_dropped);
	virtio_net_destroy(n);
	close(sv[1]);
	fake_fini(&f);
	return (double)d.frames / s;
}

int main(int argc, char **argv)
{
	(void)argc; (void)argv;
	/* Best of three: the dev machines are shared, single runs are noisy. */
	double p = 0, np = 0, dev = 0;
	for (int i = 0; i < 3; i++) {
		p = PV_MAX(p, plain());
		np = PV_MAX(np, netpath_only());
		dev = PV_MAX(dev, device_tx());
	}
	printf("%-44s %12s %8s\n", "case (1514-byte frames, best of 3)", "frames/s", "ratio");
	printf("%-44s %12.0f %8s\n", "plain write to a seqpacket socket", p, "1.00");
	printf("%-44s %12.0f %8.2f\n", "netpath hook alone (no rules, counting sink)", np, np / p);
	printf("%-44s %12.0f %8.2f\n", "virtio-net TX -> netpath -> socket", dev, dev / p);
	return 0;
}
