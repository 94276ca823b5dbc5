/* vsock_fake_guest.h — a host-side stand-in for a guest's virtio-vsock driver,
 * on top of virtio_fake_driver.h: posts receive buffers, sends packets on the TX
 * queue, takes received packets, and pumps the device's event loop. Used by
 * test_virtio_vsock.c and bench_vsock.c. */
#ifndef PROVIUM_TESTS_VSOCK_FAKE_GUEST_H
#define PROVIUM_TESTS_VSOCK_FAKE_GUEST_H

#include "devices/virtio_vsock.h"
#include "tests/unit/virtio_fake_driver.h"
#include "vmm/evloop.h"

#include <linux/virtio_vsock.h>

#define FG_MEM (32u << 20)
#define FG_QN 256
#define FG_RXBUF (44u + 65536u)
#define FG_CID 42

struct fguest {
	struct virtio_vsock *s;
	struct fake_drv f;
	struct evloop *loop;
	uint64_t rx_gpa[FG_QN];   /* buffer of each RX descriptor head */
	uint64_t tx_gpa;          /* scratch: the device copies during the kick */
	uint64_t ev_gpa;
	unsigned rx_posted;
};

static inline int fg_init(struct fguest *g)
{
	memset(g, 0, sizeof(*g));
	if (virtio_vsock_create("vsock0", FG_CID, &g->s) < 0)
		return -1;
	if (fake_init(&g->f, virtio_vsock_vdev(g->s), FG_MEM) < 0)
		return -1;
	if (!fake_negotiate(&g->f, ~0ull))
		return -1;
	for (unsigned q = 0; q < 3; q++)
		fake_setup_queue(&g->f, q, FG_QN);
	fake_driver_ok(&g->f);
	for (unsigned i = 0; i < FG_QN; i++)
		g->rx_gpa[i] = fake_alloc(&g->f, FG_RXBUF, 64);
	g->tx_gpa = fake_alloc(&g->f, 44 + 65536, 64);
	g->ev_gpa = fake_alloc(&g->f, 64, 64);
	if (evloop_create(&g->loop) < 0)
		return -1;
	return virtio_vsock_start(g->s, g->loop);
}

static inline void fg_fini(struct fguest *g)
{
	virtio_vsock_destroy(g->s);
	evloop_destroy(g->loop);
	fake_fini(&g->f);
}

/* Posts n receive buffers of `size` bytes (one descriptor each) and kicks. Each
 * descriptor index i always gets buffer rx_gpa[i]: with one-descriptor chains the
 * head is the slot. */
static inline void fg_post_rx(struct fguest *g, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = g->f.q[0].next_desc;
		struct fake_buf b = {g->rx_gpa[slot], size, true};
		fake_submit(&g->f, 0, &b, 1, false);
		g->rx_posted++;
	}
	fake_kick(&g->f, 0);
}

static inline void fg_pump(struct fguest *g)
{
	for (int i = 0; i < 8; i++)
		evloop_run_once(g->loop, 0);
}

/* Takes the next packet the device put on the RX queue: 1 with header and up to
 * cap payload bytes, 0 when none. Re-posts the buffer when `repost`. */
static inline int fg_recv(struct fguest *g, struct virtio_vsock_hdr *h, void *data, size_t cap,
			  bool repost)
{
	uint32_t id, len;
	if (!fake_get_used(&g->f, 0, &id, &len))
		return 0;
	uint8_t *p = fake_ptr(&g->f, g->rx_gpa[id]);
	memcpy(h, p, 44);
	if (data)
		memcpy(data, p + 44, h->len < cap ? h->len : cap);
	if (len != 44 + h->len)
		h->op = 0xffff; /* flag a used length that disagrees with the header */
	g->rx_posted--;
	if (repost) {
		/* Reuse the same descriptor slot for the same buffer. */
		struct fake_queue *fq = &g->f.q[0];
		struct vring_desc *d = fake_desc(&g->f, 0);
		d[id] = (struct vring_desc){g->rx_gpa[id], FG_RXBUF, VRING_DESC_F_WRITE, 0};
		fake_publish(&g->f, 0, (uint16_t)id);
		(void)fq;
		g->rx_posted++;
		fake_kick(&g->f, 0);
	}
	return 1;
}

static inline struct virtio_vsock_hdr fg_hdr(uint32_t gport, uint32_t hport, uint16_t op,
					     uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	return (struct virtio_vsock_hdr){
		.src_cid = FG_CID, .dst_cid = 2, .src_port = gport, .dst_port = hport, .len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM, .op = op, .buf_alloc = buf_alloc,
		.fwd_cnt = fwd_cnt,
	};
}

/* Sends one packet (header + payload in one readable buffer) and kicks TX. */
static inline void fg_send_raw(struct fguest *g, const struct virtio_vsock_hdr *h,
			       const void *data, uint32_t out_len)
{
	uint8_t *p = fake_ptr(&g->f, g->tx_gpa);
	memcpy(p, h, 44);
	if (data && out_len > 44)
		memcpy(p + 44, data, out_len - 44);
	struct fake_buf b = {g->tx_gpa, out_len, false};
	fake_submit(&g->f, 1, &b, 1, false);
	fake_kick(&g->f, 1);
	while (fake_get_used(&g->f, 1, NULL, NULL))
		;
}

static inline void fg_send(struct fguest *g, const struct virtio_vsock_hdr *h, const void *data)
{
	fg_send_raw(g, h, data, 44 + h->len);
}

#endif
