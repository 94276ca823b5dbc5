/* virtqueue.c — split virtqueues, the device side (virtio 1.x §2.7): taking
 * descriptor chains off the avail ring (direct and indirect), putting them on the
 * used ring, and notification suppression (VIRTIO_RING_F_EVENT_IDX and the flags).
 *
 * Every address the driver gives us is checked against guest RAM before use; every
 * field is read once from guest memory into a local (the guest may change it
 * under us). Anything that breaks the ring rules makes virtq_pop() fail with
 * -EINVAL and a message; the device then marks itself DEVICE_NEEDS_RESET. */
#include "devices/virtio.h"
#include "vmm/util.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define fence() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rd16(p) le16toh(__atomic_load_n((uint16_t *)(p), __ATOMIC_ACQUIRE))
#define wr16(p, v) __atomic_store_n((uint16_t *)(p), htole16(v), __ATOMIC_RELEASE)

int virtq_activate(struct virtqueue *vq, const struct guest_mem *mem, bool event_idx)
{
	uint64_t n = vq->num;
	if (!n || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return pv_error(EINVAL, "queue %u: bad size %" PRIu64, vq->index, n);
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return pv_error(EINVAL, "queue %u: misaligned ring (desc 0x%" PRIx64
				", avail 0x%" PRIx64 ", used 0x%" PRIx64 ")", vq->index,
				vq->desc_gpa, vq->avail_gpa, vq->used_gpa);
	vq->desc = gmem_ptr(mem, vq->desc_gpa, 16 * n);
	vq->avail = gmem_ptr(mem, vq->avail_gpa, 6 + 2 * n);
	vq->used = gmem_ptr(mem, vq->used_gpa, 6 + 8 * n);
	if (!vq->desc || !vq->avail || !vq->used) {
		vq->desc = NULL;
		vq->avail = NULL;
		vq->used = NULL;
		return pv_error(EINVAL, "queue %u: ring outside guest RAM (desc 0x%" PRIx64
				", avail 0x%" PRIx64 ", used 0x%" PRIx64 ", size %" PRIu64 ")",
				vq->index, vq->desc_gpa, vq->avail_gpa, vq->used_gpa, n);
	}
	vq->mem = mem;
	vq->event_idx = event_idx;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_valid = false;
	return 0;
}

void virtq_reset(struct virtqueue *vq)
{
	unsigned index = vq->index;
	memset(vq, 0, sizeof(*vq));
	vq->index = index;
}

uint16_t virtq_avail_idx(struct virtqueue *vq)
{
	return vq->avail ? rd16(&vq->avail->idx) : 0;
}

bool virtq_has_avail(struct virtqueue *vq)
{
	if (!vq->avail)
		return false;
	return rd16(&vq->avail->idx) != vq->last_avail;
}

static int chain_error(struct virtqueue *vq, uint16_t head, const char *what)
{
	return pv_error(EINVAL, "queue %u: chain at descriptor %u: %s", vq->index, head, what);
}

int virtq_pop(struct virtqueue *vq, struct virtq_elem *e)
{
	if (!vq->avail)
		return 0;
	uint16_t avail_idx = rd16(&vq->avail->idx);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num)
		return pv_error(EINVAL, "queue %u: avail idx %u is more than %u ahead of %u",
				vq->index, avail_idx, vq->num, vq->last_avail);
	fence(); /* read the ring entry only after seeing idx */
	uint16_t head = rd16(&vq->avail->ring[vq->last_avail % vq->num]);
	if (head >= vq->num)
		return pv_error(EINVAL, "queue %u: avail entry %u names descriptor %u of %u",
				vq->index, vq->last_avail, head, vq->num);

	const uint8_t *table = (const uint8_t *)vq->desc;
	unsigned tsize = vq->num, idx = head, visited = 0;
	bool indirect = false;
	uint64_t total = 0;
	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		if (++visited > tsize)
			return chain_error(vq, head, indirect ? "loop in indirect table"
						      : "descriptor loop");
		/* One copy of the descriptor: the guest may rewrite it under us, and an
		 * indirect table need only be 8-byte aligned (Linux kmallocs it). */
		struct vring_desc d;
		memcpy(&d, table + 16 * idx, sizeof(d));
		uint64_t addr = le64toh(d.addr);
		uint32_t len = le32toh(d.len);
		uint16_t flags = le16toh(d.flags);
		uint16_t next = le16toh(d.next);
		if (flags & VRING_DESC_F_INDIRECT) {
			if (indirect)
				return chain_error(vq, head, "nested indirect table");
			if (flags & VRING_DESC_F_NEXT)
				return chain_error(vq, head, "indirect descriptor with NEXT");
			if (!len || len % 16)
				return chain_error(vq, head, "indirect table length not a multiple of 16");
			if (len / 16 > VIRTQ_MAX_SEGS)
				return chain_error(vq, head, "indirect table too long");
			table = gmem_ptr(vq->mem, addr, len);
			if (!table)
				return chain_error(vq, head, "indirect table outside guest RAM");
			tsize = len / 16;
			idx = 0;
			visited = 0;
			indirect = true;
			continue;
		}
		void *p = gmem_ptr(vq->mem, addr, len);
		if (!p)
			return chain_error(vq, head, "buffer outside guest RAM");
		total += len;
		if (total > VIRTQ_MAX_CHAIN_BYTES)
			return chain_error(vq, head, "chain longer than 64 MiB");
		if (e->n_out + e->n_in >= VIRTQ_MAX_SEGS)
			return chain_error(vq, head, "too many descriptors in chain");
		struct iovec *iov = &e->iov[e->n_out + e->n_in];
		iov->iov_base = p;
		iov->iov_len = len;
		if (flags & VRING_DESC_F_WRITE) {
			e->n_in++;
			e->in_len += len;
		} else {
			if (e->n_in)
				return chain_error(vq, head, "readable descriptor after a writable one");
			e->n_out++;
			e->out_len += len;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (next >= tsize)
			return chain_error(vq, head, "next index out of range");
		idx = next;
	}
	vq->last_avail++;
	return 1;
}

bool virtq_push(struct virtqueue *vq, uint16_t head, uint32_t written)
{
	if (!vq->used)
		return false;
	struct vring_used_elem *u = &vq->used->ring[vq->used_idx % vq->num];
	__atomic_store_n(&u->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&u->len, htole32(written), __ATOMIC_RELAXED);
	uint16_t old = vq->used_idx++;
	wr16(&vq->used->idx, vq->used_idx); /* release: the element is visible first */
	fence(); /* publish idx before reading the driver's suppression state */
	if (vq->event_idx) {
		uint16_t ev = rd16(&vq->avail->ring[vq->num]); /* used_event */
		return vring_need_event(ev, vq->used_idx, old);
	}
	return !(rd16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
}

void virtq_enable_notify(struct virtqueue *vq, bool enable)
{
	if (!vq->used)
		return;
	if (vq->event_idx) {
		if (enable)
			wr16(&vq->used->ring[vq->num], vq->last_avail); /* avail_event */
	} else {
		wr16(&vq->used->flags, enable ? 0 : VRING_USED_F_NO_NOTIFY);
	}
	fence();
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = PV_MIN(iov[i].iov_len - off, len - done);
		memcpy((char *)buf + done, (char *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

size_t buf_to_iov(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = PV_MIN(iov[i].iov_len - off, len - done);
		memcpy((char *)iov[i].iov_base + off, (const char *)buf + done, c);
		done += c;
		off = 0;
	}
	return done;
}
