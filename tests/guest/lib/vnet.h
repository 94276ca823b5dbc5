/* vnet.h — virtio-net test frames for the test guests: the 12-byte virtio 1.x net
 * header followed by an Ethernet frame of the test EtherType 0x88b5 carrying a text
 * payload, which the host sides (host_virtio_net.c, host_net_pair.c) look for. */
#ifndef GUEST_VNET_H
#define GUEST_VNET_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"

#define VNET_HDR 12

/* Builds the frame dst <- src with payload in buf (room for VNET_HDR + 14 + the
 * payload), queues it on tx, kicks and waits up to 20 s for the device to use it. */
bool vnet_send(struct vq *tx, uint8_t *buf, const uint8_t dst[6], const uint8_t src[6],
	       const char *payload);

#endif
