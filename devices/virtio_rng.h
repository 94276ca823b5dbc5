/* virtio_rng.h — virtio-rng (entropy from getrandom(2)). */
#ifndef PROVIUM_VIRTIO_RNG_H
#define PROVIUM_VIRTIO_RNG_H

#include <stdint.h>

struct vm;
struct virtio_rng;
struct virtio_dev;

int virtio_rng_create(const char *id, struct virtio_rng **out);
/* Puts it on the VM (MMIO window, IRQ, command line); the VM then owns it. */
int virtio_rng_attach(struct virtio_rng *r, struct vm *vm);
void virtio_rng_destroy(struct virtio_rng *r);   /* only when never attached */
struct virtio_dev *virtio_rng_vdev(struct virtio_rng *r);
uint64_t virtio_rng_bytes(struct virtio_rng *r); /* bytes handed to the guest */

#endif
