/* virtio.h — a minimal virtio-mmio (version 2) driver for the test guest: finds
 * devices from the "virtio_mmio.device=<size>@<addr>:<irq>" command-line entries
 * the VMM adds, negotiates features, sets up split queues in guest memory, adds
 * buffer chains, kicks, and waits for the used ring by polling or by interrupt.
 * Single-threaded; memory comes from a small static pool (never freed). */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

/* Registers (virtio 1.x §4.2.2) and status bits. */
#define VMMIO_MAGIC 0x000
#define VMMIO_VERSION 0x004
#define VMMIO_DEVICE_ID 0x008
#define VMMIO_DEV_FEATURES 0x010
#define VMMIO_DEV_FEATURES_SEL 0x014
#define VMMIO_DRV_FEATURES 0x020
#define VMMIO_DRV_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL 0x030
#define VMMIO_QUEUE_NUM_MAX 0x034
#define VMMIO_QUEUE_NUM 0x038
#define VMMIO_QUEUE_READY 0x044
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_INT_STATUS 0x060
#define VMMIO_INT_ACK 0x064
#define VMMIO_STATUS 0x070
#define VMMIO_QUEUE_DESC 0x080
#define VMMIO_QUEUE_AVAIL 0x090
#define VMMIO_QUEUE_USED 0x0a0
#define VMMIO_CONFIG_GEN 0x0fc
#define VMMIO_CONFIG 0x100

#define VSTAT_ACK 1
#define VSTAT_DRIVER 2
#define VSTAT_DRIVER_OK 4
#define VSTAT_FEATURES_OK 8
#define VSTAT_NEEDS_RESET 64
#define VSTAT_FAILED 128

#define VF_VERSION_1 (1ull << 32)
#define VF_EVENT_IDX (1ull << 29)
#define VF_INDIRECT (1ull << 28)

#define VDESC_NEXT 1
#define VDESC_WRITE 2

struct vdesc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vused_elem { uint32_t id, len; };

struct vdev {
	uint64_t base;
	unsigned irq;
	uint32_t device_id;
	uint64_t features;  /* accepted */
};

struct vq {
	struct vdev *dev;
	unsigned index;
	uint16_t num, next_desc, avail_idx, last_used;
	struct vdesc *desc;
	volatile uint16_t *avail;  /* flags, idx, ring[num], used_event */
	volatile uint16_t *used;   /* flags, idx, then elems; avail_event after them */
};

struct vbuf {
	void *addr;
	uint32_t len;
	bool write;  /* device writes it */
};

/* The index-th virtio-mmio device (in command-line order) whose DeviceID is
 * device_id. Returns false when there is none. */
bool virtio_find(uint32_t device_id, unsigned index, struct vdev *d);
/* Reset, ACKNOWLEDGE, DRIVER, features (want & offered, VERSION_1 required),
 * FEATURES_OK. Returns false (and says why) when the device refuses. */
bool virtio_init(struct vdev *d, uint64_t want);
bool vq_setup(struct vdev *d, struct vq *q, unsigned index, uint16_t num);
void virtio_driver_ok(struct vdev *d);
uint32_t virtio_status(struct vdev *d);
/* Config space, byte offset. */
uint32_t virtio_cfg32(struct vdev *d, unsigned off);
uint64_t virtio_cfg64(struct vdev *d, unsigned off);

/* Adds a chain and publishes it (no kick); returns the head index. */
uint16_t vq_add(struct vq *q, const struct vbuf *b, unsigned n);
void vq_kick(struct vq *q);
/* Takes the next used element if there is one. */
bool vq_poll(struct vq *q, uint32_t *id, uint32_t *len);
/* Polls until a used element arrives or timeout_ms passes. */
bool vq_wait(struct vq *q, uint32_t *id, uint32_t *len, unsigned timeout_ms);

/* Interrupts: routes the device's IOAPIC pin to `vector` and counts them; the
 * handler reads InterruptStatus and ACKs it (idt_init/lapic_enable first). */
void virtio_irq_enable(struct vdev *d, unsigned vector);
extern volatile unsigned virtio_irq_count;
extern volatile uint32_t virtio_irq_isr;   /* InterruptStatus bits seen, ORed */

void *virtio_alloc(uint64_t size, uint64_t align);

#endif
