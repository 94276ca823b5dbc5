/* virtio_rng.c — virtio-rng (virtio 1.x §5.4): one request queue; every writable
 * buffer the driver posts is filled from getrandom(2). */
#include "devices/virtio_rng.h"
#include "devices/virtio.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct virtio_rng {
	struct virtio_dev vdev;
	uint64_t bytes;
	struct virtq_elem elem;
};

static size_t fill(struct iovec *iov, unsigned n)
{
	size_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t done = 0;
		while (done < iov[i].iov_len) {
			ssize_t r = getrandom((char *)iov[i].iov_base + done,
					      iov[i].iov_len - done, 0);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return total + done;
			}
			done += (size_t)r;
		}
		total += done;
	}
	return total;
}

static void rng_queue_notify(struct device *d, unsigned queue)
{
	struct virtio_rng *r = (struct virtio_rng *)d;
	struct virtio_dev *v = &r->vdev;
	bool irq = false;
	if (queue != 0)
		return;
	pthread_mutex_lock(&v->lock);
	struct virtqueue *vq = &v->vq[0];
	unsigned taken = 0;
	while (virtio_dev_queue_live(v, 0)) {
		virtq_enable_notify(vq, false);
		int got;
		while ((got = virtq_pop(vq, &r->elem)) > 0) {
			size_t n = fill(&r->elem.iov[r->elem.n_out], r->elem.n_in);
			r->bytes += n;
			irq |= virtq_push(vq, r->elem.head, (uint32_t)n);
			if (++taken >= VIRTIO_NOTIFY_BUDGET && virtio_dev_defer(v, 0))
				goto out;
		}
		if (got < 0) {
			virtio_dev_needs_reset(v, pv_errmsg());
			break;
		}
		virtq_enable_notify(vq, true);
		if (!virtq_has_avail(vq))
			break;
	}
out:
	if (irq)
		virtio_dev_interrupt(v, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&v->lock);
}

static int rng_save(struct device *d, msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "transport", 9);
	return virtio_dev_save(virtio_dev_of(d), pk);
}

static int rng_load(struct device *d, const msgpack_object *st)
{
	const msgpack_object *t = virtio_msgpack_get(st, "transport");
	if (!t)
		return pv_error(EINVAL, "%s: saved state has no transport", d->id);
	return virtio_dev_load(virtio_dev_of(d), t);
}

static void rng_destroy(struct device *d)
{
	virtio_dev_fini(virtio_dev_of(d));
	free(d);
}

static const struct device_ops rng_ops = {
	.name = "virtio-rng",
	.realize = virtio_mmio_realize,
	.mmio_read = virtio_mmio_read,
	.mmio_write = virtio_mmio_write,
	.queue_notify = rng_queue_notify,
	.save = rng_save,
	.load = rng_load,
	.reset = virtio_mmio_reset,
	.destroy = rng_destroy,
};

static const struct virtio_dev_ops rng_vops = {
	.device_id = VIRTIO_ID_RNG,
	.num_queues = 1,
	.config_size = 0,
};

int virtio_rng_create(const char *id, struct virtio_rng **out)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r)
		return pv_error(ENOMEM, "virtio-rng: out of memory");
	int err = virtio_dev_init(&r->vdev, &rng_ops, &rng_vops, id ? id : "rng0", 0);
	if (err < 0) {
		free(r);
		return err;
	}
	*out = r;
	return 0;
}

int virtio_rng_attach(struct virtio_rng *r, struct vm *vm)
{
	int err = rng_ops.realize(&r->vdev.dev, vm);
	if (err < 0)
		return err;
	virtio_mmio_owned_by(&r->vdev, vm);
	return 0;
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	if (r)
		rng_destroy(&r->vdev.dev);
}

struct virtio_dev *virtio_rng_vdev(struct virtio_rng *r)
{
	return &r->vdev;
}

uint64_t virtio_rng_bytes(struct virtio_rng *r)
{
	pthread_mutex_lock(&r->vdev.lock);
	uint64_t n = r->bytes;
	pthread_mutex_unlock(&r->vdev.lock);
	return n;
}
