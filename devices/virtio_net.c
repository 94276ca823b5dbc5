/* virtio_net.c — virtio-net over a TAP fd (devices/virtio_net.h). Queue 0 is RX
 * (host -> guest), queue 1 TX. Frames carry the 12-byte virtio_net_hdr_v1 on the
 * ring and on the TAP (IFF_VNET_HDR); no offloads are offered, so headers are all
 * zero except num_buffers = 1 on RX. Every frame crosses the NIC's netpath.
 *
 * RX runs on the event loop: the TAP fd is watched only while the guest has
 * receive buffers (so frames wait in the TAP's queue instead of being dropped);
 * when the ring runs dry the watch is switched off and the guest's next RX kick
 * switches it back on. TX runs in queue_notify (vCPU or ioeventfd thread): each
 * chain is copied out under vdev.lock and sent without it, since netpath sinks
 * may take other locks. */
#include "devices/virtio_net.h"
#include "devices/netpath.h"
#include "devices/virtio.h"
#include "vmm/evloop.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define NET_MAX_FRAME 65536
#define NET_RX_BATCH 256

struct virtio_net {
	struct virtio_dev vdev;
	struct virtio_net_config cfg;   /* vdev.lock */
	int fd;
	bool is_socket;
	struct netpath *np;
	struct evloop *loop;
	bool watching;                  /* fd registered on loop */
	bool rx_stalled;                /* watch off: no guest buffers (vdev.lock) */
	bool rx_held;                   /* rx_elem popped but unused (vdev.lock) */
	uint64_t dev_tx_dropped;        /* malformed TX chains (vdev.lock) */
	struct virtq_elem rx_elem;      /* vdev.lock */
	pthread_mutex_t tx_lock;        /* one transmitter at a time; before vdev.lock */
	struct virtq_elem tx_elem;      /* tx_lock */
	uint8_t txbuf[VIRTIO_NET_HDR_SIZE + NET_MAX_FRAME];  /* tx_lock */
	uint8_t rxbuf[VIRTIO_NET_HDR_SIZE + NET_MAX_FRAME];  /* loop thread */
};

int virtio_net_open_tap(const char *name, char *ifname)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return pv_error(errno, "open /dev/net/tun: %s", strerror(errno));
	struct ifreq ifr = {0};
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (name)
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	int hdr = VIRTIO_NET_HDR_SIZE;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return pv_error(e, "TUNSETIFF %s: %s", name ? name : "tap", strerror(e));
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int e = errno;
		close(fd);
		return pv_error(e, "TUNSETVNETHDRSZ %s: %s", ifr.ifr_name, strerror(e));
	}
	if (ifname)
		snprintf(ifname, IFNAMSIZ, "%s", ifr.ifr_name);
	return fd;
}

/* ---- RX: backend -> netpath -> guest ---- */

static void rx_unstall(struct virtio_net *n)
{
	if (n->rx_stalled && n->watching) {
		n->rx_stalled = false;
		evloop_mod_fd(n->loop, n->fd, EPOLLIN);
	}
}

/* netpath sink for NETPATH_TO_GUEST: one frame into one receive chain. */
static int rx_sink(void *opaque, enum netpath_dir dir, const uint8_t *frame, size_t len)
{
	(void)dir;
	struct virtio_net *n = opaque;
	struct virtio_dev *v = &n->vdev;
	int ret = 0;
	pthread_mutex_lock(&v->lock);
	if (!virtio_dev_queue_live(v, 0)) {
		ret = -ENETDOWN;
		goto out;
	}
	if (!n->rx_held) {
		int got = virtq_pop(&v->vq[0], &n->rx_elem);
		if (got < 0) {
			virtio_dev_needs_reset(v, pv_errmsg());
			ret = -EIO;
			goto out;
		}
		if (!got) {
			ret = -ENOBUFS;
			goto out;
		}
		n->rx_held = true;
	}
	struct virtq_elem *e = &n->rx_elem;
	if (e->in_len < VIRTIO_NET_HDR_SIZE + len) {
		ret = -EMSGSIZE; /* keep the chain for a frame that fits */
		goto out;
	}
	struct virtio_net_hdr_v1 h = {.num_buffers = 1};
	buf_to_iov(&e->iov[e->n_out], e->n_in, 0, &h, sizeof(h));
	buf_to_iov(&e->iov[e->n_out], e->n_in, sizeof(h), frame, len);
	n->rx_held = false;
	if (virtq_push(&v->vq[0], e->head, (uint32_t)(sizeof(h) + len)))
		virtio_dev_interrupt(v, VIRTIO_MMIO_INT_VRING);
out:
	pthread_mutex_unlock(&v->lock);
	return ret;
}

/* Whether the guest can take a frame now; switches the watch off when not. */
static bool rx_room(struct virtio_net *n)
{
	struct virtio_dev *v = &n->vdev;
	bool room = false;
	pthread_mutex_lock(&v->lock);
	if (virtio_dev_queue_live(v, 0)) {
		room = n->rx_held || virtq_has_avail(&v->vq[0]);
		if (!room) {
			virtq_enable_notify(&v->vq[0], true);
			room = virtq_has_avail(&v->vq[0]);
		}
	}
	if (!room && !n->rx_stalled) {
		n->rx_stalled = true;
		evloop_mod_fd(n->loop, n->fd, 0);
	}
	pthread_mutex_unlock(&v->lock);
	return room;
}

static void fd_readable(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* The backend is gone (a socketpair peer closed): stop watching. */
		evloop_del_fd(n->loop, n->fd);
		n->watching = false;
		return;
	}
	for (unsigned i = 0; i < NET_RX_BATCH; i++) {
		if (!rx_room(n))
			return;
		ssize_t r = read(n->fd, n->rxbuf, sizeof(n->rxbuf));
		if (r < 0)
			return; /* EAGAIN: drained */
		if (r == 0) {
			evloop_del_fd(n->loop, n->fd);
			n->watching = false;
			return;
		}
		if (r < VIRTIO_NET_HDR_SIZE)
			continue;
		netpath_send(n->np, NETPATH_TO_GUEST, n->rxbuf + VIRTIO_NET_HDR_SIZE,
			     (size_t)r - VIRTIO_NET_HDR_SIZE);
	}
}

/* ---- TX: guest -> netpath -> backend ---- */

static int tx_sink(void *opaque, enum netpath_dir dir, const uint8_t *frame, size_t len)
{
	(void)dir;
	struct virtio_net *n = opaque;
	static const uint8_t zero_hdr[VIRTIO_NET_HDR_SIZE];
	struct iovec iov[2] = {
		{(void *)zero_hdr, sizeof(zero_hdr)},
		{(void *)frame, len},
	};
	ssize_t w;
	do {
		/* A socket backend (tests, benches) must not SIGPIPE the process when
		 * its peer is gone; a TAP is not a socket. */
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
		w = n->is_socket ? sendmsg(n->fd, &m, MSG_NOSIGNAL) : writev(n->fd, iov, 2);
	} while (w < 0 && errno == EINTR);
	return w < 0 ? -errno : 0;
}

static void transmit(struct virtio_net *n)
{
	struct virtio_dev *v = &n->vdev;
	struct virtqueue *vq = &v->vq[1];
	unsigned taken = 0;
	pthread_mutex_lock(&n->tx_lock);
	pthread_mutex_lock(&v->lock);
	while (virtio_dev_queue_live(v, 1)) {
		if (taken++ >= VIRTIO_NOTIFY_BUDGET && virtio_dev_defer(v, 1))
			break;
		virtq_enable_notify(vq, false);
		int got = virtio_dev_pop(v, vq, &n->tx_elem);
		if (got == -EAGAIN)
			continue;
		if (got <= 0)
			break;
		struct virtq_elem *e = &n->tx_elem;
		size_t len = iov_to_buf(e->iov, e->n_out, 0, n->txbuf, sizeof(n->txbuf));
		bool ok = e->out_len == len && len > VIRTIO_NET_HDR_SIZE;
		if (!ok)
			n->dev_tx_dropped++;
		pthread_mutex_unlock(&v->lock);
		if (ok)
			netpath_send(n->np, NETPATH_TO_HOST, n->txbuf + VIRTIO_NET_HDR_SIZE,
				     len - VIRTIO_NET_HDR_SIZE);
		pthread_mutex_lock(&v->lock);
		if (virtio_dev_queue_live(v, 1) && virtq_push(vq, e->head, 0))
			virtio_dev_interrupt(v, VIRTIO_MMIO_INT_VRING);
	}
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_unlock(&n->tx_lock);
}

static void net_queue_notify(struct device *d, unsigned queue)
{
	struct virtio_net *n = (struct virtio_net *)d;
	if (queue == 1) {
		transmit(n);
	} else if (queue == 0) {
		pthread_mutex_lock(&n->vdev.lock);
		rx_unstall(n);
		pthread_mutex_unlock(&n->vdev.lock);
	}
}

/* ---- config space, lifecycle, snapshot ---- */

#define NET_CONFIG_SIZE 8 /* mac, status, max_virtqueue_pairs */

static void net_config_read(struct virtio_dev *v, uint64_t off, void *data, unsigned len)
{
	struct virtio_net *n = (struct virtio_net *)v;
	memcpy(data, (uint8_t *)&n->cfg + off, len);
}

static void net_driver_ok(struct virtio_dev *v)
{
	rx_unstall((struct virtio_net *)v);
}

static void net_reset(struct device *d)
{
	struct virtio_net *n = (struct virtio_net *)d;
	virtio_dev_reset(&n->vdev);
	pthread_mutex_lock(&n->vdev.lock);
	n->rx_held = false;
	pthread_mutex_unlock(&n->vdev.lock);
}

static int net_save(struct device *d, msgpack_packer *pk)
{
	struct virtio_net *n = (struct virtio_net *)d;
	pthread_mutex_lock(&n->vdev.lock);
	/* A receive chain taken but not used goes back on the ring (it is the last
	 * one popped), so the saved queue state does not lose the guest's buffer. */
	if (n->rx_held) {
		n->vdev.vq[0].last_avail--;
		n->rx_held = false;
	}
	uint8_t mac[6];
	memcpy(mac, n->cfg.mac, 6);
	bool up = n->cfg.status & VIRTIO_NET_S_LINK_UP;
	pthread_mutex_unlock(&n->vdev.lock);
	msgpack_pack_map(pk, 3);
	msgpack_pack_str_with_body(pk, "mac", 3);
	msgpack_pack_bin_with_body(pk, mac, 6);
	msgpack_pack_str_with_body(pk, "link_up", 7);
	if (up)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	msgpack_pack_str_with_body(pk, "transport", 9);
	return virtio_dev_save(&n->vdev, pk);
}

static int net_load(struct device *d, const msgpack_object *st)
{
	struct virtio_net *n = (struct virtio_net *)d;
	const msgpack_object *t = virtio_msgpack_get(st, "transport");
	const msgpack_object *mac = virtio_msgpack_get(st, "mac");
	const msgpack_object *up = virtio_msgpack_get(st, "link_up");
	if (!t || !mac || mac->type != MSGPACK_OBJECT_BIN || mac->via.bin.size != 6 || !up ||
	    up->type != MSGPACK_OBJECT_BOOLEAN)
		return pv_error(EINVAL, "%s: saved state lacks transport, mac or link_up", d->id);
	int err = virtio_dev_load(&n->vdev, t);
	if (err < 0)
		return err;
	pthread_mutex_lock(&n->vdev.lock);
	memcpy(n->cfg.mac, mac->via.bin.ptr, 6);
	n->cfg.status = up->via.boolean ? VIRTIO_NET_S_LINK_UP : 0;
	n->rx_held = false;
	pthread_mutex_unlock(&n->vdev.lock);
	netpath_set_link(n->np, up->via.boolean);
	return 0;
}

static void net_destroy(struct device *d)
{
	struct virtio_net *n = (struct virtio_net *)d;
	if (n->watching)
		evloop_del_fd(n->loop, n->fd);
	virtio_dev_fini(&n->vdev);
	netpath_destroy(n->np);
	if (n->fd >= 0)
		close(n->fd);
	pthread_mutex_destroy(&n->tx_lock);
	free(n);
}

static const struct device_ops net_ops = {
	.name = "virtio-net",
	.realize = virtio_mmio_realize,
	.mmio_read = virtio_mmio_read,
	.mmio_write = virtio_mmio_write,
	.queue_notify = net_queue_notify,
	.save = net_save,
	.load = net_load,
	.reset = net_reset,
	.destroy = net_destroy,
};

static const struct virtio_dev_ops net_vops = {
	.device_id = VIRTIO_ID_NET,
	.num_queues = 2,
	.config_size = NET_CONFIG_SIZE,
	.config_read = net_config_read,
	.driver_ok = net_driver_ok,
};

int virtio_net_create(const char *id, const struct virtio_net_opts *opts, struct virtio_net **out)
{
	id = id ? id : "net0";
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		close(opts->fd);
		return pv_error(ENOMEM, "%s: out of memory", id);
	}
	n->fd = opts->fd;
	struct stat sb;
	n->is_socket = fstat(n->fd, &sb) == 0 && S_ISSOCK(sb.st_mode);
	int err = pthread_mutex_init(&n->tx_lock, NULL);
	if (err) {
		close(n->fd);
		free(n);
		return pv_error(err, "%s: mutex: %s", id, strerror(err));
	}
	err = virtio_dev_init(&n->vdev, &net_ops, &net_vops, id,
			      (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS));
	if (err < 0) {
		pthread_mutex_destroy(&n->tx_lock);
		close(n->fd);
		free(n);
		return err;
	}
	err = netpath_create(id, opts->loop, opts->seed, &n->np);
	if (err < 0) {
		n->np = NULL;
		net_destroy(&n->vdev.dev);
		return err;
	}
	static const uint8_t zero[6];
	if (memcmp(opts->mac, zero, 6)) {
		memcpy(n->cfg.mac, opts->mac, 6);
	} else {
		if (getrandom(n->cfg.mac, 6, 0) != 6)
			memcpy(n->cfg.mac, &(uint64_t){pv_now_ns()}, 6);
		n->cfg.mac[0] = (uint8_t)((n->cfg.mac[0] & 0xfe) | 0x02);
	}
	n->cfg.status = opts->link_down ? 0 : VIRTIO_NET_S_LINK_UP;
	n->cfg.max_virtqueue_pairs = 1;
	netpath_set_link(n->np, !opts->link_down);
	netpath_set_sink(n->np, NETPATH_TO_GUEST, rx_sink, n);
	netpath_set_sink(n->np, NETPATH_TO_HOST, tx_sink, n);
	n->loop = opts->loop;
	*out = n;
	return 0;
}

int virtio_net_start(struct virtio_net *n, struct evloop *loop)
{
	if (n->watching)
		return 0;
	n->loop = loop;
	netpath_set_loop(n->np, loop);
	int err = evloop_add_fd(loop, n->fd, EPOLLIN, fd_readable, n);
	if (err < 0)
		return pv_error_prefix(-err, "%s: watching the backend fd", n->vdev.dev.id);
	n->watching = true;
	return 0;
}

int virtio_net_attach(struct virtio_net *n, struct vm *vm)
{
	int err = net_ops.realize(&n->vdev.dev, vm);
	if (err < 0)
		return err;
	err = virtio_net_start(n, n->loop ? n->loop : vm_evloop(vm));
	if (err < 0) {
		virtio_mmio_detach(&n->vdev);
		return err;
	}
	virtio_mmio_owned_by(&n->vdev, vm);
	return 0;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (n)
		net_destroy(&n->vdev.dev);
}

struct virtio_dev *virtio_net_vdev(struct virtio_net *n)
{
	return &n->vdev;
}

struct netpath *virtio_net_netpath(struct virtio_net *n)
{
	return n->np;
}

void virtio_net_mac(struct virtio_net *n, uint8_t mac[6])
{
	pthread_mutex_lock(&n->vdev.lock);
	memcpy(mac, n->cfg.mac, 6);
	pthread_mutex_unlock(&n->vdev.lock);
}

int virtio_net_fd(struct virtio_net *n)
{
	return n->fd;
}

void virtio_net_set_link(struct virtio_net *n, bool up)
{
	netpath_set_link(n->np, up);
	pthread_mutex_lock(&n->vdev.lock);
	uint16_t st = up ? VIRTIO_NET_S_LINK_UP : 0;
	if (n->cfg.status != st) {
		n->cfg.status = st;
		virtio_dev_config_changed(&n->vdev);
	}
	pthread_mutex_unlock(&n->vdev.lock);
}

bool virtio_net_link_up(struct virtio_net *n)
{
	return netpath_link_up(n->np);
}

void virtio_net_counters(struct virtio_net *n, struct virtio_net_counters *c)
{
	struct netpath_counters pc;
	netpath_counters(n->np, &pc);
	pthread_mutex_lock(&n->vdev.lock);
	uint64_t dev_drop = n->dev_tx_dropped;
	pthread_mutex_unlock(&n->vdev.lock);
	*c = (struct virtio_net_counters){
		.rx_packets = pc.dir[NETPATH_TO_GUEST].packets,
		.rx_bytes = pc.dir[NETPATH_TO_GUEST].bytes,
		.rx_dropped = pc.dir[NETPATH_TO_GUEST].dropped,
		.tx_packets = pc.dir[NETPATH_TO_HOST].packets,
		.tx_bytes = pc.dir[NETPATH_TO_HOST].bytes,
		.tx_dropped = pc.dir[NETPATH_TO_HOST].dropped + dev_drop,
	};
}
