/* test_arm64_regs.c — the register records of arm64 snapshots (vmm/arm64/regs.c):
 * a blob of (id, size, bytes) records round-trips (8-, 4- and 16-byte values, found
 * by id, read back without aligned loads), a truncated or malformed blob is refused
 * at every cut with the offset named, a ONE_REG blob whose size disagrees with the id
 * is refused; the ONE_REG size and names, the GIC's mpidr field and the number of
 * ICC active-priority registers. Runs on any host: nothing here needs KVM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vmm/arm64/regs.h"
#include "vmm/util.h"

/* ONE_REG ids as arm64 KVM lists them (asm/kvm.h), written out. */
#define ARM64 0x6000000000000000ull
#define U32 0x0020000000000000ull
#define U64 0x0030000000000000ull
#define U128 0x0040000000000000ull
#define CORE (0x10ull << 16)
#define SYSREG (0x13ull << 16)
#define FW (0x14ull << 16)
#define ID_X5 (ARM64 | U64 | CORE | 10)
#define ID_PC (ARM64 | U64 | CORE | 64)
#define ID_V3 (ARM64 | U128 | CORE | (84 + 3 * 4))
#define ID_FPSR (ARM64 | U32 | CORE | 212)
#define ID_TIMER_CNT (ARM64 | U64 | SYSREG | 0xdf1a)
#define ID_SYSREG_X (ARM64 | U64 | SYSREG | (3u << 14 | 0u << 11 | 10u << 7 | 2u << 3 | 0))
#define ID_PSCI (ARM64 | U64 | FW | 0)

static void build(struct arm64_regbuf *b)
{
	uint8_t v128[16];
	for (int i = 0; i < 16; i++)
		v128[i] = (uint8_t)(0xa0 + i);
	uint32_t fpsr = 0x08000010;
	assert_int_equal(arm64_regbuf_add_u64(b, ID_X5, 0x1122334455667788ull, 8), 0);
	assert_int_equal(arm64_regbuf_add(b, ID_FPSR, &fpsr, 4), 0);
	assert_int_equal(arm64_regbuf_add(b, ID_V3, v128, 16), 0);
	assert_int_equal(arm64_regbuf_add_u64(b, ID_TIMER_CNT, 123456789ull, 8), 0);
	assert_int_equal(arm64_regbuf_add_u64(b, ID_PSCI, 0x10001, 8), 0);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct arm64_regbuf b = {0};
	build(&b);
	assert_int_equal(b.count, 5);
	assert_int_equal(b.len, 5 * ARM64_REG_HDR + 8 + 4 + 16 + 8 + 8);
	size_t n = 0;
	assert_int_equal(arm64_regblob_check(b.data, b.len, true, "vcpu 0", &n), 0);
	assert_int_equal(n, 5);

	size_t off = 0;
	struct arm64_reg r;
	assert_int_equal(arm64_regblob_next(b.data, b.len, &off, true, "t", &r), 1);
	assert_true(r.id == ID_X5);
	assert_int_equal(r.size, 8);
	assert_true(arm64_reg_u64(&r) == 0x1122334455667788ull);
	/* the second record's value starts at byte 32: not 8-byte aligned */
	assert_int_equal(arm64_regblob_next(b.data, b.len, &off, true, "t", &r), 1);
	assert_true(r.id == ID_FPSR);
	assert_int_equal(r.size, 4);
	assert_true(arm64_reg_u64(&r) == 0x08000010);
	assert_int_equal(arm64_regblob_next(b.data, b.len, &off, true, "t", &r), 1);
	assert_int_equal(r.size, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(r.val[i], 0xa0 + i);
	assert_int_equal(arm64_regblob_next(b.data, b.len, &off, true, "t", &r), 1);
	assert_int_equal(arm64_regblob_next(b.data, b.len, &off, true, "t", &r), 1);
	assert_int_equal(arm64_regblob_next(b.data, b.len, &off, true, "t", &r), 0);
	assert_int_equal(off, b.len);

	assert_int_equal(arm64_regblob_find(b.data, b.len, ID_TIMER_CNT, &r), 1);
	assert_true(arm64_reg_u64(&r) == 123456789ull);
	assert_int_equal(arm64_regblob_find(b.data, b.len, ID_PC, &r), 0);
	/* an empty blob is a valid one with nothing in it */
	assert_int_equal(arm64_regblob_check(NULL, 0, true, "t", &n), 0);
	assert_int_equal(n, 0);
	arm64_regbuf_free(&b);
	assert_null(b.data);
}

/* Every cut that is not a record boundary is refused, naming where. */
static void test_truncated(void **state)
{
	(void)state;
	struct arm64_regbuf b = {0};
	build(&b);
	size_t bounds[] = {0, 20, 36, 64, 84, 104};
	for (size_t cut = 0; cut <= b.len; cut++) {
		bool boundary = false;
		for (size_t i = 0; i < PV_ARRAY_SIZE(bounds); i++)
			boundary |= bounds[i] == cut;
		int rc = arm64_regblob_check(b.data, cut, true, "vcpu 1", NULL);
		if (boundary) {
			assert_int_equal(rc, 0);
		} else {
			assert_int_equal(rc, -EINVAL);
			assert_non_null(strstr(pv_errmsg(), "vcpu 1: record at byte"));
			assert_non_null(strstr(pv_errmsg(), "truncated"));
		}
	}
	arm64_regbuf_free(&b);
}

static void test_malformed(void **state)
{
	(void)state;
	struct arm64_regbuf b = {0};
	build(&b);
	/* the FP/SIMD record says 8 bytes where its id says 16: a ONE_REG blob refuses
	 * it; the walk without the ONE_REG check then trips over the shifted bytes */
	uint8_t *sz = b.data + 36 + 8;
	sz[0] = 8;
	assert_int_equal(arm64_regblob_check(b.data, b.len, true, "vcpu 0", NULL), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "record at byte 36"));
	assert_non_null(strstr(pv_errmsg(), "its id says 16"));
	sz[0] = 16;
	/* a size of 0 or beyond the largest register */
	sz[0] = 0;
	assert_int_equal(arm64_regblob_check(b.data, b.len, false, "gicd", NULL), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "says 0 bytes"));
	sz[0] = 0;
	sz[1] = 2; /* 512 */
	assert_int_equal(arm64_regblob_check(b.data, b.len, false, "gicd", NULL), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "says 512 bytes"));
	sz[0] = 16;
	sz[1] = 0;
	assert_int_equal(arm64_regblob_check(b.data, b.len, true, "vcpu 0", NULL), 0);
	/* nothing that is not 1..256 bytes goes in */
	uint8_t big[300] = {0};
	assert_int_equal(arm64_regbuf_add(&b, ID_PC, big, 0), -EINVAL);
	assert_int_equal(arm64_regbuf_add(&b, ID_PC, big, 257), -EINVAL);
	assert_int_equal(arm64_regbuf_add_u64(&b, ID_PC, 1, 16), -EINVAL);
	assert_int_equal(b.count, 5);
	arm64_regbuf_free(&b);
}

static void test_names_and_sizes(void **state)
{
	(void)state;
	char buf[64];
	assert_int_equal(arm64_one_reg_size(ID_X5), 8);
	assert_int_equal(arm64_one_reg_size(ID_FPSR), 4);
	assert_int_equal(arm64_one_reg_size(ID_V3), 16);
	assert_int_equal(arm64_one_reg_size(ARM64 | 0x0080000000000000ull), 256); /* U2048 */
	struct {
		uint64_t id;
		const char *name;
	} cases[] = {
		{ID_X5, "core x5"}, {ID_PC, "core pc"}, {ID_V3, "core v3"},
		{ID_FPSR, "core fpsr"}, {ARM64 | U64 | CORE | 62, "core sp"},
		{ARM64 | U64 | CORE | 74, "core spsr[1]"},
		{ID_TIMER_CNT, "KVM_REG_ARM_TIMER_CNT"},
		{ARM64 | U64 | SYSREG | 0xc005, "MPIDR_EL1"},
		{ID_SYSREG_X, "sysreg 3,0,10,2,0"},
		{ID_PSCI, "firmware reg 0 (PSCI_VERSION)"},
		{0x4030000000000000ull, "0x4030000000000000"},
	};
	for (size_t i = 0; i < PV_ARRAY_SIZE(cases); i++) {
		arm64_reg_name(cases[i].id, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].name);
	}
}

static void test_gic_helpers(void **state)
{
	(void)state;
	/* MPIDR_EL1: Aff3 in bits 39..32, Aff2..Aff0 in 23..0, bit 31 RES1 */
	assert_true(arm64_gic_mpidr_attr(0x80000000ull) == 0);
	assert_true(arm64_gic_mpidr_attr(0x80000003ull) == 3ull << 32);
	assert_true(arm64_gic_mpidr_attr(0x0000000180010203ull) ==
		    0x01010203ull << 32);
	/* ICC_CTLR_EL1.PRIbits (bits 10..8) is the number of priority bits minus one */
	assert_int_equal(arm64_icc_nr_apr(4u << 8), 1);
	assert_int_equal(arm64_icc_nr_apr(5u << 8), 2);
	assert_int_equal(arm64_icc_nr_apr(6u << 8), 4);
	assert_int_equal(arm64_icc_nr_apr((4u << 8) | (1u << 11) | 0x8000), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_names_and_sizes),
		cmocka_unit_test(test_gic_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
