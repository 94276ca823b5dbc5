/* cpuid.c — the guest's CPUID: what KVM_GET_SUPPORTED_CPUID reports (fetched once
 * per VM), with the fix-ups a guest expects from a real machine (its own APIC id
 * per vCPU, the hypervisor bit, the KVM signature leaves), then the config's
 * cpuid_hook so callers can mask features, then KVM_SET_CPUID2.
 * Note (ENVIRONMENT.md): on PVM hosts masking XSAVE here does not stop a guest
 * from using it; use the kernel command line (noxsave, clearcpuid=) there. */
#include "vmm/x86/x86.h"
#include "vmm/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CPUID_MAX_ENTRIES 1024

int cpuid_init(struct vm *vm)
{
	for (unsigned n = 128; n <= CPUID_MAX_ENTRIES; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return pv_error(ENOMEM, "cpuid: out of memory");
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->arch->cpuid = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return pv_error(e, "KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
	}
	return pv_error(E2BIG, "KVM_GET_SUPPORTED_CPUID: more than %d entries",
			CPUID_MAX_ENTRIES);
}

/* True when /dev/kvm is the PVM software virtualizer (ENVIRONMENT.md). */
bool cpuid_host_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn)
			return &c->entries[i];
	return NULL;
}

int cpuid_setup_vcpu(struct vm *vm, struct vcpu *vc)
{
	struct kvm_cpuid2 *src = vm->arch->cpuid;
	/* One spare slot in case the KVM signature leaf has to be added. */
	size_t sz = sizeof(*src) + (src->nent + 1) * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return pv_error(ENOMEM, "cpuid: out of memory");
	memcpy(c, src, sizeof(*src) + src->nent * sizeof(src->entries[0]));
	uint32_t apic = vc->index;
	/* KVM_GET_SUPPORTED_CPUID leaves out the TSC-deadline timer, which the in-kernel
	 * LAPIC emulates (api.rst: check KVM_CAP_TSC_DEADLINE_TIMER). Without it Linux
	 * calibrates its LAPIC timer against the PIT for 100 ms, and where that
	 * calibration fails (as under an emulated host) it keeps the PIT as its clock
	 * event device, with an IOAPIC interrupt and MMIO EOI per tick. */
	bool deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			/* Initial APIC id, logical processor count; hypervisor present. */
			e->ebx = (e->ebx & 0xffff) | (apic << 24) |
				 ((vm->ncpus > 1 ? vm->ncpus : 1) << 16);
			if (vm->ncpus > 1)
				e->edx |= 1u << 28; /* HTT: the count field is valid */
			e->ecx |= 1u << 31;
			if (deadline)
				e->ecx |= 1u << 24;
			break;
		case 0xb:
		case 0x1f:
			e->edx = apic; /* x2APIC id */
			break;
		}
	}
	struct kvm_cpuid_entry2 *sig = find(c, 0x40000000);
	if (!sig) {
		sig = &c->entries[c->nent++];
		memset(sig, 0, sizeof(*sig));
		sig->function = 0x40000000;
		sig->eax = find(c, 0x40000001) ? 0x40000001 : 0x40000000;
	}
	memcpy(&sig->ebx, "KVMK", 4);
	memcpy(&sig->ecx, "VMKV", 4);
	memcpy(&sig->edx, "M\0\0\0", 4);
	/* On PVM the paravirtual send-IPI hypercall (vmcall rax=0xa) never returns, so a
	 * Linux guest with 2+ vCPUs hangs bringing up its APs: hide KVM_FEATURE_PV_SEND_IPI
	 * there and Linux sends IPIs through the (emulated) LAPIC instead. */
	struct kvm_cpuid_entry2 *feat = find(c, 0x40000001);
	if (feat && cpuid_host_is_pvm())
		feat->eax &= ~(1u << 11);
	if (vm->cfg.cpuid_hook)
		vm->cfg.cpuid_hook(vm->cfg.cpuid_opaque, c->entries, c->nent);
	int ret = 0;
	if (ioctl(vc->fd, KVM_SET_CPUID2, c) < 0)
		ret = pv_error(errno, "KVM_SET_CPUID2: %s", strerror(errno));
	free(c);
	return ret;
}
