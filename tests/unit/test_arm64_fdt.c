/* test_arm64_fdt.c — the arm64 guest's device tree (vmm/arm64/fdt.c), decoded back
 * with libfdt the way Linux reads it: a 2-vCPU 256 MiB VM with the UART, an initrd
 * and two virtio devices; every node and the properties the kernel relies on. Runs
 * on any host: the builder is pure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libfdt.h>
#include <string.h>

#include "vmm/arm64/fdt.h"
#include "vmm/util.h"

#define DT_SIZE (64 * 1024)
#define RAM_SIZE (256ull << 20)
#define INITRD_GPA (ARM64_RAM_GPA + (128ull << 20))
#define INITRD_SIZE 0x123456ull
#define CMDLINE "console=ttyS0 earlycon panic=-1"

static uint8_t dt[DT_SIZE];

static const struct arm64_dt_dev virtio[2] = {
	{ ARM64_VIRTIO_GPA, ARM64_VIRTIO_STRIDE, 16 },
	{ ARM64_VIRTIO_GPA + ARM64_VIRTIO_STRIDE, ARM64_VIRTIO_STRIDE, 17 },
};

static void fill(struct arm64_dt_in *in)
{
	memset(in, 0, sizeof(*in));
	in->cpus = 2;
	in->ram_gpa = ARM64_RAM_GPA;
	in->ram_size = RAM_SIZE;
	in->bootargs = CMDLINE;
	in->initrd_gpa = INITRD_GPA;
	in->initrd_size = INITRD_SIZE;
	in->uart = (struct arm64_dt_dev){ ARM64_UART_GPA, ARM64_UART_SIZE, 1 };
	in->virtio = virtio;
	in->nvirtio = 2;
}

static int build_default(void)
{
	struct arm64_dt_in in;
	int n;

	fill(&in);
	n = arm64_dt_build(dt, sizeof(dt), &in);
	assert_true(n > 0);
	assert_int_equal(fdt_check_header(dt), 0);
	assert_int_equal(fdt_totalsize(dt), n);
	return n;
}

static int node(const char *path)
{
	int off = fdt_path_offset(dt, path);

	if (off < 0)
		fail_msg("no node %s: %s", path, fdt_strerror(off));
	return off;
}

static const void *prop(int off, const char *name, int *len)
{
	const void *p = fdt_getprop(dt, off, name, len);

	if (!p)
		fail_msg("no property %s", name);
	return p;
}

static uint32_t prop_u32(int off, const char *name)
{
	int len;
	const fdt32_t *p = prop(off, name, &len);

	assert_int_equal(len, 4);
	return fdt32_to_cpu(*p);
}

static uint64_t prop_u64(int off, const char *name)
{
	int len;
	const fdt64_t *p = prop(off, name, &len);

	assert_int_equal(len, 8);
	return fdt64_ld(p);
}

static void assert_str(int off, const char *name, const char *want)
{
	int len;
	const char *p = prop(off, name, &len);

	assert_int_equal(len, (int)strlen(want) + 1);
	assert_string_equal(p, want);
}

static void assert_reg(int off, uint64_t gpa, uint64_t size)
{
	int len;
	const fdt64_t *p = prop(off, "reg", &len);

	assert_int_equal(len, 16);
	assert_int_equal(fdt64_ld(&p[0]), gpa);
	assert_int_equal(fdt64_ld(&p[1]), size);
}

static void assert_irq(int off, uint32_t type, uint32_t num, uint32_t flags)
{
	int len;
	const fdt32_t *p = prop(off, "interrupts", &len);

	assert_int_equal(len, 12);
	assert_int_equal(fdt32_to_cpu(p[0]), type);
	assert_int_equal(fdt32_to_cpu(p[1]), num);
	assert_int_equal(fdt32_to_cpu(p[2]), flags);
}

static void test_root(void **state)
{
	(void)state;
	build_default();
	int root = node("/");

	assert_str(root, "compatible", "linux,dummy-virt");
	assert_int_equal(prop_u32(root, "#address-cells"), 2);
	assert_int_equal(prop_u32(root, "#size-cells"), 2);
	assert_int_equal(prop_u32(root, "interrupt-parent"), ARM64_DT_GIC_PHANDLE);
	assert_int_equal(fdt_node_offset_by_phandle(dt, ARM64_DT_GIC_PHANDLE),
			 node("/intc@8000000"));
}

static void test_memory(void **state)
{
	(void)state;
	build_default();
	int mem = node("/memory@80000000");

	assert_str(mem, "device_type", "memory");
	assert_reg(mem, ARM64_RAM_GPA, RAM_SIZE);
}

static void test_cpus(void **state)
{
	(void)state;
	build_default();
	int cpus = node("/cpus"), n = 0, off;

	assert_int_equal(prop_u32(cpus, "#address-cells"), 1);
	assert_int_equal(prop_u32(cpus, "#size-cells"), 0);
	fdt_for_each_subnode(off, dt, cpus) {
		assert_str(off, "device_type", "cpu");
		assert_str(off, "enable-method", "psci");
		assert_str(off, "compatible", "arm,arm-v8");
		assert_int_equal(prop_u32(off, "reg"), arm64_dt_mpidr(n));
		n++;
	}
	assert_int_equal(n, 2);
	node("/cpus/cpu@0");
	node("/cpus/cpu@1");
	/* KVM's reset MPIDR: Aff0 0..15, then Aff1. */
	assert_int_equal(arm64_dt_mpidr(15), 0xf);
	assert_int_equal(arm64_dt_mpidr(16), 0x100);
	assert_int_equal(arm64_dt_mpidr(35), 0x203);
}

static void test_psci(void **state)
{
	(void)state;
	build_default();
	int psci = node("/psci"), len;
	const char *compat = prop(psci, "compatible", &len);

	assert_int_equal(fdt_node_check_compatible(dt, psci, "arm,psci-0.2"), 0);
	assert_int_equal(fdt_node_check_compatible(dt, psci, "arm,psci"), 0);
	assert_string_equal(compat, "arm,psci-0.2");
	assert_str(psci, "method", "hvc");
}

static void test_gic(void **state)
{
	(void)state;
	build_default();
	int gic = node("/intc@8000000"), len;
	const fdt64_t *reg;

	assert_str(gic, "compatible", "arm,gic-v3");
	assert_non_null(fdt_getprop(dt, gic, "interrupt-controller", &len));
	assert_int_equal(len, 0);
	assert_int_equal(prop_u32(gic, "#interrupt-cells"), 3);
	assert_int_equal(prop_u32(gic, "phandle"), ARM64_DT_GIC_PHANDLE);
	reg = prop(gic, "reg", &len);
	assert_int_equal(len, 32);
	assert_int_equal(fdt64_ld(&reg[0]), ARM64_GICD_GPA);
	assert_int_equal(fdt64_ld(&reg[1]), ARM64_GICD_SIZE);
	assert_int_equal(fdt64_ld(&reg[2]), ARM64_GICR_GPA);
	assert_int_equal(fdt64_ld(&reg[3]), 2 * ARM64_GICR_SIZE_CPU);
}

static void test_timer(void **state)
{
	(void)state;
	build_default();
	int t = node("/timer"), len;
	const fdt32_t *irq;
	static const uint32_t want[4] = { 13, 14, 11, 10 };

	assert_str(t, "compatible", "arm,armv8-timer");
	irq = prop(t, "interrupts", &len);
	assert_int_equal(len, 4 * 12);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(fdt32_to_cpu(irq[3 * i]), ARM64_DT_IRQ_PPI);
		assert_int_equal(fdt32_to_cpu(irq[3 * i + 1]), want[i]);
		assert_int_equal(fdt32_to_cpu(irq[3 * i + 2]), ARM64_DT_LEVEL_HIGH);
	}
}

static void test_chosen(void **state)
{
	(void)state;
	build_default();
	int ch = node("/chosen");
	const char *out;
	int len;

	assert_str(ch, "bootargs", CMDLINE);
	assert_int_equal(prop_u64(ch, "linux,initrd-start"), INITRD_GPA);
	assert_int_equal(prop_u64(ch, "linux,initrd-end"), INITRD_GPA + INITRD_SIZE);
	out = prop(ch, "stdout-path", &len);
	assert_string_equal(out, "/uart@9000000");
	assert_int_equal(fdt_path_offset(dt, out), node("/uart@9000000"));
}

static void test_uart(void **state)
{
	(void)state;
	build_default();
	int u = node("/uart@9000000");

	assert_str(u, "compatible", "ns16550a");
	assert_reg(u, ARM64_UART_GPA, ARM64_UART_SIZE);
	assert_irq(u, ARM64_DT_IRQ_SPI, 1, ARM64_DT_LEVEL_HIGH);
	assert_int_equal(prop_u32(u, "reg-shift"), 0);
	assert_int_equal(prop_u32(u, "reg-io-width"), 1);
	assert_int_equal(prop_u32(u, "clock-frequency"), 1843200);
}

static void test_virtio(void **state)
{
	(void)state;
	build_default();
	int off, n = 0;

	node("/virtio_mmio@a000000");
	node("/virtio_mmio@a000200");
	fdt_for_each_subnode(off, dt, 0) {
		if (fdt_node_check_compatible(dt, off, "virtio,mmio"))
			continue;
		assert_reg(off, virtio[n].gpa, virtio[n].size);
		assert_irq(off, ARM64_DT_IRQ_SPI, virtio[n].spi, ARM64_DT_EDGE_RISING);
		n++;
	}
	assert_int_equal(n, 2);
}

/* No initrd, no UART, no bootargs: those properties and nodes are absent. */
static void test_minimal(void **state)
{
	(void)state;
	struct arm64_dt_in in;
	int ch, len;

	fill(&in);
	in.cpus = 1;
	in.bootargs = NULL;
	in.initrd_size = 0;
	in.uart.size = 0;
	in.nvirtio = 0;
	assert_true(arm64_dt_build(dt, sizeof(dt), &in) > 0);
	assert_int_equal(fdt_check_header(dt), 0);
	ch = node("/chosen");
	assert_null(fdt_getprop(dt, ch, "bootargs", &len));
	assert_null(fdt_getprop(dt, ch, "linux,initrd-start", &len));
	assert_null(fdt_getprop(dt, ch, "stdout-path", &len));
	assert_true(fdt_path_offset(dt, "/uart@9000000") < 0);
	assert_true(fdt_path_offset(dt, "/cpus/cpu@1") < 0);
	assert_true(fdt_node_offset_by_compatible(dt, -1, "virtio,mmio") < 0);
}

static void test_errors(void **state)
{
	(void)state;
	struct arm64_dt_in in;
	uint8_t small[256];

	fill(&in);
	assert_int_equal(arm64_dt_build(small, sizeof(small), &in), -ENOSPC);
	assert_non_null(strstr(pv_errmsg(), "does not fit"));
	in.cpus = 0;
	assert_int_equal(arm64_dt_build(dt, sizeof(dt), &in), -EINVAL);
	in.cpus = ARM64_MAX_CPUS + 1;
	assert_int_equal(arm64_dt_build(dt, sizeof(dt), &in), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "vCPUs"));
	fill(&in);
	in.ram_size = 0;
	assert_int_equal(arm64_dt_build(dt, sizeof(dt), &in), -EINVAL);
	fill(&in);
	in.nvirtio = ARM64_DT_MAX_VIRTIO + 1;
	assert_int_equal(arm64_dt_build(dt, sizeof(dt), &in), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_cpus),
		cmocka_unit_test(test_psci),
		cmocka_unit_test(test_gic),
		cmocka_unit_test(test_timer),
		cmocka_unit_test(test_chosen),
		cmocka_unit_test(test_uart),
		cmocka_unit_test(test_virtio),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
