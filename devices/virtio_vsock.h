/* virtio_vsock.h — virtio-vsock (virtio 1.x §5.10) in userspace, no vhost: stream
 * sockets between the guest (CID from config) and the host (CID 2). The host end
 * of every stream is a host fd: a socketpair end for streams the host opens, the
 * accepted fd (or a unix-socket connection) for streams the guest opens. Credit
 * flow control both ways, SHUTDOWN and RST, many streams, and the transport-reset
 * event for restored VMs. docs/devices/virtio-vsock.md */
#ifndef PROVIUM_VIRTIO_VSOCK_H
#define PROVIUM_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct evloop;
struct virtio_dev;
struct virtio_vsock;

#define VSOCK_HOST_CID 2
/* Bytes each stream buffers toward the host (the credit the guest gets). */
#define VSOCK_BUF_ALLOC (256u * 1024)
/* Streams open at once (each holds a host fd); a guest REQUEST beyond it gets RST,
 * virtio_vsock_connect() -EMFILE. Of them, at most VSOCK_MAX_RINGS may hold a
 * VSOCK_BUF_ALLOC ring at a time (a ring exists only while the host end does not
 * keep up); a stream that needs one beyond that is reset. So the guest can make
 * the device hold at most VSOCK_MAX_RINGS * VSOCK_BUF_ALLOC = 16 MiB of its data.
 * docs/security.md */
#define VSOCK_MAX_STREAMS 256u
#define VSOCK_MAX_RINGS 64u

int virtio_vsock_create(const char *id, uint64_t guest_cid, struct virtio_vsock **out);
/* Puts it on the VM; the VM then owns it (freed by vm_destroy). */
int virtio_vsock_attach(struct virtio_vsock *s, struct vm *vm);
/* Serves streams on `loop` without a VM (tests, benches; after virtio_dev_bind_mem). */
int virtio_vsock_start(struct virtio_vsock *s, struct evloop *loop);
void virtio_vsock_destroy(struct virtio_vsock *s);  /* only when never attached */
struct virtio_dev *virtio_vsock_vdev(struct virtio_vsock *s);

uint64_t virtio_vsock_cid(struct virtio_vsock *s);
/* Changes the guest CID in config space (a restored VM gets a fresh one); send
 * virtio_vsock_transport_reset() after it so the guest re-reads it. */
void virtio_vsock_set_cid(struct virtio_vsock *s, uint64_t cid);

/* Opens a stream to guest_port. Returns the host end: an AF_UNIX SOCK_STREAM fd
 * (close-on-exec, blocking) the caller owns and uses like a socket. Data written
 * before the guest accepts waits; a refused connection (guest RST) or a reset
 * stream reads as EOF (ECONNRESET for writes). *host_port (optional) gets the
 * host-side port chosen for it. */
int virtio_vsock_connect(struct virtio_vsock *s, uint32_t guest_port, uint32_t *host_port);

/* Accepting guest-initiated streams on a host port: either a callback that gets
 * the host end (an fd it owns; called on the thread that processed the guest's
 * request, without device locks) ... */
typedef void (*virtio_vsock_accept_fn)(void *opaque, int fd, uint32_t host_port,
				       uint32_t guest_port);
int virtio_vsock_listen(struct virtio_vsock *s, uint32_t host_port,
			virtio_vsock_accept_fn fn, void *opaque);
/* ... or a unix-socket path: each stream becomes a connection to that socket.
 * A path that refuses connections makes the guest see RST. */
int virtio_vsock_listen_unix(struct virtio_vsock *s, uint32_t host_port, const char *path);
int virtio_vsock_unlisten(struct virtio_vsock *s, uint32_t host_port); /* 0 / -ENOENT */

/* Sends RST for the stream (host_port, guest_port) and closes the host end.
 * 0 or -ENOENT. */
int virtio_vsock_reset(struct virtio_vsock *s, uint32_t host_port, uint32_t guest_port);
/* Closes every stream (host ends read EOF) and queues a
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET event for the guest (delivered when it posts
 * an event buffer). Use after a restore. */
void virtio_vsock_transport_reset(struct virtio_vsock *s);
/* After a load, once the VM runs: ends the streams the guest held when the
 * snapshot was taken. A snapshot that lists them had an RST queued for each by the
 * load (delivered now, and always ahead of a later connect's REQUEST, so a connect
 * need not wait): returns true. One that does not (older snapshots) gets
 * virtio_vsock_transport_reset(): returns false. */
bool virtio_vsock_restored(struct virtio_vsock *s);

/* Carrying a stream across a snapshot (the runner's spare agent connection, so a
 * restored VM need not connect and handshake again): a stream marked with
 * virtio_vsock_carry() is saved whole when a snapshot finds it idle (established,
 * nothing in flight either way); otherwise it ends at the load like the others.
 * After a load, virtio_vsock_adopt() gives a carried stream to guest_port a new
 * host end (the fd, as virtio_vsock_connect() returns; *host_port its port), or
 * -ENOENT; call it before virtio_vsock_restored(), which resets the carried
 * streams left. carry: 0 or -ENOENT. */
int virtio_vsock_carry(struct virtio_vsock *s, uint32_t host_port, uint32_t guest_port);
int virtio_vsock_adopt(struct virtio_vsock *s, uint32_t guest_port, uint32_t *host_port);

struct virtio_vsock_stats {
	uint64_t streams;            /* open now */
	uint64_t opened, rst_sent, rst_received;
	uint64_t to_guest_bytes, to_host_bytes;
	uint64_t credit_stalls;      /* times host->guest data waited for guest credit */
	uint64_t dropped_packets;    /* bad type/CID/state packets answered or ignored */
	uint64_t events_sent;
	uint64_t adopted;            /* carried streams given a new host end */
};
void virtio_vsock_stats(struct virtio_vsock *s, struct virtio_vsock_stats *st);

#endif
