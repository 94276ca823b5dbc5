/* virtio.c — the test guest's virtio-mmio driver (virtio.h): what Linux's
 * virtio_mmio + virtio_ring do, reduced to polling and one interrupt vector. */
#include "guest.h"
#include "virtio.h"

#define POOL (96u << 10)
static uint8_t pool[POOL] __attribute__((aligned(4096)));
static uint64_t pool_used;

void *virtio_alloc(uint64_t size, uint64_t align)
{
	uint64_t a = (pool_used + align - 1) & ~(align - 1);
	if (a + size > POOL)
		abort_test("virtio: pool exhausted (%lu bytes)", (unsigned long)(a + size));
	pool_used = a + size;
	memset(pool + a, 0, size);
	return pool + a;
}

static uint32_t rd(struct vdev *d, unsigned off) { return readl(d->base + off); }
static void wr(struct vdev *d, unsigned off, uint32_t v) { writel(d->base + off, v); }

/* Parses "virtio_mmio.device=<size>[K|M]@<addr>:<irq>" entries in order. */
bool virtio_find(uint32_t device_id, unsigned index, struct vdev *d)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p = bp_cmdline();
	while ((p = strstr(p, key))) {
		const char *s = p + sizeof(key) - 1;
		p = s;
		strtou64(s, &s);
		if (*s == 'K' || *s == 'k' || *s == 'M' || *s == 'm')
			s++;
		if (*s++ != '@')
			continue;
		uint64_t addr = strtou64(s, &s);
		if (*s++ != ':')
			continue;
		uint64_t irq = strtou64(s, &s);
		if (readl(addr + VMMIO_MAGIC) != 0x74726976 || readl(addr + VMMIO_VERSION) != 2)
			continue;
		if (readl(addr + VMMIO_DEVICE_ID) != device_id)
			continue;
		if (index--)
			continue;
		d->base = addr;
		d->irq = (unsigned)irq;
		d->device_id = device_id;
		d->features = 0;
		return true;
	}
	return false;
}

bool virtio_init(struct vdev *d, uint64_t want)
{
	wr(d, VMMIO_STATUS, 0);
	wr(d, VMMIO_STATUS, VSTAT_ACK);
	wr(d, VMMIO_STATUS, VSTAT_ACK | VSTAT_DRIVER);
	uint64_t offer = 0;
	for (unsigned sel = 0; sel < 2; sel++) {
		wr(d, VMMIO_DEV_FEATURES_SEL, sel);
		offer |= (uint64_t)rd(d, VMMIO_DEV_FEATURES) << (32 * sel);
	}
	if (!(offer & VF_VERSION_1)) {
		report_info("virtio %#lx: no VERSION_1 offered", (unsigned long)d->base);
		return false;
	}
	d->features = offer & (want | VF_VERSION_1);
	for (unsigned sel = 0; sel < 2; sel++) {
		wr(d, VMMIO_DRV_FEATURES_SEL, sel);
		wr(d, VMMIO_DRV_FEATURES, (uint32_t)(d->features >> (32 * sel)));
	}
	wr(d, VMMIO_STATUS, VSTAT_ACK | VSTAT_DRIVER | VSTAT_FEATURES_OK);
	if (!(rd(d, VMMIO_STATUS) & VSTAT_FEATURES_OK)) {
		report_info("virtio %#lx: FEATURES_OK refused", (unsigned long)d->base);
		return false;
	}
	return true;
}

bool vq_setup(struct vdev *d, struct vq *q, unsigned index, uint16_t num)
{
	wr(d, VMMIO_QUEUE_SEL, index);
	uint32_t max = rd(d, VMMIO_QUEUE_NUM_MAX);
	if (!max || rd(d, VMMIO_QUEUE_READY))
		return false;
	if (num > max)
		num = (uint16_t)max;
	q->dev = d;
	q->index = index;
	q->num = num;
	q->next_desc = q->avail_idx = q->last_used = 0;
	q->desc = virtio_alloc(16ull * num, 16);
	q->avail = virtio_alloc(6 + 2ull * num, 2);
	q->used = virtio_alloc(6 + 8ull * num, 4);
	wr(d, VMMIO_QUEUE_NUM, num);
	uint64_t a[3] = {(uint64_t)q->desc, (uint64_t)q->avail, (uint64_t)q->used};
	for (unsigned i = 0; i < 3; i++) {
		wr(d, VMMIO_QUEUE_DESC + 0x10 * i, (uint32_t)a[i]);
		wr(d, VMMIO_QUEUE_DESC + 0x10 * i + 4, (uint32_t)(a[i] >> 32));
	}
	wr(d, VMMIO_QUEUE_READY, 1);
	return rd(d, VMMIO_QUEUE_READY) == 1;
}

void virtio_driver_ok(struct vdev *d)
{
	wr(d, VMMIO_STATUS, rd(d, VMMIO_STATUS) | VSTAT_DRIVER_OK);
}

uint32_t virtio_status(struct vdev *d)
{
	return rd(d, VMMIO_STATUS);
}

uint32_t virtio_cfg32(struct vdev *d, unsigned off)
{
	return rd(d, VMMIO_CONFIG + off);
}

uint64_t virtio_cfg64(struct vdev *d, unsigned off)
{
	uint32_t gen, lo, hi;
	do {
		gen = rd(d, VMMIO_CONFIG_GEN);
		lo = rd(d, VMMIO_CONFIG + off);
		hi = rd(d, VMMIO_CONFIG + off + 4);
	} while (gen != rd(d, VMMIO_CONFIG_GEN));
	return ((uint64_t)hi << 32) | lo;
}

uint16_t vq_add(struct vq *q, const struct vbuf *b, unsigned n)
{
	uint16_t head = q->next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % q->num);
		q->desc[idx].addr = (uint64_t)b[i].addr;
		q->desc[idx].len = b[i].len;
		q->desc[idx].flags = (uint16_t)((b[i].write ? VDESC_WRITE : 0) |
						(i + 1 < n ? VDESC_NEXT : 0));
		q->desc[idx].next = (uint16_t)((idx + 1) % q->num);
	}
	q->next_desc = (uint16_t)((head + n) % q->num);
	q->avail[2 + q->avail_idx % q->num] = head;
	mb();
	q->avail[1] = ++q->avail_idx;
	/* used_event (EVENT_IDX): interrupt on the next completion. */
	q->avail[2 + q->num] = q->last_used;
	mb();
	return head;
}

void vq_kick(struct vq *q)
{
	/* With EVENT_IDX the device may ask not to be kicked; a kick is always safe. */
	wr(q->dev, VMMIO_QUEUE_NOTIFY, q->index);
}

bool vq_poll(struct vq *q, uint32_t *id, uint32_t *len)
{
	mb();
	if (q->used[1] == q->last_used)
		return false;
	mb();
	const volatile struct vused_elem *e =
		(const volatile struct vused_elem *)(q->used + 2) + q->last_used % q->num;
	if (id)
		*id = e->id;
	if (len)
		*len = e->len;
	q->last_used++;
	q->avail[2 + q->num] = q->last_used;
	return true;
}

bool vq_wait(struct vq *q, uint32_t *id, uint32_t *len, unsigned timeout_ms)
{
	uint64_t end = now_us() + (uint64_t)timeout_ms * 1000;
	while (!vq_poll(q, id, len)) {
		if (now_us() > end)
			return false;
		cpu_relax();
	}
	return true;
}

volatile unsigned virtio_irq_count;
volatile uint32_t virtio_irq_isr;
static struct vdev *irq_dev;

static void on_virtio_irq(struct isr_frame *f)
{
	(void)f;
	uint32_t isr = readl(irq_dev->base + VMMIO_INT_STATUS);
	writel(irq_dev->base + VMMIO_INT_ACK, isr);
	virtio_irq_isr |= isr;
	virtio_irq_count++;
	lapic_eoi();
}

void virtio_irq_enable(struct vdev *d, unsigned vector)
{
	irq_dev = d;
	idt_set_handler(vector, on_virtio_irq);
	ioapic_route(d->irq, vector, lapic_id(), false);
}
