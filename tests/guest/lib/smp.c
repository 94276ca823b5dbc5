/* smp.c — starts an application processor the way firmware does: copy the real-mode
 * trampoline below 1 MiB, INIT, STARTUP (twice if needed) through the local APIC's
 * ICR, then watch the stage flag the AP writes as it climbs to long mode. */
#include "guest.h"

#define TRAMP_BASE 0x8000

extern const char tramp_start[], tramp_end[], tr_stage[], tr_cr3[], tr_stack[], tr_entry[];

static void (*volatile ap_fn)(void);
static uint8_t ap_stack[8192] __attribute__((aligned(16)));

#define TR(sym) ((volatile void *)(TRAMP_BASE + ((sym) - tramp_start)))

static volatile uint32_t *stage_ptr(void)
{
	return (volatile uint32_t *)TR(tr_stage);
}

static void ap_c_entry(void)
{
	*stage_ptr() = SMP_STAGE_C;
	mb();
	if (ap_fn)
		ap_fn();
	for (;;) {
		cli();
		hlt();
	}
}

const char *smp_stage_name(int stage)
{
	static const char *const names[] = {
		"did not start (no write from real mode)", "reached real mode",
		"set up paging (PAE, CR3, EFER.LME)", "reached long mode", "ran C code",
	};

	return stage >= 0 && stage <= SMP_STAGE_C ? names[stage] : "?";
}

int smp_start_ap(unsigned apic_id, void (*fn)(void), unsigned timeout_ms, const char **why)
{
	uint64_t end;

	*why = "";
	memcpy((void *)TRAMP_BASE, tramp_start, (size_t)(tramp_end - tramp_start));
	*(volatile uint64_t *)TR(tr_cr3) = read_cr3();
	*(volatile uint64_t *)TR(tr_stack) = (uint64_t)(ap_stack + sizeof(ap_stack));
	*(volatile uint64_t *)TR(tr_entry) = (uint64_t)ap_c_entry;
	*stage_ptr() = 0;
	ap_fn = fn;
	mb();

	if (!lapic_send_init(apic_id))
		return *why = "the ICR stayed busy sending INIT", -1;
	udelay(10000);
	for (int sipi = 0; sipi < 2; sipi++) {
		if (!lapic_send_sipi(apic_id, TRAMP_BASE >> 12))
			return *why = "the ICR stayed busy sending STARTUP", -1;
		end = now_us() + (sipi == 0 ? 200000 : (uint64_t)timeout_ms * 1000);
		while (now_us() < end && *stage_ptr() < SMP_STAGE_C)
			cpu_relax();
		if (*stage_ptr() == SMP_STAGE_C)
			break;
	}
	if (*stage_ptr() < SMP_STAGE_C)
		*why = "timed out";
	return (int)*stage_ptr();
}
