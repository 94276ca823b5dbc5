/* arch.h — what the shared VMM (vm.c, vcpu.c, snapshot.c) asks of the guest
 * architecture. Exactly one implementation is linked: vmm/x86/ or vmm/arm64/, chosen
 * by the Makefile's ARCH (docs/arm64.md). The shared code never tests the
 * architecture itself; everything that differs goes through here.
 *
 * Call order, from vm_create_from():
 *   arch_vm_init        after KVM_CREATE_VM and guest RAM: irqchip, timers, the
 *                       per-VM state in vm->arch
 *   arch_platform_create  the UART (vm->serial) and the fixed platform devices
 *   arch_vcpu_init      once per vCPU, after KVM_CREATE_VCPU and the kvm_run mmap
 *   arch_vm_ready       after every vCPU exists (arm64: the GIC's CTRL_INIT)
 * then vm_start() calls arch_boot (kernel, initrd, command line / device tree, the
 * boot vCPU's registers) and vm_destroy() calls arch_vm_free. */
#ifndef PROVIUM_ARCH_H
#define PROVIUM_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct msgpack_object;
struct msgpack_packer;

/* The architecture's fixed guest-physical layout and interrupt numbering. */
struct arch_layout {
	const char *name;        /* "x86_64", "arm64": doctor, snapshots, messages */
	const char *pc_name;     /* "rip", "pc": in messages */
	uint64_t ram_gpa;        /* guest RAM is one slot from here */
	unsigned min_ram_mib, max_ram_mib;
	uint64_t mmio_base, mmio_end; /* where vm_alloc_mmio hands out windows */
	int irq_first, irq_last;      /* what vm_alloc_irq hands out */
	/* the guest kernel kernels/build.sh leaves for this architecture, the file the
	 * kvm backend boots ("vmlinux": the ELF boots fastest on x86; "Image"), its
	 * compressed boot image (`provium kernel path`'s bzImage line: x86's bzImage;
	 * arm64 has only Image), and the suffix of its cache links ("", "-arm64":
	 * kernel/current-arm64, initramfs/current-arm64.cpio; runner/kernel.c) */
	const char *kernel_file, *boot_image, *cache_suffix;
};
extern const struct arch_layout arch_layout;

int arch_vm_init(struct vm *vm);
int arch_platform_create(struct vm *vm);
int arch_vcpu_init(struct vcpu *c);
int arch_vm_ready(struct vm *vm);
int arch_boot(struct vm *vm);
void arch_vm_free(struct vm *vm);

/* A device's MMIO window and interrupt, told to the guest: x86 appends a
 * "virtio_mmio.device=" command-line entry, arm64 a node to the device tree. */
int arch_describe_mmio(struct vm *vm, uint64_t base, uint64_t size, int irq);
/* The value of kvm_irq_level.irq for interrupt `irq` (x86: the GSI; arm64: the SPI
 * encoded with its type). irqfd takes `irq` itself on both. */
uint32_t arch_irq_line_id(int irq);

/* An exit the shared loop does not handle: returns false when the vCPU must stop
 * (after vm_request_exit). */
bool arch_handle_exit(struct vcpu *c);
/* From the vCPU's own thread, answering a halt probe (vm.c's halt_tick): sets
 * c->waiting_start and counts c->halted_rounds / records c->halted_pc. */
void arch_probe_halt(struct vcpu *c);
/* "rip=0x... (bytes ...)" / "pc=0x..." for messages; best effort. */
void arch_describe_pc(struct vcpu *c, char *buf, size_t len);
/* Tells a guest that was paused (its watchdogs must not take the pause for a
 * lockup): x86's KVM_KVMCLOCK_CTRL; nothing elsewhere. */
void arch_after_pause(struct vm *vm);

/* Snapshots (snapshot.c packs the maps' keys; these fill the values): one vCPU's
 * registers and the VM-wide chips/clock. The restore side runs after the devices are
 * re-created and before the threads start; restore_clock last, after the vCPUs. */
int arch_save_vcpu(struct vcpu *c, struct msgpack_packer *pk);
int arch_save_vm(struct vm *vm, struct msgpack_packer *pk);
int arch_restore_chips(struct vm *vm, const struct msgpack_object *st);
int arch_restore_vcpu(struct vcpu *c, const struct msgpack_object *st);
int arch_restore_clock(struct vm *vm, const struct msgpack_object *st);

#endif
