/* boot.h — the Linux x86-64 boot protocol loader (boot.c) and the MP table
 * (mptable.c). Pure functions over a guest-RAM buffer: no KVM needed, so the unit
 * tests drive them directly.
 *
 * Guest-physical layout (RAM starts at 0):
 *   0x00500  GDT (null, null, code64 0x10, data 0x18), 0x7000 boot_params (zero page),
 *   0x9000   PML4 / PDPT / PDs identity-mapping the first 4 GiB (2 MiB pages),
 *   0x20000  command line, 0x9fc00 MP floating pointer + table (EBDA),
 *   1 MiB    the kernel (ELF segments at their physical addresses, or the bzImage's
 *            protected-mode part at pref_address/1 MiB), initrd at the top of RAM
 *            below initrd_addr_max. The exact addresses are boot.c's to choose;
 *            what the vCPU needs is returned in struct boot_info. */
#ifndef PROVIUM_BOOT_H
#define PROVIUM_BOOT_H

#include <stddef.h>
#include <stdint.h>

/* The fixed guest-physical layout boot.c uses (docs/boot.md). 0x8000..0x8fff and
 * 0x30000..0x7ffff (below the stack) are left free: a guest's SMP trampoline or a
 * bounce buffer can go there. */
#define BOOT_GDT_GPA      0x00500ull
#define BOOT_PARAMS_GPA   0x07000ull
#define BOOT_PML4_GPA     0x09000ull
#define BOOT_PDPT_GPA     0x0a000ull
#define BOOT_PD_GPA       0x0b000ull   /* four PDs: 0xb000..0xefff */
#define BOOT_PT_END_GPA   0x0f000ull
#define BOOT_CMDLINE_GPA  0x20000ull
#define BOOT_CMDLINE_MAX  0x10000ull   /* bytes reserved for the command line */
#define BOOT_STACK_TOP    0x80000ull   /* rsp for freestanding guests; grows down */
#define BOOT_MPTABLE_GPA  0x9fc00ull   /* last KiB of base memory: Linux scans it */
#define BOOT_KERNEL_GPA   0x100000ull  /* 1 MiB */
#define BOOT_MIN_RAM      (2ull << 20)
#define BOOT_MAX_RAM      (3ull << 30) /* flat RAM from 0; above: the 32-bit MMIO hole */
#define BOOT_E820_RAM      1
#define BOOT_E820_RESERVED 2
/* Largest cpus mptable_write accepts (APIC ids 0..n-1, the IOAPIC takes id n). */
#define MPTABLE_MAX_CPUS  254
#define MPTABLE_ISA_BUS   0
/* IOAPIC pin the MP table routes ISA IRQ 0 (the PIT) to. KVM's default GSI routing
 * (arch/x86/kvm/irq_comm.c) sends GSI 0 to IOAPIC pin 0 and the in-kernel PIT raises
 * GSI 0, so the table says pin 0 (QEMU's pin 2 comes with its own GSI routing). */
#define MPTABLE_IRQ0_PIN  0

struct boot_params_in {
	const char *kernel;   /* path: ELF vmlinux (EM_X86_64) or bzImage */
	const char *initrd;   /* path or NULL */
	const char *cmdline;  /* full command line (device entries already appended) */
	/* Extra e820 reservations beyond RAM (none needed yet). */
};

struct boot_info {
	uint64_t entry;        /* 64-bit entry point: rip */
	uint64_t boot_params;  /* gpa of the zero page: rsi */
	uint64_t pml4;         /* cr3 */
	uint64_t gdt_base;     /* gdtr */
	uint16_t gdt_limit;
	uint16_t cs, ds;       /* selectors for the flat 64-bit code and data segments */
	uint64_t stack;        /* an rsp usable by a freestanding guest (below 1 MiB... ) */
	uint64_t kernel_end;   /* first byte after the loaded kernel */
	uint64_t initrd_addr, initrd_size;
	int is_elf;            /* 1 ELF vmlinux, 0 bzImage */
	uint16_t protocol;     /* bzImage boot protocol version (0 for ELF) */
};

/* Loads kernel, initrd, cmdline, boot_params (e820: RAM below 640K, the reserved
 * hole up to 1 MiB, RAM from 1 MiB to the end), page tables and GDT into `mem` of
 * `mem_size` bytes. Rejects bad images with -errno and pv_errmsg(): not found,
 * truncated, wrong magic, protocol < 2.10, does not fit in guest RAM, initrd too big. */
int boot_load(void *mem, uint64_t mem_size, const struct boot_params_in *in,
	      struct boot_info *out);

/* Writes an MP floating pointer and MP configuration table describing `cpus`
 * processors (APIC ids 0..cpus-1), one IOAPIC (id cpus, at 0xfec00000) and ISA
 * interrupt routing, at `gpa` (16-byte aligned, in the EBDA/base memory Linux
 * scans). Returns the bytes written or -errno. */
int mptable_write(void *mem, uint64_t mem_size, uint64_t gpa, unsigned cpus);
/* Bytes mptable_write writes for `cpus` vCPUs. */
size_t mptable_size(unsigned cpus);

#endif
