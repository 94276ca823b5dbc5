/* x86.h — shared by the x86-64 side of the VMM (the files in vmm/x86/, behind vmm/arch.h):
 * the fixed layout, the per-VM state and the helpers between its files. */
#ifndef PROVIUM_X86_H
#define PROVIUM_X86_H

#include "vmm/vm_internal.h"

struct boot_info;

#define X86_MMIO_BASE 0xd0000000ull     /* virtio windows go here, above RAM */
#define X86_MMIO_END 0xfec00000ull      /* IOAPIC */
#define X86_TSS_ADDR 0xfffbd000ull
#define X86_IDMAP_ADDR 0xfffbc000ull
#define X86_MPTABLE_GPA 0x9fc00ull

struct arch_vm {
	struct kvm_cpuid2 *cpuid;  /* KVM_GET_SUPPORTED_CPUID, fetched once */
};

/* arch.c */
int vcpu_setup_long_mode(struct vcpu *c, const struct boot_info *bi);
int vcpu_setup_real_mode(struct vcpu *c, uint64_t rip);

/* cpuid.c */
int cpuid_init(struct vm *vm);
int cpuid_setup_vcpu(struct vm *vm, struct vcpu *c);
bool cpuid_host_is_pvm(void);

/* msr.c */
int msr_setup_vcpu(struct vm *vm, struct vcpu *c);

/* clock.c: KVM_KVMCLOCK_CTRL on every vCPU whose guest enabled kvmclock (after
 * a pause, before the vCPUs run again). */
void clock_after_pause(struct vm *vm);
/* clock.c: moves a vCPU's TSC from `from` (its value now) to `to`. */
int clock_move_tsc(struct vcpu *c, uint64_t from, uint64_t to);

#endif
