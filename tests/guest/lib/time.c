/* time.c — a rough clock from the TSC. The frequency comes from CPUID 0x15/0x16 or
 * KVM's 0x40000010 leaf when present, else 2 GHz is assumed: good enough for
 * timeouts, not for measuring. */
#include "guest.h"

static uint64_t khz;

uint64_t tsc_khz(void)
{
	uint32_t r[4];

	if (khz)
		return khz;
	cpuid(0x40000000, 0, r);
	if (r[0] >= 0x40000010) {
		cpuid(0x40000010, 0, r);
		if (r[0])
			return khz = r[0];
	}
	cpuid(0, 0, r);
	if (r[0] >= 0x15) {
		cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2])
			return khz = (uint64_t)r[2] * r[1] / r[0] / 1000;
	}
	if (r[0] >= 0x16) {
		cpuid(0x16, 0, r);
		if (r[0])
			return khz = (uint64_t)r[0] * 1000;
	}
	return khz = 2000000;
}

uint64_t now_us(void)
{
	return rdtsc() * 1000 / tsc_khz();
}

void udelay(uint64_t us)
{
	uint64_t end = now_us() + us;

	while (now_us() < end)
		cpu_relax();
}
