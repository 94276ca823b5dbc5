/* virtio_mmio.c — the virtio-mmio transport, version 2 (virtio 1.x §4.2, modern
 * only): the register file, feature negotiation, the status state machine (with
 * DEVICE_NEEDS_RESET), config space with its generation counter and config-change
 * interrupts, InterruptStatus/ACK, device reset, and snapshot of transport and
 * queue state.
 *
 * Wiring to a VM: an MMIO window and a GSI from the VM, queue notifications through
 * KVM ioeventfd (one eventfd per queue, matched on the queue index, served by the
 * VM's event loop) with the MMIO exit as fallback, and interrupts through KVM irqfd
 * with KVM_IRQ_LINE (an edge per interrupt, like irqfd) as fallback. */
#include "devices/virtio.h"
#include "vmm/bus.h"
#include "vmm/evloop.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VIRTIO_MMIO_MAGIC 0x74726976u /* "virt" */

#define TRANSPORT_FEATURES ((1ull << VIRTIO_F_VERSION_1) | \
			    (1ull << VIRTIO_RING_F_EVENT_IDX) | \
			    (1ull << VIRTIO_RING_F_INDIRECT_DESC))

int virtio_dev_init(struct virtio_dev *v, const struct device_ops *ops,
		    const struct virtio_dev_ops *vops, const char *id, uint64_t features)
{
	v->dev.ops = ops;
	snprintf(v->dev.id, sizeof(v->dev.id), "%s", id);
	v->vops = vops;
	v->host_features = features | TRANSPORT_FEATURES;
	v->irq = -1;
	v->irqfd = -1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		v->vq[i].index = i;
		v->ioeventfd[i] = -1;
	}
	int err = pthread_mutex_init(&v->lock, NULL);
	if (err)
		return pv_error(err, "%s: mutex: %s", id, strerror(err));
	return 0;
}

void virtio_dev_fini(struct virtio_dev *v)
{
	virtio_mmio_detach(v);
	pthread_mutex_destroy(&v->lock);
}

void virtio_dev_bind_mem(struct virtio_dev *v, void *base, uint64_t size)
{
	v->mem.base = base;
	v->mem.size = size;
}

bool virtio_dev_has_feature(const struct virtio_dev *v, unsigned bit)
{
	return v->driver_features & (1ull << bit);
}

void virtio_dev_interrupt(struct virtio_dev *v, uint32_t bits)
{
	v->isr |= bits;
	if (v->signal)
		v->signal(v, true, v->signal_opaque);
}

void virtio_dev_config_changed(struct virtio_dev *v)
{
	v->config_generation++;
	if (v->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_dev_interrupt(v, VIRTIO_MMIO_INT_CONFIG);
}

static void mark_needs_reset(struct virtio_dev *v, const char *why)
{
	if (v->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	v->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (!v->broken_logged) {
		v->broken_logged = true;
		pv_log("%s: device needs reset: %s", v->dev.id, why ? why : "(no reason)");
	}
	if (v->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_dev_interrupt(v, VIRTIO_MMIO_INT_CONFIG);
}

int virtio_dev_pop(struct virtio_dev *v, struct virtqueue *vq, struct virtq_elem *e)
{
	int got = virtq_pop(vq, e);
	if (got < 0) {
		virtio_dev_needs_reset(v, pv_errmsg());
		return got;
	}
	if (!got) {
		virtq_enable_notify(vq, true);
		return virtq_has_avail(vq) ? -EAGAIN : 0;
	}
	return 1;
}

bool virtio_dev_defer(struct virtio_dev *v, unsigned q)
{
	if (q >= VIRTIO_MAX_QUEUES || v->ioeventfd[q] < 0)
		return false;
	uint64_t one = 1;
	ssize_t r = write(v->ioeventfd[q], &one, sizeof(one));
	(void)r; /* EAGAIN: already readable, which is all we want */
	return true;
}

void virtio_dev_needs_reset(struct virtio_dev *v, const char *why)
{
	v->broken = true;
	mark_needs_reset(v, why);
}

void virtio_dev_signal_needs_reset(struct virtio_dev *v, const char *why)
{
	mark_needs_reset(v, why);
}

bool virtio_dev_queue_live(struct virtio_dev *v, unsigned q)
{
	return q < v->vops->num_queues && (v->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !v->broken && v->vq[q].ready && v->vq[q].used;
}

void virtio_dev_reset(struct virtio_dev *v)
{
	pthread_mutex_lock(&v->lock);
	bool had_isr = v->isr != 0;
	v->status = 0;
	v->broken = false;
	v->driver_features = 0;
	v->dev_feat_sel = v->drv_feat_sel = 0;
	v->queue_sel = 0;
	v->isr = 0;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		virtq_reset(&v->vq[i]);
	if (had_isr && v->signal)
		v->signal(v, false, v->signal_opaque);
	pthread_mutex_unlock(&v->lock);
}

/* ---- the register file ---- */

static uint32_t reg_read(struct virtio_dev *v, uint64_t off)
{
	struct virtqueue *q = v->queue_sel < v->vops->num_queues ? &v->vq[v->queue_sel] : NULL;
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return 2;
	case VIRTIO_MMIO_DEVICE_ID: return v->vops->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_VENDOR_PROVIUM;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return v->dev_feat_sel < 2 ? (uint32_t)(v->host_features >> (32 * v->dev_feat_sel)) : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? VIRTQ_MAX_SIZE : 0;
	case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return v->isr;
	case VIRTIO_MMIO_STATUS: return v->status;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: return q ? (uint32_t)q->desc_gpa : 0;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: return q ? (uint32_t)(q->desc_gpa >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: return q ? (uint32_t)q->avail_gpa : 0;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: return q ? (uint32_t)(q->avail_gpa >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_USED_LOW: return q ? (uint32_t)q->used_gpa : 0;
	case VIRTIO_MMIO_QUEUE_USED_HIGH: return q ? (uint32_t)(q->used_gpa >> 32) : 0;
	case VIRTIO_MMIO_CONFIG_GENERATION: return v->config_generation;
	default: return 0;
	}
}

static void set_half(uint64_t *x, bool high, uint32_t val)
{
	if (high)
		*x = (*x & 0xffffffffull) | ((uint64_t)val << 32);
	else
		*x = (*x & ~0xffffffffull) | val;
}

/* Status writes: the driver only adds bits; FEATURES_OK is refused (not latched)
 * when the driver asked for features we do not offer or left out VERSION_1. */
static void status_write(struct virtio_dev *v, uint32_t val)
{
	uint32_t add = val & ~v->status;
	if (add & VIRTIO_CONFIG_S_FEATURES_OK) {
		if ((v->driver_features & ~v->host_features) ||
		    !(v->driver_features & (1ull << VIRTIO_F_VERSION_1))) {
			pv_debug("%s: refusing features 0x%" PRIx64 " (offered 0x%" PRIx64 ")",
				 v->dev.id, v->driver_features, v->host_features);
			val &= ~VIRTIO_CONFIG_S_FEATURES_OK;
		}
	}
	if ((add & VIRTIO_CONFIG_S_DRIVER_OK) && !(v->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !(val & VIRTIO_CONFIG_S_FEATURES_OK)) {
		virtio_dev_needs_reset(v, "DRIVER_OK before FEATURES_OK");
		return;
	}
	v->status |= val; /* bits are only ever added; 0 (reset) is handled by the caller */
	if ((add & VIRTIO_CONFIG_S_DRIVER_OK) && v->vops->driver_ok)
		v->vops->driver_ok(v);
}

/* Returns the queue to notify, or -1; sets *reset when the driver wrote status 0. */
static int reg_write(struct virtio_dev *v, uint64_t off, uint32_t val, bool *reset)
{
	struct virtqueue *q = v->queue_sel < v->vops->num_queues ? &v->vq[v->queue_sel] : NULL;
	bool features_locked = v->status & VIRTIO_CONFIG_S_FEATURES_OK;
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: v->dev_feat_sel = val; break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: v->drv_feat_sel = val; break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (v->drv_feat_sel < 2 && !features_locked) {
			uint64_t d = v->driver_features;
			set_half(&d, v->drv_feat_sel == 1, val);
			v->driver_features = d;
		}
		break;
	case VIRTIO_MMIO_QUEUE_SEL: v->queue_sel = val; break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (q && !q->ready)
			q->num = val > 0xffff ? 0 : (uint16_t)val;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (!q)
			break;
		if (val == 1 && !q->ready) {
			if (virtq_activate(q, &v->mem,
					   virtio_dev_has_feature(v, VIRTIO_RING_F_EVENT_IDX)) < 0) {
				virtio_dev_needs_reset(v, pv_errmsg());
				break;
			}
			q->ready = true;
		} else if (val == 0 && q->ready) {
			virtq_reset(q);
		}
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		if (val < v->vops->num_queues)
			return (int)val;
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		if (v->isr && !(v->isr &= ~val) && v->signal)
			v->signal(v, false, v->signal_opaque);
		break;
	case VIRTIO_MMIO_STATUS:
		if (val == 0)
			*reset = true;
		else
			status_write(v, val);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if (q && !q->ready)
			set_half(&q->desc_gpa, off == VIRTIO_MMIO_QUEUE_DESC_HIGH, val);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		if (q && !q->ready)
			set_half(&q->avail_gpa, off == VIRTIO_MMIO_QUEUE_AVAIL_HIGH, val);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		if (q && !q->ready)
			set_half(&q->used_gpa, off == VIRTIO_MMIO_QUEUE_USED_HIGH, val);
		break;
	default:
		break;
	}
	return -1;
}

void virtio_mmio_read(struct device *d, uint64_t off, void *data, unsigned len)
{
	struct virtio_dev *v = virtio_dev_of(d);
	pthread_mutex_lock(&v->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;
		memset(data, 0, len);
		if (c + len <= v->vops->config_size && v->vops->config_read)
			v->vops->config_read(v, c, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t val = reg_read(v, off);
		memcpy(data, &val, 4);
	} else {
		memset(data, 0, len); /* registers are 32-bit only (§4.2.2.2) */
	}
	pthread_mutex_unlock(&v->lock);
}

void virtio_mmio_write(struct device *d, uint64_t off, const void *data, unsigned len)
{
	struct virtio_dev *v = virtio_dev_of(d);
	int notify = -1;
	bool reset = false;
	pthread_mutex_lock(&v->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;
		if (c + len <= v->vops->config_size && v->vops->config_write)
			v->vops->config_write(v, c, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t val;
		memcpy(&val, data, 4);
		notify = reg_write(v, off, val, &reset);
		if (notify >= 0)
			v->notify_exits++;
	}
	pthread_mutex_unlock(&v->lock);
	if (reset && d->ops->reset)
		d->ops->reset(d);
	if (notify >= 0 && d->ops->queue_notify)
		d->ops->queue_notify(d, (unsigned)notify);
}

/* ---- VM wiring ---- */

static void mmio_bus_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct device *d = opaque;
	d->ops->mmio_read(d, off, data, len);
}

static void mmio_bus_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct device *d = opaque;
	d->ops->mmio_write(d, off, data, len);
}

static const struct bus_ops virtio_bus_ops = {
	.read = mmio_bus_read,
	.write = mmio_bus_write,
};

/* Both paths give the guest an edge per interrupt: irqfd pulses the GSI, and the
 * fallback does the same with KVM_IRQ_LINE (1 then 0). A level held until ACK
 * would lose interrupts on the edge-triggered ISA pins Linux and the test guest
 * use for virtio-mmio (no new edge while InterruptStatus stays non-zero). */
static void signal_vm(struct virtio_dev *v, bool level, void *opaque)
{
	(void)opaque;
	if (!level)
		return;
	if (v->irqfd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(v->irqfd, &one, sizeof(one));
		(void)r; /* EAGAIN: an interrupt is already pending */
		return;
	}
	vm_irq_line(v->vm, v->irq, 1);
	vm_irq_line(v->vm, v->irq, 0);
}

static struct virtio_dev *vdev_of_queue(struct virtqueue *vq)
{
	struct virtqueue *q0 = vq - vq->index;
	return (struct virtio_dev *)((char *)q0 - offsetof(struct virtio_dev, vq));
}

static void ioeventfd_ready(void *opaque, uint32_t events)
{
	(void)events;
	struct virtqueue *vq = opaque;
	struct virtio_dev *v = vdev_of_queue(vq);
	uint64_t n;
	if (read(v->ioeventfd[vq->index], &n, sizeof(n)) != sizeof(n))
		return;
	__atomic_add_fetch(&v->notify_events, 1, __ATOMIC_RELAXED);
	if (v->dev.ops->queue_notify)
		v->dev.ops->queue_notify(&v->dev, vq->index);
}

int virtio_mmio_attach(struct virtio_dev *v, struct vm *vm)
{
	int err;
	uint64_t base = vm_alloc_mmio(vm, 0x1000);
	if (!base)
		return pv_error(ENOSPC, "%s: no MMIO space left", v->dev.id);
	int irq = vm_alloc_irq(vm);
	if (irq < 0)
		return pv_error_prefix(-irq, "%s", v->dev.id);
	v->vm = vm;
	v->dev.vm = vm;
	v->mmio_base = base;
	v->irq = irq;
	v->loop = vm_evloop(vm);
	virtio_dev_bind_mem(v, vm_mem_base(vm), vm_mem_size(vm));
	v->mem.gpa = vm_mem_gpa(vm);
	v->signal = signal_vm;

	err = bus_register(vm_mmio_bus(vm), base, 0x1000, &virtio_bus_ops, &v->dev);
	if (err < 0)
		return pv_error_prefix(-err, "%s", v->dev.id);

	int fd = v->no_eventfds ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd >= 0 && vm_irqfd(vm, irq, fd, true) == 0)
		v->irqfd = fd;
	else if (fd >= 0)
		close(fd);
	if (v->irqfd < 0)
		pv_debug("%s: no irqfd, using KVM_IRQ_LINE", v->dev.id);

	for (unsigned q = 0; q < v->vops->num_queues && v->loop && !v->no_eventfds; q++) {
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			break;
		if (vm_ioeventfd(vm, base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, fd, true, q, true) < 0) {
			close(fd);
			pv_debug("%s: no ioeventfd, queue notifications by MMIO exit", v->dev.id);
			break;
		}
		if (evloop_add_fd(v->loop, fd, EPOLLIN, ioeventfd_ready, &v->vq[q]) < 0) {
			vm_ioeventfd(vm, base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, fd, true, q, false);
			close(fd);
			break;
		}
		v->ioeventfd[q] = fd;
	}

	err = vm_describe_mmio(vm, base, 0x1000, irq);
	if (err == 0)
		err = vm_add_device(vm, &v->dev, base, irq); /* for snapshots (vmm.h) */
	if (err < 0) {
		virtio_mmio_detach(v);
		return pv_error_prefix(-err, "%s", v->dev.id);
	}
	return 0;
}

int virtio_mmio_realize(struct device *d, struct vm *vm)
{
	return virtio_mmio_attach(virtio_dev_of(d), vm);
}

void virtio_mmio_reset(struct device *d)
{
	virtio_dev_reset(virtio_dev_of(d));
}

static void destroy_device(void *opaque)
{
	struct device *d = opaque;
	d->ops->destroy(d);
}

void virtio_mmio_owned_by(struct virtio_dev *v, struct vm *vm)
{
	vm_add_cleanup(vm, destroy_device, &v->dev);
}

void virtio_mmio_detach(struct virtio_dev *v)
{
	if (!v->vm)
		return;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (v->ioeventfd[q] < 0)
			continue;
		if (v->loop)
			evloop_del_fd(v->loop, v->ioeventfd[q]);
		vm_ioeventfd(v->vm, v->mmio_base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, v->ioeventfd[q],
			     true, q, false);
		close(v->ioeventfd[q]);
		v->ioeventfd[q] = -1;
	}
	if (v->irqfd >= 0) {
		vm_irqfd(v->vm, v->irq, v->irqfd, false);
		close(v->irqfd);
		v->irqfd = -1;
	}
	bus_unregister(vm_mmio_bus(v->vm), v->mmio_base);
	vm_remove_device(v->vm, &v->dev);
	v->vm = NULL;
	v->signal = NULL;
}

/* ---- snapshot state ---- */

static void pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t val)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
	msgpack_pack_uint64(pk, val);
}

int virtio_dev_save(struct virtio_dev *v, msgpack_packer *pk)
{
	pthread_mutex_lock(&v->lock);
	msgpack_pack_map(pk, 9);
	pack_kv_u64(pk, "device_id", v->vops->device_id);
	pack_kv_u64(pk, "status", v->status);
	pack_kv_u64(pk, "host_features", v->host_features);
	pack_kv_u64(pk, "driver_features", v->driver_features);
	pack_kv_u64(pk, "dev_feat_sel", v->dev_feat_sel);
	pack_kv_u64(pk, "queue_sel", v->queue_sel);
	pack_kv_u64(pk, "isr", v->isr);
	pack_kv_u64(pk, "config_generation", v->config_generation);
	msgpack_pack_str_with_body(pk, "queues", 6);
	msgpack_pack_array(pk, v->vops->num_queues);
	for (unsigned i = 0; i < v->vops->num_queues; i++) {
		struct virtqueue *q = &v->vq[i];
		msgpack_pack_map(pk, 7);
		pack_kv_u64(pk, "num", q->num);
		pack_kv_u64(pk, "ready", q->ready);
		pack_kv_u64(pk, "desc", q->desc_gpa);
		pack_kv_u64(pk, "avail", q->avail_gpa);
		pack_kv_u64(pk, "used", q->used_gpa);
		pack_kv_u64(pk, "last_avail", q->last_avail);
		pack_kv_u64(pk, "used_idx", q->used_idx);
	}
	pthread_mutex_unlock(&v->lock);
	return 0;
}

const msgpack_object *virtio_msgpack_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == kl &&
		    !memcmp(kv->key.via.str.ptr, key, kl))
			return &kv->val;
	}
	return NULL;
}

static int get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
	const msgpack_object *o = virtio_msgpack_get(map, key);
	if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return pv_error(EINVAL, "virtio state: missing or bad \"%s\"", key);
	*out = o->via.u64;
	return 0;
}

int virtio_dev_load(struct virtio_dev *v, const msgpack_object *st)
{
	uint64_t id = 0, status = 0, hf = 0, df = 0, sel = 0, qsel = 0, isr = 0, gen = 0;
	if (get_u64(st, "device_id", &id) || get_u64(st, "status", &status) ||
	    get_u64(st, "host_features", &hf) || get_u64(st, "driver_features", &df) ||
	    get_u64(st, "dev_feat_sel", &sel) || get_u64(st, "queue_sel", &qsel) ||
	    get_u64(st, "isr", &isr) || get_u64(st, "config_generation", &gen))
		return pv_error_prefix(EINVAL, "%s", v->dev.id);
	if (id != v->vops->device_id || hf != v->host_features)
		return pv_error(EINVAL, "%s: saved state is for device %" PRIu64
				" features 0x%" PRIx64, v->dev.id, id, hf);
	const msgpack_object *qs = virtio_msgpack_get(st, "queues");
	if (!qs || qs->type != MSGPACK_OBJECT_ARRAY || qs->via.array.size != v->vops->num_queues)
		return pv_error(EINVAL, "%s: saved state has a bad queue list", v->dev.id);
	pthread_mutex_lock(&v->lock);
	v->status = (uint32_t)status;
	v->driver_features = df;
	v->dev_feat_sel = (uint32_t)sel;
	v->queue_sel = (uint32_t)qsel;
	v->isr = (uint32_t)isr;
	v->config_generation = (uint32_t)gen;
	int err = 0;
	for (unsigned i = 0; i < v->vops->num_queues && !err; i++) {
		const msgpack_object *qo = &qs->via.array.ptr[i];
		struct virtqueue *q = &v->vq[i];
		uint64_t num = 0, ready = 0, d = 0, a = 0, u = 0, la = 0, ui = 0;
		if (get_u64(qo, "num", &num) || get_u64(qo, "ready", &ready) ||
		    get_u64(qo, "desc", &d) || get_u64(qo, "avail", &a) ||
		    get_u64(qo, "used", &u) || get_u64(qo, "last_avail", &la) ||
		    get_u64(qo, "used_idx", &ui)) {
			err = -EINVAL;
			break;
		}
		virtq_reset(q);
		q->num = (uint16_t)num;
		q->desc_gpa = d;
		q->avail_gpa = a;
		q->used_gpa = u;
		if (ready) {
			err = virtq_activate(q, &v->mem,
					     virtio_dev_has_feature(v, VIRTIO_RING_F_EVENT_IDX));
			q->ready = !err;
			q->last_avail = (uint16_t)la;
			q->used_idx = (uint16_t)ui;
		}
	}
	if (!err && v->isr && v->signal)
		v->signal(v, true, v->signal_opaque);
	pthread_mutex_unlock(&v->lock);
	return err ? pv_error_prefix(EINVAL, "%s", v->dev.id) : 0;
}
