/* test_virtio_vsock.c — userspace virtio-vsock without KVM: a fake guest driver
 * (vsock_fake_guest.h) exchanges packets with the device through real split rings
 * in a buffer standing for guest RAM; host ends are real sockets. Covers the
 * config CID, host- and guest-initiated streams (callback and unix-socket
 * listeners), data both ways, credit exhaustion and update both ways, SHUTDOWN
 * both directions, host RST, RST of unknown streams, many streams, malformed
 * packets (NEEDS_RESET, then a reset device works again), the transport-reset
 * event, and a guest that overruns its credit. Snapshot save and load are
 * test_virtio_vsock_snapshot.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/vsock_test_util.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void config_has_the_cid(void **state)
{
	struct fguest *g = *state;
	uint64_t lo = fake_rd32(&g->f, VIRTIO_MMIO_CONFIG);
	uint64_t hi = fake_rd32(&g->f, VIRTIO_MMIO_CONFIG + 4);
	assert_int_equal(lo | hi << 32, FG_CID);
	assert_int_equal(fake_rd32(&g->f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	uint32_t gen = fake_rd32(&g->f, VIRTIO_MMIO_CONFIG_GENERATION);
	virtio_vsock_set_cid(g->s, 77);
	assert_int_equal(fake_rd32(&g->f, VIRTIO_MMIO_CONFIG), 77);
	assert_int_not_equal(fake_rd32(&g->f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	assert_int_equal(virtio_vsock_create("x", 2, &(struct virtio_vsock *){0}), -EINVAL);
}

static void host_stream_data_both_ways(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 16, FG_RXBUF);
	uint32_t hp;
	int fd = open_stream(g, 1234, 65536, &hp);
	assert_int_equal(write(fd, "hello", 5), 5);
	char buf[64] = {0};
	struct virtio_vsock_hdr h = expect_pkt(g, buf, sizeof(buf));
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(h.len, 5);
	assert_memory_equal(buf, "hello", 5);
	struct virtio_vsock_hdr w = fg_hdr(1234, hp, VIRTIO_VSOCK_OP_RW, 5, 65536, 5);
	fg_send(g, &w, "world");
	assert_int_equal(read_some(fd, buf, sizeof(buf), g), 5);
	assert_memory_equal(buf, "world", 5);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.streams, 1);
	assert_int_equal(st.to_guest_bytes, 5);
	assert_int_equal(st.to_host_bytes, 5);
	close(fd);
}

static void host_to_guest_waits_for_credit(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 32, FG_RXBUF);
	uint32_t hp;
	int fd = open_stream(g, 80, 1000, &hp);
	char out[3000];
	for (int i = 0; i < 3000; i++)
		out[i] = (char)(i * 7);
	assert_int_equal(write(fd, out, 3000), 3000);
	char in[3000];
	size_t got = 0;
	struct virtio_vsock_hdr h;
	bool credit_req = false;
	/* Take everything the device sends until it has been quiet for a while. */
	for (int idle = 0; idle < 50; idle++) {
		fg_pump(g);
		while (fg_recv(g, &h, in + got, sizeof(in) - got, true)) {
			idle = 0;
			if (h.op == VIRTIO_VSOCK_OP_RW)
				got += h.len;
			else if (h.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST)
				credit_req = true;
		}
		usleep(1000);
	}
	/* Exactly the guest's buf_alloc, no more, and the device asked for credit. */
	assert_int_equal(got, 1000);
	assert_true(credit_req);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_true(st.credit_stalls >= 1);
	/* The guest consumed 1000: the rest flows after its credit update. */
	struct virtio_vsock_hdr cu = fg_hdr(80, hp, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 1000, 1000);
	fg_send(g, &cu, NULL);
	while (got < 2000) {
		h = expect_pkt(g, in + got, sizeof(in) - got);
		if (h.op == VIRTIO_VSOCK_OP_RW)
			got += h.len;
	}
	assert_int_equal(got, 2000);
	cu = fg_hdr(80, hp, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 1000, 2000);
	fg_send(g, &cu, NULL);
	while (got < 3000) {
		h = expect_pkt(g, in + got, sizeof(in) - got);
		if (h.op == VIRTIO_VSOCK_OP_RW)
			got += h.len;
	}
	assert_memory_equal(in, out, 3000);
	close(fd);
}

static void guest_to_host_credit_updates(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 64, FG_RXBUF);
	uint32_t hp;
	int fd = open_stream(g, 81, 65536, &hp);
	/* 192 KiB (within the 256 KiB credit) while the host reads nothing yet. */
	static uint8_t data[192 * 1024], back[192 * 1024];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 5);
	for (size_t off = 0; off < sizeof(data); off += 16384) {
		struct virtio_vsock_hdr w = fg_hdr(81, hp, VIRTIO_VSOCK_OP_RW, 16384, 65536, 0);
		fg_send(g, &w, data + off);
	}
	size_t got = 0;
	while (got < sizeof(back)) {
		ssize_t r = read_some(fd, back + got, sizeof(back) - got, g);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_memory_equal(back, data, sizeof(data));
	/* Draining the ring sent the guest its credit back. */
	uint32_t fwd = 0;
	struct virtio_vsock_hdr h;
	while (fg_recv(g, &h, NULL, 0, true) || (fg_pump(g), fg_recv(g, &h, NULL, 0, true)))
		if (h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE)
			fwd = h.fwd_cnt;
	assert_true(fwd >= VSOCK_BUF_ALLOC / 4);
	/* A credit request is answered with our fwd_cnt. */
	struct virtio_vsock_hdr cr = fg_hdr(81, hp, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 65536, 0);
	fg_send(g, &cr, NULL);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(h.fwd_cnt, sizeof(data));
	assert_int_equal(h.buf_alloc, VSOCK_BUF_ALLOC);
	close(fd);
}

static void guest_overrunning_credit_is_reset(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 64, FG_RXBUF);
	uint32_t hp;
	int fd = open_stream(g, 82, 65536, &hp);
	static uint8_t chunk[65536];
	bool rst = false;
	/* The host never reads: socket buffer + ring fill, then the device resets. */
	for (int i = 0; i < 64 && !rst; i++) {
		struct virtio_vsock_hdr w = fg_hdr(82, hp, VIRTIO_VSOCK_OP_RW, 65536, 65536, 0);
		fg_send(g, &w, chunk);
		struct virtio_vsock_hdr h;
		while (fg_recv(g, &h, NULL, 0, true))
			rst |= h.op == VIRTIO_VSOCK_OP_RST;
	}
	assert_true(rst);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.streams, 0);
	assert_false(fake_rd32(&g->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	close(fd);
}

struct accepted {
	int fd;
	uint32_t hp, gp;
	int calls;
};

static void on_accept(void *opaque, int fd, uint32_t hp, uint32_t gp)
{
	struct accepted *a = opaque;
	a->fd = fd;
	a->hp = hp;
	a->gp = gp;
	a->calls++;
}

static void guest_initiated_streams(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 16, FG_RXBUF);
	struct accepted a = {.fd = -1};
	assert_int_equal(virtio_vsock_listen(g->s, 5000, on_accept, &a), 0);
	assert_int_equal(virtio_vsock_listen(g->s, 5000, on_accept, &a), -EADDRINUSE);
	struct virtio_vsock_hdr rq = fg_hdr(3333, 5000, VIRTIO_VSOCK_OP_REQUEST, 0, 65536, 0);
	fg_send(g, &rq, NULL);
	struct virtio_vsock_hdr h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RESPONSE);
	assert_int_equal(h.dst_port, 3333);
	assert_int_equal(h.src_port, 5000);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.hp, 5000);
	assert_int_equal(a.gp, 3333);
	struct virtio_vsock_hdr w = fg_hdr(3333, 5000, VIRTIO_VSOCK_OP_RW, 3, 65536, 0);
	fg_send(g, &w, "abc");
	char buf[16];
	assert_int_equal(read_some(a.fd, buf, sizeof(buf), g), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(write(a.fd, "xyz", 3), 3);
	h = expect_pkt(g, buf, sizeof(buf));
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_memory_equal(buf, "xyz", 3);
	close(a.fd);

	/* No listener: RST. */
	rq = fg_hdr(3334, 5001, VIRTIO_VSOCK_OP_REQUEST, 0, 65536, 0);
	fg_send(g, &rq, NULL);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(h.dst_port, 3334);

	/* A unix-socket listener: each stream is a connection to the socket. */
	char path[108];
	snprintf(path, sizeof(path), "/tmp/provium-vsock-test-%d.sock", getpid());
	unlink(path);
	int srv = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv, 4), 0);
	assert_int_equal(virtio_vsock_listen_unix(g->s, 6000, path), 0);
	rq = fg_hdr(4000, 6000, VIRTIO_VSOCK_OP_REQUEST, 0, 65536, 0);
	fg_send(g, &rq, NULL);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RESPONSE);
	int cfd = accept(srv, NULL, NULL);
	assert_true(cfd >= 0);
	w = fg_hdr(4000, 6000, VIRTIO_VSOCK_OP_RW, 4, 65536, 0);
	fg_send(g, &w, "unix");
	assert_int_equal(read_some(cfd, buf, sizeof(buf), g), 4);
	assert_memory_equal(buf, "unix", 4);
	close(cfd);
	close(srv);
	unlink(path);
	/* The socket is gone: a new request is refused. */
	rq = fg_hdr(4001, 6000, VIRTIO_VSOCK_OP_REQUEST, 0, 65536, 0);
	fg_send(g, &rq, NULL);
	for (;;) {
		h = expect_pkt(g, NULL, 0);
		if (h.dst_port == 4001)
			break;
	}
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(virtio_vsock_unlisten(g->s, 6000), 0);
	assert_int_equal(virtio_vsock_unlisten(g->s, 6000), -ENOENT);
}

static void shutdown_both_directions(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 16, FG_RXBUF);
	uint32_t hp;
	int fd = open_stream(g, 90, 65536, &hp);
	/* Guest SHUTDOWN(SEND): the host reads what was sent, then EOF ... */
	struct virtio_vsock_hdr w = fg_hdr(90, hp, VIRTIO_VSOCK_OP_RW, 2, 65536, 0);
	fg_send(g, &w, "hi");
	struct virtio_vsock_hdr sd = fg_hdr(90, hp, VIRTIO_VSOCK_OP_SHUTDOWN, 0, 65536, 0);
	sd.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	fg_send(g, &sd, NULL);
	char buf[16];
	assert_int_equal(read_some(fd, buf, sizeof(buf), g), 2);
	assert_int_equal(read_some(fd, buf, sizeof(buf), g), 0);
	/* ... but can still send to the guest. */
	assert_int_equal(write(fd, "ok", 2), 2);
	struct virtio_vsock_hdr h = expect_pkt(g, buf, sizeof(buf));
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_memory_equal(buf, "ok", 2);
	/* Host half-close: the guest gets SHUTDOWN(SEND). */
	shutdown(fd, SHUT_WR);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	/* The guest closes the rest: RST, and the stream is gone. */
	sd.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	fg_send(g, &sd, NULL);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.streams, 0);
	close(fd);
}

static void host_rst_and_unknown_streams(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 16, FG_RXBUF);
	uint32_t hp;
	int fd = open_stream(g, 91, 65536, &hp);
	assert_int_equal(virtio_vsock_reset(g->s, hp, 91), 0);
	assert_int_equal(virtio_vsock_reset(g->s, hp, 91), -ENOENT);
	struct virtio_vsock_hdr h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(h.dst_port, 91);
	char c;
	assert_int_equal(read_some(fd, &c, 1, g), 0);
	close(fd);
	/* Data and shutdown for a stream that does not exist: RST back. */
	struct virtio_vsock_hdr w = fg_hdr(91, hp, VIRTIO_VSOCK_OP_RW, 1, 65536, 0);
	fg_send(g, &w, "x");
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	/* RST of an unknown stream: silently ignored (no RST storm). */
	struct virtio_vsock_hdr r = fg_hdr(12345, 54321, VIRTIO_VSOCK_OP_RST, 0, 0, 0);
	fg_send(g, &r, NULL);
	assert_true(no_pkt(g));
	/* Wrong type, wrong CID: RST, counted. */
	w = fg_hdr(7, 8, VIRTIO_VSOCK_OP_REQUEST, 0, 0, 0);
	w.type = 2;
	fg_send(g, &w, NULL);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	w = fg_hdr(7, 8, VIRTIO_VSOCK_OP_REQUEST, 0, 0, 0);
	w.src_cid = 99;
	fg_send(g, &w, NULL);
	h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_true(st.dropped_packets >= 3);
	assert_false(fake_rd32(&g->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

#define NSTREAMS 64

static void many_streams(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 128, FG_RXBUF);
	int fds[NSTREAMS];
	uint32_t hps[NSTREAMS];
	for (int i = 0; i < NSTREAMS; i++)
		fds[i] = open_stream(g, 2000 + (uint32_t)i, 65536, &hps[i]);
	for (int i = 0; i < NSTREAMS; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "stream %d", i);
		assert_int_equal(write(fds[i], msg, (size_t)n), n);
	}
	int seen = 0;
	char buf[64];
	while (seen < NSTREAMS) {
		struct virtio_vsock_hdr h = expect_pkt(g, buf, sizeof(buf) - 1);
		assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
		buf[h.len] = 0;
		int i = (int)h.dst_port - 2000;
		assert_in_range(i, 0, NSTREAMS - 1);
		char want[32];
		snprintf(want, sizeof(want), "stream %d", i);
		assert_string_equal(buf, want);
		assert_int_equal(h.src_port, hps[i]);
		/* Echo it back on the same stream. */
		struct virtio_vsock_hdr w = fg_hdr(h.dst_port, h.src_port, VIRTIO_VSOCK_OP_RW,
						   h.len, 65536, h.len);
		fg_send(g, &w, buf);
		seen++;
	}
	for (int i = 0; i < NSTREAMS; i++) {
		char want[32];
		int n = snprintf(want, sizeof(want), "stream %d", i);
		assert_int_equal(read_some(fds[i], buf, sizeof(buf), g), n);
		assert_memory_equal(buf, want, (size_t)n);
	}
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.streams, NSTREAMS);
	for (int i = 0; i < NSTREAMS; i++)
		close(fds[i]);
}

static void malformed_packets_need_reset(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 8, FG_RXBUF);
	/* Shorter than a header. */
	struct virtio_vsock_hdr h = fg_hdr(1, 2, VIRTIO_VSOCK_OP_RW, 0, 0, 0);
	fg_send_raw(g, &h, NULL, 20);
	assert_true(fake_rd32(&g->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* The driver resets and sets the device up again: it works. */
	fake_negotiate(&g->f, ~0ull);
	for (unsigned q = 0; q < 3; q++)
		fake_setup_queue(&g->f, q, FG_QN);
	fake_driver_ok(&g->f);
	assert_false(fake_rd32(&g->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Length field disagreeing with the buffers. */
	h = fg_hdr(1, 2, VIRTIO_VSOCK_OP_RW, 100, 0, 0);
	fg_send_raw(g, &h, NULL, 44 + 10);
	assert_true(fake_rd32(&g->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	fake_negotiate(&g->f, ~0ull);
	for (unsigned q = 0; q < 3; q++)
		fake_setup_queue(&g->f, q, FG_QN);
	fake_driver_ok(&g->f);
	/* A length beyond the packet limit. */
	h = fg_hdr(1, 2, VIRTIO_VSOCK_OP_RW, 1u << 30, 0, 0);
	fg_send_raw(g, &h, NULL, 44);
	assert_true(fake_rd32(&g->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void transport_reset_event(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 8, FG_RXBUF);
	uint32_t hp;
	int fd = open_stream(g, 95, 65536, &hp);
	virtio_vsock_transport_reset(g->s);
	char c;
	assert_int_equal(read_some(fd, &c, 1, g), 0); /* the stream is gone */
	uint32_t id, len;
	assert_int_equal(fake_get_used(&g->f, 2, &id, &len), 0); /* no buffer yet */
	struct fake_buf b = {g->ev_gpa, 4, true};
	memset(fake_ptr(&g->f, g->ev_gpa), 0xff, 4);
	fake_submit(&g->f, 2, &b, 1, false);
	fake_kick(&g->f, 2);
	assert_int_equal(fake_get_used(&g->f, 2, &id, &len), 1);
	assert_int_equal(len, 4);
	uint32_t ev;
	memcpy(&ev, fake_ptr(&g->f, g->ev_gpa), 4);
	assert_int_equal(ev, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_int_equal(st.events_sent, 1);
	assert_int_equal(st.streams, 0);
	close(fd);
}

/* After a transport reset the guest resets every connected socket when it takes the
 * event: a stream the host opened before that would die with it, so host connects
 * wait (EAGAIN) until the guest gave the event buffer back. */
static void connect_waits_for_the_guest_to_take_the_reset(void **state)
{
	struct fguest *g = *state;
	fg_post_rx(g, 8, FG_RXBUF);
	struct fake_buf b = {g->ev_gpa, 4, true};
	fake_submit(&g->f, 2, &b, 1, false);
	fake_kick(&g->f, 2);
	virtio_vsock_transport_reset(g->s);
	uint32_t id, len;
	assert_int_equal(fake_get_used(&g->f, 2, &id, &len), 1); /* the event went out */
	assert_int_equal(virtio_vsock_connect(g->s, 1024, NULL), -EAGAIN);
	assert_non_null(strstr(pv_errmsg(), "transport reset"));
	/* the guest handled it and posts the buffer again */
	fake_submit(&g->f, 2, &b, 1, false);
	fake_kick(&g->f, 2);
	uint32_t hp;
	int fd = open_stream(g, 98, 65536, &hp);
	assert_true(fd >= 0);
	close(fd);
}

/* Randomized: packets with random ops, ports, lengths, types and CIDs, mixed with
 * host connects, writes, closes and resets. The device must never crash (run it
 * under ASan), and a device that asked for a reset must work after one. */
static uint64_t xorshift(uint64_t *r)
{
	*r ^= *r << 13;
	*r ^= *r >> 7;
	*r ^= *r << 17;
	return *r;
}

static void random_packets_never_crash(void **state)
{
	struct fguest *g = *state;
	uint64_t r = 0x9e3779b97f4a7c15ull;
#define RND() xorshift(&r)
	int fds[8];
	uint32_t hps[8];
	for (int i = 0; i < 8; i++)
		fds[i] = -1;
	static uint8_t payload[512];
	unsigned resets = 0;
	fg_post_rx(g, 64, FG_RXBUF);
	for (int it = 0; it < 20000; it++) {
		unsigned k = RND() % 8;
		switch (RND() % 6) {
		case 0:
			if (fds[k] < 0)
				fds[k] = virtio_vsock_connect(g->s, 100 + k, &hps[k]);
			else if (RND() % 2) {
				close(fds[k]);
				fds[k] = -1;
			} else {
				virtio_vsock_reset(g->s, hps[k], 100 + k);
			}
			break;
		case 1:
			if (fds[k] >= 0)
				if (send(fds[k], payload, RND() % sizeof(payload), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {}
			break;
		default: {
			uint32_t len = (uint32_t)(RND() % 200);
			struct virtio_vsock_hdr h = fg_hdr(100 + k, RND() % 4 ? hps[k] : (uint32_t)RND(),
							   (uint16_t)(RND() % 9), len,
							   (uint32_t)(RND() % 100000), (uint32_t)RND() % 50000);
			if (RND() % 50 == 0)
				h.type = (uint16_t)RND();
			if (RND() % 50 == 0)
				h.src_cid = RND();
			uint32_t out = 44 + len;
			if (RND() % 200 == 0)
				out = (uint32_t)(RND() % 400);  /* malformed */
			fg_send_raw(g, &h, payload, out);
			break;
		}
		}
		struct virtio_vsock_hdr h;
		while (fg_recv(g, &h, NULL, 0, true))
			;
		if (it % 16 == 0)
			fg_pump(g);
		if (fake_rd32(&g->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET) {
			resets++;
			assert_true(fake_negotiate(&g->f, ~0ull) != 0);
			for (unsigned q = 0; q < 3; q++)
				fake_setup_queue(&g->f, q, FG_QN);
			fake_driver_ok(&g->f);
			g->rx_posted = 0;
			for (unsigned i = 0; i < 64; i++) {
				struct fake_buf b = {g->rx_gpa[i], FG_RXBUF, true};
				fake_submit(&g->f, 0, &b, 1, false);
			}
			fake_kick(&g->f, 0);
		}
	}
#undef RND
	struct virtio_vsock_stats st;
	virtio_vsock_stats(g->s, &st);
	assert_true(st.streams <= st.opened);
	assert_true(resets > 0);
	assert_false(fake_rd32(&g->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	printf("# %u device resets, %llu streams opened, %llu RST sent\n", resets,
	       (unsigned long long)st.opened, (unsigned long long)st.rst_sent);
	for (int i = 0; i < 8; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(config_has_the_cid, setup, teardown),
		cmocka_unit_test_setup_teardown(host_stream_data_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(host_to_guest_waits_for_credit, setup, teardown),
		cmocka_unit_test_setup_teardown(guest_to_host_credit_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(guest_overrunning_credit_is_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(guest_initiated_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(shutdown_both_directions, setup, teardown),
		cmocka_unit_test_setup_teardown(host_rst_and_unknown_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(many_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_packets_need_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_reset_event, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_waits_for_the_guest_to_take_the_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(random_packets_never_crash, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
