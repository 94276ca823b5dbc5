/* apic.c — the interrupt hardware KVM emulates in the kernel: the local APIC (xAPIC
 * MMIO at 0xfee00000: id, EOI, timer, ICR for INIT/SIPI), the IOAPIC at 0xfec00000
 * (redirection table), the 8259 pair (remapped and masked so it stays quiet) and the
 * 8254 PIT channel 0. */
#include "guest.h"

#define APIC_ID 0x20
#define APIC_TPR 0x80
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_DIV 0x3e0
#define ICR_BUSY (1u << 12)

uint32_t lapic_read(unsigned reg) { return readl(LAPIC_BASE + reg); }
void lapic_write(unsigned reg, uint32_t v) { writel(LAPIC_BASE + reg, v); }
unsigned lapic_id(void) { return lapic_read(APIC_ID) >> 24; }
void lapic_eoi(void) { lapic_write(APIC_EOI, 0); }

void lapic_enable(void)
{
	/* The APIC global enable bit in IA32_APIC_BASE is on after reset; make sure. */
	uint64_t base = rdmsr(0x1b);

	if (!(base & (1u << 11)))
		wrmsr(0x1b, base | (1u << 11));
	lapic_write(APIC_TPR, 0);
	lapic_write(APIC_SVR, 0x100 | 0xff);
}

void lapic_timer_periodic(unsigned vector, uint32_t count)
{
	lapic_write(APIC_TIMER_DIV, 0x3);                /* divide by 16 */
	lapic_write(APIC_LVT_TIMER, (1u << 17) | (vector & 0xff));
	lapic_write(APIC_TIMER_INIT, count);
}

void lapic_timer_stop(void)
{
	lapic_write(APIC_LVT_TIMER, 1u << 16);          /* masked */
	lapic_write(APIC_TIMER_INIT, 0);
}

static bool icr_send(unsigned apic_id, uint32_t lo)
{
	lapic_write(APIC_ICR_HI, apic_id << 24);
	lapic_write(APIC_ICR_LO, lo);
	for (unsigned i = 0; i < 1000; i++) {
		if (!(lapic_read(APIC_ICR_LO) & ICR_BUSY))
			return true;
		cpu_relax();
	}
	return false;
}

bool lapic_send_init(unsigned apic_id)
{
	/* INIT, level assert; then the de-assert some CPUs want. */
	if (!icr_send(apic_id, 0x4500))
		return false;
	return icr_send(apic_id, 0x8500);
}

bool lapic_send_sipi(unsigned apic_id, unsigned page)
{
	return icr_send(apic_id, 0x4600 | (page & 0xff));
}

uint32_t ioapic_read(unsigned reg)
{
	writel(IOAPIC_BASE, reg);
	return readl(IOAPIC_BASE + 0x10);
}

void ioapic_write(unsigned reg, uint32_t v)
{
	writel(IOAPIC_BASE, reg);
	writel(IOAPIC_BASE + 0x10, v);
}

void ioapic_route(unsigned pin, unsigned vector, unsigned apic_id, bool masked)
{
	ioapic_write(0x10 + 2 * pin + 1, apic_id << 24);
	ioapic_write(0x10 + 2 * pin, (vector & 0xff) | (masked ? 1u << 16 : 0));
}

void pic_disable(void)
{
	outb(0x11, 0x20);   /* ICW1: edge, cascade, ICW4 follows */
	outb(0x11, 0xa0);
	outb(0x20, 0x21);   /* ICW2: vector bases 0x20 and 0x28 */
	outb(0x28, 0xa1);
	outb(0x04, 0x21);   /* ICW3: slave on IRQ2 */
	outb(0x02, 0xa1);
	outb(0x01, 0x21);   /* ICW4: 8086 mode */
	outb(0x01, 0xa1);
	outb(0xff, 0x21);   /* mask everything */
	outb(0xff, 0xa1);
}

void pit_start(unsigned hz)
{
	unsigned div = 1193182 / hz;

	outb(0x34, 0x43);   /* channel 0, lobyte/hibyte, mode 2 */
	outb((uint8_t)div, 0x40);
	outb((uint8_t)(div >> 8), 0x40);
}

void pit_stop(void)
{
	outb(0x30, 0x43);   /* mode 0 with no count written: the output stays low */
}
