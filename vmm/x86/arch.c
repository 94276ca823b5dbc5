/* arch.c — the x86-64 side of the VMM behind vmm/arch.h: the PC layout (RAM from
 * 0, virtio windows below the IOAPIC, GSIs 5..23), the TSS and identity map, the
 * in-kernel PIC/IOAPIC and PIT, the COM1 UART and the platform ports, CPUID, MSRs,
 * the LAPIC's LINT pins and the FPU per vCPU, the boot protocol loader with its MP
 * table and 64-bit entry (vm_start_raw's real/long mode too), and the exits only
 * x86 has (port I/O, triple fault). */
#include "vmm/x86/x86.h"
#include "vmm/arch.h"
#include "vmm/x86/boot.h"
#include "vmm/bus.h"
#include "vmm/util.h"
#include "devices/platform.h"
#include "devices/serial.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

const struct arch_layout arch_layout = {
	.name = "x86_64",
	.pc_name = "rip",
	.ram_gpa = 0,
	/* RAM below the virtio windows, leaving 256 MiB of them. */
	.min_ram_mib = 4,
	.max_ram_mib = (X86_MMIO_BASE >> 20) - 256,
	.mmio_base = X86_MMIO_BASE,
	.mmio_end = X86_MMIO_END,
	/* 0 timer, 1 keyboard, 2 cascade, 3 COM2, 4 COM1 are taken. */
	.irq_first = 5,
	.irq_last = 23,
	.kernel_file = "vmlinux",
	.boot_image = "bzImage",
	.cache_suffix = "",
};

static const struct {
	long cap;
	const char *name;
} x86_caps[] = {
	{KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	{KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
};

int arch_vm_init(struct vm *vm)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(x86_caps); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, x86_caps[i].cap) <= 0)
			return pv_error(ENOTSUP, "this host's KVM lacks %s, which provium needs",
					x86_caps[i].name);
	vm->arch = calloc(1, sizeof(*vm->arch));
	if (!vm->arch)
		return pv_error(ENOMEM, "out of memory");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)X86_TSS_ADDR) < 0)
		return pv_error(errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	uint64_t idmap = X86_IDMAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return pv_error(errno, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return pv_error(errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return pv_error(errno, "KVM_CREATE_PIT2: %s", strerror(errno));
	return cpuid_init(vm);
}

void arch_vm_free(struct vm *vm)
{
	if (vm->arch)
		free(vm->arch->cpuid);
	free(vm->arch);
	vm->arch = NULL;
}

int arch_platform_create(struct vm *vm)
{
	int err = serial_create(vm, 0x3f8, 4, &vm->serial);
	return err ? err : platform_create(vm);
}

int arch_vm_ready(struct vm *vm)
{
	(void)vm;
	return 0;
}

/* The LAPIC's LINT0 delivers the PIC's ExtINT and LINT1 NMI, as firmware sets up
 * on a PC, so interrupts reach the BSP before the guest programs its IOAPIC. */
static int setup_lapic(struct vcpu *c)
{
	struct kvm_lapic_state la;
	if (ioctl(c->fd, KVM_GET_LAPIC, &la) < 0)
		return pv_error(errno, "KVM_GET_LAPIC: %s", strerror(errno));
	uint32_t *lint0 = (uint32_t *)&la.regs[0x350], *lint1 = (uint32_t *)&la.regs[0x360];
	*lint0 = (*lint0 & ~0x700u & ~0x10000u) | (7u << 8);  /* ExtINT, unmasked */
	*lint1 = (*lint1 & ~0x700u & ~0x10000u) | (4u << 8);  /* NMI, unmasked */
	if (ioctl(c->fd, KVM_SET_LAPIC, &la) < 0)
		return pv_error(errno, "KVM_SET_LAPIC: %s", strerror(errno));
	return 0;
}

int arch_vcpu_init(struct vcpu *c)
{
	struct vm *vm = c->vm;
	int err;
	if ((err = cpuid_setup_vcpu(vm, c)) < 0)
		return err;
	if ((err = msr_setup_vcpu(vm, c)) < 0)
		return err;
	if ((err = setup_lapic(c)) < 0)
		return err;
	struct kvm_fpu fpu = {0};
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
		return pv_error(errno, "KVM_SET_FPU: %s", strerror(errno));
	return 0;
}

int vcpu_setup_long_mode(struct vcpu *c, const struct boot_info *bi)
{
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return pv_error(errno, "vcpu %u: KVM_GET_SREGS: %s", c->index, strerror(errno));
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = bi->cs, .type = 0xb,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = code;
	data.selector = bi->ds;
	data.type = 0x3;
	data.db = 1;
	data.l = 0;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.gdt.base = bi->gdt_base;
	s.gdt.limit = bi->gdt_limit;
	s.cr3 = bi->pml4;
	s.cr4 |= 0x20;                                     /* PAE */
	s.cr0 = (s.cr0 & ~0x60000000ull) | 0x80000031ull;  /* PG NE ET PE; caches on */
	s.efer |= 0x500;                                   /* LME | LMA */
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_SREGS: %s", c->index, strerror(errno));
	struct kvm_regs r = {0};
	r.rflags = 2;
	r.rip = bi->entry;
	r.rsi = bi->boot_params;
	r.rsp = bi->stack;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_REGS: %s", c->index, strerror(errno));
	return 0;
}

int vcpu_setup_real_mode(struct vcpu *c, uint64_t rip)
{
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return pv_error(errno, "vcpu %u: KVM_GET_SREGS: %s", c->index, strerror(errno));
	uint64_t base = rip & ~0xffffull;
	if (base > 0xf0000)
		return pv_error(EINVAL, "vcpu %u: real-mode entry 0x%" PRIx64 " above 1 MiB",
				c->index, rip);
	s.cs.selector = base >> 4;
	s.cs.base = base;
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_SREGS: %s", c->index, strerror(errno));
	struct kvm_regs r = {0};
	r.rflags = 2;
	r.rip = rip - base;
	r.rsp = 0x7000;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_REGS: %s", c->index, strerror(errno));
	return 0;
}

/* A halt probe's answer (halt_tick in vm.c): the MP state, and whether the vCPU
 * halted with interrupts off. */
void arch_probe_halt(struct vcpu *c)
{
	struct kvm_mp_state mp;
	if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0)
		return;
	atomic_store(&c->waiting_start, mp.mp_state == KVM_MP_STATE_UNINITIALIZED);
	struct kvm_regs r;
	if (mp.mp_state == KVM_MP_STATE_HALTED && ioctl(c->fd, KVM_GET_REGS, &r) == 0 &&
	    !(r.rflags & 0x200)) {
		c->halted_pc = r.rip;
		atomic_fetch_add(&c->halted_rounds, 1);
	} else {
		atomic_store(&c->halted_rounds, 0);
	}
}

/* "rip=0x... (bytes: 0f 01 ...)" for messages; best effort. */
void arch_describe_pc(struct vcpu *c, char *buf, size_t len)
{
	struct kvm_regs r;
	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0) {
		snprintf(buf, len, "rip unknown");
		return;
	}
	struct kvm_sregs s;
	uint64_t lin = r.rip;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) == 0)
		lin += s.cs.base;
	struct kvm_translation t = {.linear_address = lin};
	int n = lin == r.rip ? snprintf(buf, len, "rip=0x%llx", (unsigned long long)r.rip) :
		snprintf(buf, len, "rip=0x%llx (linear 0x%llx)", (unsigned long long)r.rip,
			 (unsigned long long)lin);
	if (ioctl(c->fd, KVM_TRANSLATE, &t) == 0 && t.valid) {
		const uint8_t *p = vm_gpa(c->vm, t.physical_address, 8);
		if (p && n > 0 && (size_t)n < len)
			snprintf(buf + n, len - n, " (bytes %02x %02x %02x %02x %02x %02x %02x %02x)",
				 p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
	}
}


int arch_boot(struct vm *vm)
{
	struct boot_params_in in = {
		.kernel = vm->kernel, .initrd = vm->initrd, .cmdline = vm->cmdline,
	};
	struct boot_info bi;
	int err = boot_load(vm->mem, vm->mem_size, &in, &bi);
	if (err < 0)
		return err;
	err = mptable_write(vm->mem, vm->mem_size, X86_MPTABLE_GPA, vm->ncpus);
	if (err < 0)
		return pv_error_prefix(err, "MP table");
	/* Only the boot vCPU gets registers: the others wait for INIT/SIPI. */
	return vcpu_setup_long_mode(&vm->vcpus[0], &bi);
}

/* Test entry: the caller has written code into guest RAM. Long mode gets a flat
 * GDT at 0x500 and identity page tables for the first 4 GiB at 0x9000-0xefff. */
int vm_start_raw(struct vm *vm, uint64_t rip, bool long_mode)
{
	int err;
	if (vm->started)
		return pv_error(EBUSY, "vm %s: already started", vm->name);
	if (long_mode) {
		uint8_t *m = vm->mem;
		uint64_t gdt[4] = {0, 0, 0x00af9a000000ffffull, 0x00cf92000000ffffull};
		memcpy(m + 0x500, gdt, sizeof(gdt));
		uint64_t *pml4 = (uint64_t *)(m + 0x9000), *pdpt = (uint64_t *)(m + 0xa000),
			 *pd = (uint64_t *)(m + 0xb000);
		memset(pml4, 0, 6 * 4096);
		pml4[0] = 0xa000 | 3;
		for (uint64_t i = 0; i < 4; i++)
			pdpt[i] = (0xb000 + i * 4096) | 3;
		for (uint64_t i = 0; i < 4 * 512; i++)
			pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB */
		struct boot_info bi = {
			.entry = rip, .pml4 = 0x9000, .gdt_base = 0x500,
			.gdt_limit = sizeof(gdt) - 1, .cs = 0x10, .ds = 0x18, .stack = 0x8000,
		};
		err = vcpu_setup_long_mode(&vm->vcpus[0], &bi);
	} else {
		err = vcpu_setup_real_mode(&vm->vcpus[0], rip);
	}
	if (err)
		return pv_error_prefix(err, "vm %s", vm->name);
	return vm_start_loaded(vm, false);
}

/* mov $code,%al; out %al,$0xf4; hlt, in real mode at 0x1000. */
int vm_start_exit_guest(struct vm *vm, uint8_t code)
{
	const uint8_t prog[] = {0xb0, code, 0xe6, PLATFORM_EXIT_PORT, 0xf4};
	memcpy(vm_gpa(vm, 0x1000, sizeof(prog)), prog, sizeof(prog));
	return vm_start_raw(vm, 0x1000, false);
}

int arch_describe_mmio(struct vm *vm, uint64_t base, uint64_t size, int irq)
{
	char entry[96];
	snprintf(entry, sizeof(entry), "virtio_mmio.device=%" PRIu64 "K@0x%" PRIx64 ":%d",
		 size >> 10, base, irq);
	return vm_cmdline_add(vm, entry);
}

uint32_t arch_irq_line_id(int irq)
{
	return (uint32_t)irq;
}

void arch_after_pause(struct vm *vm)
{
	clock_after_pause(vm);
}

bool arch_handle_exit(struct vcpu *c)
{
	struct vm *vm = c->vm;
	struct kvm_run *run = c->run;
	char msg[256], where[96];
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		vcpu_stats_count(&c->stats, VM_STAT_PIO, run->io.direction == KVM_EXIT_IO_OUT,
				 run->io.port);
		uint8_t *p = (uint8_t *)run + run->io.data_offset;
		for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
			bus_access(vm->pio, run->io.port, p, run->io.size,
				   run->io.direction == KVM_EXIT_IO_OUT);
		return true;
	}
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		vcpu_stats_count(&c->stats, VM_STAT_OTHER, false, run->exit_reason);
		return true;
	case KVM_EXIT_SHUTDOWN:
		arch_describe_pc(c, where, sizeof(where));
		snprintf(msg, sizeof(msg), "vcpu %u: triple fault (KVM_EXIT_SHUTDOWN) at %s",
			 c->index, where);
		vm_request_exit(vm, VM_EXIT_TRIPLE_FAULT, 0, msg);
		return false;
	default:
		arch_describe_pc(c, where, sizeof(where));
		snprintf(msg, sizeof(msg), "vcpu %u: unhandled KVM exit reason %u at %s",
			 c->index, run->exit_reason, where);
		vm_request_exit(vm, VM_EXIT_ERROR, 0, msg);
		return false;
	}
}
