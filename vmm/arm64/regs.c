/* regs.c — the register records of an arm64 snapshot (vmm/arm64/regs.h): building
 * and walking (id, size, bytes) blobs, the ONE_REG id's size and name, and the GICv3
 * attribute helpers. Nothing here calls KVM. */
#include "vmm/arm64/regs.h"
#include "vmm/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The generic ONE_REG id fields (include/uapi/linux/kvm.h) and arm64's groups
 * (arch/arm64/include/uapi/asm/kvm.h), spelled out so this builds on any host. */
#define REG_SIZE_SHIFT 52
#define REG_SIZE_MASK 0x00f0000000000000ull
#define REG_ARCH_MASK 0xff00000000000000ull
#define REG_ARM64 0x6000000000000000ull
#define COPROC_SHIFT 16
#define COPROC_MASK 0x0fff0000ull
#define COPROC_CORE 0x10
#define COPROC_DEMUX 0x11
#define COPROC_SYSREG 0x13
#define COPROC_FW 0x14
#define COPROC_SVE 0x15
#define COPROC_FW_BMAP 0x16

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int arm64_regbuf_add(struct arm64_regbuf *b, uint64_t id, const void *val, uint32_t size)
{
	if (size < 1 || size > ARM64_REG_MAX)
		return pv_error(EINVAL, "register 0x%" PRIx64 ": %u bytes", id, size);
	size_t need = b->len + ARM64_REG_HDR + size;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(b->data, cap);
		if (!p)
			return pv_error(ENOMEM, "out of memory");
		b->data = p;
		b->cap = cap;
	}
	uint8_t *p = b->data + b->len;
	put_le(p, id, 8);
	put_le(p + 8, size, 4);
	memcpy(p + ARM64_REG_HDR, val, size);
	b->len = need;
	b->count++;
	return 0;
}

int arm64_regbuf_add_u64(struct arm64_regbuf *b, uint64_t id, uint64_t v, uint32_t size)
{
	uint8_t le[8];
	if (size > 8)
		return pv_error(EINVAL, "register 0x%" PRIx64 ": %u bytes is not a number", id, size);
	put_le(le, v, 8);
	return arm64_regbuf_add(b, id, le, size);
}

void arm64_regbuf_free(struct arm64_regbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

uint32_t arm64_one_reg_size(uint64_t id)
{
	return 1u << ((id & REG_SIZE_MASK) >> REG_SIZE_SHIFT);
}

int arm64_regblob_next(const uint8_t *blob, size_t len, size_t *off, bool one_reg,
		       const char *what, struct arm64_reg *r)
{
	size_t at = *off;
	if (at == len)
		return 0;
	if (at > len || len - at < ARM64_REG_HDR)
		return pv_error(EINVAL, "%s: record at byte %zu is truncated (%zu bytes left, a "
				"header is %u)", what, at, at > len ? 0 : len - at, ARM64_REG_HDR);
	r->id = get_le(blob + at, 8);
	r->size = (uint32_t)get_le(blob + at + 8, 4);
	r->val = blob + at + ARM64_REG_HDR;
	if (r->size < 1 || r->size > ARM64_REG_MAX)
		return pv_error(EINVAL, "%s: record at byte %zu (id 0x%" PRIx64 ") says %u bytes",
				what, at, r->id, r->size);
	if (len - at - ARM64_REG_HDR < r->size)
		return pv_error(EINVAL, "%s: record at byte %zu (id 0x%" PRIx64 ", %u bytes) is "
				"truncated", what, at, r->id, r->size);
	if (one_reg && r->size != arm64_one_reg_size(r->id))
		return pv_error(EINVAL, "%s: record at byte %zu (id 0x%" PRIx64 ") has %u bytes, "
				"its id says %u", what, at, r->id, r->size,
				arm64_one_reg_size(r->id));
	*off = at + ARM64_REG_HDR + r->size;
	return 1;
}

int arm64_regblob_check(const uint8_t *blob, size_t len, bool one_reg, const char *what,
			size_t *count)
{
	size_t off = 0, n = 0;
	struct arm64_reg r;
	int rc;
	while ((rc = arm64_regblob_next(blob, len, &off, one_reg, what, &r)) > 0)
		n++;
	if (rc < 0)
		return rc;
	if (count)
		*count = n;
	return 0;
}

int arm64_regblob_find(const uint8_t *blob, size_t len, uint64_t id, struct arm64_reg *r)
{
	size_t off = 0;
	while (arm64_regblob_next(blob, len, &off, false, "registers", r) > 0)
		if (r->id == id)
			return 1;
	pv_error_clear();
	return 0;
}

uint64_t arm64_reg_u64(const struct arm64_reg *r)
{
	return get_le(r->val, r->size < 8 ? r->size : 8);
}

/* struct kvm_regs in 32-bit words (KVM_REG_ARM_CORE_REG): user_pt_regs (x0..x30, sp,
 * pc, pstate), sp_el1, elr_el1, spsr[5], then the 16-byte aligned FP/SIMD state. */
static void core_name(uint32_t w, char *buf, size_t len)
{
	static const char *const after[] = {"sp", NULL, "pc", NULL, "pstate", NULL,
					    "sp_el1", NULL, "elr_el1"};
	if (w < 62 && !(w & 1))
		snprintf(buf, len, "core x%u", w / 2);
	else if (w >= 62 && w <= 70 && after[w - 62])
		snprintf(buf, len, "core %s", after[w - 62]);
	else if (w >= 72 && w <= 80 && !(w & 1))
		snprintf(buf, len, "core spsr[%u]", (w - 72) / 2);
	else if (w >= 84 && w < 84 + 32 * 4 && !(w & 3))
		snprintf(buf, len, "core v%u", (w - 84) / 4);
	else if (w == 212 || w == 213)
		snprintf(buf, len, "core %s", w == 212 ? "fpsr" : "fpcr");
	else
		snprintf(buf, len, "core word %u", w);
}

static const struct {
	uint16_t enc;
	const char *name;
} sysreg_names[] = {
	/* KVM's timer ids: TIMER_CNT/TIMER_CVAL have each other's encoding (api.rst) */
	{0xdf19, "KVM_REG_ARM_TIMER_CTL"}, {0xdf02, "KVM_REG_ARM_TIMER_CVAL"},
	{0xdf1a, "KVM_REG_ARM_TIMER_CNT"}, {0xdf11, "KVM_REG_ARM_PTIMER_CTL"},
	{0xdf12, "KVM_REG_ARM_PTIMER_CVAL"}, {0xdf01, "KVM_REG_ARM_PTIMER_CNT"},
	{0xc005, "MPIDR_EL1"}, {0xc000, "MIDR_EL1"}, {0xc080, "SCTLR_EL1"},
	{0xc100, "TTBR0_EL1"}, {0xc101, "TTBR1_EL1"}, {0xc102, "TCR_EL1"},
	{0xc600, "VBAR_EL1"}, {0xde82, "TPIDR_EL0"}, {0xc684, "TPIDR_EL1"},
	{0xc082, "CPACR_EL1"}, {0xc708, "CNTKCTL_EL1"},
};

void arm64_reg_name(uint64_t id, char *buf, size_t len)
{
	if ((id & REG_ARCH_MASK) != REG_ARM64) {
		snprintf(buf, len, "0x%" PRIx64, id);
		return;
	}
	uint32_t coproc = (uint32_t)((id & COPROC_MASK) >> COPROC_SHIFT);
	uint32_t low = (uint32_t)(id & 0xffff);
	switch (coproc) {
	case COPROC_CORE:
		core_name(low, buf, len);
		return;
	case COPROC_SYSREG:
		for (size_t i = 0; i < PV_ARRAY_SIZE(sysreg_names); i++)
			if (sysreg_names[i].enc == low) {
				snprintf(buf, len, "%s", sysreg_names[i].name);
				return;
			}
		snprintf(buf, len, "sysreg %u,%u,%u,%u,%u", low >> 14, (low >> 11) & 7,
			 (low >> 7) & 15, (low >> 3) & 15, low & 7);
		return;
	case COPROC_FW:
		snprintf(buf, len, "firmware reg %u%s", low, low == 0 ? " (PSCI_VERSION)" : "");
		return;
	case COPROC_FW_BMAP:
		snprintf(buf, len, "firmware bitmap %u", low);
		return;
	case COPROC_DEMUX:
		snprintf(buf, len, "demux 0x%x", (uint32_t)(id & 0xffffffffu));
		return;
	case COPROC_SVE:
		snprintf(buf, len, "sve 0x%x", low);
		return;
	default:
		snprintf(buf, len, "0x%" PRIx64, id);
	}
}

uint64_t arm64_gic_mpidr_attr(uint64_t mpidr)
{
	uint64_t aff = (mpidr & 0xffffffull) | ((mpidr >> 8) & 0xff000000ull);
	return aff << 32;
}

unsigned arm64_icc_nr_apr(uint64_t icc_ctlr)
{
	unsigned pribits = (unsigned)((icc_ctlr >> 8) & 7) + 1;
	return pribits >= 7 ? 4 : pribits == 6 ? 2 : 1;
}
