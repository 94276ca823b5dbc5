/* virtio_vsock_host.c — the host side of userspace virtio-vsock
 * (devices/virtio_vsock.h): opening streams to guest ports, listeners for
 * guest-initiated streams, host RST, the transport reset, CID and stats. The
 * device itself is virtio_vsock.c. */
#include "devices/virtio_vsock_int.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t virtio_vsock_cid(struct virtio_vsock *s)
{
	pthread_mutex_lock(&s->vdev.lock);
	uint64_t cid = s->cid;
	pthread_mutex_unlock(&s->vdev.lock);
	return cid;
}

void virtio_vsock_set_cid(struct virtio_vsock *s, uint64_t cid)
{
	pthread_mutex_lock(&s->vdev.lock);
	if (s->cid != cid) {
		s->cid = cid;
		virtio_dev_config_changed(&s->vdev);
	}
	pthread_mutex_unlock(&s->vdev.lock);
}

int virtio_vsock_connect(struct virtio_vsock *s, uint32_t guest_port, uint32_t *host_port)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return pv_error(errno, "%s: socketpair: %s", s->vdev.dev.id, strerror(errno));
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	pthread_mutex_lock(&s->vdev.lock);
	if (!vs_reset_settled(s)) {
		pthread_mutex_unlock(&s->vdev.lock);
		close(sv[0]);
		close(sv[1]);
		return pv_error(EAGAIN, "%s: the guest has not taken the transport reset yet (after a restore); try again",
				s->vdev.dev.id);
	}
	uint32_t hp = s->next_port;
	while (vs_conn_find(s, hp, guest_port) || vs_listener_find(s, hp))
		hp = hp + 1 >= 0xffffffffu ? FIRST_HOST_PORT : hp + 1;
	s->next_port = hp + 1 >= 0xffffffffu ? FIRST_HOST_PORT : hp + 1;
	bool full = s->nstreams >= VSOCK_MAX_STREAMS;
	struct vs_conn *c = vs_conn_new(s, hp, guest_port, sv[0]);
	if (!c) {
		pthread_mutex_unlock(&s->vdev.lock);
		close(sv[0]);
		close(sv[1]);
		if (full)
			return pv_error(EMFILE, "%s: %u streams are open already", s->vdev.dev.id,
					VSOCK_MAX_STREAMS);
		return pv_error(ENOMEM, "%s: out of memory", s->vdev.dev.id);
	}
	c->state = CS_CONNECTING;
	vs_ctrl_push(s, hp, guest_port, VIRTIO_VSOCK_OP_REQUEST, 0);
	vs_pump(s);
	pthread_mutex_unlock(&s->vdev.lock);
	if (host_port)
		*host_port = hp;
	return sv[1];
}

static int add_listener(struct virtio_vsock *s, uint32_t port, virtio_vsock_accept_fn fn,
			void *opaque, const char *path)
{
	struct vs_listener *l = calloc(1, sizeof(*l));
	if (!l)
		return pv_error(ENOMEM, "%s: out of memory", s->vdev.dev.id);
	*l = (struct vs_listener){.port = port, .fn = fn, .opaque = opaque};
	if (path) {
		if (strlen(path) >= sizeof(l->path)) {
			free(l);
			return pv_error(ENAMETOOLONG, "%s: socket path too long: %s",
					s->vdev.dev.id, path);
		}
		strcpy(l->path, path);
	}
	pthread_mutex_lock(&s->vdev.lock);
	if (vs_listener_find(s, port)) {
		pthread_mutex_unlock(&s->vdev.lock);
		free(l);
		return pv_error(EADDRINUSE, "%s: host port %u already has a listener",
				s->vdev.dev.id, port);
	}
	l->next = s->listeners;
	s->listeners = l;
	pthread_mutex_unlock(&s->vdev.lock);
	return 0;
}

int virtio_vsock_listen(struct virtio_vsock *s, uint32_t host_port,
			virtio_vsock_accept_fn fn, void *opaque)
{
	if (!fn)
		return pv_error(EINVAL, "%s: listen needs a callback", s->vdev.dev.id);
	return add_listener(s, host_port, fn, opaque, NULL);
}

int virtio_vsock_listen_unix(struct virtio_vsock *s, uint32_t host_port, const char *path)
{
	if (!path || !path[0])
		return pv_error(EINVAL, "%s: listen_unix needs a path", s->vdev.dev.id);
	return add_listener(s, host_port, NULL, NULL, path);
}

int virtio_vsock_unlisten(struct virtio_vsock *s, uint32_t host_port)
{
	pthread_mutex_lock(&s->vdev.lock);
	for (struct vs_listener **pp = &s->listeners; *pp; pp = &(*pp)->next) {
		if ((*pp)->port == host_port) {
			struct vs_listener *l = *pp;
			*pp = l->next;
			pthread_mutex_unlock(&s->vdev.lock);
			free(l);
			return 0;
		}
	}
	pthread_mutex_unlock(&s->vdev.lock);
	return -ENOENT;
}

int virtio_vsock_reset(struct virtio_vsock *s, uint32_t host_port, uint32_t guest_port)
{
	pthread_mutex_lock(&s->vdev.lock);
	struct vs_conn *c = vs_conn_find(s, host_port, guest_port);
	if (c) {
		vs_conn_reset(c);
		vs_pump(s);
	}
	pthread_mutex_unlock(&s->vdev.lock);
	return c ? 0 : -ENOENT;
}

void virtio_vsock_transport_reset(struct virtio_vsock *s)
{
	pthread_mutex_lock(&s->vdev.lock);
	vs_close_all(s);
	s->event_pending = true;
	s->reset_wait = true;
	s->reset_at = pv_now_ns();
	vs_pump(s);
	pthread_mutex_unlock(&s->vdev.lock);
}

int virtio_vsock_carry(struct virtio_vsock *s, uint32_t host_port, uint32_t guest_port)
{
	pthread_mutex_lock(&s->vdev.lock);
	struct vs_conn *c = vs_conn_find(s, host_port, guest_port);
	if (c)
		c->carry = true;
	pthread_mutex_unlock(&s->vdev.lock);
	return c ? 0 : -ENOENT;
}

int virtio_vsock_adopt(struct virtio_vsock *s, uint32_t guest_port, uint32_t *host_port)
{
	pthread_mutex_lock(&s->vdev.lock);
	unsigned i = 0;
	while (i < s->ncarried && s->carried[i].guest_port != guest_port)
		i++;
	if (i == s->ncarried) {
		pthread_mutex_unlock(&s->vdev.lock);
		return -ENOENT;
	}
	struct vs_carried k = s->carried[i];
	s->carried[i] = s->carried[--s->ncarried];
	struct vs_conn *c = vs_conn_find(s, k.host_port, k.guest_port);
	if (c)
		vs_conn_watch(c); /* the load may have come before the event loop */
	s->st.adopted++;
	pthread_mutex_unlock(&s->vdev.lock);
	if (host_port)
		*host_port = k.host_port;
	return k.fd;
}

void vs_carried_drop(struct virtio_vsock *s)
{
	for (unsigned i = 0; i < s->ncarried; i++) {
		struct vs_conn *c = vs_conn_find(s, s->carried[i].host_port, s->carried[i].guest_port);
		if (c)
			vs_conn_reset(c);
		close(s->carried[i].fd);
	}
	free(s->carried);
	s->carried = NULL;
	s->ncarried = 0;
}

bool virtio_vsock_restored(struct virtio_vsock *s)
{
	pthread_mutex_lock(&s->vdev.lock);
	bool rst = s->loaded_streams;
	s->loaded_streams = false;
	vs_carried_drop(s); /* carried streams nobody adopted end like the others */
	if (rst)
		vs_pump(s);
	pthread_mutex_unlock(&s->vdev.lock);
	if (!rst)
		virtio_vsock_transport_reset(s);
	return rst;
}

void virtio_vsock_stats(struct virtio_vsock *s, struct virtio_vsock_stats *st)
{
	pthread_mutex_lock(&s->vdev.lock);
	*st = s->st;
	st->streams = 0;
	for (struct vs_conn *c = s->conns; c; c = c->next)
		st->streams++;
	pthread_mutex_unlock(&s->vdev.lock);
}
