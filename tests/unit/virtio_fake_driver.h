/* virtio_fake_driver.h — a host-side stand-in for a guest virtio driver, used by
 * the device unit tests, the ring fuzzer and the virtio-blk bench. A malloc'd
 * buffer stands for guest RAM (bound with virtio_dev_bind_mem); the driver writes
 * split rings into it and drives the device through its mmio ops exactly as a
 * guest's MMIO exits would (QueueNotify included), and counts interrupts. */
#ifndef PROVIUM_TESTS_VIRTIO_FAKE_DRIVER_H
#define PROVIUM_TESTS_VIRTIO_FAKE_DRIVER_H

#include "devices/virtio.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct fake_queue {
	uint16_t num;
	uint64_t desc, avail, used;
	uint16_t avail_idx, last_used, next_desc;
};

struct fake_drv {
	uint8_t *mem;
	uint64_t size, brk;
	struct virtio_dev *v;
	struct fake_queue q[VIRTIO_MAX_QUEUES];
	atomic_int irqs;        /* level-raise signals */
	atomic_int lowers;
};

struct fake_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;             /* device-writable */
};

static void fake_signal(struct virtio_dev *v, bool level, void *opaque)
{
	(void)v;
	struct fake_drv *f = opaque;
	if (level)
		atomic_fetch_add(&f->irqs, 1);
	else
		atomic_fetch_add(&f->lowers, 1);
}

static inline int fake_init(struct fake_drv *f, struct virtio_dev *v, uint64_t size)
{
	memset(f, 0, sizeof(*f));
	f->mem = calloc(1, size);
	if (!f->mem)
		return -1;
	f->size = size;
	f->brk = 0x1000;
	f->v = v;
	virtio_dev_bind_mem(v, f->mem, size);
	v->signal = fake_signal;
	v->signal_opaque = f;
	return 0;
}

static inline void fake_fini(struct fake_drv *f)
{
	free(f->mem);
	f->mem = NULL;
}

static inline uint64_t fake_alloc(struct fake_drv *f, uint64_t len, uint64_t align)
{
	uint64_t a = (f->brk + align - 1) & ~(align - 1);
	if (a + len > f->size)
		abort();
	f->brk = a + len;
	return a;
}

static inline void *fake_ptr(struct fake_drv *f, uint64_t gpa)
{
	return f->mem + gpa;
}

static inline void fake_wr32(struct fake_drv *f, uint64_t off, uint32_t val)
{
	f->v->dev.ops->mmio_write(&f->v->dev, off, &val, 4);
}

static inline uint32_t fake_rd32(struct fake_drv *f, uint64_t off)
{
	uint32_t val;
	f->v->dev.ops->mmio_read(&f->v->dev, off, &val, 4);
	return val;
}

/* Negotiates features (the intersection of `want` and the offer); returns the
 * accepted set, or 0 when the device refused FEATURES_OK. */
static inline uint64_t fake_negotiate(struct fake_drv *f, uint64_t want)
{
	fake_wr32(f, VIRTIO_MMIO_STATUS, 0);
	fake_wr32(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	fake_wr32(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	uint64_t offer = 0;
	for (uint32_t sel = 0; sel < 2; sel++) {
		fake_wr32(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
		offer |= (uint64_t)fake_rd32(f, VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
	}
	uint64_t acc = offer & want;
	for (uint32_t sel = 0; sel < 2; sel++) {
		fake_wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		fake_wr32(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(acc >> (32 * sel)));
	}
	uint32_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		      VIRTIO_CONFIG_S_FEATURES_OK;
	fake_wr32(f, VIRTIO_MMIO_STATUS, st);
	if (!(fake_rd32(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return 0;
	return acc;
}

static inline void fake_setup_queue(struct fake_drv *f, unsigned q, uint16_t num)
{
	struct fake_queue *fq = &f->q[q];
	memset(fq, 0, sizeof(*fq));
	fq->num = num;
	fq->desc = fake_alloc(f, 16ull * num, 16);
	fq->avail = fake_alloc(f, 6 + 2ull * num, 2);
	fq->used = fake_alloc(f, 6 + 8ull * num, 4);
	fake_wr32(f, VIRTIO_MMIO_QUEUE_SEL, q);
	fake_wr32(f, VIRTIO_MMIO_QUEUE_NUM, num);
	fake_wr32(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)fq->desc);
	fake_wr32(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(fq->desc >> 32));
	fake_wr32(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)fq->avail);
	fake_wr32(f, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(fq->avail >> 32));
	fake_wr32(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)fq->used);
	fake_wr32(f, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(fq->used >> 32));
	fake_wr32(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

static inline void fake_driver_ok(struct fake_drv *f)
{
	fake_wr32(f, VIRTIO_MMIO_STATUS, fake_rd32(f, VIRTIO_MMIO_STATUS) |
					     VIRTIO_CONFIG_S_DRIVER_OK);
}

static inline struct vring_desc *fake_desc(struct fake_drv *f, unsigned q)
{
	return fake_ptr(f, f->q[q].desc);
}

/* Publishes a chain head on the avail ring (no kick). */
static inline void fake_publish(struct fake_drv *f, unsigned q, uint16_t head)
{
	struct fake_queue *fq = &f->q[q];
	struct vring_avail *av = fake_ptr(f, fq->avail);
	av->ring[fq->avail_idx % fq->num] = head;
	__atomic_store_n(&av->idx, (uint16_t)(fq->avail_idx + 1), __ATOMIC_RELEASE);
	fq->avail_idx++;
}

/* Writes a chain of n buffers (direct descriptors, taken round-robin) and
 * publishes it; returns the head. With `indirect`, one descriptor points to an
 * indirect table allocated in guest memory. */
static inline uint16_t fake_submit(struct fake_drv *f, unsigned q, const struct fake_buf *b,
				   unsigned n, bool indirect)
{
	struct fake_queue *fq = &f->q[q];
	struct vring_desc *d = fake_desc(f, q);
	uint16_t head = fq->next_desc;
	if (indirect) {
		uint64_t t = fake_alloc(f, 16ull * n, 16);
		struct vring_desc *tab = fake_ptr(f, t);
		for (unsigned i = 0; i < n; i++) {
			tab[i].addr = b[i].gpa;
			tab[i].len = b[i].len;
			tab[i].flags = (b[i].write ? VRING_DESC_F_WRITE : 0) |
				       (i + 1 < n ? VRING_DESC_F_NEXT : 0);
			tab[i].next = (uint16_t)(i + 1);
		}
		d[head] = (struct vring_desc){t, 16 * n, VRING_DESC_F_INDIRECT, 0};
		fq->next_desc = (uint16_t)((head + 1) % fq->num);
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint16_t idx = (uint16_t)((head + i) % fq->num);
			uint16_t nx = (uint16_t)((idx + 1) % fq->num);
			d[idx].addr = b[i].gpa;
			d[idx].len = b[i].len;
			d[idx].flags = (b[i].write ? VRING_DESC_F_WRITE : 0) |
				       (i + 1 < n ? VRING_DESC_F_NEXT : 0);
			d[idx].next = nx;
		}
		fq->next_desc = (uint16_t)((head + n) % fq->num);
	}
	fake_publish(f, q, head);
	return head;
}

static inline void fake_kick(struct fake_drv *f, unsigned q)
{
	fake_wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Takes the next used element: 1 and the id and length, or 0 when there is none. */
static inline int fake_get_used(struct fake_drv *f, unsigned q, uint32_t *id, uint32_t *len)
{
	struct fake_queue *fq = &f->q[q];
	struct vring_used *u = fake_ptr(f, fq->used);
	if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == fq->last_used)
		return 0;
	struct vring_used_elem *e = &u->ring[fq->last_used % fq->num];
	if (id)
		*id = e->id;
	if (len)
		*len = e->len;
	fq->last_used++;
	/* Like a driver with callbacks enabled: interrupt for the next completion. */
	struct vring_avail *av = fake_ptr(f, fq->avail);
	__atomic_store_n(&av->ring[fq->num], fq->last_used, __ATOMIC_RELEASE);
	return 1;
}

/* Saves the device's state (dev.ops->save) into sb and unpacks it into up, as a
 * snapshot would; the caller destroys both. 0, or -1 when either step failed. */
static inline int fake_save_state(struct device *d, msgpack_sbuffer *sb, msgpack_unpacked *up)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_unpacked_init(up);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (d->ops->save(d, &pk) != 0)
		return -1;
	return msgpack_unpack_next(up, sb->data, sb->size, NULL) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

#endif
