/* test_mptable.c — the MP table (vmm/x86/mptable.c), parsed back the way Linux finds it:
 * scan the last KiB of base memory for "_MP_", check both checksums, walk every
 * entry and compare it with what `cpus` vCPUs and KVM's ISA routing need. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/x86/boot.h"
#include "vmm/util.h"

#define MEM_SIZE (1u << 20)

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* What the parse found. */
struct parsed {
	unsigned ncpu, nbus, nioapic, nint, nlint;
	int bsp_count;
	uint8_t cpu_ids[256];
	uint8_t ioapic_id;
	uint32_t ioapic_addr;
	int irq_pin[16];          /* ISA irq -> IOAPIC pin */
	uint8_t irq_dst[16];
	int lint_type[2];         /* LINT0/1 -> interrupt type */
};

static void parse(const uint8_t *mem, struct parsed *out)
{
	const uint8_t *mpf = NULL, *t, *p, *end;
	uint16_t count;

	memset(out, 0, sizeof(*out));
	memset(out->irq_pin, -1, sizeof(out->irq_pin));
	memset(out->lint_type, -1, sizeof(out->lint_type));
	/* Linux: smp_scan_config(639 * 0x400, 0x400), 16-byte steps. */
	for (uint32_t a = 0x9fc00; a < 0xa0000; a += 16)
		if (!memcmp(mem + a, "_MP_", 4)) {
			mpf = mem + a;
			break;
		}
	assert_non_null(mpf);
	assert_int_equal(mpf[8], 1);                 /* length: 16 bytes */
	assert_int_equal(mpf[9], 4);                 /* spec 1.4 */
	assert_int_equal(sum8(mpf, 16), 0);
	assert_int_equal(mpf[11], 0);                /* config table present */

	t = mem + rd32(mpf + 4);
	assert_memory_equal(t, "PCMP", 4);
	assert_int_equal(t[6], 4);
	assert_int_equal(sum8(t, rd16(t + 4)), 0);
	assert_int_equal(rd32(t + 36), 0xfee00000);  /* LAPIC address */
	assert_int_equal(rd16(t + 40), 0);           /* no extended table */
	count = rd16(t + 34);
	p = t + 44;
	end = t + rd16(t + 4);
	for (unsigned i = 0; i < count; i++) {
		assert_true(p < end);
		switch (p[0]) {
		case 0:
			assert_true(p + 20 <= end);
			assert_int_equal(p[3] & 1, 1);   /* enabled */
			if (p[3] & 2)
				out->bsp_count++, assert_int_equal(p[1], 0);
			out->cpu_ids[out->ncpu++] = p[1];
			p += 20;
			break;
		case 1:
			assert_memory_equal(p + 2, "ISA   ", 6);
			assert_int_equal(p[1], MPTABLE_ISA_BUS);
			out->nbus++;
			p += 8;
			break;
		case 2:
			assert_int_equal(p[3] & 1, 1);
			out->ioapic_id = p[1];
			out->ioapic_addr = rd32(p + 4);
			out->nioapic++;
			p += 8;
			break;
		case 3:
			assert_int_equal(p[1], 0);       /* mp_INT */
			assert_int_equal(p[4], MPTABLE_ISA_BUS);
			assert_true(p[5] < 16);
			out->irq_pin[p[5]] = p[7];
			out->irq_dst[p[5]] = p[6];
			out->nint++;
			p += 8;
			break;
		case 4:
			assert_int_equal(p[6], 0xff);    /* every LAPIC */
			assert_true(p[7] < 2);
			out->lint_type[p[7]] = p[1];
			out->nlint++;
			p += 8;
			break;
		default:
			fail_msg("unknown MP entry type %u at offset %td", p[0], p - t);
		}
	}
	assert_ptr_equal(p, end);
}

static void check_cpus(unsigned cpus)
{
	uint8_t *mem = calloc(1, MEM_SIZE);
	struct parsed r;
	int n;

	assert_non_null(mem);
	n = mptable_write(mem, MEM_SIZE, BOOT_MPTABLE_GPA, cpus);
	assert_int_equal(n, (int)mptable_size(cpus));
	parse(mem, &r);
	assert_int_equal(r.ncpu, cpus);
	for (unsigned i = 0; i < cpus; i++)
		assert_int_equal(r.cpu_ids[i], i);
	assert_int_equal(r.bsp_count, 1);
	assert_int_equal(r.nbus, 1);
	assert_int_equal(r.nioapic, 1);
	assert_int_equal(r.ioapic_id, cpus);
	assert_int_equal(r.ioapic_addr, 0xfec00000);
	assert_int_equal(r.nint, 16);
	assert_int_equal(r.irq_pin[0], MPTABLE_IRQ0_PIN);
	for (unsigned irq = 1; irq < 16; irq++)
		assert_int_equal(r.irq_pin[irq], irq);
	for (unsigned irq = 0; irq < 16; irq++)
		assert_int_equal(r.irq_dst[irq], cpus);
	assert_int_equal(r.nlint, 2);
	assert_int_equal(r.lint_type[0], 3);     /* ExtINT on LINT0 */
	assert_int_equal(r.lint_type[1], 1);     /* NMI on LINT1 */
	/* Nothing written past the table. */
	for (size_t i = BOOT_MPTABLE_GPA + n; i < BOOT_MPTABLE_GPA + n + 64; i++)
		assert_int_equal(mem[i], 0);
	free(mem);
}

static void test_one_cpu(void **state) { (void)state; check_cpus(1); }
static void test_two_cpus(void **state) { (void)state; check_cpus(2); }
static void test_eight_cpus(void **state) { (void)state; check_cpus(8); }

/* The largest table still fits below 1 MiB, in the e820 reserved area. */
static void test_max_cpus(void **state)
{
	(void)state;
	assert_true(BOOT_MPTABLE_GPA + mptable_size(MPTABLE_MAX_CPUS) <= 0x100000);
	check_cpus(MPTABLE_MAX_CPUS);
}

static void test_rejects(void **state)
{
	uint8_t *mem = calloc(1, MEM_SIZE);

	(void)state;
	assert_int_equal(mptable_write(mem, MEM_SIZE, BOOT_MPTABLE_GPA, 0), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "out of range"));
	assert_int_equal(mptable_write(mem, MEM_SIZE, BOOT_MPTABLE_GPA, MPTABLE_MAX_CPUS + 1), -EINVAL);
	assert_int_equal(mptable_write(mem, MEM_SIZE, BOOT_MPTABLE_GPA + 4, 1), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "aligned"));
	assert_int_equal(mptable_write(mem, MEM_SIZE, MEM_SIZE - 64, 1), -ENOMEM);
	assert_non_null(strstr(pv_errmsg(), "do not fit"));
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_cpu),
		cmocka_unit_test(test_two_cpus),
		cmocka_unit_test(test_eight_cpus),
		cmocka_unit_test(test_max_cpus),
		cmocka_unit_test(test_rejects),
	};

	return cmocka_run_group_tests_name("mptable", tests, NULL, NULL);
}
