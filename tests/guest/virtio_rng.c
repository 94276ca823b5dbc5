/* virtio_rng.c — drives virtio-rng like Linux's virtio-rng driver: one request
 * queue, device-writable buffers. The first read is waited for by polling, the
 * second by the device's interrupt (irqfd or KVM_IRQ_LINE, through the IOAPIC). */
#include "guest.h"
#include "virtio.h"

#define VEC 0x50
#define N 64

static uint8_t a[N], b[N];

static bool all_zero(const uint8_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int main(void)
{
	struct vdev d;
	struct vq q;
	uint32_t id, len = 0;

	if (!virtio_find(4, 0, &d)) {
		report(false, "virtio-rng found on the command line (%s)", bp_cmdline());
		return report_summary();
	}
	report(true, "virtio-rng at %#lx irq %u", (unsigned long)d.base, d.irq);
	report(virtio_init(&d, VF_EVENT_IDX | VF_INDIRECT), "features negotiated");
	report(vq_setup(&d, &q, 0, 8), "request queue ready");
	virtio_driver_ok(&d);

	struct vbuf ba = {a, N, true};
	vq_add(&q, &ba, 1);
	vq_kick(&q);
	bool got = vq_wait(&q, &id, &len, 10000);
	report(got && len == N, "polled read: %u bytes", len);
	report(!all_zero(a, N), "random bytes are not all zero");

	idt_init();
	pic_disable();
	lapic_enable();
	virtio_irq_enable(&d, VEC);
	struct vbuf bb = {b, N, true};
	vq_add(&q, &bb, 1);
	sti();
	vq_kick(&q);
	uint64_t end = now_us() + 10000000;
	while (!virtio_irq_count && now_us() < end)
		cpu_relax();
	cli();
	report(virtio_irq_count >= 1 && (virtio_irq_isr & 1),
	       "used-buffer interrupt arrived (%u, isr %#x)", virtio_irq_count, virtio_irq_isr);
	got = vq_poll(&q, &id, &len);
	report(got && len == N, "interrupt-driven read: %u bytes", len);
	report(memcmp(a, b, N) != 0, "two reads differ");
	report(!(virtio_status(&d) & VSTAT_NEEDS_RESET), "device healthy");
	return report_summary();
}
