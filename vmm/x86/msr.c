/* msr.c — the MSRs a 64-bit Linux guest expects a BIOS to have set before the
 * kernel runs (the same list Firecracker and kvmtool program): SYSENTER and
 * SYSCALL registers zeroed, the TSC at 0, fast strings on, MTRRs enabled with
 * write-back default. An MSR this host's KVM refuses is skipped with a debug note
 * (PVM rejects some); it is not fatal because Linux copes. */
#include "vmm/x86/x86.h"
#include "vmm/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static const struct {
	uint32_t index;
	uint64_t value;
} boot_msrs[] = {
	{0x174, 0},          /* IA32_SYSENTER_CS */
	{0x175, 0},          /* IA32_SYSENTER_ESP */
	{0x176, 0},          /* IA32_SYSENTER_EIP */
	{0xc0000081, 0},     /* STAR */
	{0xc0000082, 0},     /* LSTAR */
	{0xc0000083, 0},     /* CSTAR */
	{0xc0000084, 0},     /* SYSCALL_MASK */
	{0xc0000102, 0},     /* KERNEL_GS_BASE */
	{0x10, 0},           /* IA32_TSC */
	{0x1a0, 1},          /* IA32_MISC_ENABLE: fast strings */
	{0x2ff, (1u << 11) | 6}, /* MTRRdefType: enabled, write-back */
};

int msr_setup_vcpu(struct vm *vm, struct vcpu *c)
{
	(void)vm;
	size_t n = PV_ARRAY_SIZE(boot_msrs);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	if (!m)
		return pv_error(ENOMEM, "msr: out of memory");
	size_t done = 0;
	while (done < n) {
		m->nmsrs = n - done;
		for (size_t i = done; i < n; i++) {
			m->entries[i - done].index = boot_msrs[i].index;
			m->entries[i - done].data = boot_msrs[i].value;
		}
		int r = ioctl(c->fd, KVM_SET_MSRS, m);
		if (r < 0) {
			int e = errno;
			free(m);
			return pv_error(e, "KVM_SET_MSRS: %s", strerror(e));
		}
		done += r;
		if (done < n) {
			pv_debug("vcpu %u: KVM refused MSR 0x%x; skipped", c->index,
				 boot_msrs[done].index);
			done++;
		}
	}
	free(m);
	return 0;
}
