/* virtio_vsock.c — userspace virtio-vsock (devices/virtio_vsock.h). Queue 0 is RX
 * (device -> guest packets), 1 TX (guest -> device), 2 the event queue.
 *
 * Each stream is a `vs_conn` keyed by (host port, guest port) with a non-blocking
 * host fd watched on the event loop. Host -> guest: when the fd is readable the
 * stream joins a round-robin ready list, and rx_pump() reads at most the guest's
 * credit (buf_alloc - (tx_cnt - fwd_cnt)) straight into a receive buffer; with no
 * credit the fd is unwatched and a CREDIT_REQUEST goes out, the next packet from
 * the guest re-arms it. Guest -> host: RW payloads are written to the fd, and what
 * the fd cannot take waits in a per-stream ring of VSOCK_BUF_ALLOC bytes (the
 * credit the guest was given, so a guest that keeps to its credit never
 * overflows it); fwd_cnt counts what reached the fd and CREDIT_UPDATEs go out as
 * the ring drains. Control packets (RESPONSE, RST, SHUTDOWN, credit) wait in a
 * bounded queue and go before data.
 *
 * Locking: vdev.lock guards everything here. Accept callbacks run after it is
 * dropped. Streams are freed through evloop_call so an fd callback already in
 * flight never sees freed memory. The host-side API (connect, listen, reset,
 * transport reset) is virtio_vsock_host.c, the device's config, lifecycle and
 * snapshot virtio_vsock_dev.c; shared structs in virtio_vsock_int.h. */
#include "devices/virtio_vsock_int.h"
#include "vmm/evloop.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_vsock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>


struct vs_conn *vs_conn_find(struct virtio_vsock *s, uint32_t hp, uint32_t gp)
{
	for (struct vs_conn *c = s->conns; c; c = c->next)
		if (c->host_port == hp && c->guest_port == gp)
			return c;
	return NULL;
}

static uint32_t credit(const struct vs_conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;
	return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

void vs_ctrl_push(struct virtio_vsock *s, uint32_t hp, uint32_t gp, uint16_t op,
		      uint32_t flags)
{
	if (s->nctrl >= CTRL_MAX) {
		s->st.dropped_packets++;
		return; /* a guest that never posts RX buffers cannot grow this forever */
	}
	struct vs_pkt *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->h = (struct virtio_vsock_hdr){
		.src_cid = VSOCK_HOST_CID, .dst_cid = s->cid, .src_port = hp, .dst_port = gp,
		.type = VIRTIO_VSOCK_TYPE_STREAM, .op = op, .flags = flags,
	};
	*s->ctrl_tail = p;
	s->ctrl_tail = &p->next;
	s->nctrl++;
	if (op == VIRTIO_VSOCK_OP_RST)
		s->st.rst_sent++;
}

static void vs_ctrl_clear(struct virtio_vsock *s)
{
	while (s->ctrl) {
		struct vs_pkt *p = s->ctrl;
		s->ctrl = p->next;
		free(p);
	}
	s->ctrl_tail = &s->ctrl;
	s->nctrl = 0;
}

/* Every packet to the guest carries our credit for its stream. */
static void fill_credit(struct virtio_vsock *s, struct virtio_vsock_hdr *h)
{
	h->buf_alloc = VSOCK_BUF_ALLOC;
	h->fwd_cnt = 0;
	struct vs_conn *c = vs_conn_find(s, h->src_port, h->dst_port);
	if (c) {
		h->fwd_cnt = c->fwd_cnt;
		c->fwd_cnt_sent = c->fwd_cnt;
	}
}

static void ready_remove(struct virtio_vsock *s, struct vs_conn *c)
{
	if (!c->ready)
		return;
	struct vs_conn *prev = NULL;
	for (struct vs_conn *x = s->ready_head; x; prev = x, x = x->rnext) {
		if (x != c)
			continue;
		if (prev)
			prev->rnext = c->rnext;
		else
			s->ready_head = c->rnext;
		if (s->ready_tail == c)
			s->ready_tail = prev;
		break;
	}
	c->rnext = NULL;
	c->ready = false;
}

static void ready_add(struct virtio_vsock *s, struct vs_conn *c)
{
	if (c->ready)
		return;
	c->ready = true;
	c->rnext = NULL;
	if (s->ready_tail)
		s->ready_tail->rnext = c;
	else
		s->ready_head = c;
	s->ready_tail = c;
}

static void conn_event(void *opaque, uint32_t events);

/* Watches the fd for what the stream needs now: EPOLLIN while it may send to the
 * guest (and is not already waiting for RX buffers), EPOLLOUT while its ring
 * holds data. Nothing wanted: unregistered, so a closed peer cannot spin the loop
 * with EPOLLHUP. */
void vs_conn_watch(struct vs_conn *c)
{
	uint32_t want = 0;
	if (c->state == CS_ESTABLISHED && !c->ready && !c->rd_eof && !c->guest_shut_rcv &&
	    credit(c) > 0)
		want |= EPOLLIN;
	if (c->r_len)
		want |= EPOLLOUT;
	struct evloop *l = c->s->loop;
	if (!l)
		return;
	if (!want) {
		if (c->registered)
			evloop_del_fd(l, c->fd);
		c->registered = false;
	} else if (!c->registered) {
		c->registered = evloop_add_fd(l, c->fd, want, conn_event, c) == 0;
	} else if (want != c->events) {
		evloop_mod_fd(l, c->fd, want);
	}
	c->events = want;
}

struct vs_conn *vs_conn_new(struct virtio_vsock *s, uint32_t hp, uint32_t gp, int fd)
{
	if (s->nstreams >= VSOCK_MAX_STREAMS)
		return NULL;
	struct vs_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	s->nstreams++;
	c->s = s;
	c->host_port = hp;
	c->guest_port = gp;
	c->fd = fd;
	c->next = s->conns;
	s->conns = c;
	s->st.opened++;
	return c;
}

void vs_grave_free(struct virtio_vsock *s)
{
	while (s->grave) {
		struct vs_conn *c = s->grave;
		s->grave = c->next;
		free(c->ring);
		free(c);
	}
}

static void reap(void *opaque)
{
	struct virtio_vsock *s = opaque;
	pthread_mutex_lock(&s->vdev.lock);
	vs_grave_free(s);
	s->reap_scheduled = false;
	pthread_mutex_unlock(&s->vdev.lock);
}

void vs_conn_free(struct vs_conn *c)
{
	struct virtio_vsock *s = c->s;
	for (struct vs_conn **pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ready_remove(s, c);
	if (c->registered)
		evloop_del_fd(s->loop, c->fd);
	close(c->fd);
	c->dead = true;
	s->nstreams--;
	if (c->ring) {
		free(c->ring);
		c->ring = NULL;
		s->nrings--;
	}
	/* Freed on the loop thread, after any callback for this stream already in
	 * flight (it sees c->dead); whatever is left when the device is destroyed
	 * (with the loop stopped) is freed then. */
	c->next = s->grave;
	s->grave = c;
	if (s->loop && !s->reap_scheduled)
		s->reap_scheduled = evloop_call(s->loop, reap, s) == 0;
}

void vs_conn_reset(struct vs_conn *c)
{
	vs_ctrl_push(c->s, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_RST, 0);
	vs_conn_free(c);
}

/* iov[0..n) from byte `off`, at most max bytes, into s->win; returns segments. */
static unsigned iov_window(struct virtio_vsock *s, const struct iovec *iov, unsigned n,
			   size_t off, size_t max)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && max; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t len = PV_MIN(iov[i].iov_len - off, max);
		s->win[k++] = (struct iovec){(char *)iov[i].iov_base + off, len};
		max -= len;
		off = 0;
	}
	return k;
}

/* Host ends are sockets: MSG_NOSIGNAL, so a closed host end is EPIPE for this
 * stream, never SIGPIPE for the whole process. */
static ssize_t send_iov(int fd, struct iovec *iov, unsigned n)
{
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
	return sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Moves ring data to the host fd; credit updates, half-close and close follow. */
static void flush_ring(struct vs_conn *c)
{
	struct virtio_vsock *s = c->s;
	while (c->r_len) {
		uint32_t first = PV_MIN(c->r_len, VSOCK_BUF_ALLOC - c->r_head);
		struct iovec iov[2] = {{c->ring + c->r_head, first}, {c->ring, c->r_len - first}};
		ssize_t w = send_iov(c->fd, iov, iov[1].iov_len ? 2 : 1);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			vs_conn_reset(c); /* the host end is gone */
			return;
		}
		c->r_head = (c->r_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
		c->r_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	if (c->fwd_cnt - c->fwd_cnt_sent >= VSOCK_BUF_ALLOC / 4)
		vs_ctrl_push(s, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
	if (!c->r_len && c->guest_shut_send) {
		if (c->guest_shut_rcv) { /* both ways closed: RST ends it (as Linux does) */
			vs_conn_reset(c);
			return;
		}
		shutdown(c->fd, SHUT_WR);
	}
	vs_conn_watch(c);
}

/* Fills guest receive buffers: control packets first, then data round-robin. */
static bool rx_pump(struct virtio_vsock *s)
{
	struct virtio_dev *v = &s->vdev;
	struct virtqueue *vq = &v->vq[0];
	bool irq = false;
	while (virtio_dev_queue_live(v, 0) && (s->ctrl || s->ready_head)) {
		struct vs_conn *c = s->ctrl ? NULL : s->ready_head;
		if (c && credit(c) == 0) {
			ready_remove(s, c);
			s->st.credit_stalls++;
			if (!c->credit_req_sent) {
				c->credit_req_sent = true;
				vs_ctrl_push(s, c->host_port, c->guest_port,
					  VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0);
			}
			vs_conn_watch(c);
			continue;
		}
		if (!s->rx_held) {
			int got = virtio_dev_pop(v, vq, &s->rxe);
			if (got == -EAGAIN)
				continue;
			if (got <= 0)
				break;
			if (s->rxe.in_len < HDR) {
				virtio_dev_needs_reset(v, "vsock: receive buffer shorter than the header");
				break;
			}
			s->rx_held = true;
		}
		struct virtq_elem *e = &s->rxe;
		struct iovec *in = &e->iov[e->n_out];
		struct virtio_vsock_hdr h;
		if (!c) {
			struct vs_pkt *p = s->ctrl;
			s->ctrl = p->next;
			if (!s->ctrl)
				s->ctrl_tail = &s->ctrl;
			s->nctrl--;
			h = p->h;
			free(p);
			fill_credit(s, &h);
			buf_to_iov(in, e->n_in, 0, &h, HDR);
			s->rx_held = false;
			irq |= virtq_push(vq, e->head, HDR);
			continue;
		}
		if (e->in_len == HDR) {
			virtio_dev_needs_reset(v, "vsock: receive buffer has no room for data");
			break;
		}
		size_t max = PV_MIN(PV_MIN(credit(c), e->in_len - HDR), VSOCK_MAX_PKT);
		unsigned k = iov_window(s, in, e->n_in, HDR, max);
		ssize_t r = readv(c->fd, s->win, (int)k);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			ready_remove(s, c);
			vs_conn_watch(c);
			continue;
		}
		if (r <= 0) {
			/* EOF: the host will send no more (SHUT_WR or close). */
			ready_remove(s, c);
			c->rd_eof = true;
			if (r < 0) {
				vs_conn_reset(c);
				continue;
			}
			vs_ctrl_push(s, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_SHUTDOWN,
				  VIRTIO_VSOCK_SHUTDOWN_SEND);
			vs_conn_watch(c);
			continue;
		}
		h = (struct virtio_vsock_hdr){
			.src_cid = VSOCK_HOST_CID, .dst_cid = s->cid, .src_port = c->host_port,
			.dst_port = c->guest_port, .len = (uint32_t)r,
			.type = VIRTIO_VSOCK_TYPE_STREAM, .op = VIRTIO_VSOCK_OP_RW,
		};
		fill_credit(s, &h);
		buf_to_iov(in, e->n_in, 0, &h, HDR);
		s->rx_held = false;
		irq |= virtq_push(vq, e->head, HDR + (uint32_t)r);
		c->tx_cnt += (uint32_t)r;
		s->st.to_guest_bytes += (uint64_t)r;
		/* Round robin: to the back of the ready list. */
		ready_remove(s, c);
		ready_add(s, c);
	}
	return irq;
}

static bool ev_pump(struct virtio_vsock *s)
{
	struct virtio_dev *v = &s->vdev;
	if (!s->event_pending || !virtio_dev_queue_live(v, 2))
		return false;
	int got = virtq_pop(&v->vq[2], &s->eve);
	if (got < 0) {
		virtio_dev_needs_reset(v, pv_errmsg());
		return false;
	}
	if (!got)
		return false;
	struct virtio_vsock_event ev = {.id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET};
	size_t n = buf_to_iov(&s->eve.iov[s->eve.n_out], s->eve.n_in, 0, &ev, sizeof(ev));
	s->event_pending = false;
	s->st.events_sent++;
	s->reset_avail = virtq_avail_idx(&v->vq[2]);
	return virtq_push(&v->vq[2], s->eve.head, (uint32_t)n);
}

bool vs_reset_settled(struct virtio_vsock *s)
{
	if (!s->reset_wait)
		return true;
	struct virtio_dev *v = &s->vdev;
	bool delivered = !s->event_pending;
	if ((delivered && virtq_avail_idx(&v->vq[2]) != s->reset_avail) ||
	    (!delivered && !virtio_dev_queue_live(v, 2)) ||
	    pv_now_ns() - s->reset_at > VSOCK_RESET_WAIT_NS)
		s->reset_wait = false;
	return !s->reset_wait;
}

void vs_pump(struct virtio_vsock *s)
{
	bool irq = rx_pump(s);
	irq |= ev_pump(s);
	if (irq)
		virtio_dev_interrupt(&s->vdev, VIRTIO_MMIO_INT_VRING);
}

static void conn_event(void *opaque, uint32_t events)
{
	struct vs_conn *c = opaque;
	struct virtio_vsock *s = c->s;
	pthread_mutex_lock(&s->vdev.lock);
	if (!c->dead) {
		if ((events & EPOLLIN) || ((events & (EPOLLHUP | EPOLLERR)) && (c->events & EPOLLIN))) {
			ready_add(s, c);
			vs_conn_watch(c);
		}
		if (!c->dead && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && c->r_len)
			flush_ring(c);
		vs_pump(s);
	}
	pthread_mutex_unlock(&s->vdev.lock);
}

/* ---- guest -> device packets ---- */

struct vs_listener *vs_listener_find(struct virtio_vsock *s, uint32_t port)
{
	for (struct vs_listener *l = s->listeners; l; l = l->next)
		if (l->port == port)
			return l;
	return NULL;
}

static void guest_request(struct virtio_vsock *s, const struct virtio_vsock_hdr *h)
{
	struct vs_listener *l = vs_listener_find(s, h->dst_port);
	int fd = -1, peer = -1;
	if (l && l->path[0]) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		memcpy(sa.sun_path, l->path, sizeof(sa.sun_path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			fd = -1;
		}
	} else if (l) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
			fd = sv[0];
			peer = sv[1];
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		}
	}
	struct vs_conn *c = fd >= 0 ? vs_conn_new(s, h->dst_port, h->src_port, fd) : NULL;
	struct vs_accept *a = peer >= 0 ? calloc(1, sizeof(*a)) : NULL;
	if (!c || (peer >= 0 && !a)) {
		if (c)
			vs_conn_free(c);
		else if (fd >= 0)
			close(fd);
		if (peer >= 0)
			close(peer);
		free(a);
		vs_ctrl_push(s, h->dst_port, h->src_port, VIRTIO_VSOCK_OP_RST, 0);
		return;
	}
	c->state = CS_ESTABLISHED;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (a) {
		*a = (struct vs_accept){peer, h->dst_port, h->src_port, l->fn, l->opaque, s->accepts};
		s->accepts = a;
	}
	vs_ctrl_push(s, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_RESPONSE, 0);
	vs_conn_watch(c);
}

/* Guest RW payload: straight to the fd while the ring is empty, the rest into it. */
static void guest_data(struct virtio_vsock *s, struct vs_conn *c, const struct virtq_elem *e,
		       uint32_t len)
{
	unsigned k = iov_window(s, e->iov, e->n_out, HDR, len);
	uint32_t done = 0;
	if (!c->r_len) {
		ssize_t w;
		do
			w = send_iov(c->fd, s->win, k);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN) {
			vs_conn_reset(c);
			return;
		}
		done = w > 0 ? (uint32_t)w : 0;
		c->fwd_cnt += done;
	}
	s->st.to_host_bytes += len;
	uint32_t rest = len - done;
	if (rest) {
		if (c->r_len + rest > VSOCK_BUF_ALLOC) {
			pv_debug("%s: stream %u:%u overran its credit", s->vdev.dev.id,
				 c->host_port, c->guest_port);
			vs_conn_reset(c);
			return;
		}
		if (!c->ring) {
			if (s->nrings >= VSOCK_MAX_RINGS || !(c->ring = malloc(VSOCK_BUF_ALLOC))) {
				pv_debug("%s: stream %u:%u: no room to buffer for its host end",
					 s->vdev.dev.id, c->host_port, c->guest_port);
				vs_conn_reset(c);
				return;
			}
			s->nrings++;
		}
		uint32_t tail = (c->r_head + c->r_len) % VSOCK_BUF_ALLOC;
		uint32_t first = PV_MIN(rest, VSOCK_BUF_ALLOC - tail);
		iov_to_buf(e->iov, e->n_out, HDR + done, c->ring + tail, first);
		iov_to_buf(e->iov, e->n_out, HDR + done + first, c->ring, rest - first);
		c->r_len += rest;
	}
	flush_ring(c);
}

static void guest_packet(struct virtio_vsock *s, const struct virtio_vsock_hdr *h,
			 const struct virtq_elem *e)
{
	if (h->type != VIRTIO_VSOCK_TYPE_STREAM || h->dst_cid != VSOCK_HOST_CID ||
	    h->src_cid != s->cid) {
		s->st.dropped_packets++;
		if (h->op != VIRTIO_VSOCK_OP_RST)
			vs_ctrl_push(s, h->dst_port, h->src_port, VIRTIO_VSOCK_OP_RST, 0);
		return;
	}
	struct vs_conn *c = vs_conn_find(s, h->dst_port, h->src_port);
	if (c) {
		c->peer_buf_alloc = h->buf_alloc;
		c->peer_fwd_cnt = h->fwd_cnt;
		if (credit(c) > 0)
			c->credit_req_sent = false;
	}
	switch (h->op) {
	case VIRTIO_VSOCK_OP_REQUEST:
		if (c)
			vs_conn_reset(c);
		else
			guest_request(s, h);
		return;
	case VIRTIO_VSOCK_OP_RST:
		if (c) {
			s->st.rst_received++;
			vs_conn_free(c);
		}
		return;
	default:
		break;
	}
	if (!c) {
		s->st.dropped_packets++;
		vs_ctrl_push(s, h->dst_port, h->src_port, VIRTIO_VSOCK_OP_RST, 0);
		return;
	}
	switch (h->op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != CS_CONNECTING) {
			vs_conn_reset(c);
			return;
		}
		c->state = CS_ESTABLISHED;
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != CS_ESTABLISHED) {
			vs_conn_reset(c);
			return;
		}
		if (!c->guest_shut_send && h->len) {
			guest_data(s, c, e, h->len);
			return;
		}
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (h->flags & VIRTIO_VSOCK_SHUTDOWN_RCV) {
			c->guest_shut_rcv = true;
			ready_remove(s, c);
		}
		if (h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
			c->guest_shut_send = true;
		flush_ring(c);
		return;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		vs_ctrl_push(s, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	default:
		s->st.dropped_packets++;
		vs_conn_reset(c);
		return;
	}
	vs_conn_watch(c);
}

static void run_accepts(struct virtio_vsock *s)
{
	pthread_mutex_lock(&s->vdev.lock);
	struct vs_accept *a = s->accepts;
	s->accepts = NULL;
	pthread_mutex_unlock(&s->vdev.lock);
	while (a) {
		struct vs_accept *n = a->next;
		a->fn(a->opaque, a->fd, a->host_port, a->guest_port);
		free(a);
		a = n;
	}
}

static void transmit(struct virtio_vsock *s)
{
	struct virtio_dev *v = &s->vdev;
	struct virtqueue *vq = &v->vq[1];
	bool irq = false;
	unsigned taken = 0;
	pthread_mutex_lock(&v->lock);
	while (virtio_dev_queue_live(v, 1)) {
		if (taken++ >= VIRTIO_NOTIFY_BUDGET && virtio_dev_defer(v, 1))
			break;
		virtq_enable_notify(vq, false);
		int got = virtio_dev_pop(v, vq, &s->txe);
		if (got == -EAGAIN)
			continue;
		if (got <= 0)
			break;
		struct virtio_vsock_hdr h;
		if (s->txe.out_len < HDR) {
			virtio_dev_needs_reset(v, "vsock: packet shorter than its header");
			break;
		}
		iov_to_buf(s->txe.iov, s->txe.n_out, 0, &h, HDR);
		if (h.len > VSOCK_MAX_PKT || s->txe.out_len != (uint64_t)HDR + h.len) {
			virtio_dev_needs_reset(v, "vsock: packet length does not match its buffers");
			break;
		}
		guest_packet(s, &h, &s->txe);
		irq |= virtq_push(vq, s->txe.head, 0);
	}
	if (irq)
		virtio_dev_interrupt(v, VIRTIO_MMIO_INT_VRING);
	vs_pump(s);
	pthread_mutex_unlock(&v->lock);
	run_accepts(s);
}

void vs_queue_notify(struct device *d, unsigned queue)
{
	struct virtio_vsock *s = (struct virtio_vsock *)d;
	if (queue == 1) {
		transmit(s);
		return;
	}
	pthread_mutex_lock(&s->vdev.lock);
	vs_pump(s);
	pthread_mutex_unlock(&s->vdev.lock);
}

void vs_close_all(struct virtio_vsock *s)
{
	while (s->conns)
		vs_conn_free(s->conns);
	vs_ctrl_clear(s);
	s->rx_held = false;
}
