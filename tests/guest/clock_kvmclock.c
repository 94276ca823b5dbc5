/* clock_kvmclock.c — the guest side of the VMM clock tests (host_clock.c). It
 * enables kvmclock (MSR_KVM_SYSTEM_TIME_NEW) and serves commands on the serial port:
 *   read   -> "clock <kvmclock ns> tsc <TSC>"
 *   timer  -> arms a LAPIC one-shot timer of 0xffffffff counts, divide by 128
 *             (about 550 s of guest time), prints "timer armed", halts until it
 *             fires and prints "timer fired"
 *   exit   -> ends the guest */
#include "guest.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define TIMER_VECTOR 0x40

struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t mul;
	int8_t shift;
	uint8_t flags, pad[2];
};

static volatile struct pvclock pvti __attribute__((aligned(64)));
static volatile bool fired;

static uint64_t kvmclock_ns(void)
{
	uint32_t v;
	uint64_t ns;

	do {
		v = pvti.version;
		barrier();
		uint64_t d = rdtsc() - pvti.tsc_timestamp;
		if (pvti.shift < 0)
			d >>= -pvti.shift;
		else
			d <<= pvti.shift;
		ns = pvti.system_time + (uint64_t)(((unsigned __int128)d * pvti.mul) >> 32);
		barrier();
	} while ((v & 1) || v != pvti.version);
	return ns;
}

static void on_timer(struct isr_frame *f)
{
	(void)f;
	fired = true;
	lapic_eoi();
}

int main(void)
{
	char cmd[32];

	idt_init();
	idt_set_handler(TIMER_VECTOR, on_timer);
	lapic_enable();
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&pvti | 1);
	report(pvti.version != 0 && pvti.mul != 0, "kvmclock enabled (version %u)", pvti.version);
	printf("ready\n");
	for (;;) {
		if (serial_readline(cmd, sizeof(cmd), 600000) < 0)
			abort_test("no command arrived");
		if (!strcmp(cmd, "read")) {
			printf("clock %lu tsc %lu\n", kvmclock_ns(), rdtsc());
		} else if (!strcmp(cmd, "timer")) {
			fired = false;
			lapic_write(0x3e0, 0xa);               /* divide by 128 */
			lapic_write(0x320, TIMER_VECTOR);      /* one-shot, unmasked */
			lapic_write(0x380, 0xffffffffu);
			printf("timer armed\n");
			while (!fired)
				safe_halt();
			cli();
			printf("timer fired\n");
		} else if (!strcmp(cmd, "exit")) {
			break;
		}
	}
	return report_summary();
}
