/* bench_vsock.c — userspace virtio-vsock throughput, no guest: the host-side fake
 * guest driver (tests/unit/vsock_fake_guest.h) exchanges packets with the device
 * through real split rings in a buffer standing for guest RAM, credit included,
 * while a host thread writes to or reads from the stream's host fd. Compared with
 * the same bytes through a plain AF_UNIX socketpair (what the host does without
 * the device); prints MB/s and device/plain ratios.
 * Usage: bench_vsock [BUILD_DIR]   (tests/bench/run.sh passes it) */
#include "tests/unit/vsock_fake_guest.h"
#include "vmm/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOTAL (256ull << 20)
#define CHUNK 65536
#define GUEST_BUF_ALLOC (1u << 20)

struct io {
	int fd;
	uint64_t bytes;
};

static void *writer(void *arg)
{
	struct io *io = arg;
	static uint8_t buf[CHUNK];
	memset(buf, 0x5a, sizeof(buf));
	for (uint64_t off = 0; off < io->bytes; off += CHUNK)
		if (pv_write_full(io->fd, buf, CHUNK) < 0)
			break;
	return NULL;
}

static void *reader(void *arg)
{
	struct io *io = arg;
	static uint8_t buf[CHUNK];
	uint64_t got = 0;
	while (got < io->bytes) {
		ssize_t r = read(io->fd, buf, sizeof(buf));
		if (r <= 0)
			break;
		got += (uint64_t)r;
	}
	io->bytes = got;
	return NULL;
}

static double plain(bool unused)
{
	(void)unused;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	struct io w = {sv[0], TOTAL}, r = {sv[1], TOTAL};
	pthread_t tw, tr;
	uint64_t t0 = pv_now_ns();
	pthread_create(&tw, NULL, writer, &w);
	pthread_create(&tr, NULL, reader, &r);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	double s = (double)(pv_now_ns() - t0) / 1e9;
	close(sv[0]);
	close(sv[1]);
	return (double)r.bytes / s / 1e6;
}

/* host -> guest: a writer thread fills the stream, the fake guest consumes. */
static double to_guest(struct fguest *g)
{
	uint32_t hp;
	int fd = virtio_vsock_connect(g->s, 1000, &hp);
	struct virtio_vsock_hdr h;
	while (!fg_recv(g, &h, NULL, 0, true))
		fg_pump(g);
	struct virtio_vsock_hdr resp = fg_hdr(1000, hp, VIRTIO_VSOCK_OP_RESPONSE, 0, GUEST_BUF_ALLOC, 0);
	fg_send(g, &resp, NULL);
	struct io w = {fd, TOTAL};
	pthread_t tw;
	uint64_t t0 = pv_now_ns(), got = 0, acked = 0;
	pthread_create(&tw, NULL, writer, &w);
	while (got < TOTAL) {
		evloop_run_once(g->loop, 1);
		while (fg_recv(g, &h, NULL, 0, true))
			if (h.op == VIRTIO_VSOCK_OP_RW)
				got += h.len;
		if (got - acked >= GUEST_BUF_ALLOC / 4) {
			acked = got;
			struct virtio_vsock_hdr cu = fg_hdr(1000, hp, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0,
							    GUEST_BUF_ALLOC, (uint32_t)acked);
			fg_send(g, &cu, NULL);
		}
	}
	double s = (double)(pv_now_ns() - t0) / 1e9;
	pthread_join(tw, NULL);
	close(fd);
	return (double)got / s / 1e6;
}

/* guest -> host: the fake guest sends 64 KiB packets within the device's credit. */
static double to_host(struct fguest *g)
{
	uint32_t hp;
	int fd = virtio_vsock_connect(g->s, 1001, &hp);
	struct virtio_vsock_hdr h;
	while (!fg_recv(g, &h, NULL, 0, true))
		fg_pump(g);
	struct virtio_vsock_hdr resp = fg_hdr(1001, hp, VIRTIO_VSOCK_OP_RESPONSE, 0, GUEST_BUF_ALLOC, 0);
	fg_send(g, &resp, NULL);
	struct io r = {fd, TOTAL};
	pthread_t tr;
	static uint8_t payload[65536];
	uint64_t t0 = pv_now_ns(), sent = 0;
	uint32_t peer_fwd = 0, peer_alloc = VSOCK_BUF_ALLOC;
	pthread_create(&tr, NULL, reader, &r);
	while (sent < TOTAL) {
		while (fg_recv(g, &h, NULL, 0, true)) {
			if (h.src_port != hp || h.dst_port != 1001)
				continue;
			if (h.op == VIRTIO_VSOCK_OP_RST) {
				fprintf(stderr, "bench_vsock: the device reset the stream\n");
				exit(1);
			}
			peer_fwd = h.fwd_cnt;
			peer_alloc = h.buf_alloc;
		}
		uint32_t credit = peer_alloc - ((uint32_t)sent - peer_fwd);
		if (credit >= sizeof(payload)) {
			struct virtio_vsock_hdr w = fg_hdr(1001, hp, VIRTIO_VSOCK_OP_RW, sizeof(payload),
							   GUEST_BUF_ALLOC, 0);
			fg_send(g, &w, payload);
			sent += sizeof(payload);
		} else {
			evloop_run_once(g->loop, 1);
		}
	}
	/* Let the device flush what is left in its ring until the reader has it all. */
	while (pthread_tryjoin_np(tr, NULL) != 0)
		evloop_run_once(g->loop, 1);
	double s = (double)(pv_now_ns() - t0) / 1e9;
	close(fd);
	return (double)r.bytes / s / 1e6;
}

int main(int argc, char **argv)
{
	(void)argc; (void)argv;
	struct fguest g;
	if (fg_init(&g) < 0) {
		fprintf(stderr, "bench_vsock: setup failed: %s\n", pv_errmsg());
		return 1;
	}
	fg_post_rx(&g, FG_QN, FG_RXBUF); /* once: fg_recv re-posts each buffer it takes */
	/* Best of three: the dev machines are shared, single runs are noisy. */
	double p = 0, tg = 0, th = 0;
	for (int i = 0; i < 3; i++) {
		p = PV_MAX(p, plain(false));
		tg = PV_MAX(tg, to_guest(&g));
		th = PV_MAX(th, to_host(&g));
	}
	printf("%-34s %10s %8s\n", "case (256 MiB each, best of 3)", "MB/s", "ratio");
	printf("%-34s %10.0f %8s\n", "plain socketpair", p, "1.00");
	printf("%-34s %10.0f %8.2f\n", "vsock device host->guest", tg, tg / p);
	printf("%-34s %10.0f %8.2f\n", "vsock device guest->host", th, th / p);
	fg_fini(&g);
	return 0;
}
