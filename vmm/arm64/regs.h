/* regs.h — the register records of an arm64 snapshot (vmm/arm64/regs.c): a blob of
 * (id u64, size u32, value bytes) records, little-endian (the arm64 host's order),
 * packed without padding. The vCPU state holds one (id = a KVM_GET_REG_LIST id), the
 * GIC state one per group of its device attributes (id = kvm_device_attr.attr). Pure
 * code, no KVM calls: tests/unit/test_arm64_regs.c runs it on any host. */
#ifndef PROVIUM_ARM64_REGS_H
#define PROVIUM_ARM64_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARM64_REG_HDR 12u       /* id + size */
#define ARM64_REG_MAX 256u      /* KVM_REG_SIZE_U2048, the largest ONE_REG */

struct arm64_regbuf {
	uint8_t *data;
	size_t len, cap;
	size_t count;
};

struct arm64_reg {
	uint64_t id;
	uint32_t size;
	const uint8_t *val;     /* into the blob: not aligned, read with memcpy */
};

/* Appends one record (size 1..ARM64_REG_MAX); -ENOMEM/-EINVAL after pv_error. */
int arm64_regbuf_add(struct arm64_regbuf *b, uint64_t id, const void *val, uint32_t size);
int arm64_regbuf_add_u64(struct arm64_regbuf *b, uint64_t id, uint64_t v, uint32_t size);
void arm64_regbuf_free(struct arm64_regbuf *b);

/* The record at *off: 1 and *off moved past it, 0 at the end of the blob, -EINVAL
 * (pv_error naming `what` and the offset) for a truncated or malformed record.
 * one_reg: the size must be the one a KVM_REG_SIZE field in the id encodes. */
int arm64_regblob_next(const uint8_t *blob, size_t len, size_t *off, bool one_reg,
		       const char *what, struct arm64_reg *r);
/* Walks the whole blob first, so a bad one is refused before anything is set. */
int arm64_regblob_check(const uint8_t *blob, size_t len, bool one_reg, const char *what,
			size_t *count);
/* The record with this id: 1 (into *r), 0 when there is none. The blob is checked. */
int arm64_regblob_find(const uint8_t *blob, size_t len, uint64_t id, struct arm64_reg *r);
/* A value of up to 8 bytes, zero-extended. */
uint64_t arm64_reg_u64(const struct arm64_reg *r);

/* The size a ONE_REG id encodes (1 << KVM_REG_SIZE field), in bytes. */
uint32_t arm64_one_reg_size(uint64_t id);
/* A ONE_REG id for messages: "core x5" / "core pc", "sysreg 3,3,14,0,2 (CNTVCT)", "fw 0",
 * "demux 0x…", or "0x…". */
void arm64_reg_name(uint64_t id, char *buf, size_t len);

/* The mpidr field of a GICv3 device attribute (arm-vgic-v3.rst): Aff3..Aff0 of the
 * vCPU's MPIDR_EL1 in bits 63..32. */
uint64_t arm64_gic_mpidr_attr(uint64_t mpidr);
/* How many ICC_AP0R<n>_EL1/AP1R<n> a CPU interface has, from its ICC_CTLR_EL1
 * (PRIbits: 5 bits 1, 6 bits 2, 7 bits 4). */
unsigned arm64_icc_nr_apr(uint64_t icc_ctlr);

#endif
