/* fuzz_guest.h — a hostile fake guest for the device fuzz targets
 * (tests/fuzz/fuzz_<device>.h). The fuzz input is a script of operations on one
 * virtio device: write any bytes anywhere in guest RAM (also while a request is
 * in flight: held by a slow rule, a latency rule or a host fd that does not read),
 * write descriptors and avail entries, kick, touch any register or config byte,
 * fire the event loop's timers, take used entries, and device-specific host
 * actions. The device starts negotiated with every queue ready (so the fuzzer
 * need not discover the init sequence), but the script may reset and break it.
 *
 * Guest RAM is FG_MEM bytes of its own heap allocation (ASan flags any access
 * outside it). Layout: queue q's descriptor table at q * 0x1000 (FG_QNUM entries),
 * its avail ring at +0x400, used ring at +0x800; 0x4000.. is free for buffers.
 *
 * Script: a sequence of ops, each an opcode byte and its argument bytes (missing
 * bytes read as 0, so every input is a valid script):
 *   0 WMEM off:u16 n:u8 bytes[n]      guest RAM write
 *   1 DESC q idx addr:u16 len:u32 flags next     one descriptor
 *   2 PUB q head                        publish head on the avail ring
 *   3 KICK q                            QueueNotify write
 *   4 MMIO_W off:u16 lensel val:u64     register/config write (len 1, 2, 4 or 8)
 *   5 MMIO_R off:u16 lensel             register/config read
 *   6 TIMERS                            every pending timer fires now
 *   7 USED q                            take the queue's used entries
 *   8 HOST n:u8 bytes[n]                the target's host action
 *   9 CHAIN q n {addr:u16 len:u16 w}×n  n descriptors from the next free slot, published
 *  10 IDX q v:u16                       the avail index itself
 *  11 SETUP                             reset, negotiate, queues ready, DRIVER_OK
 *  12 LOOP                              one round of the event loop (no waiting)
 */
#ifndef PROVIUM_FUZZ_GUEST_H
#define PROVIUM_FUZZ_GUEST_H

#include "devices/virtio.h"
#include "tests/unit/virtio_fake_driver.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FG_MEM 0x10000u
#define FG_QNUM 16u
#define FG_MAX_OPS 256

struct fz {
	const uint8_t *p;
	size_t n, off;
};

static inline uint8_t fz_u8(struct fz *z)
{
	return z->off < z->n ? z->p[z->off++] : 0;
}

static inline uint16_t fz_u16(struct fz *z)
{
	uint16_t v = fz_u8(z);
	return (uint16_t)(v | fz_u8(z) << 8);
}

static inline uint32_t fz_u32(struct fz *z)
{
	uint32_t v = fz_u16(z);
	return v | (uint32_t)fz_u16(z) << 16;
}

static inline uint64_t fz_u64(struct fz *z)
{
	uint64_t v = fz_u32(z);
	return v | (uint64_t)fz_u32(z) << 32;
}

struct fguest_fuzz {
	struct fake_drv f;
	struct virtio_dev *v;
	struct evloop *loop;
	unsigned nq;
	/* the target's host action: bytes of HOST */
	void (*host)(void *opaque, struct fz *args);
	void *opaque;
};

/* The guest's own view of queue q (where its rings are), without telling the device. */
static inline void fgz_layout(struct fguest_fuzz *g, unsigned q)
{
	struct fake_queue *fq = &g->f.q[q];
	memset(fq, 0, sizeof(*fq));
	fq->num = FG_QNUM;
	fq->desc = q * 0x1000ull;
	fq->avail = q * 0x1000ull + 0x400;
	fq->used = q * 0x1000ull + 0x800;
}

static inline void fgz_setup(struct fguest_fuzz *g)
{
	fake_negotiate(&g->f, ~0ull);
	for (unsigned q = 0; q < g->nq; q++) {
		struct fake_queue *fq = &g->f.q[q];
		fgz_layout(g, q);
		memset(g->f.mem + q * 0x1000, 0, 0x1000);
		fake_wr32(&g->f, VIRTIO_MMIO_QUEUE_SEL, q);
		fake_wr32(&g->f, VIRTIO_MMIO_QUEUE_NUM, FG_QNUM);
		fake_wr32(&g->f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)fq->desc);
		fake_wr32(&g->f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)fq->avail);
		fake_wr32(&g->f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)fq->used);
		fake_wr32(&g->f, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	fake_driver_ok(&g->f);
}

/* Binds v to fresh guest RAM and sets it up (unless raw: then the device stays
 * as it was made, for the register fuzzer); 0 or -1. */
static inline int fgz_init_raw(struct fguest_fuzz *g, struct virtio_dev *v, unsigned nq,
			       struct evloop *loop, bool raw)
{
	g->v = v;
	g->nq = nq;
	g->loop = loop;
	if (fake_init(&g->f, v, FG_MEM) < 0)
		return -1;
	for (unsigned q = 0; q < nq; q++)
		fgz_layout(g, q);
	if (!raw)
		fgz_setup(g);
	return 0;
}

static inline int fgz_init(struct fguest_fuzz *g, struct virtio_dev *v, unsigned nq,
			   struct evloop *loop)
{
	return fgz_init_raw(g, v, nq, loop, false);
}

static inline void fgz_fini(struct fguest_fuzz *g)
{
	fake_fini(&g->f);
}

static inline void fgz_take_used(struct fguest_fuzz *g, unsigned q)
{
	struct fake_queue *fq = &g->f.q[q];
	struct vring_used *u = fake_ptr(&g->f, fq->used);
	uint16_t idx = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
	/* a hostile device index is the device's bug, but the guest reads it safely */
	fq->last_used = idx;
}

enum fgz_kind { FGZ_RNG, FGZ_CONSOLE, FGZ_VSOCK, FGZ_BLK, FGZ_NET, FGZ_KINDS };

/* A scratch directory for images: tmpfs when there is one (fdatasync is free). */
static inline const char *fgz_tmp(void)
{
	return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

/* A fresh, unattached device of `kind` served by `loop` (may be NULL); *nq gets
 * its queue count. virtio-blk: an 8 KiB image at img (made anew); virtio-net: a
 * SOCK_SEQPACKET backend whose other end goes to *peer (close it after the
 * device's destroy). NULL on failure. Destroy with dev.ops->destroy. */
static inline struct virtio_dev *fgz_make_device(enum fgz_kind kind, struct evloop *loop,
						 const char *img, int *peer, unsigned *nq)
{
	*nq = kind == FGZ_VSOCK ? 3 : kind == FGZ_CONSOLE || kind == FGZ_NET ? 2 : 1;
	switch (kind) {
	case FGZ_RNG: {
		struct virtio_rng *r;
		return virtio_rng_create("rng0", &r) < 0 ? NULL : virtio_rng_vdev(r);
	}
	case FGZ_CONSOLE: {
		struct virtio_console *c;
		return virtio_console_create("hvc0", &c) < 0 ? NULL : virtio_console_vdev(c);
	}
	case FGZ_VSOCK: {
		struct virtio_vsock *s;
		if (virtio_vsock_create("vsock0", 3, &s) < 0)
			return NULL;
		if (loop)
			virtio_vsock_start(s, loop);
		return virtio_vsock_vdev(s);
	}
	case FGZ_BLK: {
		struct virtio_blk *b;
		unlink(img);
		struct virtio_blk_opts o = {.path = img, .size = 8192};
		if (virtio_blk_create(&o, &b) < 0)
			return NULL;
		virtio_blk_set_evloop(b, loop);
		return virtio_blk_vdev(b);
	}
	default: {
		int sv[2];
		struct virtio_net *n;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
			return NULL;
		*peer = sv[1];
		struct virtio_net_opts o = {.fd = sv[0], .seed = 1, .loop = loop};
		if (virtio_net_create("net0", &o, &n) < 0)
			return NULL;
		if (loop)
			virtio_net_start(n, loop);
		return virtio_net_vdev(n);
	}
	}
}

/* Saves the device's state and loads it back, as a snapshot and restore would. */
static inline void fgz_save_load(struct device *d)
{
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	if (fake_save_state(d, &sb, &up) == 0)
		d->ops->load(d, &up.data);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* Runs the script. */
static inline void fgz_run(struct fguest_fuzz *g, const uint8_t *data, size_t size)
{
	static const unsigned lens[4] = {1, 2, 4, 8};
	struct fz z = {data, size, 0};
	for (int ops = 0; z.off < z.n && ops < FG_MAX_OPS; ops++) {
		uint8_t op = fz_u8(&z);
		unsigned q = 0;
		switch (op % 13) {
		case 0: {
			uint16_t off = fz_u16(&z);
			unsigned n = fz_u8(&z);
			for (unsigned i = 0; i < n; i++)
				g->f.mem[(off + i) % FG_MEM] = fz_u8(&z);
			break;
		}
		case 1: {
			q = fz_u8(&z) % g->nq;
			struct vring_desc *d = fake_desc(&g->f, q);
			unsigned idx = fz_u8(&z) % FG_QNUM;
			d[idx].addr = fz_u16(&z);
			d[idx].len = fz_u32(&z);
			d[idx].flags = fz_u8(&z);
			d[idx].next = fz_u8(&z);
			break;
		}
		case 2:
			q = fz_u8(&z) % g->nq;
			fake_publish(&g->f, q, fz_u8(&z));
			break;
		case 3:
			fake_kick(&g->f, fz_u8(&z) % (g->nq + 1)); /* and one past the last */
			break;
		case 4: {
			uint16_t off = fz_u16(&z) % VIRTIO_MMIO_WINDOW;
			unsigned len = lens[fz_u8(&z) & 3];
			uint64_t val = fz_u64(&z);
			g->v->dev.ops->mmio_write(&g->v->dev, off, &val, len);
			break;
		}
		case 5: {
			uint16_t off = fz_u16(&z) % VIRTIO_MMIO_WINDOW;
			uint64_t val;
			g->v->dev.ops->mmio_read(&g->v->dev, off, &val, lens[fz_u8(&z) & 3]);
			break;
		}
		case 6:
			if (g->loop)
				evloop_fire_timers(g->loop);
			break;
		case 7:
			fgz_take_used(g, fz_u8(&z) % g->nq);
			break;
		case 8: {
			unsigned n = fz_u8(&z);
			struct fz args = {z.p + z.off, PV_MIN((size_t)n, z.n - z.off), 0};
			z.off += args.n;
			if (g->host)
				g->host(g->opaque, &args);
			break;
		}
		case 9: {
			q = fz_u8(&z) % g->nq;
			unsigned n = fz_u8(&z) % 5 + 1;
			struct fake_buf b[5];
			for (unsigned i = 0; i < n; i++) {
				b[i].gpa = fz_u16(&z);
				b[i].len = fz_u16(&z);
				b[i].write = fz_u8(&z) & 1;
			}
			fake_submit(&g->f, q, b, n, false); /* indirect tables: DESC ops */
			break;
		}
		case 10: {
			q = fz_u8(&z) % g->nq;
			struct vring_avail *av = fake_ptr(&g->f, g->f.q[q].avail);
			uint16_t v = fz_u16(&z);
			av->idx = v;
			g->f.q[q].avail_idx = v;
			break;
		}
		case 11:
			fgz_setup(g);
			break;
		case 12:
			if (g->loop)
				evloop_run_once(g->loop, 0);
			break;
		}
	}
}

#endif
