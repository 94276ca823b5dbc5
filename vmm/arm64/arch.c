/* arch.c — the arm64 side of the VMM behind vmm/arch.h: RAM from 2 GiB, the
 * in-kernel GICv3 (KVM_CREATE_DEVICE, addresses from vmm/arm64/fdt.h, CTRL_INIT once
 * every vCPU exists), vCPUs from KVM_ARM_PREFERRED_TARGET with PSCI 0.2 (the
 * secondaries powered off until the guest's CPU_ON), the ns16550a UART and the exit
 * register on MMIO, virtio-mmio devices described by the device tree, SPIs through
 * KVM_IRQ_LINE and irqfd, and the Image boot protocol (vmm/arm64/image.c) with the
 * boot vCPU's PC/X0/PSTATE through KVM_SET_ONE_REG. The architected timer is KVM's
 * own (PPIs in the DT). Power-off and reset arrive as KVM_EXIT_SYSTEM_EVENT, which
 * vcpu.c handles for every architecture. docs/arm64.md. */
#include "vmm/arm64/arm64.h"
#include "vmm/arch.h"
#include "vmm/arm64/image.h"
#include "vmm/util.h"
#include "devices/platform.h"
#include "devices/serial.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define ARM64_FIRST_SPI  16  /* virtio devices (the UART has SPI 1) */
/* SGIs and PPIs (32) + SPIs up to the last virtio device, in 32s. */
#define ARM64_GIC_NR_IRQS PV_ALIGN_UP(32 + ARM64_FIRST_SPI + ARM64_DT_MAX_VIRTIO, 32)
/* EL1h, with D, A, I and F masked (booting.rst). */
#define ARM64_PSTATE_BOOT 0x3c5ull

const struct arch_layout arch_layout = {
	.name = "arm64",
	.pc_name = "pc",
	.ram_gpa = ARM64_RAM_GPA,
	/* a Linux Image needs more (image.c says how much); the freestanding guests of
	 * doctor and the guest tier fit in 4 MiB */
	.min_ram_mib = 4,
	/* KVM's default IPA space is 40 bits: RAM from 2 GiB up to 1 TiB. */
	.max_ram_mib = (unsigned)(((1ull << 40) - ARM64_RAM_GPA) >> 20),
	.mmio_base = ARM64_VIRTIO_GPA,
	.mmio_end = ARM64_VIRTIO_GPA + ARM64_DT_MAX_VIRTIO * 0x1000ull,
	.irq_first = ARM64_FIRST_SPI,
	.irq_last = ARM64_FIRST_SPI + ARM64_DT_MAX_VIRTIO - 1,
	.kernel_file = "Image",
	.boot_image = "Image",
	.cache_suffix = "-arm64",
};

static const struct {
	long cap;
	const char *name;
} arm64_caps[] = {
	{KVM_CAP_ONE_REG, "KVM_CAP_ONE_REG"},
	{KVM_CAP_DEVICE_CTRL, "KVM_CAP_DEVICE_CTRL"},
	{KVM_CAP_ARM_PSCI_0_2, "KVM_CAP_ARM_PSCI_0_2"},
};

static int gic_attr(struct vm *vm, uint32_t group, uint64_t attr, void *val, const char *what)
{
	struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uintptr_t)val};
	if (ioctl(vm->arch->gic_fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return pv_error(errno, "GICv3: %s: %s", what, strerror(errno));
	return 0;
}

/* The distributor and one redistributor region for all vCPUs, where the DT says. */
static int create_gic(struct vm *vm)
{
	struct kvm_create_device cd = {.type = KVM_DEV_TYPE_ARM_VGIC_V3};
	if (ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &cd) < 0) {
		int e = errno;
		if (e == ENODEV || e == ENXIO)
			return pv_error(e, "KVM_CREATE_DEVICE GICv3: this host's KVM has no "
					"GICv3 (arm64 guests need a GICv3 host)");
		return pv_error(e, "KVM_CREATE_DEVICE GICv3: %s", strerror(e));
	}
	vm->arch->gic_fd = cd.fd;
	uint64_t dist = ARM64_GICD_GPA, redist = ARM64_GICR_GPA;
	uint32_t nr = ARM64_GIC_NR_IRQS;
	int err;
	if ((err = gic_attr(vm, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
			    "distributor address")) ||
	    (err = gic_attr(vm, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST,
			    &redist, "redistributor address")))
		return err;
	return gic_attr(vm, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr, "number of interrupts");
}

int arch_vm_init(struct vm *vm)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(arm64_caps); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, arm64_caps[i].cap) <= 0)
			return pv_error(ENOTSUP, "this host's KVM lacks %s, which provium needs",
					arm64_caps[i].name);
	if (vm->ncpus > ARM64_MAX_CPUS)
		return pv_error(EINVAL, "cpus %u: the GICv3 layout has room for %llu", vm->ncpus,
				(unsigned long long)ARM64_MAX_CPUS);
	vm->arch = calloc(1, sizeof(*vm->arch));
	if (!vm->arch)
		return pv_error(ENOMEM, "out of memory");
	vm->arch->gic_fd = -1;
	if (ioctl(vm->vm_fd, KVM_ARM_PREFERRED_TARGET, &vm->arch->init) < 0)
		return pv_error(errno, "KVM_ARM_PREFERRED_TARGET: %s", strerror(errno));
	return create_gic(vm);
}

void arch_vm_free(struct vm *vm)
{
	if (vm->arch && vm->arch->gic_fd >= 0)
		close(vm->arch->gic_fd);
	free(vm->arch);
	vm->arch = NULL;
}

int arch_platform_create(struct vm *vm)
{
	int err = serial_create_mmio(vm, ARM64_UART_GPA, ARM64_UART_SPI, &vm->serial);
	return err ? err : platform_create_exit_mmio(vm, ARM64_EXIT_GPA);
}

/* PSCI 0.2 in the kernel; every vCPU but the first waits powered off for CPU_ON. */
int arch_vcpu_init(struct vcpu *c)
{
	struct kvm_vcpu_init init = c->vm->arch->init;
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (c->index > 0)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	if (ioctl(c->fd, KVM_ARM_VCPU_INIT, &init) < 0)
		return pv_error(errno, "KVM_ARM_VCPU_INIT (target %u): %s", init.target,
				strerror(errno));
	return 0;
}

int arch_vm_ready(struct vm *vm)
{
	return gic_attr(vm, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
			"KVM_DEV_ARM_VGIC_CTRL_INIT");
}

#define CORE_REG(x) ARM64_CORE_REG(x)

int arm64_set_reg(struct vcpu *c, uint64_t id, uint64_t val, const char *name)
{
	struct kvm_one_reg r = {.id = id, .addr = (uintptr_t)&val};
	if (ioctl(c->fd, KVM_SET_ONE_REG, &r) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_ONE_REG %s: %s", c->index, name,
				strerror(errno));
	return 0;
}

int arm64_get_reg(struct vcpu *c, uint64_t id, uint64_t *val)
{
	struct kvm_one_reg r = {.id = id, .addr = (uintptr_t)val};
	return ioctl(c->fd, KVM_GET_ONE_REG, &r) < 0 ? -errno : 0;
}

/* The boot vCPU's entry: pc, x0 (the DTB or 0), x1..x3 zero, EL1h masked. */
static int set_entry(struct vcpu *c, uint64_t pc, uint64_t x0)
{
	int err;
	if ((err = arm64_set_reg(c, CORE_REG(regs.pstate), ARM64_PSTATE_BOOT, "pstate")) ||
	    (err = arm64_set_reg(c, CORE_REG(regs.regs[0]), x0, "x0")) ||
	    (err = arm64_set_reg(c, CORE_REG(regs.regs[1]), 0, "x1")) ||
	    (err = arm64_set_reg(c, CORE_REG(regs.regs[2]), 0, "x2")) ||
	    (err = arm64_set_reg(c, CORE_REG(regs.regs[3]), 0, "x3")))
		return err;
	return arm64_set_reg(c, CORE_REG(regs.pc), pc, "pc");
}

int arch_boot(struct vm *vm)
{
	struct arm64_boot_in in = {
		.kernel = vm->kernel, .initrd = vm->initrd, .cmdline = vm->cmdline,
		.cpus = vm->ncpus,
		.uart = {.gpa = ARM64_UART_GPA, .size = ARM64_UART_SIZE, .spi = ARM64_UART_SPI},
		.virtio = vm->arch->virtio, .nvirtio = vm->arch->nvirtio,
	};
	struct arm64_boot_info bi;
	int err = arm64_boot_load(vm->mem, ARM64_RAM_GPA, vm->mem_size, &in, &bi);
	if (err)
		return err;
	pv_debug("vm %s: Image at 0x%" PRIx64 ", DTB at 0x%" PRIx64 " (%d bytes), initrd at "
		 "0x%" PRIx64, vm->name, bi.entry, bi.dtb, bi.dtb_size, bi.layout.initrd_gpa);
	return set_entry(&vm->vcpus[0], bi.entry, bi.dtb);
}

int vm_start_raw(struct vm *vm, uint64_t rip, bool long_mode)
{
	(void)long_mode;
	if (vm->started)
		return pv_error(EBUSY, "vm %s: already started", vm->name);
	int err = set_entry(&vm->vcpus[0], rip, 0);
	if (err)
		return pv_error_prefix(err, "vm %s", vm->name);
	return vm_start_loaded(vm, false);
}

/* movz w0, #code; movz x1, #(exit register >> 16), lsl #16; str w0, [x1]; b . */
int vm_start_exit_guest(struct vm *vm, uint8_t code)
{
	const uint32_t prog[] = {
		0x52800000u | (uint32_t)code << 5,
		0xd2a00001u | (uint32_t)(ARM64_EXIT_GPA >> 16) << 5,
		0xb9000020u,
		0x14000000u,
	};
	uint64_t at = ARM64_RAM_GPA + 0x1000;
	memcpy(vm_gpa(vm, at, sizeof(prog)), prog, sizeof(prog));
	return vm_start_raw(vm, at, false);
}

int arch_describe_mmio(struct vm *vm, uint64_t base, uint64_t size, int irq)
{
	struct arch_vm *a = vm->arch;
	if (a->nvirtio >= ARM64_DT_MAX_VIRTIO)
		return pv_error(ENOSPC, "vm %s: more than %d virtio devices", vm->name,
				ARM64_DT_MAX_VIRTIO);
	a->virtio[a->nvirtio++] = (struct arm64_dt_dev){base, size, (uint32_t)irq};
	return 0;
}

/* KVM_IRQ_LINE on arm64: the type (SPI) and the GIC INTID (32 + SPI number). */
uint32_t arch_irq_line_id(int irq)
{
	return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | ((uint32_t)irq + 32);
}

void arch_after_pause(struct vm *vm)
{
	/* The virtual counter (the host's minus the VM's offset) runs on through a
	 * pause, as kvmclock does on x86; arm64 KVM has no KVMCLOCK_CTRL to tell the
	 * guest it was stopped. */
	(void)vm;
}

bool arch_handle_exit(struct vcpu *c)
{
	char msg[256], where[64];
	arch_describe_pc(c, where, sizeof(where));
	snprintf(msg, sizeof(msg), "vcpu %u: unhandled KVM exit reason %u at %s", c->index,
		 c->run->exit_reason, where);
	vm_request_exit(c->vm, VM_EXIT_ERROR, 0, msg);
	return false;
}

#define A64_WFI 0xd503207fu
#define A64_B_BACK1 0x17ffffffu /* b .-4 */
#define PSTATE_DAIF (0xfu << 6)
#define SCTLR_M 1u

/* Is the vCPU in a `wfi; b .-4` loop with every exception masked and its MMU off,
 * the arm64 `cli; hlt`? With an in-kernel GIC, WFI waits inside KVM (no exit, and
 * the MP state stays RUNNABLE), so the probe looks at what the vCPU runs: a pending
 * interrupt ends the WFI but is never taken (PSTATE.DAIF all set), and the loop holds
 * nothing else, so nothing can ever lead it out. The kick that brought the vCPU here
 * leaves its PC on the branch (KVM steps over the WFI it was waiting in) or on the
 * WFI. With the MMU on (Linux) guest-virtual is not guest-physical and nothing is
 * read: Linux stops through PSCI SYSTEM_OFF. Best effort: false on any failure. */
static bool in_halt_loop(struct vcpu *c, uint64_t *pc_out)
{
	uint64_t pc, pstate, sctlr;
	/* SCTLR_EL1 first: a Linux guest (MMU on) costs the probe this one read */
	if (arm64_get_reg(c, ARM64_SYS_REG(3, 0, 1, 0, 0), &sctlr) < 0 || (sctlr & SCTLR_M))
		return false;
	if (arm64_get_reg(c, ARM64_CORE_REG(regs.pc), &pc) < 0 ||
	    arm64_get_reg(c, ARM64_CORE_REG(regs.pstate), &pstate) < 0)
		return false;
	if ((pstate & PSTATE_DAIF) != PSTATE_DAIF || pc % 4 || pc < 4)
		return false;
	const uint32_t *at = vm_gpa(c->vm, pc - 4, 12);
	if (!at)
		return false;
	uint32_t prev = at[0], cur = at[1], next = at[2];
	*pc_out = pc;
	return (prev == A64_WFI && cur == A64_B_BACK1) || (cur == A64_WFI && next == A64_B_BACK1);
}

/* A halt probe (vm.c's halt_tick): powered-off vCPUs (PSCI CPU_OFF, or secondaries
 * never started) count as idle; a vCPU in in_halt_loop() counts a halted round. */
void arch_probe_halt(struct vcpu *c)
{
	struct kvm_mp_state mp;
	if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0)
		return;
	atomic_store(&c->waiting_start, mp.mp_state == KVM_MP_STATE_STOPPED);
	uint64_t pc;
	if (mp.mp_state == KVM_MP_STATE_RUNNABLE && in_halt_loop(c, &pc)) {
		c->halted_pc = pc;
		atomic_fetch_add(&c->halted_rounds, 1);
	} else {
		atomic_store(&c->halted_rounds, 0);
	}
}

void arch_describe_pc(struct vcpu *c, char *buf, size_t len)
{
	uint64_t pc;
	if (arm64_get_reg(c, CORE_REG(regs.pc), &pc) < 0)
		snprintf(buf, len, "pc unknown");
	else
		snprintf(buf, len, "pc=0x%" PRIx64, pc);
}
