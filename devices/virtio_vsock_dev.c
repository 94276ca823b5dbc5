/* virtio_vsock_dev.c — virtio-vsock's device side that is not the data path
 * (devices/virtio_vsock.h): config space (the guest CID), reset, snapshot save and
 * load, destroy, and create/start/attach. The rings, packets and streams are
 * virtio_vsock.c; the host-side API virtio_vsock_host.c. */
#include "devices/virtio_vsock_int.h"
#include "vmm/evloop.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static void vsock_config_read(struct virtio_dev *v, uint64_t off, void *data, unsigned len)
{
	struct virtio_vsock *s = (struct virtio_vsock *)v;
	memcpy(data, (uint8_t *)&s->cid + off, len);
}

static void vsock_reset(struct device *d)
{
	struct virtio_vsock *s = (struct virtio_vsock *)d;
	virtio_dev_reset(&s->vdev);
	pthread_mutex_lock(&s->vdev.lock);
	vs_close_all(s);
	s->event_pending = false;
	pthread_mutex_unlock(&s->vdev.lock);
}

static int vsock_save(struct device *d, msgpack_packer *pk)
{
	struct virtio_vsock *s = (struct virtio_vsock *)d;
	/* A receive chain taken but not filled goes back on the ring (it is the last
	 * one popped), so the saved queue state does not lose the guest's buffer. */
	pthread_mutex_lock(&s->vdev.lock);
	if (s->rx_held) {
		s->vdev.vq[0].last_avail--;
		s->rx_held = false;
	}
	pthread_mutex_unlock(&s->vdev.lock);
	msgpack_pack_map(pk, 2);
	msgpack_pack_str_with_body(pk, "cid", 3);
	msgpack_pack_uint64(pk, virtio_vsock_cid(s));
	msgpack_pack_str_with_body(pk, "transport", 9);
	return virtio_dev_save(&s->vdev, pk);
}

/* Streams are not part of a snapshot: after a load the host sends a transport
 * reset and the guest reconnects. */
static int vsock_load(struct device *d, const msgpack_object *st)
{
	struct virtio_vsock *s = (struct virtio_vsock *)d;
	const msgpack_object *t = virtio_msgpack_get(st, "transport");
	const msgpack_object *cid = virtio_msgpack_get(st, "cid");
	if (!t || !cid || cid->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return pv_error(EINVAL, "%s: saved state lacks transport or cid", d->id);
	int err = virtio_dev_load(&s->vdev, t);
	if (err < 0)
		return err;
	pthread_mutex_lock(&s->vdev.lock);
	vs_close_all(s);
	s->cid = cid->via.u64;
	pthread_mutex_unlock(&s->vdev.lock);
	return 0;
}

static void vsock_destroy(struct device *d)
{
	struct virtio_vsock *s = (struct virtio_vsock *)d;
	virtio_mmio_detach(&s->vdev);
	pthread_mutex_lock(&s->vdev.lock);
	struct evloop *loop = s->loop;
	s->loop = NULL; /* free streams now: the loop is stopped or being destroyed */
	for (struct vs_conn *c = s->conns; c; c = c->next)
		if (c->registered)
			evloop_del_fd(loop, c->fd);
	for (struct vs_conn *c = s->conns; c; c = c->next)
		c->registered = false;
	vs_close_all(s);
	vs_grave_free(s);
	pthread_mutex_unlock(&s->vdev.lock);
	while (s->listeners) {
		struct vs_listener *l = s->listeners;
		s->listeners = l->next;
		free(l);
	}
	while (s->accepts) {
		struct vs_accept *a = s->accepts;
		s->accepts = a->next;
		close(a->fd);
		free(a);
	}
	virtio_dev_fini(&s->vdev);
	free(s);
}

static const struct device_ops vsock_ops = {
	.name = "virtio-vsock",
	.realize = virtio_mmio_realize,
	.mmio_read = virtio_mmio_read,
	.mmio_write = virtio_mmio_write,
	.queue_notify = vs_queue_notify,
	.save = vsock_save,
	.load = vsock_load,
	.reset = vsock_reset,
	.destroy = vsock_destroy,
};

static const struct virtio_dev_ops vsock_vops = {
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = 3,
	.config_size = 8,
	.config_read = vsock_config_read,
};

int virtio_vsock_create(const char *id, uint64_t guest_cid, struct virtio_vsock **out)
{
	id = id ? id : "vsock0";
	if (guest_cid <= VSOCK_HOST_CID || guest_cid >= 0xffffffffull)
		return pv_error(EINVAL, "%s: guest CID %llu is reserved", id,
				(unsigned long long)guest_cid);
	struct virtio_vsock *s = calloc(1, sizeof(*s));
	if (!s)
		return pv_error(ENOMEM, "%s: out of memory", id);
	int err = virtio_dev_init(&s->vdev, &vsock_ops, &vsock_vops, id, 0);
	if (err < 0) {
		free(s);
		return err;
	}
	s->cid = guest_cid;
	s->ctrl_tail = &s->ctrl;
	s->next_port = FIRST_HOST_PORT;
	*out = s;
	return 0;
}

int virtio_vsock_start(struct virtio_vsock *s, struct evloop *loop)
{
	pthread_mutex_lock(&s->vdev.lock);
	s->loop = loop;
	pthread_mutex_unlock(&s->vdev.lock);
	return 0;
}

int virtio_vsock_attach(struct virtio_vsock *s, struct vm *vm)
{
	int err = vsock_ops.realize(&s->vdev.dev, vm);
	if (err < 0)
		return err;
	virtio_vsock_start(s, vm_evloop(vm));
	virtio_mmio_owned_by(&s->vdev, vm);
	return 0;
}

void virtio_vsock_destroy(struct virtio_vsock *s)
{
	if (s)
		vsock_destroy(&s->vdev.dev);
}

struct virtio_dev *virtio_vsock_vdev(struct virtio_vsock *s)
{
	return &s->vdev;
}
