/* interrupts.c — counts timer interrupts through the IDT: first the local APIC
 * timer (periodic), then the PIT (channel 0, 100 Hz) through the in-kernel IOAPIC
 * on the pin the MP table names for ISA IRQ 0. The other candidate pin (0 or 2) gets
 * its own vector, so a wrong MP table entry shows up as "ticks arrived on pin X". */
#include "guest.h"

#define TICKS 5
#define VEC_LAPIC 0x40
#define VEC_PIT 0x30
#define VEC_PIT_OTHER 0x31

static volatile unsigned lapic_ticks, pit_ticks, pit_other_ticks;

static void on_lapic(struct isr_frame *f) { (void)f; lapic_ticks++; lapic_eoi(); }
static void on_pit(struct isr_frame *f) { (void)f; pit_ticks++; lapic_eoi(); }
static void on_pit_other(struct isr_frame *f) { (void)f; pit_other_ticks++; lapic_eoi(); }

/* Waits with interrupts on until *count reaches want or timeout_ms passes. */
static unsigned wait_ticks(volatile unsigned *count, unsigned want, unsigned timeout_ms)
{
	uint64_t end = now_us() + (uint64_t)timeout_ms * 1000;

	sti();
	while (*count < want && now_us() < end)
		cpu_relax();
	cli();
	return *count;
}

int main(void)
{
	struct mp_info mp;
	const char *why;
	unsigned got;
	uint64_t t0;

	idt_init();
	idt_set_handler(VEC_LAPIC, on_lapic);
	idt_set_handler(VEC_PIT, on_pit);
	idt_set_handler(VEC_PIT_OTHER, on_pit_other);
	pic_disable();
	lapic_enable();

	/* KVM's LAPIC timer runs at 1 GHz; /16 and 625000 is 10 ms. */
	t0 = now_us();
	lapic_timer_periodic(VEC_LAPIC, 625000);
	got = wait_ticks(&lapic_ticks, TICKS, 20000);
	lapic_timer_stop();
	report(got >= TICKS, "LAPIC timer: %u of %u ticks on vector %#x (%lu us)",
	       got, TICKS, VEC_LAPIC, now_us() - t0);

	if (!mp_parse(&mp, &why)) {
		report(false, "MP table: %s", why);
		return report_summary();
	}
	int pin = mp.isa_irq_pin[0];
	int other = pin == 2 ? 0 : 2;

	report(pin >= 0, "MP table routes ISA IRQ 0 to IOAPIC pin %d", pin);
	if (pin < 0)
		return report_summary();
	ioapic_route((unsigned)pin, VEC_PIT, lapic_id(), false);
	ioapic_route((unsigned)other, VEC_PIT_OTHER, lapic_id(), false);
	t0 = now_us();
	pit_start(100);
	got = wait_ticks(&pit_ticks, TICKS, 20000);
	pit_stop();
	ioapic_route((unsigned)pin, VEC_PIT, lapic_id(), true);
	ioapic_route((unsigned)other, VEC_PIT_OTHER, lapic_id(), true);
	if (pit_other_ticks)
		report_info("PIT ticks also arrived on IOAPIC pin %d: %u", other, pit_other_ticks);
	report(got >= TICKS, "PIT through IOAPIC pin %d: %u of %u ticks (%lu us)",
	       pin, got, TICKS, now_us() - t0);
	report(isr_spurious == 0, "no unexpected interrupts (%u)", isr_spurious);
	return report_summary();
}
