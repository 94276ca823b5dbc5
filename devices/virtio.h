/* virtio.h — what every virtio device shares: the guest-memory view the ring code
 * uses (bounds-checked), split virtqueues (virtqueue.c), and the virtio-mmio
 * transport (virtio_mmio.c: version 2, modern only).
 *
 * A virtio device is a struct embedding `struct virtio_dev` (which embeds
 * `struct device` first), one static `device_ops` table whose mmio_read/mmio_write
 * are virtio_mmio_read/virtio_mmio_write, and one static `virtio_dev_ops` with the
 * device-type specifics (id, queue count, config space).
 *
 * Test seam: nothing below needs a `struct vm`. Queues read guest memory through a
 * `struct guest_mem` and interrupts go through vdev->signal, so unit tests drive a
 * device with a buffer standing for guest RAM (virtio_dev_bind_mem) and their own
 * signal callback. virtio_mmio_attach() wires the same device to a real VM (MMIO
 * window, IRQ, ioeventfd/irqfd, command-line entry).
 *
 * Locking: vdev->lock guards transport and queue state. The transport takes it
 * around register accesses; device queue_notify/reset ops are called WITHOUT it
 * and take it themselves. virtio_dev_interrupt()/virtq_* expect it held. */
#ifndef PROVIUM_VIRTIO_H
#define PROVIUM_VIRTIO_H

#include "devices/device.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* ---- guest memory ---- */

/* Guest RAM as one contiguous range starting at guest-physical `gpa` (0 on x86,
 * 2 GiB on arm64: vmm/arch.h), or a test buffer. */
struct guest_mem {
	uint8_t *base;
	uint64_t size;
	uint64_t gpa;
};

/* Host pointer for [gpa, gpa+len), or NULL when any byte lies outside guest RAM
 * (overflow-safe). len 0 is valid when gpa <= the end of RAM. */
static inline void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m->base || gpa < m->gpa)
		return NULL;
	gpa -= m->gpa;
	if (gpa > m->size || len > m->size - gpa)
		return NULL;
	return m->base + gpa;
}

/* ---- split virtqueues (virtqueue.c) ---- */

#define VIRTQ_MAX_SIZE 256   /* QueueNumMax offered by every device */
#define VIRTQ_MAX_SEGS 256   /* descriptors in one chain (incl. an indirect table) */
#define VIRTQ_MAX_CHAIN_BYTES (64ull << 20) /* sum of one chain's lengths */

struct virtqueue {
	/* Set by the driver through the transport. */
	uint16_t num;             /* queue size (power of 2, <= VIRTQ_MAX_SIZE) */
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Device state. */
	uint16_t last_avail;      /* next avail ring index to take */
	uint16_t used_idx;        /* next used ring index to fill (our shadow) */
	uint16_t signalled_used;  /* used_idx at the last interrupt (EVENT_IDX) */
	bool signalled_valid;
	bool event_idx;           /* VIRTIO_RING_F_EVENT_IDX negotiated */
	/* Host pointers resolved when the queue became ready. */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	const struct guest_mem *mem;
	unsigned index;
};

/* One popped request: the readable (driver -> device) segments come first, then
 * the writable ones, as host pointers already checked against guest RAM. */
struct virtq_elem {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len;
	struct iovec iov[VIRTQ_MAX_SEGS]; /* [0, n_out) readable, [n_out, n_out+n_in) writable */
};

/* Checks the ring addresses against guest memory and caches host pointers.
 * Returns 0 or -EINVAL (message in pv_errmsg()). */
int virtq_activate(struct virtqueue *vq, const struct guest_mem *mem, bool event_idx);
void virtq_reset(struct virtqueue *vq);
/* Takes the next available chain: 1 = got one, 0 = ring empty, -EINVAL = the
 * driver broke the ring rules (bad index, loop, out-of-range address or length,
 * chain too long, writable before readable); pv_errmsg() says which. */
int virtq_pop(struct virtqueue *vq, struct virtq_elem *e);
/* Puts `head` on the used ring with `written` bytes. Returns true when the driver
 * wants an interrupt for it (VRING_AVAIL_F_NO_INTERRUPT / used_event). */
bool virtq_push(struct virtqueue *vq, uint16_t head, uint32_t written);
/* The avail ring index the driver last published (0 before the queue is live). */
uint16_t virtq_avail_idx(struct virtqueue *vq);
/* Whether the ring has chains we have not taken. */
bool virtq_has_avail(struct virtqueue *vq);
/* EVENT_IDX: publish avail_event = last_avail so the driver kicks on new work;
 * without EVENT_IDX, set/clear VRING_USED_F_NO_NOTIFY. */
void virtq_enable_notify(struct virtqueue *vq, bool enable);

/* iovec helpers: copy between a flat buffer and iov[0..n) starting at byte `off`
 * of the iovec; return bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t buf_to_iov(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);

/* ---- virtio devices and the mmio transport (virtio_mmio.c) ---- */

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_MMIO_WINDOW 0x200     /* registers + config space */
#define VIRTIO_VENDOR_PROVIUM 0x70767276u /* "pvrv" */

struct virtio_dev;

struct virtio_dev_ops {
	uint32_t device_id;        /* VIRTIO_ID_* */
	unsigned num_queues;
	uint32_t config_size;      /* bytes of device config space */
	/* Config space access (vdev->lock held); off/len already checked against
	 * config_size. */
	void (*config_read)(struct virtio_dev *v, uint64_t off, void *data, unsigned len);
	void (*config_write)(struct virtio_dev *v, uint64_t off, const void *data, unsigned len);
	/* Called once the driver sets DRIVER_OK (vdev->lock held). */
	void (*driver_ok)(struct virtio_dev *v);
};

struct virtio_dev {
	struct device dev;               /* first: device ops see this */
	const struct virtio_dev_ops *vops;
	pthread_mutex_t lock;

	uint64_t host_features;          /* VERSION_1 | EVENT_IDX | INDIRECT | device's */
	uint64_t driver_features;
	uint32_t dev_feat_sel, drv_feat_sel;
	uint32_t status;
	uint32_t queue_sel;
	uint32_t isr;                    /* VIRTIO_MMIO_INT_* pending */
	uint32_t config_generation;
	struct virtqueue vq[VIRTIO_MAX_QUEUES];
	bool broken;                     /* the driver broke the ring rules: queues stop */
	bool broken_logged;              /* the "needs reset" message was printed */

	struct guest_mem mem;
	/* Interrupt delivery: called with vdev->lock held whenever isr gains bits
	 * (level = true) or becomes 0 after an ACK (level = false). */
	void (*signal)(struct virtio_dev *v, bool level, void *opaque);
	void *signal_opaque;

	/* mmio wiring (virtio_mmio_attach) */
	struct vm *vm;
	uint64_t mmio_base;
	int irq;
	int irqfd;                       /* -1: KVM_IRQ_LINE fallback */
	int ioeventfd[VIRTIO_MAX_QUEUES];/* -1: MMIO-exit fallback */
	struct evloop *loop;
	bool no_eventfds;                /* set before attach: force the fallback paths */
	uint64_t notify_exits;           /* QueueNotify writes that came by MMIO exit */
	uint64_t notify_events;          /* ... and by ioeventfd */
};

#define virtio_dev_of(d) ((struct virtio_dev *)(d))

/* Fills the transport part of a device: ops, id ("vda"), vops, features (the
 * transport adds VERSION_1, EVENT_IDX and INDIRECT_DESC). No VM needed. */
int virtio_dev_init(struct virtio_dev *v, const struct device_ops *ops,
		    const struct virtio_dev_ops *vops, const char *id, uint64_t features);
void virtio_dev_fini(struct virtio_dev *v);
/* Test seam: guest memory and interrupt callback without a VM. */
void virtio_dev_bind_mem(struct virtio_dev *v, void *base, uint64_t size);

/* Registers the device on vm's MMIO bus (vm_alloc_mmio/vm_alloc_irq), sets up
 * irqfd + one ioeventfd per queue when KVM offers them (falls back to
 * KVM_IRQ_LINE / MMIO exits), and adds "virtio_mmio.device=<size>@<addr>:<irq>"
 * to the command line. Call before vm_start(). */
int virtio_mmio_attach(struct virtio_dev *v, struct vm *vm);
/* Undoes what attach set up (eventfds, evloop entries, bus registration). */
void virtio_mmio_detach(struct virtio_dev *v);
/* The device_ops realize every virtio device uses: virtio_mmio_attach(d, vm). */
int virtio_mmio_realize(struct device *d, struct vm *vm);
/* The device_ops reset of a device with no state beyond the transport. */
void virtio_mmio_reset(struct device *d);
/* Hands the device to vm: it is destroyed (dev.ops->destroy) with the VM. The
 * last step of a device's *_attach, once nothing can fail any more. */
void virtio_mmio_owned_by(struct virtio_dev *v, struct vm *vm);

/* The device_ops mmio handlers every virtio device uses. */
void virtio_mmio_read(struct device *d, uint64_t off, void *data, unsigned len);
void virtio_mmio_write(struct device *d, uint64_t off, const void *data, unsigned len);

/* With vdev->lock held: raise VIRTIO_MMIO_INT_VRING / _CONFIG. */
void virtio_dev_interrupt(struct virtio_dev *v, uint32_t bits);
/* With vdev->lock held: the config space changed (bumps the generation and
 * interrupts when the driver is up). */
void virtio_dev_config_changed(struct virtio_dev *v);
/* With vdev->lock held: set DEVICE_NEEDS_RESET, stop using the queues, log once
 * (why = pv_errmsg() style text), and send a config interrupt. */
void virtio_dev_needs_reset(struct virtio_dev *v, const char *why);
/* With vdev->lock held, in a device's queue loop: pops the next chain of vq
 * into e. 1: got one. 0: the queue is empty and notifications are back on
 * (stop). -EAGAIN: the driver added a chain meanwhile (go round again).
 * -EINVAL: the ring is broken and the device now needs reset (stop). */
int virtio_dev_pop(struct virtio_dev *v, struct virtqueue *vq, struct virtq_elem *e);
/* Chains a device takes in one queue_notify before it lets the event loop serve
 * other work: a guest that keeps republishing heads from another vCPU must not
 * keep the loop thread to itself. */
#define VIRTIO_NOTIFY_BUDGET VIRTQ_MAX_SIZE
/* With vdev->lock held, in a queue loop that has taken VIRTIO_NOTIFY_BUDGET chains:
 * true when the device should stop now — queue q's ioeventfd is made readable again,
 * so the event loop calls queue_notify once more after its other fds; false when
 * the queue has no ioeventfd (MMIO-exit fallback, tests: the caller goes on). */
bool virtio_dev_defer(struct virtio_dev *v, unsigned q);
/* With vdev->lock held: set DEVICE_NEEDS_RESET and send a config interrupt but
 * keep serving the queues (a detached disk answers every request with IOERR). */
void virtio_dev_signal_needs_reset(struct virtio_dev *v, const char *why);
/* With vdev->lock held: the device may process queue q (driver up, queue ready,
 * not broken). */
bool virtio_dev_queue_live(struct virtio_dev *v, unsigned q);
/* Back to the power-on state (status 0, queues off); the device's own reset
 * op calls this. Takes vdev->lock. */
void virtio_dev_reset(struct virtio_dev *v);
bool virtio_dev_has_feature(const struct virtio_dev *v, unsigned bit);

/* Snapshot helpers: the transport + queue state as one msgpack map, and back. */
int virtio_dev_save(struct virtio_dev *v, msgpack_packer *pk);
int virtio_dev_load(struct virtio_dev *v, const msgpack_object *state);
/* Finds key in a msgpack map (NULL when absent or not a map). */
const msgpack_object *virtio_msgpack_get(const msgpack_object *map, const char *key);

#endif
