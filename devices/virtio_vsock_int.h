/* virtio_vsock_int.h — what virtio_vsock.c (the device: rings, packets, streams)
 * and virtio_vsock_host.c (the host-side API) share. Not for other files. */
#ifndef PROVIUM_VIRTIO_VSOCK_INT_H
#define PROVIUM_VIRTIO_VSOCK_INT_H

#include "devices/virtio.h"
#include "devices/virtio_vsock.h"

#include <linux/virtio_vsock.h>
#include <sys/socket.h>
#include <sys/un.h>

#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define VSOCK_MAX_PKT (64u * 1024)
#define CTRL_MAX 4096u
#define FIRST_HOST_PORT 49152u
#define VSOCK_RESET_WAIT_NS (5ull * 1000000000) /* a guest that never takes the reset event */

enum conn_state { CS_CONNECTING, CS_ESTABLISHED };

struct vs_conn {
	struct virtio_vsock *s;
	uint32_t host_port, guest_port;
	int fd;
	enum conn_state state;
	bool dead, registered;
	uint32_t events;
	/* host -> guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool ready, rd_eof, guest_shut_rcv, credit_req_sent;
	/* guest -> host */
	uint8_t *ring;
	uint32_t r_head, r_len, fwd_cnt, fwd_cnt_sent;
	bool guest_shut_send;
	bool carry; /* virtio_vsock_carry(): a snapshot saves it whole when it is idle */
	struct vs_conn *next, *rnext;
};

/* A stream a snapshot carried (saved whole, idle). The load re-creates it, before the
 * guest runs again (a packet of the guest's for it must find it), and keeps the new
 * host end in `fd` until virtio_vsock_adopt() hands it out. */
struct vs_carried {
	uint32_t host_port, guest_port, peer_buf_alloc, peer_fwd_cnt, tx_cnt, fwd_cnt;
	int fd;
};

struct vs_pkt {
	struct virtio_vsock_hdr h;
	struct vs_pkt *next;
};

struct vs_listener {
	uint32_t port;
	virtio_vsock_accept_fn fn;
	void *opaque;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct vs_listener *next;
};

struct vs_accept {
	int fd;
	uint32_t host_port, guest_port;
	virtio_vsock_accept_fn fn;
	void *opaque;
	struct vs_accept *next;
};

struct virtio_vsock {
	struct virtio_dev vdev;
	uint64_t cid;
	struct evloop *loop;
	struct vs_conn *conns, *ready_head, *ready_tail;
	struct vs_pkt *ctrl, **ctrl_tail;
	unsigned nctrl;
	struct vs_listener *listeners;
	struct vs_accept *accepts;
	uint32_t next_port;
	unsigned nstreams, nrings;  /* <= VSOCK_MAX_STREAMS, VSOCK_MAX_RINGS */
	bool event_pending, rx_held, reap_scheduled;
	/* After a transport reset (a restore) the guest resets every connected socket
	 * when it takes the event, which would also kill a stream the host opened just
	 * before: host connects wait until it has (it gives the event buffer back, so
	 * the event queue's avail index moves past reset_avail), at most RESET_WAIT_NS. */
	bool reset_wait;
	uint16_t reset_avail;
	uint64_t reset_at;
	/* After a load: the streams the snapshot had open (the guest still holds
	 * them). loaded_streams says the snapshot listed them, so RSTs (queued by
	 * load) end them instead of a transport reset (virtio_vsock_restored). */
	bool loaded_streams;
	struct vs_carried *carried; /* loaded, not adopted yet */
	unsigned ncarried;
	struct vs_conn *grave;    /* closed streams, freed on the loop thread */
	struct virtio_vsock_stats st;
	struct virtq_elem rxe, txe, eve;
	struct iovec win[VIRTQ_MAX_SEGS];
};

/* All with vdev.lock held. */
struct vs_conn *vs_conn_find(struct virtio_vsock *s, uint32_t hp, uint32_t gp);
struct vs_conn *vs_conn_new(struct virtio_vsock *s, uint32_t hp, uint32_t gp, int fd);
void vs_conn_free(struct vs_conn *c);        /* closes the host end, no packet */
void vs_conn_reset(struct vs_conn *c);       /* RST to the guest, then free */
void vs_conn_watch(struct vs_conn *c);       /* (un)watches its fd for what it needs now */
void vs_carried_drop(struct virtio_vsock *s); /* resets carried streams not adopted */
void vs_ctrl_push(struct virtio_vsock *s, uint32_t hp, uint32_t gp, uint16_t op, uint32_t flags);
void vs_close_all(struct virtio_vsock *s);   /* every stream and queued packet */
struct vs_listener *vs_listener_find(struct virtio_vsock *s, uint32_t port);
/* Fills receive/event buffers and interrupts the guest when it should. */
void vs_pump(struct virtio_vsock *s);
bool vs_reset_settled(struct virtio_vsock *s); /* false while a host connect must wait (lock held) */
/* The device ops' queue_notify (virtio_vsock.c), and freeing closed streams. */
void vs_queue_notify(struct device *d, unsigned queue);
void vs_grave_free(struct virtio_vsock *s);

#endif
