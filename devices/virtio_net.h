/* virtio_net.h — virtio-net (virtio 1.x §5.1) backed by a TAP fd: one RX and one
 * TX queue, the MAC in config space (VIRTIO_NET_F_MAC), link status settable from
 * the host (VIRTIO_NET_F_STATUS + config-change interrupt), no offloads. Every
 * frame crosses the NIC's netpath (devices/netpath.h) in both directions.
 * docs/devices/virtio-net.md */
#ifndef PROVIUM_VIRTIO_NET_H
#define PROVIUM_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct evloop;
struct netpath;
struct virtio_dev;
struct virtio_net;

#define VIRTIO_NET_HDR_SIZE 12   /* struct virtio_net_hdr_v1, the TAP's vnet header */

/* Opens /dev/net/tun as a TAP with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, vnet header
 * size 12, non-blocking and close-on-exec, in the calling thread's network
 * namespace. name may be NULL or a pattern ("tap%d"); the kernel's name is copied
 * to ifname (IFNAMSIZ bytes). Returns the fd or -errno. */
int virtio_net_open_tap(const char *name, char *ifname);

struct virtio_net_opts {
	/* The backend: a TAP fd from virtio_net_open_tap(), or anything that reads
	 * and writes one "12-byte vnet header + Ethernet frame" per read/write (a
	 * SOCK_SEQPACKET socketpair end in tests and benches). The device owns it
	 * from create on (closes it on destroy), also on failure. */
	int fd;
	uint8_t mac[6];          /* all zero: a random locally administered MAC */
	bool link_down;          /* start with the link down */
	uint64_t seed;           /* netpath's seed (0 = from the clock) */
	/* Event loop serving the fd before/without a VM (tests, benches); attach
	 * uses the VM's loop when this is NULL. */
	struct evloop *loop;
};

int virtio_net_create(const char *id, const struct virtio_net_opts *opts, struct virtio_net **out);
/* Puts it on the VM (MMIO window, IRQ, command line, RX watch on the VM's event
 * loop); the VM then owns it and frees it in vm_destroy(). */
int virtio_net_attach(struct virtio_net *n, struct vm *vm);
/* Starts serving the fd on `loop` without a VM (tests, benches; after
 * virtio_dev_bind_mem). */
int virtio_net_start(struct virtio_net *n, struct evloop *loop);
void virtio_net_destroy(struct virtio_net *n);   /* only when never attached */

struct virtio_dev *virtio_net_vdev(struct virtio_net *n);
struct netpath *virtio_net_netpath(struct virtio_net *n);
void virtio_net_mac(struct virtio_net *n, uint8_t mac[6]);
int virtio_net_fd(struct virtio_net *n);

/* Link state: down drops every frame both ways (in netpath) and clears
 * VIRTIO_NET_S_LINK_UP in config space with a config-change interrupt. */
void virtio_net_set_link(struct virtio_net *n, bool up);
bool virtio_net_link_up(struct virtio_net *n);

/* rx = host -> guest (what the guest received), tx = guest -> host. dropped
 * counts link down, netpath rules, no guest buffer, oversize and backend errors. */
struct virtio_net_counters {
	uint64_t rx_packets, rx_bytes, rx_dropped;
	uint64_t tx_packets, tx_bytes, tx_dropped;
};
void virtio_net_counters(struct virtio_net *n, struct virtio_net_counters *c);

#endif
