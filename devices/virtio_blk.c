/* virtio_blk.c — virtio-blk (virtio 1.x §5.2) over a raw image, with fault rules
 * checked on every request (fail reads/writes, slow, drop writes, corrupt), a
 * volatile writeback cache with crash, host-side sector access, stats and live
 * detach. The storage itself is blk_store.c, the fault rules
 * virtio_blk_faults.c; the API is virtio_blk.h.
 *
 * Threads: requests are taken under the transport lock (vdev.lock) on whichever
 * thread notified (event loop for ioeventfd, a vCPU for the MMIO-exit fallback);
 * image, cache, rules and stats are under b->lock, which the host API also takes.
 * Order: vdev.lock before b->lock. A slow request waits on an event-loop timer and
 * is completed by it, so neither the vCPU nor other devices wait. */
#include "devices/virtio_blk_int.h"
#include "vmm/evloop.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct device_ops blk_ops;

/* ---- requests ---- */

static unsigned data_iov(const struct virtq_elem *e, bool in, struct iovec *out, size_t *len)
{
	const struct iovec *src = in ? &e->iov[e->n_out] : e->iov;
	unsigned n = in ? e->n_in : e->n_out;
	size_t skip = in ? 0 : sizeof(struct virtio_blk_outhdr);
	size_t total = in ? e->in_len - 1 : e->out_len - skip;
	unsigned k = 0;
	size_t left = total;
	for (unsigned i = 0; i < n && left; i++) {
		size_t l = src[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		size_t c = PV_MIN(l - skip, left);
		out[k].iov_base = (char *)src[i].iov_base + skip;
		out[k++].iov_len = c;
		left -= c;
		skip = 0;
	}
	*len = total;
	return k;
}

/* Does the I/O for a request (b->lock held); returns the status byte and the
 * bytes written into the guest's buffers (excluding the status byte). Uses only
 * what parse() copied and checked; blk_store checks every range again against
 * the capacity now (an insert may have changed the disk under a delayed request). */
static uint8_t do_io(struct virtio_blk *b, struct blk_req *q, bool drop, uint32_t *written)
{
	struct virtq_elem *e = &q->elem;
	struct iovec iov[VIRTQ_MAX_SEGS];
	size_t len;
	unsigned n;
	*written = 0;
	if (b->detached)
		return VIRTIO_BLK_S_IOERR;
	switch (q->type) {
	case VIRTIO_BLK_T_IN:
		n = data_iov(e, true, iov, &len);
		if (blk_store_readv(&b->store, q->sector, q->nsect, iov, n) < 0)
			return VIRTIO_BLK_S_IOERR;
		blk_apply_corrupt(b, q, iov, n);
		*written = (uint32_t)len;
		b->stats.reads++;
		b->stats.read_bytes += len;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_OUT:
		n = data_iov(e, false, iov, &len);
		if (!drop && blk_store_writev(&b->store, q->sector, q->nsect, iov, n) < 0)
			return VIRTIO_BLK_S_IOERR;
		b->stats.writes++;
		b->stats.write_bytes += len;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_FLUSH:
		b->stats.flushes++;
		return blk_store_flush(&b->store) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		n = data_iov(e, true, iov, &len);
		*written = (uint32_t)buf_to_iov(iov, n, 0, b->serial,
						PV_MIN(len, sizeof(b->serial)));
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		for (unsigned i = 0; i < q->nseg && !drop; i++)
			if (blk_store_zero(&b->store, q->seg[i].sector, q->seg[i].nsect,
					   q->seg[i].unmap) < 0)
				return VIRTIO_BLK_S_IOERR;
		b->stats.writes++;
		return VIRTIO_BLK_S_OK;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* Checks the request's shape; fills type/sector/nsect. Returns VIRTIO_BLK_S_OK or
 * the status to answer with right away. */
static uint8_t parse(struct virtio_blk *b, struct blk_req *q, uint64_t *lo, uint64_t *hi)
{
	struct virtq_elem *e = &q->elem;
	struct virtio_blk_outhdr h;
	if (iov_to_buf(e->iov, e->n_out, 0, &h, sizeof(h)) != sizeof(h))
		return VIRTIO_BLK_S_IOERR;
	q->type = le32toh(h.type);
	q->sector = le64toh(h.sector);
	q->nsect = 0;
	q->nseg = 0;
	*lo = q->sector;
	*hi = q->sector;
	uint64_t cap = b->store.sectors;
	uint64_t dlen = 0;
	switch (q->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		dlen = q->type == VIRTIO_BLK_T_IN ? e->in_len - 1 : e->out_len - sizeof(h);
		if (dlen % SECT)
			return VIRTIO_BLK_S_IOERR;
		q->nsect = dlen / SECT;
		if (q->sector > cap || q->nsect > cap - q->sector)
			return VIRTIO_BLK_S_IOERR;
		if (q->type == VIRTIO_BLK_T_OUT && b->readonly)
			return VIRTIO_BLK_S_IOERR;
		*hi = q->nsect ? q->sector + q->nsect - 1 : q->sector;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_GET_ID:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		if (b->readonly)
			return VIRTIO_BLK_S_IOERR;
		struct virtio_blk_discard_write_zeroes seg[MAX_DZ_SEGS];
		dlen = e->out_len - sizeof(h);
		if (!dlen || dlen % sizeof(seg[0]) || dlen / sizeof(seg[0]) > MAX_DZ_SEGS)
			return VIRTIO_BLK_S_UNSUPP;
		/* One copy of the segments; the checks and the I/O both use it. */
		q->nseg = (unsigned)(dlen / sizeof(seg[0]));
		iov_to_buf(e->iov, e->n_out, sizeof(h), seg, dlen);
		*lo = UINT64_MAX;
		*hi = 0;
		for (unsigned i = 0; i < q->nseg; i++) {
			uint64_t s = le64toh(seg[i].sector), c = le32toh(seg[i].num_sectors);
			uint32_t fl = le32toh(seg[i].flags);
			if (fl & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
				return VIRTIO_BLK_S_UNSUPP;
			if (!c || s > cap || c > cap - s)
				return VIRTIO_BLK_S_IOERR;
			q->seg[i] = (struct blk_seg){s, c, q->type == VIRTIO_BLK_T_DISCARD ||
					(fl & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)};
			*lo = PV_MIN(*lo, s);
			*hi = PV_MAX(*hi, s + c - 1);
		}
		return VIRTIO_BLK_S_OK;
	}
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* Writes the status byte and puts the request on the used ring (vdev.lock held).
 * Returns whether the driver wants an interrupt. */
static bool complete(struct virtio_blk *b, struct blk_req *q, uint8_t status, uint32_t written)
{
	struct virtq_elem *e = &q->elem;
	buf_to_iov(&e->iov[e->n_out], e->n_in, e->in_len - 1, &status, 1);
	if (status != VIRTIO_BLK_S_OK) {
		pthread_mutex_lock(&b->lock);
		b->stats.errors++;
		pthread_mutex_unlock(&b->lock);
	}
	if (!virtio_dev_queue_live(&b->vdev, 0))
		return false;
	return virtq_push(&b->vdev.vq[0], e->head, written + 1);
}

static void link_pending(struct virtio_blk *b, struct blk_req *q)
{
	q->prev = NULL;
	q->next = b->pending;
	if (b->pending)
		b->pending->prev = q;
	b->pending = q;
	b->npending++;
	b->nlive++;
}

static void unlink_pending(struct virtio_blk *b, struct blk_req *q)
{
	b->npending--;
	if (!q->cancelled)
		b->nlive--;
	if (q->prev)
		q->prev->next = q->next;
	else
		b->pending = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->next = q->prev = NULL;
}

static void delayed_done(void *opaque)
{
	struct blk_req *q = opaque;
	struct virtio_blk *b = q->b;
	pthread_mutex_lock(&b->vdev.lock);
	pthread_mutex_lock(&b->lock);
	unlink_pending(b, q);
	bool cancelled = q->cancelled;
	uint8_t st = 0;
	uint32_t written = 0;
	if (!cancelled) {
		st = do_io(b, q, q->drop, &written);
	}
	pthread_mutex_unlock(&b->lock);
	if (!cancelled && complete(b, q, st, written))
		virtio_dev_interrupt(&b->vdev, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&b->vdev.lock);
	free(q);
}

/* Takes one request (vdev.lock held); returns whether to interrupt, and hands
 * the request to a timer when a SLOW rule applies (then *q is NULL on return). */
static bool handle(struct virtio_blk *b, struct blk_req **qp)
{
	struct blk_req *q = *qp;
	uint64_t lo, hi;
	uint32_t written = 0;
	if (!q->elem.in_len) { /* nowhere to put a status: hand it back, count an error */
		pthread_mutex_lock(&b->lock);
		b->stats.errors++;
		pthread_mutex_unlock(&b->lock);
		return virtio_dev_queue_live(&b->vdev, 0) &&
		       virtq_push(&b->vdev.vq[0], q->elem.head, 0);
	}
	uint8_t st = parse(b, q, &lo, &hi);
	if (st != VIRTIO_BLK_S_OK)
		return complete(b, q, st, 0);
	pthread_mutex_lock(&b->lock);
	bool is_read = q->type == VIRTIO_BLK_T_IN || q->type == VIRTIO_BLK_T_GET_ID;
	struct blk_verdict v = {0};
	if (q->type != VIRTIO_BLK_T_GET_ID)
		v = blk_judge(b, is_read, q->type == VIRTIO_BLK_T_FLUSH, lo, hi);
	if (b->detached || v.fail) {
		pthread_mutex_unlock(&b->lock);
		return complete(b, q, VIRTIO_BLK_S_IOERR, 0);
	}
	if (v.delay_ms && b->loop &&
	    (b->nlive >= b->vdev.vq[0].num || b->npending >= BLK_MAX_DELAYED)) {
		/* Only a driver that republishes heads it has not got back gets here. */
		pthread_mutex_unlock(&b->lock);
		pv_debug("%s: %u requests already delayed; failing one more", b->vdev.dev.id,
			 b->nlive);
		return complete(b, q, VIRTIO_BLK_S_IOERR, 0);
	}
	if (v.delay_ms && b->loop) {
		q->drop = v.drop;
		link_pending(b, q);
		int64_t t = evloop_add_timer(b->loop, (uint64_t)v.delay_ms * 1000000ull,
					     delayed_done, q);
		if (t > 0) {
			pthread_mutex_unlock(&b->lock);
			*qp = NULL;
			return false;
		}
		unlink_pending(b, q); /* no timer: complete now */
	}
	st = do_io(b, q, v.drop, &written);
	pthread_mutex_unlock(&b->lock);
	return complete(b, q, st, written);
}

static void blk_queue_notify(struct device *d, unsigned queue)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	struct virtio_dev *v = &b->vdev;
	struct blk_req *q = NULL;
	bool irq = false;
	if (queue != 0)
		return;
	pthread_mutex_lock(&v->lock);
	struct virtqueue *vq = &v->vq[0];
	unsigned taken = 0;
	while (virtio_dev_queue_live(v, 0)) {
		virtq_enable_notify(vq, false);
		for (;;) {
			if (taken++ >= VIRTIO_NOTIFY_BUDGET && virtio_dev_defer(v, 0))
				goto out;
			if (!q && !(q = malloc(sizeof(*q)))) {
				pv_log("%s: out of memory for a request", d->id);
				goto out;
			}
			int r = virtq_pop(vq, &q->elem);
			if (r < 0) {
				virtio_dev_needs_reset(v, pv_errmsg());
				goto out;
			}
			if (r == 0)
				break;
			q->b = b;
			q->cancelled = false;
			q->next = q->prev = NULL;
			irq |= handle(b, &q);
		}
		virtq_enable_notify(vq, true);
		if (!virtq_has_avail(vq))
			break;
	}
out:
	if (irq)
		virtio_dev_interrupt(v, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&v->lock);
	free(q);
}

/* Marks timer-held requests so their timers drop them (or fail them when
 * `fail_now`, used by detach). vdev.lock and b->lock held. Returns irq needed. */
static bool cancel_pending(struct virtio_blk *b, bool fail_now)
{
	bool irq = false;
	for (struct blk_req *q = b->pending; q; q = q->next) {
		if (q->cancelled)
			continue;
		q->cancelled = true;
		b->nlive--;
		if (fail_now) {
			uint8_t st = VIRTIO_BLK_S_IOERR;
			struct virtq_elem *e = &q->elem;
			buf_to_iov(&e->iov[e->n_out], e->n_in, e->in_len - 1, &st, 1);
			b->stats.errors++;
			if (virtio_dev_queue_live(&b->vdev, 0))
				irq |= virtq_push(&b->vdev.vq[0], e->head, 1);
		}
	}
	return irq;
}

/* ---- config space, ops ---- */

static void blk_config_read(struct virtio_dev *v, uint64_t off, void *data, unsigned len)
{
	struct virtio_blk *b = (struct virtio_blk *)v;
	memcpy(data, (uint8_t *)&b->cfg + off, len);
}

static void blk_reset(struct device *d)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	pthread_mutex_lock(&b->vdev.lock);
	pthread_mutex_lock(&b->lock);
	cancel_pending(b, false);
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_unlock(&b->vdev.lock);
	virtio_dev_reset(&b->vdev);
}

static void pack_sector(void *opaque, uint64_t lba, const uint8_t *data)
{
	msgpack_packer *pk = opaque;
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint64(pk, lba);
	msgpack_pack_bin_with_body(pk, data, SECT);
}

/* State: the transport, the cache mode, detached, and the volatile cache itself
 * ("cache": [[lba, 512 bytes], ...]) so a restored VM keeps its unflushed writes. */
static int blk_save(struct device *d, msgpack_packer *pk)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	msgpack_pack_map(pk, 5);
	msgpack_pack_str_with_body(pk, "transport", 9);
	int err = virtio_dev_save(&b->vdev, pk);
	pthread_mutex_lock(&b->lock);
	msgpack_pack_str_with_body(pk, "path", 4);
	msgpack_pack_str_with_body(pk, b->path, strlen(b->path));
	msgpack_pack_str_with_body(pk, "writeback", 9);
	b->store.writeback ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	msgpack_pack_str_with_body(pk, "detached", 8);
	b->detached ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	msgpack_pack_str_with_body(pk, "cache", 5);
	msgpack_pack_array(pk, (uint32_t)b->store.nent);
	blk_store_foreach(&b->store, pack_sector, pk);
	pthread_mutex_unlock(&b->lock);
	return err;
}

static int blk_load(struct device *d, const msgpack_object *st)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	const msgpack_object *t = virtio_msgpack_get(st, "transport");
	const msgpack_object *wb = virtio_msgpack_get(st, "writeback");
	const msgpack_object *det = virtio_msgpack_get(st, "detached");
	const msgpack_object *cache = virtio_msgpack_get(st, "cache");
	if (!t)
		return pv_error(EINVAL, "%s: saved state has no transport", d->id);
	int err = virtio_dev_load(&b->vdev, t);
	if (err < 0)
		return err;
	pthread_mutex_lock(&b->lock);
	if (wb && wb->type == MSGPACK_OBJECT_BOOLEAN)
		b->store.writeback = wb->via.boolean;
	if (det && det->type == MSGPACK_OBJECT_BOOLEAN)
		b->detached = det->via.boolean;
	if (cache && cache->type == MSGPACK_OBJECT_ARRAY) {
		blk_store_discard_cache(&b->store);
		for (uint32_t i = 0; i < cache->via.array.size && !err; i++) {
			const msgpack_object *e = &cache->via.array.ptr[i];
			if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
			    e->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
			    e->via.array.ptr[1].type != MSGPACK_OBJECT_BIN ||
			    e->via.array.ptr[1].via.bin.size != SECT)
				err = pv_error(EINVAL, "%s: saved cache entry %u is malformed", d->id, i);
			else if (blk_store_cache_put(&b->store, e->via.array.ptr[0].via.u64,
						     (const uint8_t *)e->via.array.ptr[1].via.bin.ptr) < 0)
				err = pv_error(EINVAL, "%s: saved cache entry %u is outside the disk",
					       d->id, i);
		}
	}
	pthread_mutex_unlock(&b->lock);
	return err;
}

static void blk_destroy(struct device *d)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	virtio_dev_fini(&b->vdev);
	while (b->pending) {
		struct blk_req *q = b->pending;
		unlink_pending(b, q);
		free(q);
	}
	blk_store_flush(&b->store); /* completed writes survive a clean shutdown */
	blk_store_close(&b->store);
	if (b->store.fd >= 0)
		close(b->store.fd);
	if (b->own_path)
		unlink(b->path);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static const struct device_ops blk_ops = {
	.name = "virtio-blk",
	.realize = virtio_mmio_realize,
	.mmio_read = virtio_mmio_read,
	.mmio_write = virtio_mmio_write,
	.queue_notify = blk_queue_notify,
	.save = blk_save,
	.load = blk_load,
	.reset = blk_reset,
	.destroy = blk_destroy,
};

static const struct virtio_dev_ops blk_vops = {
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = 1,
	.config_size = sizeof(struct virtio_blk_config),
	.config_read = blk_config_read,
};

/* ---- the C API (virtio_blk.h) ---- */

static int open_image(struct virtio_blk *b, const struct virtio_blk_opts *o, uint64_t *bytes)
{
	int fd;
	if (!o->path) {
		if (!o->size)
			return pv_error(EINVAL, "%s: a disk needs a path or a size", b->vdev.dev.id);
		const char *tmp = getenv("TMPDIR");
		snprintf(b->path, sizeof(b->path), "%s/provium-disk-XXXXXX", tmp ? tmp : "/tmp");
		fd = mkostemp(b->path, O_CLOEXEC);
		if (fd < 0)
			return pv_error(errno, "%s: temporary image in %s: %s", b->vdev.dev.id,
					tmp ? tmp : "/tmp", strerror(errno));
		b->own_path = true;
	} else {
		snprintf(b->path, sizeof(b->path), "%s", o->path);
		fd = open(o->path, (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && o->size)
			fd = open(o->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return pv_error(errno, "%s: image %s: %s", b->vdev.dev.id, o->path,
					strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (st.st_size == 0 && o->size &&
	    ftruncate(fd, (off_t)PV_ALIGN_UP(o->size, (uint64_t)SECT)) < 0)
		goto fail;
	if (fstat(fd, &st) < 0)
		goto fail;
	*bytes = (uint64_t)st.st_size / SECT * SECT;
	if (!*bytes) {
		close(fd);
		return pv_error(EINVAL, "%s: image %s is smaller than one sector", b->vdev.dev.id,
				b->path);
	}
	b->store.fd = fd;
	return 0;
fail:;
	int e = errno;
	close(fd);
	return pv_error(e, "%s: image %s: %s", b->vdev.dev.id, b->path, strerror(e));
}

int virtio_blk_create(const struct virtio_blk_opts *o, struct virtio_blk **out)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return pv_error(ENOMEM, "virtio-blk: out of memory");
	const char *id = o->id ? o->id : "vda";
	uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_FLUSH);
	if (o->readonly)
		f |= 1ull << VIRTIO_BLK_F_RO;
	else
		f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	int err = virtio_dev_init(&b->vdev, &blk_ops, &blk_vops, id, f);
	if (err < 0) {
		free(b);
		return err;
	}
	pthread_mutex_init(&b->lock, NULL);
	b->store.fd = -1;
	b->readonly = o->readonly;
	b->next_rule_id = 1;
	uint64_t bytes = 0;
	err = open_image(b, o, &bytes);
	if (err < 0) {
		virtio_dev_fini(&b->vdev);
		pthread_mutex_destroy(&b->lock);
		free(b);
		return err;
	}
	int fd = b->store.fd;
	blk_store_open(&b->store, fd, bytes / SECT);
	const char *serial = o->serial ? o->serial : id;
	memcpy(b->serial, serial, PV_MIN(strlen(serial), sizeof(b->serial)));

	struct virtio_blk_config *c = &b->cfg;
	c->capacity = htole64(bytes / SECT);
	c->seg_max = htole32(VIRTQ_MAX_SEGS - 2);
	c->blk_size = htole32(SECT);
	c->max_discard_sectors = htole32(0x3fffff);
	c->max_discard_seg = htole32(MAX_DZ_SEGS);
	c->discard_sector_alignment = htole32(1);
	c->max_write_zeroes_sectors = htole32(0x3fffff);
	c->max_write_zeroes_seg = htole32(MAX_DZ_SEGS);
	c->write_zeroes_may_unmap = 1;
	*out = b;
	return 0;
}

int virtio_blk_attach(struct virtio_blk *b, struct vm *vm)
{
	int err = blk_ops.realize(&b->vdev.dev, vm);
	if (err < 0)
		return err;
	b->loop = vm_evloop(vm);
	virtio_mmio_owned_by(&b->vdev, vm);
	return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (b)
		blk_destroy(&b->vdev.dev);
}

struct virtio_dev *virtio_blk_vdev(struct virtio_blk *b)
{
	return &b->vdev;
}

void virtio_blk_set_evloop(struct virtio_blk *b, struct evloop *loop)
{
	b->loop = loop;
}

int virtio_blk_set_cache(struct virtio_blk *b, enum virtio_blk_cache mode)
{
	int err = 0;
	pthread_mutex_lock(&b->lock);
	if (mode == VIRTIO_BLK_CACHE_NONE && b->store.writeback)
		err = blk_store_flush(&b->store);
	if (!err)
		b->store.writeback = mode == VIRTIO_BLK_CACHE_WRITEBACK;
	pthread_mutex_unlock(&b->lock);
	return err < 0 ? pv_error(-err, "%s: writing the cache out: %s", b->vdev.dev.id,
				  strerror(-err)) : 0;
}

enum virtio_blk_cache virtio_blk_get_cache(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	bool wb = b->store.writeback;
	pthread_mutex_unlock(&b->lock);
	return wb ? VIRTIO_BLK_CACHE_WRITEBACK : VIRTIO_BLK_CACHE_NONE;
}

uint64_t virtio_blk_crash(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	uint64_t lost = blk_store_discard_cache(&b->store);
	pthread_mutex_unlock(&b->lock);
	return lost;
}

uint64_t virtio_blk_dirty_bytes(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	uint64_t n = b->store.nent * SECT;
	pthread_mutex_unlock(&b->lock);
	return n;
}

static int check_range(struct virtio_blk *b, uint64_t lba, uint64_t count)
{
	if (lba > b->store.sectors || count > b->store.sectors - lba)
		return pv_error(ERANGE, "%s: sectors %" PRIu64 "+%" PRIu64 " are beyond the end"
				" of the disk (%" PRIu64 " sectors)", b->vdev.dev.id, lba, count,
				b->store.sectors);
	return 0;
}

int virtio_blk_read_sectors(struct virtio_blk *b, uint64_t lba, uint64_t count, void *buf)
{
	int err = check_range(b, lba, count);
	if (err < 0)
		return err;
	struct iovec v = {buf, count * SECT};
	pthread_mutex_lock(&b->lock);
	err = blk_store_readv(&b->store, lba, count, &v, 1);
	pthread_mutex_unlock(&b->lock);
	return err < 0 ? pv_error(-err, "%s: reading sectors %" PRIu64 "+%" PRIu64 ": %s",
				  b->vdev.dev.id, lba, count, strerror(-err)) : 0;
}

int virtio_blk_write_sectors(struct virtio_blk *b, uint64_t lba, const void *buf, uint64_t count)
{
	int err = check_range(b, lba, count);
	if (err < 0)
		return err;
	struct iovec v = {(void *)buf, count * SECT};
	pthread_mutex_lock(&b->lock);
	bool wb = b->store.writeback;
	b->store.writeback = false; /* straight to the image ... */
	err = blk_store_writev(&b->store, lba, count, &v, 1);
	b->store.writeback = wb;
	if (!err)
		blk_store_invalidate(&b->store, lba, count); /* ... replacing cached copies */
	pthread_mutex_unlock(&b->lock);
	return err < 0 ? pv_error(-err, "%s: writing sectors %" PRIu64 "+%" PRIu64 ": %s",
				  b->vdev.dev.id, lba, count, strerror(-err)) : 0;
}

void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *s)
{
	pthread_mutex_lock(&b->lock);
	*s = b->stats;
	pthread_mutex_unlock(&b->lock);
}

uint64_t virtio_blk_size(struct virtio_blk *b)
{
	return b->store.sectors * SECT;
}

const char *virtio_blk_path(struct virtio_blk *b)
{
	return b->path;
}

const char *virtio_blk_id(struct virtio_blk *b)
{
	return b->vdev.dev.id;
}

int virtio_blk_detach(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->vdev.lock);
	pthread_mutex_lock(&b->lock);
	if (b->detached) {
		pthread_mutex_unlock(&b->lock);
		pthread_mutex_unlock(&b->vdev.lock);
		return 0;
	}
	b->detached = true;
	int err = blk_store_flush(&b->store);
	b->store.writeback = false;
	bool irq = cancel_pending(b, true);
	pthread_mutex_unlock(&b->lock);
	if (irq)
		virtio_dev_interrupt(&b->vdev, VIRTIO_MMIO_INT_VRING);
	virtio_dev_signal_needs_reset(&b->vdev, "disk detached by the host");
	pthread_mutex_unlock(&b->vdev.lock);
	return err < 0 ? pv_error(-err, "%s: detach: writing the cache out: %s",
				  b->vdev.dev.id, strerror(-err)) : 0;
}

bool virtio_blk_detached(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	bool d = b->detached;
	pthread_mutex_unlock(&b->lock);
	return d;
}

/* A pre-provisioned slot gets its disk on a running VM (lua/kvm.c): the old image is
 * written out and closed, the new one opened, and a config-change interrupt tells the
 * driver the capacity changed (Linux: "capacity change from 1 to N"). The readonly
 * feature was negotiated at boot and stays. Rules, stats and the cache mode stay. */
int virtio_blk_insert(struct virtio_blk *b, const char *path, uint64_t size, const char *serial)
{
	struct virtio_blk_opts o = {.path = path, .size = size, .readonly = b->readonly};
	char old_path[sizeof(b->path)];
	uint64_t bytes = 0;
	pthread_mutex_lock(&b->vdev.lock);
	pthread_mutex_lock(&b->lock);
	struct blk_store old = b->store;
	bool old_own = b->own_path;
	memcpy(old_path, b->path, sizeof(old_path));
	int err = open_image(b, &o, &bytes);
	if (err < 0) {
		b->store = old;
		memcpy(b->path, old_path, sizeof(b->path));
		pthread_mutex_unlock(&b->lock);
		pthread_mutex_unlock(&b->vdev.lock);
		return err;
	}
	int fd = b->store.fd;
	b->store = old;
	blk_store_flush(&b->store);
	bool wb = b->store.writeback;
	blk_store_close(&b->store);
	if (b->store.fd >= 0)
		close(b->store.fd);
	if (old_own)
		unlink(old_path);
	b->own_path = false;
	blk_store_open(&b->store, fd, bytes / SECT);
	b->store.writeback = wb;
	if (serial) {
		memset(b->serial, 0, sizeof(b->serial));
		memcpy(b->serial, serial, PV_MIN(strlen(serial), sizeof(b->serial)));
	}
	b->cfg.capacity = htole64(bytes / SECT);
	pthread_mutex_unlock(&b->lock);
	virtio_dev_config_changed(&b->vdev);
	pthread_mutex_unlock(&b->vdev.lock);
	return 0;
}
