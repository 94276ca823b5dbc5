/* smp.c — finds the vCPUs in the MP table and starts the second one with INIT/SIPI
 * through the in-kernel local APIC; the AP climbs from real mode to long mode
 * (lib/trampoline.S), reports its APIC id and halts. When the AP does not come up
 * the result is a SKIP that names the last stage it reached, never a PASS. */
#include "guest.h"

static volatile unsigned ap_apic_id = 0xffff;
static volatile unsigned ap_ran;

static void ap_main(void)
{
	ap_apic_id = lapic_id();
	mb();
	ap_ran = 1;
}

int main(void)
{
	struct mp_info mp;
	const char *why;
	int stage;

	if (!mp_parse(&mp, &why)) {
		report(false, "MP table: %s", why);
		return report_summary();
	}
	report(mp.ncpus >= 2, "MP table lists %u processors", mp.ncpus);
	report(lapic_id() == mp.bsp_id, "BSP APIC id %u matches the MP table's BSP %u",
	       lapic_id(), mp.bsp_id);
	if (mp.ncpus < 2)
		return report_summary();

	uint64_t target = mp.apic_ids[0] == lapic_id() ? mp.apic_ids[1] : mp.apic_ids[0];
	uint64_t timeout_ms = 20000;

	/* "ap=N ap_timeout_ms=T": aim at another APIC id (the host's failure-path test
	 * uses one that does not exist). */
	cmdline_u64("ap", &target);
	cmdline_u64("ap_timeout_ms", &timeout_ms);
	lapic_enable();
	stage = smp_start_ap((unsigned)target, ap_main, (unsigned)timeout_ms, &why);
	/* The AP marks the C stage before it calls ap_main: give ap_main the same time to
	 * finish before judging (checking at once raced with it). */
	if (stage == SMP_STAGE_C) {
		uint64_t end = now_us() + timeout_ms * 1000;
		while (!ap_ran && now_us() < end)
			cpu_relax();
		if (!ap_ran)
			why = "ap_main did not finish";
	}
	if (stage < 0) {
		report_skip("AP %lu: INIT/SIPI could not be sent: %s", target, why);
	} else if (stage < SMP_STAGE_C || !ap_ran) {
		report_skip("AP %lu: after INIT/SIPI it %s (stage %d of %d): %s",
			    target, smp_stage_name(stage), stage, SMP_STAGE_C, why);
	} else {
		report(true, "AP %lu came up in long mode and ran C code", target);
		report(ap_apic_id == target, "AP reports APIC id %u", ap_apic_id);
	}
	return report_summary();
}
