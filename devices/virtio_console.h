/* virtio_console.h — virtio-console with one port (the guest's hvc0). Output goes
 * into the VM's console ring (vm_console_output), the same one the serial port
 * fills; host input (vm_console_input) is delivered to the guest's receive queue. */
#ifndef PROVIUM_VIRTIO_CONSOLE_H
#define PROVIUM_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct virtio_console;
struct virtio_dev;

#define VIRTIO_CONSOLE_INPUT_SLOT 1   /* vm_console_set_input slot (serial has 0) */
#define VIRTIO_CONSOLE_INBUF (64u << 10) /* host input held until the guest reads it */
/* Guest output goes through one fixed buffer of VIRTIO_CONSOLE_TX_BUF bytes, and
 * at most VIRTIO_CONSOLE_TX_CHAIN_MAX bytes of each transmit chain reach the
 * console (Linux's hvc writes are a page at most); the rest is dropped and
 * counted, so a guest's chains (up to 64 MiB each, possibly all aliasing one
 * buffer) cost the host no more than this buffer. docs/security.md */
#define VIRTIO_CONSOLE_TX_BUF (64u << 10)
#define VIRTIO_CONSOLE_TX_CHAIN_MAX (64u << 10)

int virtio_console_create(const char *id, struct virtio_console **out);
/* Puts it on the VM and registers its output/input with the VM console; the VM
 * then owns it. */
int virtio_console_attach(struct virtio_console *c, struct vm *vm);
void virtio_console_destroy(struct virtio_console *c);   /* only when never attached */
struct virtio_dev *virtio_console_vdev(struct virtio_console *c);
/* Test seam: where guest output goes when not attached to a VM. */
void virtio_console_set_output(struct virtio_console *c,
			       void (*fn)(void *opaque, const char *data, size_t len),
			       void *opaque);
/* Host input; bytes beyond VIRTIO_CONSOLE_INBUF waiting are dropped (counted). */
void virtio_console_input(struct virtio_console *c, const void *data, size_t len);
uint64_t virtio_console_dropped(struct virtio_console *c);
/* Guest output bytes cut off beyond VIRTIO_CONSOLE_TX_CHAIN_MAX per chain. */
uint64_t virtio_console_tx_dropped(struct virtio_console *c);

#endif
