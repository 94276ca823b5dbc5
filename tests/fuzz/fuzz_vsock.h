/* fuzz_vsock.h — virtio-vsock as a fuzz target: packets of any header and length
 * from a hostile fake guest (fuzz_guest.h) to a host listener (port 5000) and to
 * streams the host opened, receive and event buffers it posts and rewrites, and
 * host actions between them (HOST [0] op): open a stream, write to / read from /
 * close a host end, RST, transport reset, save + load, an event-loop round.
 * Aborts when the device keeps more streams than its cap. Shared by the
 * libFuzzer harness and the corpus replay (tests/unit/test_fuzz_corpora.c). */
#ifndef PROVIUM_FUZZ_VSOCK_H
#define PROVIUM_FUZZ_VSOCK_H

#include "devices/virtio_vsock.h"
#include "tests/fuzz/fuzz_guest.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define FZV_FDS 32

struct fzv {
	struct virtio_vsock *s;
	struct evloop *loop;
	int fds[FZV_FDS];
	unsigned nfds;
};

static void fzv_keep(struct fzv *x, int fd)
{
	if (fd < 0)
		return;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (x->nfds < FZV_FDS)
		x->fds[x->nfds++] = fd;
	else
		close(fd);
}

static void fzv_accept(void *opaque, int fd, uint32_t hp, uint32_t gp)
{
	(void)hp; (void)gp;
	fzv_keep(opaque, fd);
}

static void fzv_host(void *opaque, struct fz *a)
{
	struct fzv *x = opaque;
	static uint8_t buf[300 * 1024];
	uint8_t op = fz_u8(a), k = fz_u8(a);
	int fd = x->nfds ? x->fds[k % x->nfds] : -1;
	ssize_t r = 0;
	switch (op % 8) {
	case 0:
		fzv_keep(x, virtio_vsock_connect(x->s, fz_u16(a), NULL));
		break;
	case 1:
		if (fd >= 0)
			r = send(fd, buf, (size_t)fz_u16(a) * 8, MSG_NOSIGNAL | MSG_DONTWAIT);
		break;
	case 2:
		if (fd >= 0)
			r = read(fd, buf, sizeof(buf));
		break;
	case 3:
		if (fd >= 0) {
			close(fd);
			unsigned slot = k % x->nfds;
			x->fds[slot] = x->fds[--x->nfds];
		}
		break;
	case 4:
		virtio_vsock_reset(x->s, fz_u32(a), fz_u32(a));
		break;
	case 5:
		virtio_vsock_transport_reset(x->s);
		break;
	case 6:
		fgz_save_load(&virtio_vsock_vdev(x->s)->dev);
		break;
	case 7:
		if (fd >= 0)
			shutdown(fd, SHUT_WR);
		break;
	}
	(void)r; /* a full or closed host end is part of the game */
	evloop_run_once(x->loop, 0);
}

static inline int pv_fuzz_vsock(const uint8_t *data, size_t size)
{
	struct fzv x = {0};
	if (evloop_create(&x.loop) < 0 || virtio_vsock_create("vsock0", 42, &x.s) < 0 ||
	    virtio_vsock_listen(x.s, 5000, fzv_accept, &x) < 0)
		abort();
	struct fguest_fuzz g = {.host = fzv_host, .opaque = &x};
	if (fgz_init(&g, virtio_vsock_vdev(x.s), 3, x.loop) < 0 ||
	    virtio_vsock_start(x.s, x.loop) < 0)
		abort();
	fgz_run(&g, data, size);
	struct virtio_vsock_stats st;
	virtio_vsock_stats(x.s, &st);
	if (st.streams > VSOCK_MAX_STREAMS)
		abort();
	virtio_vsock_destroy(x.s);
	evloop_destroy(x.loop);
	for (unsigned i = 0; i < x.nfds; i++)
		close(x.fds[i]);
	fgz_fini(&g);
	return 0;
}

#endif
