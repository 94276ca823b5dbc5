/* fdt.h — the arm64 guest's device tree (vmm/arm64/fdt.c) and the fixed
 * guest-physical layout it describes. A pure function over a caller's buffer, built
 * with libfdt's sequential-write API: no KVM needed, so tests/unit/test_arm64_fdt.c
 * runs it on any host (issue 14).
 *
 * Guest-physical layout (like QEMU's virt machine below 2 GiB, RAM from 2 GiB):
 *   0x08000000  GICv3 distributor (64 KiB)
 *   0x080a0000  GICv3 redistributors, 128 KiB (RD + SGI frame) per vCPU
 *   0x09000000  the ns16550a UART (devices/serial.c), one byte per register
 *   0x09010000  the exit register (devices/platform.c; not in the DT)
 *   0x0a000000  virtio-mmio devices, a 4 KiB window each (vm_alloc_mmio)
 *   0x80000000  RAM; the kernel Image 2 MiB aligned, the DTB and initrd above it */
#ifndef PROVIUM_ARM64_FDT_H
#define PROVIUM_ARM64_FDT_H

#include <stddef.h>
#include <stdint.h>

#define ARM64_GICD_GPA        0x08000000ull
#define ARM64_GICD_SIZE       0x00010000ull
#define ARM64_GICR_GPA        0x080a0000ull
#define ARM64_GICR_SIZE_CPU   0x00020000ull
#define ARM64_UART_GPA        0x09000000ull
#define ARM64_UART_SIZE       0x00001000ull
#define ARM64_UART_SPI        1
/* The exit register (devices/platform.c), not in the device tree: test guests. */
#define ARM64_EXIT_GPA        0x09010000ull
#define ARM64_VIRTIO_GPA      0x0a000000ull
#define ARM64_VIRTIO_STRIDE   0x00000200ull
#define ARM64_RAM_GPA         0x80000000ull
/* Redistributors must end below the UART: 123 vCPUs fit. */
#define ARM64_MAX_CPUS        ((ARM64_UART_GPA - ARM64_GICR_GPA) / ARM64_GICR_SIZE_CPU)
#define ARM64_DT_MAX_VIRTIO   32
/* The GIC's phandle: the root's interrupt-parent points at it. */
#define ARM64_DT_GIC_PHANDLE  1

/* GIC interrupt specifier cells (include/dt-bindings/interrupt-controller/). */
#define ARM64_DT_IRQ_SPI      0
#define ARM64_DT_IRQ_PPI      1
#define ARM64_DT_EDGE_RISING  1
#define ARM64_DT_LEVEL_HIGH   4
/* Architected timer PPIs: secure phys, non-secure phys, virtual, hypervisor. */
#define ARM64_TIMER_PPI_SEC   13
#define ARM64_TIMER_PPI_NS    14
#define ARM64_TIMER_PPI_VIRT  11
#define ARM64_TIMER_PPI_HYP   10

struct arm64_dt_dev {
	uint64_t gpa, size;   /* size 0: absent (the UART only) */
	uint32_t spi;         /* SPI number: GIC INTID 32 + spi */
};

struct arm64_dt_in {
	unsigned cpus;                  /* 1..ARM64_MAX_CPUS */
	uint64_t ram_gpa, ram_size;
	const char *bootargs;           /* NULL: none */
	uint64_t initrd_gpa, initrd_size; /* size 0: no initrd */
	struct arm64_dt_dev uart;       /* level-triggered: serial.c holds the line */
	const struct arm64_dt_dev *virtio; /* edge-triggered: virtio_mmio.c pulses */
	unsigned nvirtio;
};

/* The MPIDR KVM gives vCPU `idx` at reset (Aff0 = idx % 16, Aff1 = idx / 16): the
 * cpu node's reg, which Linux matches against MPIDR_EL1. */
uint64_t arm64_dt_mpidr(unsigned idx);

/* Writes the flattened device tree for `in` into buf (bufsize bytes). Returns its
 * size (fdt_totalsize) or -errno with pv_errmsg() set: -EINVAL for a bad
 * description, -ENOSPC when it does not fit. */
int arm64_dt_build(void *buf, size_t bufsize, const struct arm64_dt_in *in);

#endif
