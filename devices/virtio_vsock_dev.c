/* virtio_vsock_dev.c — virtio-vsock's device side that is not the data path
 * (devices/virtio_vsock.h): config space (the guest CID), reset, snapshot save and
 * load, destroy, and create/start/attach. The rings, packets and streams are
 * virtio_vsock.c; the host-side API virtio_vsock_host.c. */
#include "devices/virtio_vsock_int.h"
#include "vmm/evloop.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
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

/* A stream marked to carry goes into a snapshot whole only when nothing of it is in
 * flight: established, both ways open, no guest data waiting for the host end, none
 * from the host end waiting for the guest, no control packet queued but a credit
 * update (the guest learns the same counters from the next packet). */
static bool carried_idle(struct virtio_vsock *s, struct vs_conn *c)
{
	int unread = 0;
	if (!c->carry || c->state != CS_ESTABLISHED || c->r_len || c->ready || c->rd_eof ||
	    c->guest_shut_rcv || c->guest_shut_send || ioctl(c->fd, FIONREAD, &unread) < 0 ||
	    unread)
		return false;
	for (struct vs_pkt *p = s->ctrl; p; p = p->next)
		if (p->h.src_port == c->host_port && p->h.dst_port == c->guest_port &&
		    p->h.op != VIRTIO_VSOCK_OP_CREDIT_UPDATE)
			return false;
	return true;
}

static bool is_carried(const struct vs_carried *cs, unsigned n, uint32_t hp, uint32_t gp)
{
	for (unsigned i = 0; i < n; i++)
		if (cs[i].host_port == hp && cs[i].guest_port == gp)
			return true;
	return false;
}

/* The streams a snapshot ends: every open one not carried and every pair a queued
 * control packet names (an RST the guest has not taken yet), each once. */
static unsigned saved_pairs(struct virtio_vsock *s, uint32_t (*pairs)[2], unsigned cap,
			    const struct vs_carried *cs, unsigned ncs)
{
	unsigned n = 0;
	for (struct vs_conn *c = s->conns; c && n < cap; c = c->next)
		if (!is_carried(cs, ncs, c->host_port, c->guest_port))
			pairs[n][0] = c->host_port, pairs[n++][1] = c->guest_port;
	for (struct vs_pkt *p = s->ctrl; p && n < cap; p = p->next) {
		unsigned i = 0;
		while (i < n && !(pairs[i][0] == p->h.src_port && pairs[i][1] == p->h.dst_port))
			i++;
		if (i == n && !is_carried(cs, ncs, p->h.src_port, p->h.dst_port))
			pairs[n][0] = p->h.src_port, pairs[n++][1] = p->h.dst_port;
	}
	return n;
}

/* Re-creates a carried stream with a new host end (kept in k->fd); false when it
 * cannot (the guest's stream then meets an RST when it next sends). */
static bool carried_open(struct virtio_vsock *s, struct vs_carried *k)
{
	int sv[2];
	if (vs_conn_find(s, k->host_port, k->guest_port) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return false;
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	struct vs_conn *c = vs_conn_new(s, k->host_port, k->guest_port, sv[0]);
	if (!c) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	c->state = CS_ESTABLISHED;
	c->peer_buf_alloc = k->peer_buf_alloc;
	c->peer_fwd_cnt = k->peer_fwd_cnt;
	c->tx_cnt = k->tx_cnt;
	c->fwd_cnt = c->fwd_cnt_sent = k->fwd_cnt;
	vs_conn_watch(c);
	k->fd = sv[1];
	return true;
}

static unsigned carried_streams(struct virtio_vsock *s, struct vs_carried *cs)
{
	unsigned n = 0;
	for (struct vs_conn *c = s->conns; c && n < VSOCK_MAX_STREAMS; c = c->next)
		if (carried_idle(s, c))
			cs[n++] = (struct vs_carried){c->host_port, c->guest_port, c->peer_buf_alloc,
						      c->peer_fwd_cnt, c->tx_cnt, c->fwd_cnt, -1};
	return n;
}

static int vsock_save(struct device *d, msgpack_packer *pk)
{
	struct virtio_vsock *s = (struct virtio_vsock *)d;
	uint32_t(*pairs)[2] = calloc(VSOCK_MAX_STREAMS + CTRL_MAX, sizeof(*pairs));
	struct vs_carried *cs = calloc(VSOCK_MAX_STREAMS, sizeof(*cs));
	if (!pairs || !cs) {
		free(pairs);
		free(cs);
		return pv_error(ENOMEM, "%s: out of memory", d->id);
	}
	/* A receive chain taken but not filled goes back on the ring (it is the last
	 * one popped), so the saved queue state does not lose the guest's buffer. */
	pthread_mutex_lock(&s->vdev.lock);
	if (s->rx_held) {
		s->vdev.vq[0].last_avail--;
		s->rx_held = false;
	}
	unsigned ncs = carried_streams(s, cs);
	unsigned n = saved_pairs(s, pairs, VSOCK_MAX_STREAMS + CTRL_MAX, cs, ncs);
	uint32_t next_port = s->next_port;
	pthread_mutex_unlock(&s->vdev.lock);
	msgpack_pack_map(pk, 5);
	msgpack_pack_str_with_body(pk, "cid", 3);
	msgpack_pack_uint64(pk, virtio_vsock_cid(s));
	msgpack_pack_str_with_body(pk, "streams", 7);
	msgpack_pack_array(pk, n);
	for (unsigned i = 0; i < n; i++) {
		msgpack_pack_array(pk, 2);
		msgpack_pack_uint32(pk, pairs[i][0]);
		msgpack_pack_uint32(pk, pairs[i][1]);
	}
	free(pairs);
	msgpack_pack_str_with_body(pk, "carried", 7);
	msgpack_pack_array(pk, ncs);
	for (unsigned i = 0; i < ncs; i++) {
		const uint32_t v[6] = {cs[i].host_port, cs[i].guest_port, cs[i].peer_buf_alloc,
				       cs[i].peer_fwd_cnt, cs[i].tx_cnt, cs[i].fwd_cnt};
		msgpack_pack_array(pk, 6);
		for (unsigned j = 0; j < 6; j++)
			msgpack_pack_uint32(pk, v[j]);
	}
	free(cs);
	msgpack_pack_str_with_body(pk, "next_port", 9);
	msgpack_pack_uint32(pk, next_port);
	msgpack_pack_str_with_body(pk, "transport", 9);
	return virtio_dev_save(&s->vdev, pk);
}

static bool u32_of(const msgpack_object *o, uint32_t *v)
{
	if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
		return false;
	*v = (uint32_t)o->via.u64;
	return true;
}

/* An array of `width`-element arrays of u32, at most max of them (NULL: none). */
static bool u32_rows(const msgpack_object *a, uint32_t width, uint32_t max)
{
	if (!a)
		return true;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > max)
		return false;
	for (uint32_t i = 0; i < a->via.array.size; i++) {
		const msgpack_object *e = &a->via.array.ptr[i];
		uint32_t v;
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != width)
			return false;
		for (uint32_t j = 0; j < width; j++)
			if (!u32_of(&e->via.array.ptr[j], &v))
				return false;
	}
	return true;
}

/* Host ends do not survive a snapshot, but the guest still holds its streams: load
 * queues an RST for each stream the snapshot lists, ahead of anything else for the
 * guest, so a host connect may follow at once (the guest takes the RSTs first) and
 * need not wait for a transport reset; host ports go on from the saved next one, so
 * a new stream never reuses a pair the guest is closing. Carried streams (saved
 * whole) are re-created before the guest runs and wait for virtio_vsock_adopt().
 * A snapshot without the list gets the transport reset (virtio_vsock_restored). */
static int vsock_load(struct device *d, const msgpack_object *st)
{
	struct virtio_vsock *s = (struct virtio_vsock *)d;
	const msgpack_object *t = virtio_msgpack_get(st, "transport");
	const msgpack_object *cid = virtio_msgpack_get(st, "cid");
	const msgpack_object *streams = virtio_msgpack_get(st, "streams");
	const msgpack_object *carried = virtio_msgpack_get(st, "carried");
	uint32_t next_port = FIRST_HOST_PORT;
	if (!t || !cid || cid->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return pv_error(EINVAL, "%s: saved state lacks transport or cid", d->id);
	if ((streams || carried) &&
	    (!streams || !u32_rows(streams, 2, VSOCK_MAX_STREAMS + CTRL_MAX) ||
	     !u32_rows(carried, 6, VSOCK_MAX_STREAMS) ||
	     !u32_of(virtio_msgpack_get(st, "next_port"), &next_port)))
		return pv_error(EINVAL, "%s: saved streams, carried streams or next_port malformed",
				d->id);
	uint32_t ncs = carried ? carried->via.array.size : 0;
	struct vs_carried *cs = ncs ? calloc(ncs, sizeof(*cs)) : NULL;
	if (ncs && !cs)
		return pv_error(ENOMEM, "%s: out of memory", d->id);
	for (uint32_t i = 0; i < ncs; i++) {
		const msgpack_object *e = carried->via.array.ptr[i].via.array.ptr;
		cs[i] = (struct vs_carried){(uint32_t)e[0].via.u64, (uint32_t)e[1].via.u64,
					    (uint32_t)e[2].via.u64, (uint32_t)e[3].via.u64,
					    (uint32_t)e[4].via.u64, (uint32_t)e[5].via.u64, -1};
	}
	int err = virtio_dev_load(&s->vdev, t);
	if (err < 0) {
		free(cs);
		return err;
	}
	pthread_mutex_lock(&s->vdev.lock);
	vs_close_all(s);
	s->cid = cid->via.u64;
	s->loaded_streams = streams != NULL;
	vs_carried_drop(s);
	s->carried = cs;
	s->ncarried = 0;
	for (uint32_t i = 0; i < ncs; i++)
		if (carried_open(s, &cs[i]))
			cs[s->ncarried++] = cs[i];
	s->next_port = next_port < FIRST_HOST_PORT ? FIRST_HOST_PORT : next_port;
	for (uint32_t i = 0; streams && i < streams->via.array.size; i++) {
		const msgpack_object *e = streams->via.array.ptr[i].via.array.ptr;
		vs_ctrl_push(s, (uint32_t)e[0].via.u64, (uint32_t)e[1].via.u64, VIRTIO_VSOCK_OP_RST, 0);
	}
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
	vs_carried_drop(s);
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
