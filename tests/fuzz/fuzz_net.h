/* fuzz_net.h — virtio-net as a fuzz target: TX chains from a hostile fake guest
 * (fuzz_guest.h), frames from the "network" end of its backend (a SOCK_SEQPACKET
 * socketpair, as a TAP with a vnet header) into whatever receive buffers the
 * guest posted, with netpath rules the input picks (latency, duplicate, corrupt,
 * drop) so frames wait on timers while guest RAM is rewritten, link changes and
 * save + load. Input: [0] rule bits (1 delay, 2 duplicate, 4 corrupt, 8 drop 1/2),
 * then the guest script; HOST: [0] op, then a frame length. Aborts when the delay
 * queue passes its cap. Shared by the libFuzzer harness and the corpus replay. */
#ifndef PROVIUM_FUZZ_NET_H
#define PROVIUM_FUZZ_NET_H

#include "devices/netpath.h"
#include "devices/virtio_net.h"
#include "tests/fuzz/fuzz_guest.h"

#include <sys/socket.h>
#include <unistd.h>

struct fzn {
	struct virtio_net *n;
	struct evloop *loop;
	int peer;
};

static void fzn_drain(struct fzn *x)
{
	static uint8_t buf[65536 + 64];
	while (recv(x->peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void fzn_host(void *opaque, struct fz *a)
{
	struct fzn *x = opaque;
	static uint8_t frame[65536 + 12 + 16];
	uint8_t op = fz_u8(a);
	size_t len = fz_u16(a) % sizeof(frame);
	switch (op % 5) {
	case 0:
	case 1:
		for (size_t i = 0; i < len && a->off < a->n; i++)
			frame[i] = fz_u8(a);
		if (send(x->peer, frame, len, MSG_DONTWAIT) < 0)
			fzn_drain(x);
		evloop_run_once(x->loop, 0);
		break;
	case 2:
		virtio_net_set_link(x->n, fz_u8(a) & 1);
		break;
	case 3:
		fzn_drain(x);
		break;
	case 4:
		fgz_save_load(&virtio_net_vdev(x->n)->dev);
		break;
	}
}

static inline int pv_fuzz_net(const uint8_t *data, size_t size)
{
	struct fz z = {data, size, 0};
	struct fzn x = {0};
	int sv[2];
	if (evloop_create(&x.loop) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	x.peer = sv[1];
	struct virtio_net_opts o = {.fd = sv[0], .seed = 7, .loop = x.loop};
	if (virtio_net_create("net0", &o, &x.n) < 0)
		abort();
	struct netpath *np = virtio_net_netpath(x.n);
	uint8_t rules = fz_u8(&z);
	static const enum netpath_action acts[4] = {NETPATH_DELAY, NETPATH_DUPLICATE,
						    NETPATH_CORRUPT, NETPATH_DROP};
	for (unsigned i = 0; i < 4; i++)
		if (rules & (1u << i)) {
			struct netpath_rule r = {.action = acts[i], .delay_ns = 1000000000ull,
						 .jitter_ns = 1000, .probability = i == 3 ? 0.5 : 0};
			netpath_add_rule(np, &r);
		}
	struct fguest_fuzz g = {.host = fzn_host, .opaque = &x};
	if (fgz_init(&g, virtio_net_vdev(x.n), 2, x.loop) < 0 ||
	    virtio_net_start(x.n, x.loop) < 0)
		abort();
	fgz_run(&g, z.p + z.off, z.n - z.off);
	if (netpath_pending(np) > 2 * NETPATH_MAX_DELAYED_FRAMES)
		abort();
	evloop_fire_timers(x.loop);
	virtio_net_destroy(x.n);
	evloop_destroy(x.loop);
	close(x.peer);
	fgz_fini(&g);
	return 0;
}

#endif
