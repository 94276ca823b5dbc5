/* clock.c — guest clock control on arm64: the guest's time is its virtual counter
 * (CNTVCT_EL0 = the host's counter minus the VM's CNTVOFF), which Linux's clocksource,
 * sched_clock and timers (the virtual timer's CVAL) all read. Reading it, moving it
 * forward and setting it on restore go through KVM_REG_ARM_TIMER_CNT, whose write sets
 * the offset so that the counter reads the value written. docs/clock.md ("arm64"). */
#include "vmm/arm64/arm64.h"
#include "vmm/snapshot_pack.h"
#include "vmm/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define NS_PER_S 1000000000u

uint64_t arm64_cntfrq(void)
{
	uint64_t f;
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
	return f;
}

static uint64_t cnt_to_ns(uint64_t cnt, uint64_t freq)
{
	return (uint64_t)((unsigned __int128)cnt * NS_PER_S / freq);
}

static int read_counter(struct vm *vm, uint64_t *cnt)
{
	int rc = arm64_get_reg(&vm->vcpus[0], KVM_REG_ARM_TIMER_CNT, cnt);
	if (rc < 0)
		return pv_error(-rc, "vm %s: KVM_GET_ONE_REG KVM_REG_ARM_TIMER_CNT: %s", vm->name,
				strerror(-rc));
	return 0;
}

/* Linux 6.4+ also has KVM_ARM_SET_COUNTER_OFFSET (one VM-wide offset); it is not
 * used: once it is, KVM ignores TIMER_CNT writes, and TIMER_CNT does the same job on
 * every kernel (KVM has kept one offset for the whole VM since 5.x and sets it from
 * any vCPU's write). The write goes to every vCPU all the same: KVM re-checks the
 * timer of the vCPU written to, so each one's pending timer sees the new counter
 * (a deadline now passed fires at once). */
int arm64_clock_set_counter(struct vm *vm, uint64_t cnt)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int err = arm64_set_reg(&vm->vcpus[i], KVM_REG_ARM_TIMER_CNT, cnt,
					"KVM_REG_ARM_TIMER_CNT");
		if (err)
			return pv_error_prefix(-err, "vm %s", vm->name);
	}
	return 0;
}

/* The virtual counter in ns: the guest's time since its VM was created (KVM sets the
 * offset to the host's counter then), as x86's kvmclock. */
int vm_clock_get(struct vm *vm, uint64_t *ns)
{
	uint64_t cnt, freq = arm64_cntfrq();
	int err = read_counter(vm, &cnt);
	if (err)
		return err;
	*ns = cnt_to_ns(cnt, freq);
	return 0;
}

/* Jumps the counter forward by ns worth of ticks. Guest timers are compare values
 * against it, so a pending one whose deadline is now passed fires at once and later
 * ones come ns sooner: as if the time had gone by. The physical counter (which a
 * Linux guest at EL1 does not use for time) is the host's and does not move. */
int vm_clock_advance(struct vm *vm, uint64_t ns)
{
	bool resume = false;
	if (vm->started && !atomic_load(&vm->pausing)) {
		vm_pause(vm);
		resume = true;
	}
	uint64_t cnt, freq = arm64_cntfrq();
	uint64_t ticks = (uint64_t)((unsigned __int128)ns * freq / NS_PER_S);
	int err = read_counter(vm, &cnt);
	if (!err)
		err = arm64_clock_set_counter(vm, cnt + ticks);
	if (err)
		pv_error_prefix(-err, "vm %s: clock advance", vm->name);
	if (resume)
		vm_resume(vm);
	return err;
}

/* After every vCPU's registers: the counter continues from the value saved, so the
 * time the snapshot spent on disk does not exist for the guest (as with kvmclock). */
int arch_restore_clock(struct vm *vm, const msgpack_object *st)
{
	uint64_t cnt = 0, freq = 0, here = arm64_cntfrq();
	int err;
	if ((err = mp_u64(st, "vm", "counter", &cnt)) ||
	    (err = mp_u64(st, "vm", "cntfrq", &freq)))
		return err;
	/* The guest read CNTFRQ_EL0 once at boot; KVM cannot scale the counter. */
	if (freq != here)
		return pv_error(EINVAL, "the snapshot's guest counts at %" PRIu64 " Hz, this "
				"host's counter at %" PRIu64 " Hz: its time would run at the wrong "
				"rate", freq, here);
	return arm64_clock_set_counter(vm, cnt);
}
