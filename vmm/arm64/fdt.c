/* fdt.c — the device tree an arm64 Linux guest boots with: memory, one cpu node per
 * vCPU (enable-method psci: KVM's PSCI 0.2 brings secondaries up with CPU_ON), the
 * in-kernel GICv3, the architected timer, chosen (bootargs, initrd, stdout-path),
 * the ns16550a UART and one virtio,mmio node per virtio device (x86 passes those as
 * virtio_mmio.device= on the command line instead). Written with libfdt's
 * sequential-write API; tests/unit/test_arm64_fdt.c decodes it back. */
#include "vmm/arm64/fdt.h"
#include "vmm/util.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>

#define DT_MODEL "provium,arm64-virt"

uint64_t arm64_dt_mpidr(unsigned idx)
{
	return ((uint64_t)(idx >> 4) << 8) | (idx & 0xf);
}

/* Any libfdt failure while writing means the buffer ran out (or a bug): say which. */
#define TRY(x) do { int r_ = (x); if (r_ < 0) return r_; } while (0)

static int prop_reg(void *fdt, uint64_t gpa, uint64_t size)
{
	fdt64_t reg[2] = { cpu_to_fdt64(gpa), cpu_to_fdt64(size) };

	return fdt_property(fdt, "reg", reg, sizeof(reg));
}

/* <type num flags>: one GIC interrupt specifier (#interrupt-cells = 3). */
static int prop_irq(void *fdt, uint32_t type, uint32_t num, uint32_t flags)
{
	fdt32_t irq[3] = { cpu_to_fdt32(type), cpu_to_fdt32(num), cpu_to_fdt32(flags) };

	return fdt_property(fdt, "interrupts", irq, sizeof(irq));
}

static int begin_node_at(void *fdt, const char *name, uint64_t gpa)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s@%llx", name, (unsigned long long)gpa);
	return fdt_begin_node(fdt, buf);
}

static int add_root_props(void *fdt)
{
	TRY(fdt_property_string(fdt, "compatible", "linux,dummy-virt"));
	TRY(fdt_property_string(fdt, "model", DT_MODEL));
	TRY(fdt_property_u32(fdt, "#address-cells", 2));
	TRY(fdt_property_u32(fdt, "#size-cells", 2));
	return fdt_property_u32(fdt, "interrupt-parent", ARM64_DT_GIC_PHANDLE);
}

static int add_chosen(void *fdt, const struct arm64_dt_in *in)
{
	char path[64];

	TRY(fdt_begin_node(fdt, "chosen"));
	if (in->bootargs)
		TRY(fdt_property_string(fdt, "bootargs", in->bootargs));
	if (in->initrd_size) {
		TRY(fdt_property_u64(fdt, "linux,initrd-start", in->initrd_gpa));
		TRY(fdt_property_u64(fdt, "linux,initrd-end",
				     in->initrd_gpa + in->initrd_size));
	}
	if (in->uart.size) {
		snprintf(path, sizeof(path), "/uart@%llx",
			 (unsigned long long)in->uart.gpa);
		TRY(fdt_property_string(fdt, "stdout-path", path));
	}
	return fdt_end_node(fdt);
}

static int add_memory(void *fdt, const struct arm64_dt_in *in)
{
	TRY(begin_node_at(fdt, "memory", in->ram_gpa));
	TRY(fdt_property_string(fdt, "device_type", "memory"));
	TRY(prop_reg(fdt, in->ram_gpa, in->ram_size));
	return fdt_end_node(fdt);
}

static int add_cpus(void *fdt, unsigned cpus)
{
	TRY(fdt_begin_node(fdt, "cpus"));
	TRY(fdt_property_u32(fdt, "#address-cells", 1));
	TRY(fdt_property_u32(fdt, "#size-cells", 0));
	for (unsigned i = 0; i < cpus; i++) {
		uint64_t mpidr = arm64_dt_mpidr(i);

		TRY(begin_node_at(fdt, "cpu", mpidr));
		TRY(fdt_property_string(fdt, "device_type", "cpu"));
		TRY(fdt_property_string(fdt, "compatible", "arm,arm-v8"));
		TRY(fdt_property_string(fdt, "enable-method", "psci"));
		TRY(fdt_property_u32(fdt, "reg", (uint32_t)mpidr));
		TRY(fdt_end_node(fdt));
	}
	return fdt_end_node(fdt);
}

/* KVM implements PSCI 0.2 (KVM_ARM_VCPU_PSCI_0_2) over HVC. */
static int add_psci(void *fdt)
{
	static const char compat[] = "arm,psci-0.2\0arm,psci";

	TRY(fdt_begin_node(fdt, "psci"));
	TRY(fdt_property(fdt, "compatible", compat, sizeof(compat)));
	TRY(fdt_property_string(fdt, "method", "hvc"));
	return fdt_end_node(fdt);
}

static int add_gic(void *fdt, unsigned cpus)
{
	fdt64_t reg[4] = {
		cpu_to_fdt64(ARM64_GICD_GPA), cpu_to_fdt64(ARM64_GICD_SIZE),
		cpu_to_fdt64(ARM64_GICR_GPA),
		cpu_to_fdt64(ARM64_GICR_SIZE_CPU * cpus),
	};

	TRY(begin_node_at(fdt, "intc", ARM64_GICD_GPA));
	TRY(fdt_property_string(fdt, "compatible", "arm,gic-v3"));
	TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
	TRY(fdt_property_u32(fdt, "#interrupt-cells", 3));
	TRY(fdt_property(fdt, "reg", reg, sizeof(reg)));
	TRY(fdt_property_u32(fdt, "phandle", ARM64_DT_GIC_PHANDLE));
	return fdt_end_node(fdt);
}

static int add_timer(void *fdt)
{
	static const uint32_t ppi[4] = {
		ARM64_TIMER_PPI_SEC, ARM64_TIMER_PPI_NS,
		ARM64_TIMER_PPI_VIRT, ARM64_TIMER_PPI_HYP,
	};
	fdt32_t irqs[12];

	for (int i = 0; i < 4; i++) {
		irqs[3 * i] = cpu_to_fdt32(ARM64_DT_IRQ_PPI);
		irqs[3 * i + 1] = cpu_to_fdt32(ppi[i]);
		irqs[3 * i + 2] = cpu_to_fdt32(ARM64_DT_LEVEL_HIGH);
	}
	TRY(fdt_begin_node(fdt, "timer"));
	TRY(fdt_property_string(fdt, "compatible", "arm,armv8-timer"));
	TRY(fdt_property(fdt, "interrupts", irqs, sizeof(irqs)));
	TRY(fdt_property(fdt, "always-on", NULL, 0));
	return fdt_end_node(fdt);
}

/* serial.c decodes one register per byte: reg-shift 0, byte accesses. */
static int add_uart(void *fdt, const struct arm64_dt_dev *u)
{
	TRY(begin_node_at(fdt, "uart", u->gpa));
	TRY(fdt_property_string(fdt, "compatible", "ns16550a"));
	TRY(prop_reg(fdt, u->gpa, u->size));
	TRY(prop_irq(fdt, ARM64_DT_IRQ_SPI, u->spi, ARM64_DT_LEVEL_HIGH));
	TRY(fdt_property_u32(fdt, "clock-frequency", 1843200));
	TRY(fdt_property_u32(fdt, "reg-shift", 0));
	TRY(fdt_property_u32(fdt, "reg-io-width", 1));
	return fdt_end_node(fdt);
}

static int add_virtio(void *fdt, const struct arm64_dt_dev *v)
{
	TRY(begin_node_at(fdt, "virtio_mmio", v->gpa));
	TRY(fdt_property_string(fdt, "compatible", "virtio,mmio"));
	TRY(prop_reg(fdt, v->gpa, v->size));
	TRY(prop_irq(fdt, ARM64_DT_IRQ_SPI, v->spi, ARM64_DT_EDGE_RISING));
	TRY(fdt_property(fdt, "dma-coherent", NULL, 0));
	return fdt_end_node(fdt);
}

static int check_in(const struct arm64_dt_in *in)
{
	if (in->cpus < 1 || in->cpus > ARM64_MAX_CPUS)
		return pv_error(EINVAL, "device tree: %u vCPUs (1..%llu)", in->cpus,
				(unsigned long long)ARM64_MAX_CPUS);
	if (!in->ram_size)
		return pv_error(EINVAL, "device tree: no RAM");
	if (in->nvirtio > ARM64_DT_MAX_VIRTIO || (in->nvirtio && !in->virtio))
		return pv_error(EINVAL, "device tree: %u virtio devices (at most %d)",
				in->nvirtio, ARM64_DT_MAX_VIRTIO);
	return 0;
}

static int build(void *fdt, size_t bufsize, const struct arm64_dt_in *in)
{
	TRY(fdt_create(fdt, (int)bufsize));
	TRY(fdt_finish_reservemap(fdt));
	TRY(fdt_begin_node(fdt, ""));
	TRY(add_root_props(fdt));
	TRY(add_chosen(fdt, in));
	TRY(add_memory(fdt, in));
	TRY(add_cpus(fdt, in->cpus));
	TRY(add_psci(fdt));
	TRY(add_gic(fdt, in->cpus));
	TRY(add_timer(fdt));
	if (in->uart.size)
		TRY(add_uart(fdt, &in->uart));
	for (unsigned i = 0; i < in->nvirtio; i++)
		TRY(add_virtio(fdt, &in->virtio[i]));
	TRY(fdt_end_node(fdt));
	return fdt_finish(fdt);
}

int arm64_dt_build(void *buf, size_t bufsize, const struct arm64_dt_in *in)
{
	int r = check_in(in);

	if (r < 0)
		return r;
	if (bufsize > INT32_MAX)
		bufsize = INT32_MAX;
	r = build(buf, bufsize, in);
	if (r == -FDT_ERR_NOSPACE)
		return pv_error(ENOSPC, "device tree: does not fit in %zu bytes",
				bufsize);
	if (r < 0)
		return pv_error(EINVAL, "device tree: %s", fdt_strerror(r));
	return (int)fdt_totalsize(buf);
}
