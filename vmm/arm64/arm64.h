/* arm64.h — shared by the arm64 side of the VMM (the files in vmm/arm64/, behind
 * vmm/arch.h): the per-VM state and the helpers between its files. */
#ifndef PROVIUM_ARM64_H
#define PROVIUM_ARM64_H

#include "vmm/vm_internal.h"
#include "vmm/arm64/fdt.h"

struct arch_vm {
	int gic_fd;
	struct kvm_vcpu_init init;           /* KVM_ARM_PREFERRED_TARGET's */
	struct arm64_dt_dev virtio[ARM64_DT_MAX_VIRTIO]; /* for the device tree */
	unsigned nvirtio;
};

#define ARM64_CORE_REG(x) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			   KVM_REG_ARM_CORE_REG(x))
#define ARM64_MPIDR_EL1 ARM64_SYS_REG(3, 0, 0, 0, 5)

/* arch.c: one 64-bit ONE_REG; get returns -errno without a message, set says which. */
int arm64_get_reg(struct vcpu *c, uint64_t id, uint64_t *val);
int arm64_set_reg(struct vcpu *c, uint64_t id, uint64_t val, const char *name);

/* clock.c: the counter frequency (CNTFRQ_EL0, the host's: KVM does not change it). */
uint64_t arm64_cntfrq(void);
/* clock.c: sets the guest's virtual counter to `cnt` (KVM_REG_ARM_TIMER_CNT on every
 * vCPU: KVM makes it the VM's CNTVOFF and re-checks each vCPU's timer). */
int arm64_clock_set_counter(struct vm *vm, uint64_t cnt);

#endif
