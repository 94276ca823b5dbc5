/* clock.c — guest clock control: read kvmclock, jump guest time forward
 * (kvmclock, TSC, and the pending LAPIC / TSC-deadline / PIT timers as if the time
 * had passed), and KVM_KVMCLOCK_CTRL after a pause. docs/clock.md ("VMM"). */
#include "vmm/x86/x86.h"
#include "vmm/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_KVM_SYSTEM_TIME 0x12
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define APIC_LVTT 0x320
#define APIC_TMICT 0x380
#define APIC_TMCCT 0x390
#define APIC_TDCR 0x3e0
#define PIT_HZ 1193182ull

struct msr1 {
	struct kvm_msrs h;
	struct kvm_msr_entry e;
};

static int get_msr(struct vcpu *c, uint32_t index, uint64_t *val)
{
	struct msr1 m = {.h.nmsrs = 1, .e.index = index};
	if (ioctl(c->fd, KVM_GET_MSRS, &m) != 1)
		return -EINVAL;
	*val = m.e.data;
	return 0;
}

static int set_msr(struct vcpu *c, uint32_t index, uint64_t val)
{
	struct msr1 m = {.h.nmsrs = 1, .e.index = index, .e.data = val};
	if (ioctl(c->fd, KVM_SET_MSRS, &m) != 1)
		return pv_error(EINVAL, "vcpu %u: KVM_SET_MSRS 0x%x refused", c->index, index);
	return 0;
}

int vm_clock_get(struct vm *vm, uint64_t *ns)
{
	struct kvm_clock_data d = {0};
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &d) < 0)
		return pv_error(errno, "vm %s: KVM_GET_CLOCK: %s", vm->name, strerror(errno));
	*ns = d.clock;
	return 0;
}

void clock_after_pause(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->vcpus[i];
		uint64_t a = 0, b = 0;
		get_msr(c, MSR_KVM_SYSTEM_TIME_NEW, &a);
		get_msr(c, MSR_KVM_SYSTEM_TIME, &b);
		if (!((a | b) & 1))
			continue; /* kvmclock not enabled: KVM refuses the ioctl */
		if (ioctl(c->fd, KVM_KVMCLOCK_CTRL, 0) < 0)
			pv_debug("vm %s: vcpu %u: KVM_KVMCLOCK_CTRL: %s", vm->name, i,
				 strerror(errno));
	}
}

/* LAPIC timer divide configuration -> divisor (SDM 11.5.4). */
static unsigned lapic_divisor(uint32_t tdcr)
{
	unsigned x = (tdcr & 3) | ((tdcr & 8) >> 1);
	return x == 7 ? 1 : 2u << x;
}

/* One-shot and periodic LAPIC timers: KVM_SET_LAPIC restarts the timer from the
 * saved current count (TMCCT), so lowering it by `ns` worth of counts moves the
 * timer forward; 1 count = divisor bus cycles of 1 ns (KVM's APIC bus). */
static void lapic_advance(struct kvm_lapic_state *la, uint64_t ns)
{
	uint32_t *lvtt = (uint32_t *)&la->regs[APIC_LVTT];
	uint32_t *tmict = (uint32_t *)&la->regs[APIC_TMICT];
	uint32_t *tmcct = (uint32_t *)&la->regs[APIC_TMCCT];
	unsigned mode = (*lvtt >> 17) & 3, div = lapic_divisor(*(uint32_t *)&la->regs[APIC_TDCR]);
	if (mode > 1 || !*tmcct)
		return; /* TSC-deadline (moved with the TSC) or no timer running */
	uint64_t left = (uint64_t)*tmcct * div;
	if (mode == 0) {
		left = left > ns ? left - ns : 0;
	} else {
		uint64_t period = (uint64_t)*tmict * div;
		uint64_t step = period ? ns % period : 0;
		left = step < left ? left - step : period - (step - left);
		if (ns >= (uint64_t)*tmcct * div)
			left = 0; /* at least one period ended: tick now */
	}
	uint64_t counts = left / div;
	*tmcct = (uint32_t)PV_MAX(counts, 1ull);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* PIT channel 0 in a one-shot mode (0, 1, 4, 5) that has not fired yet: reload it
 * with what is left after `ns` (KVM_SET_PIT2 restarts counting from `count`). */
static int pit_advance(struct vm *vm, uint64_t ns)
{
	struct kvm_pit_state2 ps;
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &ps) < 0)
		return pv_error(errno, "vm %s: KVM_GET_PIT2: %s", vm->name, strerror(errno));
	struct kvm_pit_channel_state *ch = &ps.channels[0];
	uint8_t mode = ch->mode;
	if (mode == 2 || mode == 3 || mode == 6 || mode == 7)
		return 0; /* periodic: it keeps ticking */
	uint64_t count = ch->count ? ch->count : 0x10000;
	uint64_t total = count * 1000000000ull / PIT_HZ, now = mono_ns();
	uint64_t elapsed = now > (uint64_t)ch->count_load_time ? now - (uint64_t)ch->count_load_time : 0;
	if (elapsed >= total)
		return 0; /* already fired */
	uint64_t left = total - elapsed;
	left = left > ns ? left - ns : 0;
	uint64_t ticks = left * PIT_HZ / 1000000000ull;
	ch->count = (uint32_t)PV_MAX(ticks, 1ull);
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &ps) < 0)
		return pv_error(errno, "vm %s: KVM_SET_PIT2: %s", vm->name, strerror(errno));
	return 0;
}

/* Sets a vCPU's TSC from `from` to `to`. The TSC offset attribute (Linux 5.16+)
 * is exact; a host write of IA32_TSC is the fallback, but KVM takes a write within
 * one second of the expected value for a "synchronization" and ignores it. */
int clock_move_tsc(struct vcpu *c, uint64_t from, uint64_t to)
{
	uint64_t off;
	struct kvm_device_attr a = {
		.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET, .addr = (uintptr_t)&off,
	};
	if (ioctl(c->fd, KVM_HAS_DEVICE_ATTR, &a) == 0 &&
	    ioctl(c->fd, KVM_GET_DEVICE_ATTR, &a) == 0) {
		off += to - from;
		if (ioctl(c->fd, KVM_SET_DEVICE_ATTR, &a) == 0)
			return 0;
	}
	return set_msr(c, MSR_IA32_TSC, to);
}

/* Moves one vCPU's TSC and timers forward by ns (dtsc TSC cycles). */
static int vcpu_advance(struct vcpu *c, uint64_t ns, uint64_t dtsc)
{
	uint64_t tsc, deadline = 0;
	struct kvm_lapic_state la;
	if (get_msr(c, MSR_IA32_TSC, &tsc) < 0)
		return pv_error(EINVAL, "vcpu %u: cannot read the TSC", c->index);
	get_msr(c, MSR_IA32_TSC_DEADLINE, &deadline);
	if (ioctl(c->fd, KVM_GET_LAPIC, &la) < 0)
		return pv_error(errno, "vcpu %u: KVM_GET_LAPIC: %s", c->index, strerror(errno));
	int err = clock_move_tsc(c, tsc, tsc + dtsc);
	if (err)
		return err;
	lapic_advance(&la, ns);
	if (ioctl(c->fd, KVM_SET_LAPIC, &la) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_LAPIC: %s", c->index, strerror(errno));
	/* Re-arming the deadline against the new TSC fires it when it has passed. */
	if (deadline && ((*(uint32_t *)&la.regs[APIC_LVTT] >> 17) & 3) == 2)
		set_msr(c, MSR_IA32_TSC_DEADLINE, deadline);
	return 0;
}

int vm_clock_advance(struct vm *vm, uint64_t ns)
{
	bool resume = false;
	int err = 0;
	if (vm->started && !atomic_load(&vm->pausing)) {
		vm_pause(vm);
		resume = true;
	}
	struct kvm_clock_data d = {0};
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &d) < 0) {
		err = pv_error(errno, "vm %s: KVM_GET_CLOCK: %s", vm->name, strerror(errno));
		goto out;
	}
	int khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0) {
		err = pv_error(errno ? errno : EINVAL, "vm %s: KVM_GET_TSC_KHZ: %s", vm->name,
			       strerror(errno));
		goto out;
	}
	uint64_t dtsc = (uint64_t)((unsigned __int128)ns * (unsigned)khz / 1000000u);
	for (unsigned i = 0; i < vm->ncpus && !err; i++)
		err = vcpu_advance(&vm->vcpus[i], ns, dtsc);
	if (!err)
		err = pit_advance(vm, ns);
	if (err) {
		pv_error_prefix(-err, "vm %s: clock advance", vm->name);
		goto out;
	}
	struct kvm_clock_data nd = {.clock = d.clock + ns};
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &nd) < 0)
		err = pv_error(errno, "vm %s: KVM_SET_CLOCK: %s", vm->name, strerror(errno));
out:
	if (resume)
		vm_resume(vm);
	return err;
}
