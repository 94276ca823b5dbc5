/* vsock_test_util.h — what the virtio-vsock unit tests share (test_virtio_vsock.c,
 * test_virtio_vsock_snapshot.c): a fake guest per test (vsock_fake_guest.h), waiting
 * for the device's packets, and opening a host-initiated stream the guest accepts. */
#ifndef PROVIUM_VSOCK_TEST_UTIL_H
#define PROVIUM_VSOCK_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/vsock_fake_guest.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static int setup(void **state)
{
	struct fguest *g = calloc(1, sizeof(*g));
	if (!g || fg_init(g) < 0)
		return -1;
	*state = g;
	return 0;
}

static int teardown(void **state)
{
	struct fguest *g = *state;
	fg_fini(g);
	free(g);
	return 0;
}

/* Waits (pumping) for the next packet; fails the test after ~2 s. */
static struct virtio_vsock_hdr expect_pkt(struct fguest *g, void *data, size_t cap)
{
	struct virtio_vsock_hdr h;
	for (int i = 0; i < 2000; i++) {
		if (fg_recv(g, &h, data, cap, true))
			return h;
		fg_pump(g);
		usleep(1000);
	}
	fail_msg("no packet from the device");
	return h;
}

static bool no_pkt(struct fguest *g)
{
	struct virtio_vsock_hdr h;
	fg_pump(g);
	return !fg_recv(g, &h, NULL, 0, true);
}

static ssize_t read_some(int fd, void *buf, size_t len, struct fguest *g)
{
	for (int i = 0; i < 2000; i++) {
		fg_pump(g);
		ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
		if (r >= 0 || errno != EAGAIN)
			return r;
		usleep(1000);
	}
	return -EAGAIN;
}

/* A host-initiated stream the fake guest accepted: returns the host fd. */
static int open_stream(struct fguest *g, uint32_t gport, uint32_t buf_alloc, uint32_t *hp)
{
	int fd = virtio_vsock_connect(g->s, gport, hp);
	assert_true(fd >= 0);
	struct virtio_vsock_hdr h = expect_pkt(g, NULL, 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(h.src_cid, 2);
	assert_int_equal(h.dst_cid, FG_CID);
	assert_int_equal(h.dst_port, gport);
	assert_int_equal(h.src_port, *hp);
	assert_int_equal(h.buf_alloc, VSOCK_BUF_ALLOC);
	struct virtio_vsock_hdr r = fg_hdr(gport, *hp, VIRTIO_VSOCK_OP_RESPONSE, 0, buf_alloc, 0);
	fg_send(g, &r, NULL);
	return fd;
}

#endif
