/* virtio_console.c — virtio-console (virtio 1.x §5.3) without MULTIPORT: queue 0
 * is port 0's receive queue (host -> guest), queue 1 its transmit queue. Linux
 * makes port 0 hvc0. Host input waits in a bounded buffer until the guest posts
 * receive buffers; guest output is handed to the VM console ring through a fixed
 * buffer (VIRTIO_CONSOLE_TX_BUF), flushed as it fills. */
#include "devices/virtio_console.h"
#include "devices/virtio.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <linux/virtio_console.h>
#include <stdlib.h>
#include <string.h>

struct virtio_console {
	struct virtio_dev vdev;
	struct virtio_console_config cfg;
	void (*out)(void *opaque, const char *data, size_t len);
	void *out_opaque;
	/* Pending host input (vdev.lock). */
	char *in;
	size_t in_len;
	uint64_t dropped;
	struct virtq_elem elem;
	/* Guest output is copied out under vdev.lock and handed to `out` after it is
	 * dropped (out may feed input back, which takes vdev.lock); tx_lock keeps the
	 * order when two threads transmit and guards tx, tx_len and tx_elem. Lock
	 * order: tx_lock, vdev.lock. */
	pthread_mutex_t tx_lock;
	char *tx;                  /* VIRTIO_CONSOLE_TX_BUF bytes */
	size_t tx_len;
	uint64_t tx_dropped;       /* vdev.lock */
	struct virtq_elem tx_elem;
};

/* Moves pending input into receive buffers (vdev.lock held). */
static bool deliver(struct virtio_console *c)
{
	struct virtio_dev *v = &c->vdev;
	struct virtqueue *vq = &v->vq[0];
	bool irq = false;
	while (c->in_len && virtio_dev_queue_live(v, 0)) {
		int got = virtq_pop(vq, &c->elem);
		if (got < 0) {
			virtio_dev_needs_reset(v, pv_errmsg());
			break;
		}
		if (!got)
			break;
		size_t n = buf_to_iov(&c->elem.iov[c->elem.n_out], c->elem.n_in, 0, c->in,
				      c->in_len);
		memmove(c->in, c->in + n, c->in_len - n);
		c->in_len -= n;
		irq |= virtq_push(vq, c->elem.head, (uint32_t)n);
	}
	if (virtio_dev_queue_live(v, 0))
		virtq_enable_notify(vq, true);
	return irq;
}

/* Hands the buffered output to `out` (tx_lock held, vdev.lock not). */
static void tx_flush(struct virtio_console *c, void (*out)(void *, const char *, size_t),
		     void *opaque)
{
	if (out && c->tx_len)
		out(opaque, c->tx, c->tx_len);
	c->tx_len = 0;
}

/* Transmit: takes up to a queue's worth of chains, copies at most
 * VIRTIO_CONSOLE_TX_CHAIN_MAX bytes of each into c->tx (flushing it to `out`
 * whenever the next chain would not fit), then puts them all on the used ring. So
 * the output reaches the console ring before the guest can see its buffers used
 * ("printed, then used" holds for the guest), and `out` runs without vdev.lock
 * (it may feed input back, which takes vdev.lock). */
static void transmit(struct virtio_console *c)
{
	static _Thread_local uint16_t heads[VIRTQ_MAX_SIZE];
	struct virtio_dev *v = &c->vdev;
	struct virtqueue *vq = &v->vq[1];
	unsigned n = 0;
	pthread_mutex_lock(&c->tx_lock);
	pthread_mutex_lock(&v->lock);
	void (*out)(void *, const char *, size_t) = c->out;
	void *opaque = c->out_opaque;
	while (n < VIRTQ_MAX_SIZE && virtio_dev_queue_live(v, 1)) {
		virtq_enable_notify(vq, false);
		int got = virtio_dev_pop(v, vq, &c->tx_elem);
		if (got == -EAGAIN)
			continue;
		if (got <= 0)
			break;
		struct virtq_elem *e = &c->tx_elem;
		size_t len = PV_MIN(e->out_len, (uint64_t)VIRTIO_CONSOLE_TX_CHAIN_MAX);
		c->tx_dropped += e->out_len - len;
		heads[n++] = e->head;
		if (c->tx_len + len > VIRTIO_CONSOLE_TX_BUF) {
			pthread_mutex_unlock(&v->lock);
			tx_flush(c, out, opaque);
			pthread_mutex_lock(&v->lock);
		}
		/* The chain's iovecs stay valid: guest RAM does not move. */
		c->tx_len += iov_to_buf(e->iov, e->n_out, 0, c->tx + c->tx_len, len);
	}
	if (n == VIRTQ_MAX_SIZE && virtio_dev_queue_live(v, 1))
		virtq_enable_notify(vq, true);
	pthread_mutex_unlock(&v->lock);
	tx_flush(c, out, opaque);
	pthread_mutex_lock(&v->lock);
	bool irq = false;
	for (unsigned i = 0; i < n && virtio_dev_queue_live(v, 1); i++)
		irq |= virtq_push(vq, heads[i], 0);
	if (irq)
		virtio_dev_interrupt(v, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_unlock(&c->tx_lock);
}

static void con_queue_notify(struct device *d, unsigned queue)
{
	struct virtio_console *c = (struct virtio_console *)d;
	if (queue == 1) {
		transmit(c);
		return;
	}
	if (queue != 0)
		return;
	pthread_mutex_lock(&c->vdev.lock);
	if (deliver(c))
		virtio_dev_interrupt(&c->vdev, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&c->vdev.lock);
}

void virtio_console_input(struct virtio_console *c, const void *data, size_t len)
{
	pthread_mutex_lock(&c->vdev.lock);
	size_t room = VIRTIO_CONSOLE_INBUF - c->in_len;
	size_t n = PV_MIN(room, len);
	memcpy(c->in + c->in_len, data, n);
	c->in_len += n;
	c->dropped += len - n;
	if (deliver(c))
		virtio_dev_interrupt(&c->vdev, VIRTIO_MMIO_INT_VRING);
	pthread_mutex_unlock(&c->vdev.lock);
}

uint64_t virtio_console_dropped(struct virtio_console *c)
{
	pthread_mutex_lock(&c->vdev.lock);
	uint64_t n = c->dropped;
	pthread_mutex_unlock(&c->vdev.lock);
	return n;
}

uint64_t virtio_console_tx_dropped(struct virtio_console *c)
{
	pthread_mutex_lock(&c->vdev.lock);
	uint64_t n = c->tx_dropped;
	pthread_mutex_unlock(&c->vdev.lock);
	return n;
}

static void con_config_read(struct virtio_dev *v, uint64_t off, void *data, unsigned len)
{
	struct virtio_console *c = (struct virtio_console *)v;
	memcpy(data, (uint8_t *)&c->cfg + off, len);
}

static int con_save(struct device *d, msgpack_packer *pk)
{
	struct virtio_console *c = (struct virtio_console *)d;
	msgpack_pack_map(pk, 2);
	msgpack_pack_str_with_body(pk, "transport", 9);
	int err = virtio_dev_save(&c->vdev, pk);
	pthread_mutex_lock(&c->vdev.lock);
	msgpack_pack_str_with_body(pk, "pending_input", 13);
	msgpack_pack_bin_with_body(pk, c->in, c->in_len);
	pthread_mutex_unlock(&c->vdev.lock);
	return err;
}

static int con_load(struct device *d, const msgpack_object *st)
{
	struct virtio_console *c = (struct virtio_console *)d;
	const msgpack_object *t = virtio_msgpack_get(st, "transport");
	const msgpack_object *in = virtio_msgpack_get(st, "pending_input");
	if (!t)
		return pv_error(EINVAL, "%s: saved state has no transport", d->id);
	int err = virtio_dev_load(&c->vdev, t);
	if (err < 0)
		return err;
	if (in && in->type == MSGPACK_OBJECT_BIN && in->via.bin.size <= VIRTIO_CONSOLE_INBUF) {
		pthread_mutex_lock(&c->vdev.lock);
		memcpy(c->in, in->via.bin.ptr, in->via.bin.size);
		c->in_len = in->via.bin.size;
		pthread_mutex_unlock(&c->vdev.lock);
	}
	return 0;
}

static void con_destroy(struct device *d)
{
	struct virtio_console *c = (struct virtio_console *)d;
	if (c->vdev.vm)
		vm_console_set_input(c->vdev.vm, VIRTIO_CONSOLE_INPUT_SLOT, NULL, NULL);
	virtio_dev_fini(&c->vdev);
	pthread_mutex_destroy(&c->tx_lock);
	free(c->tx);
	free(c->in);
	free(c);
}

static const struct device_ops con_ops = {
	.name = "virtio-console",
	.realize = virtio_mmio_realize,
	.mmio_read = virtio_mmio_read,
	.mmio_write = virtio_mmio_write,
	.queue_notify = con_queue_notify,
	.save = con_save,
	.load = con_load,
	.reset = virtio_mmio_reset,
	.destroy = con_destroy,
};

static const struct virtio_dev_ops con_vops = {
	.device_id = VIRTIO_ID_CONSOLE,
	.num_queues = 2,
	.config_size = sizeof(struct virtio_console_config),
	.config_read = con_config_read,
};

int virtio_console_create(const char *id, struct virtio_console **out)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (!c || !(c->in = malloc(VIRTIO_CONSOLE_INBUF)) ||
	    !(c->tx = malloc(VIRTIO_CONSOLE_TX_BUF))) {
		if (c)
			free(c->in);
		free(c);
		return pv_error(ENOMEM, "virtio-console: out of memory");
	}
	pthread_mutex_init(&c->tx_lock, NULL);
	int err = virtio_dev_init(&c->vdev, &con_ops, &con_vops, id ? id : "hvc0", 0);
	if (err < 0) {
		pthread_mutex_destroy(&c->tx_lock);
		free(c->tx);
		free(c->in);
		free(c);
		return err;
	}
	*out = c;
	return 0;
}

void virtio_console_set_output(struct virtio_console *c,
			       void (*fn)(void *opaque, const char *data, size_t len),
			       void *opaque)
{
	pthread_mutex_lock(&c->vdev.lock);
	c->out = fn;
	c->out_opaque = opaque;
	pthread_mutex_unlock(&c->vdev.lock);
}

static void vm_out(void *opaque, const char *data, size_t len)
{
	vm_console_output(opaque, data, len);
}

static void vm_in(void *opaque, const void *data, size_t len)
{
	virtio_console_input(opaque, data, len);
}

int virtio_console_attach(struct virtio_console *c, struct vm *vm)
{
	int err = con_ops.realize(&c->vdev.dev, vm);
	if (err < 0)
		return err;
	virtio_console_set_output(c, vm_out, vm);
	vm_console_set_input(vm, VIRTIO_CONSOLE_INPUT_SLOT, vm_in, c);
	virtio_mmio_owned_by(&c->vdev, vm);
	return 0;
}

void virtio_console_destroy(struct virtio_console *c)
{
	if (c)
		con_destroy(&c->vdev.dev);
}

struct virtio_dev *virtio_console_vdev(struct virtio_console *c)
{
	return &c->vdev;
}
