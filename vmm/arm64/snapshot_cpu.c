/* snapshot_cpu.c — the arm64 part of vm.state (vmm/arch.h). Per vCPU: every register
 * KVM lists (KVM_GET_REG_LIST, then KVM_GET_ONE_REG each: core and FP/SIMD, system,
 * timer and firmware registers) as (id, size, bytes) records (vmm/arm64/regs.h), the
 * MP state (powered-off secondaries) and the pending SError events. Per VM: the GICv3
 * through the vGIC device's attributes (arm-vgic-v3.rst) and the virtual counter.
 * docs/arm64.md ("Snapshots"), docs/snapshots.md. */
#include "vmm/arm64/arm64.h"
#include "vmm/arm64/regs.h"
#include "vmm/arch.h"
#include "vmm/snapshot_pack.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* ---- vCPU registers ---- */

static int reg_list(struct vcpu *c, struct kvm_reg_list **out)
{
	struct kvm_reg_list probe = {.n = 0};
	if (ioctl(c->fd, KVM_GET_REG_LIST, &probe) == 0 || errno != E2BIG)
		return pv_error(errno ? errno : EIO, "vcpu %u: KVM_GET_REG_LIST: %s", c->index,
				strerror(errno));
	struct kvm_reg_list *l = malloc(sizeof(*l) + probe.n * sizeof(l->reg[0]));
	if (!l)
		return pv_error(ENOMEM, "out of memory");
	l->n = probe.n;
	if (ioctl(c->fd, KVM_GET_REG_LIST, l) < 0) {
		int e = errno;
		free(l);
		return pv_error(e, "vcpu %u: KVM_GET_REG_LIST: %s", c->index, strerror(e));
	}
	*out = l;
	return 0;
}

static bool has_events(struct vm *vm)
{
	return ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS) > 0;
}

int arch_save_vcpu(struct vcpu *c, msgpack_packer *pk)
{
	struct kvm_reg_list *l = NULL;
	struct arm64_regbuf b = {0};
	uint64_t val[ARM64_REG_MAX / 8];
	char name[64];
	int err = reg_list(c, &l);
	if (err)
		return err;
	for (uint64_t i = 0; i < l->n && !err; i++) {
		uint64_t id = l->reg[i];
		uint32_t size = arm64_one_reg_size(id);
		struct kvm_one_reg r = {.id = id, .addr = (uintptr_t)val};
		arm64_reg_name(id, name, sizeof(name));
		if (size > sizeof(val))
			err = pv_error(ENOTSUP, "vcpu %u: register %s is %u bytes", c->index, name,
				       size);
		else if (ioctl(c->fd, KVM_GET_ONE_REG, &r) < 0)
			err = pv_error(errno, "vcpu %u: KVM_GET_ONE_REG %s: %s", c->index, name,
				       strerror(errno));
		else
			err = arm64_regbuf_add(&b, id, val, size);
	}
	free(l);
	struct kvm_mp_state mp;
	struct kvm_vcpu_events ev;
	bool events = has_events(c->vm);
	if (!err && ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0)
		err = pv_error(errno, "vcpu %u: KVM_GET_MP_STATE: %s", c->index, strerror(errno));
	if (!err && events && ioctl(c->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		err = pv_error(errno, "vcpu %u: KVM_GET_VCPU_EVENTS: %s", c->index,
			       strerror(errno));
	if (!err) {
		pv_debug("vcpu %u: %zu registers, %zu bytes", c->index, b.count, b.len);
		msgpack_pack_map(pk, 2 + events);
		pk_kv_bin(pk, "regs", b.data, b.len);
		pk_kv_u64(pk, "mp_state", mp.mp_state);
		if (events)
			pk_kv_bin(pk, "events", &ev, sizeof(ev));
	}
	arm64_regbuf_free(&b);
	return err;
}

/* A bin field without a copy; *len 0 and NULL when absent. */
static int bin_field(const msgpack_object *map, const char *what, const char *key,
		     const uint8_t **p, size_t *len)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o || o->type != MSGPACK_OBJECT_BIN)
		return pv_error(EINVAL, "%s: \"%s\" is missing", what, key);
	*p = (const uint8_t *)o->via.bin.ptr;
	*len = o->via.bin.size;
	return 0;
}

static bool is_vtimer(uint64_t id)
{
	return id == KVM_REG_ARM_TIMER_CTL || id == KVM_REG_ARM_TIMER_CVAL ||
	       id == KVM_REG_ARM_TIMER_CNT;
}

/* Pass 0 sets every register but the virtual timer's; pass 1 its compare value and
 * pass 2 its control, so the timer is armed last, whole. The counter itself is the
 * VM's (arch_restore_clock sets it after every vCPU). */
static int set_regs(struct vcpu *c, const uint8_t *blob, size_t len, int pass)
{
	size_t off = 0;
	struct arm64_reg r;
	uint64_t val[ARM64_REG_MAX / 8];
	char name[64];
	while (arm64_regblob_next(blob, len, &off, true, "regs", &r) > 0) {
		bool want = pass == 0 ? !is_vtimer(r.id) :
			    r.id == (pass == 1 ? KVM_REG_ARM_TIMER_CVAL : KVM_REG_ARM_TIMER_CTL);
		if (!want)
			continue;
		memcpy(val, r.val, r.size);
		struct kvm_one_reg one = {.id = r.id, .addr = (uintptr_t)val};
		if (ioctl(c->fd, KVM_SET_ONE_REG, &one) == 0)
			continue;
		int e = errno;
		arm64_reg_name(r.id, name, sizeof(name));
		return pv_error(e, "vcpu %u: KVM_SET_ONE_REG %s: %s%s", c->index, name,
				strerror(e), e == ENOENT ? " (this host's KVM does not have it: "
				"the snapshot is from another kernel?)" : "");
	}
	return 0;
}

int arch_restore_vcpu(struct vcpu *c, const msgpack_object *st)
{
	char what[32];
	const uint8_t *blob = NULL;
	size_t len = 0, n = 0;
	uint64_t mp = 0;
	struct kvm_vcpu_events ev;
	bool events = mp_get(st, "events") != NULL;
	snprintf(what, sizeof(what), "vcpu %u", c->index);
	int err;
	if ((err = bin_field(st, what, "regs", &blob, &len)) ||
	    (err = arm64_regblob_check(blob, len, true, what, &n)) ||
	    (err = mp_u64(st, what, "mp_state", &mp)) ||
	    (events && (err = mp_bin(st, what, "events", &ev, sizeof(ev)))))
		return err;
	for (int pass = 0; pass < 3 && !err; pass++)
		err = set_regs(c, blob, len, pass);
	if (err)
		return err;
	struct kvm_mp_state mps = {.mp_state = (uint32_t)mp};
	if (ioctl(c->fd, KVM_SET_MP_STATE, &mps) < 0)
		return pv_error(errno, "%s: KVM_SET_MP_STATE %" PRIu64 ": %s", what, mp,
				strerror(errno));
	if (events && ioctl(c->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return pv_error(errno, "%s: KVM_SET_VCPU_EVENTS: %s", what, strerror(errno));
	pv_debug("%s: %zu registers restored", what, n);
	return 0;
}

/* ---- GICv3 ---- */

/* Register offsets (GICv3 architecture spec); the redistributor's SGI frame is 64 KiB
 * above its RD frame, and the attribute offset counts from the RD frame. */
#define GICD_CTLR 0x0000
#define GICD_IIDR 0x0008
#define GICD_STATUSR 0x0010
#define GICD_IGROUPR 0x0080
#define GICD_ISENABLER 0x0100
#define GICD_ICENABLER 0x0180
#define GICD_ISPENDR 0x0200
#define GICD_ISACTIVER 0x0300
#define GICD_ICACTIVER 0x0380
#define GICD_IPRIORITYR 0x0400
#define GICD_ICFGR 0x0c00
#define GICD_IGRPMODR 0x0d00
#define GICD_IROUTER 0x6000
#define GICR_STATUSR 0x0010
#define GICR_SGI 0x10000
#define ICC(op1, crn, crm, op2) (ARM64_SYS_REG(3, op1, crn, crm, op2) & 0xffff)

/* The state in restore order (and the vm map's keys): identity and configuration
 * first (arm-vgic-v3.rst: GICD_IIDR before anything), the CPU interfaces, the SPIs'
 * line levels once their edge/level configuration is in, then pending, active and
 * enabled state, so nothing is delivered before it is routed and prioritised. */
enum gic_phase { GICD_CONFIG, GICR_CONFIG, ICC_REGS, GIC_LEVEL, GICD_STATE, GICR_STATE,
		 GIC_NPHASES };
static const struct {
	const char *key;
	uint32_t group;
} gic_phases[GIC_NPHASES] = {
	[GICD_CONFIG] = {"gicd_config", KVM_DEV_ARM_VGIC_GRP_DIST_REGS},
	[GICR_CONFIG] = {"gicr_config", KVM_DEV_ARM_VGIC_GRP_REDIST_REGS},
	[ICC_REGS] = {"icc", KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS},
	[GIC_LEVEL] = {"gic_level", KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO},
	[GICD_STATE] = {"gicd_state", KVM_DEV_ARM_VGIC_GRP_DIST_REGS},
	[GICR_STATE] = {"gicr_state", KVM_DEV_ARM_VGIC_GRP_REDIST_REGS},
};

static int gic_get(struct vm *vm, uint32_t group, uint64_t attr, uint64_t *v)
{
	uint32_t v32 = 0;
	*v = 0;
	bool wide = group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
	struct kvm_device_attr a = {.group = group, .attr = attr,
				    .addr = wide ? (uintptr_t)v : (uintptr_t)&v32};
	if (ioctl(vm->arch->gic_fd, KVM_GET_DEVICE_ATTR, &a) < 0)
		return -errno;
	if (!wide)
		*v = v32;
	return 0;
}

struct gic_saver {
	struct vm *vm;
	struct arm64_regbuf b[GIC_NPHASES];
	int err;
};

/* One register into phase p; `optional` ones that KVM does not offer (ENXIO: an
 * older kernel) are left out. 32-bit but for the CPU interface's. */
static void gsave(struct gic_saver *s, enum gic_phase p, uint64_t attr, bool optional)
{
	uint64_t v;
	if (s->err)
		return;
	int rc = gic_get(s->vm, gic_phases[p].group, attr, &v);
	if (rc == -ENXIO && optional) {
		pv_debug("vm %s: GIC attribute 0x%" PRIx64 " not offered; not saved",
			 s->vm->name, attr);
		return;
	}
	if (rc < 0) {
		s->err = pv_error(-rc, "GICv3 %s 0x%" PRIx64 ": %s", gic_phases[p].key, attr,
				  strerror(-rc));
		return;
	}
	bool wide = gic_phases[p].group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
	s->err = arm64_regbuf_add_u64(&s->b[p], attr, v, wide ? 8 : 4);
}

/* A set/clear register pair: the clear register gets what is not set, then the set
 * register what is, so the restored bits are exactly the saved ones. */
static void gsave_pair(struct gic_saver *s, enum gic_phase p, uint64_t set_attr,
		       uint64_t clr_attr)
{
	uint64_t v;
	if (s->err)
		return;
	int rc = gic_get(s->vm, gic_phases[p].group, set_attr, &v);
	if (rc < 0) {
		s->err = pv_error(-rc, "GICv3 %s 0x%" PRIx64 ": %s", gic_phases[p].key,
				  set_attr, strerror(-rc));
		return;
	}
	if (!(s->err = arm64_regbuf_add_u64(&s->b[p], clr_attr, ~v & 0xffffffffu, 4)))
		s->err = arm64_regbuf_add_u64(&s->b[p], set_attr, v, 4);
}

static void save_dist(struct gic_saver *s, uint32_t nr_irqs)
{
	gsave(s, GICD_CONFIG, GICD_IIDR, false);
	gsave(s, GICD_CONFIG, GICD_CTLR, false);
	gsave(s, GICD_CONFIG, GICD_STATUSR, true);
	/* SGIs and PPIs (INTIDs 0..31) are the redistributors' with affinity routing. */
	for (uint32_t i = 32; i < nr_irqs; i += 32) {
		gsave(s, GICD_CONFIG, GICD_IGROUPR + i / 8, false);
		gsave(s, GICD_CONFIG, GICD_IGRPMODR + i / 8, false);
	}
	for (uint32_t i = 32; i < nr_irqs; i += 16)
		gsave(s, GICD_CONFIG, GICD_ICFGR + i / 4, false);
	for (uint32_t i = 32; i < nr_irqs; i += 4)
		gsave(s, GICD_CONFIG, GICD_IPRIORITYR + i, false);
	for (uint32_t i = 32; i < nr_irqs; i++) { /* 64-bit: two words */
		gsave(s, GICD_CONFIG, GICD_IROUTER + 8ull * i, false);
		gsave(s, GICD_CONFIG, GICD_IROUTER + 8ull * i + 4, false);
	}
	for (uint32_t i = 32; i < nr_irqs; i += 32) {
		/* ISPENDR is the latch through this interface, ICPENDR RAZ/WI */
		gsave(s, GICD_STATE, GICD_ISPENDR + i / 8, false);
		gsave_pair(s, GICD_STATE, GICD_ISACTIVER + i / 8, GICD_ICACTIVER + i / 8);
		gsave_pair(s, GICD_STATE, GICD_ISENABLER + i / 8, GICD_ICENABLER + i / 8);
	}
}

/* One vCPU's redistributor (SGIs and PPIs) and CPU interface. No LPIs: no ITS, so
 * GICR_CTLR, PROPBASER and PENDBASER hold nothing. */
static void save_cpu(struct gic_saver *s, uint64_t mp)
{
	gsave(s, GICR_CONFIG, mp | GICR_STATUSR, true);
	gsave(s, GICR_CONFIG, mp | (GICR_SGI + GICD_IGROUPR), false);
	gsave(s, GICR_CONFIG, mp | (GICR_SGI + GICD_IGRPMODR), false);
	gsave(s, GICR_CONFIG, mp | (GICR_SGI + GICD_ICFGR), false);
	gsave(s, GICR_CONFIG, mp | (GICR_SGI + GICD_ICFGR + 4), false);
	for (uint32_t i = 0; i < 32; i += 4)
		gsave(s, GICR_CONFIG, mp | (GICR_SGI + GICD_IPRIORITYR + i), false);
	gsave(s, GICR_STATE, mp | (GICR_SGI + GICD_ISPENDR), false);
	gsave_pair(s, GICR_STATE, mp | (GICR_SGI + GICD_ISACTIVER),
		   mp | (GICR_SGI + GICD_ICACTIVER));
	gsave_pair(s, GICR_STATE, mp | (GICR_SGI + GICD_ISENABLER),
		   mp | (GICR_SGI + GICD_ICENABLER));

	/* The CPU interface: SRE and CTLR first, the group enables, the priority mask,
	 * binary points, then the active priorities (as many as its priority bits). */
	uint64_t ctlr = 0;
	int rc = s->err ? 0 : gic_get(s->vm, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
				      mp | ICC(0, 12, 12, 4), &ctlr);
	if (rc < 0)
		s->err = pv_error(-rc, "GICv3 ICC_CTLR_EL1: %s", strerror(-rc));
	gsave(s, ICC_REGS, mp | ICC(0, 12, 12, 5), false); /* ICC_SRE_EL1 */
	gsave(s, ICC_REGS, mp | ICC(0, 12, 12, 4), false); /* ICC_CTLR_EL1 */
	gsave(s, ICC_REGS, mp | ICC(0, 12, 12, 6), false); /* ICC_IGRPEN0_EL1 */
	gsave(s, ICC_REGS, mp | ICC(0, 12, 12, 7), false); /* ICC_IGRPEN1_EL1 */
	gsave(s, ICC_REGS, mp | ICC(0, 4, 6, 0), false);   /* ICC_PMR_EL1 */
	gsave(s, ICC_REGS, mp | ICC(0, 12, 8, 3), false);  /* ICC_BPR0_EL1 */
	gsave(s, ICC_REGS, mp | ICC(0, 12, 12, 3), false); /* ICC_BPR1_EL1 */
	unsigned napr = arm64_icc_nr_apr(ctlr);
	for (unsigned n = 0; n < napr; n++) {
		gsave(s, ICC_REGS, mp | ICC(0, 12, 8, 4 + n), false); /* ICC_AP0R<n>_EL1 */
		gsave(s, ICC_REGS, mp | ICC(0, 12, 9, n), false);     /* ICC_AP1R<n>_EL1 */
	}
}

static int vcpu_mpidr_attr(struct vcpu *c, uint64_t *attr)
{
	uint64_t mpidr;
	int rc = arm64_get_reg(c, ARM64_MPIDR_EL1, &mpidr);
	if (rc < 0)
		return pv_error(-rc, "vcpu %u: MPIDR_EL1: %s", c->index, strerror(-rc));
	*attr = arm64_gic_mpidr_attr(mpidr);
	return 0;
}

static int save_gic(struct vm *vm, struct gic_saver *s)
{
	uint32_t nr_irqs = 0;
	struct kvm_device_attr a = {.group = KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
				    .addr = (uintptr_t)&nr_irqs};
	if (ioctl(vm->arch->gic_fd, KVM_GET_DEVICE_ATTR, &a) < 0)
		return pv_error(errno, "GICv3: number of interrupts: %s", strerror(errno));
	save_dist(s, nr_irqs);
	uint64_t mp0 = 0;
	for (unsigned i = 0; i < vm->ncpus && !s->err; i++) {
		uint64_t mp = 0;
		if ((s->err = vcpu_mpidr_attr(&vm->vcpus[i], &mp)))
			break;
		if (i == 0)
			mp0 = mp;
		save_cpu(s, mp);
	}
	/* Line levels of the SPIs (the same through any vCPU). The PPIs' are the
	 * timer's, which KVM drives itself from the restored timer registers. */
	for (uint32_t i = 32; i < nr_irqs && !s->err; i += 32)
		gsave(s, GIC_LEVEL, mp0 | ((uint64_t)VGIC_LEVEL_INFO_LINE_LEVEL <<
					  KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) | i, false);
	return s->err;
}

int arch_save_vm(struct vm *vm, msgpack_packer *pk)
{
	struct gic_saver s = {.vm = vm};
	uint64_t cnt = 0, freq = arm64_cntfrq();
	int err = save_gic(vm, &s);
	if (!err && (err = arm64_get_reg(&vm->vcpus[0], KVM_REG_ARM_TIMER_CNT, &cnt)) < 0)
		err = pv_error(-err, "vcpu 0: KVM_REG_ARM_TIMER_CNT: %s", strerror(-err));
	if (!err && !freq)
		err = pv_error(EIO, "CNTFRQ_EL0 reads 0: the counter frequency is unknown");
	if (!err) {
		msgpack_pack_map(pk, GIC_NPHASES + 3);
		for (int p = 0; p < GIC_NPHASES; p++)
			pk_kv_bin(pk, gic_phases[p].key, s.b[p].data, s.b[p].len);
		pk_kv_u64(pk, "counter", cnt);
		pk_kv_u64(pk, "cntfrq", freq);
		/* what vm_snapshot_info shows, in the unit vm_clock_get uses */
		pk_kv_u64(pk, "clock_ns", (uint64_t)((unsigned __int128)cnt * 1000000000u / freq));
	}
	for (int p = 0; p < GIC_NPHASES; p++)
		arm64_regbuf_free(&s.b[p]);
	return err;
}

/* Into a VM whose GIC is initialised (arch_vm_ready's CTRL_INIT) and whose vCPUs have
 * not run: every saved attribute, phase by phase. Every blob is checked first. */
int arch_restore_chips(struct vm *vm, const msgpack_object *st)
{
	const uint8_t *blob[GIC_NPHASES];
	size_t len[GIC_NPHASES];
	int err;
	for (int p = 0; p < GIC_NPHASES; p++)
		if ((err = bin_field(st, "vm", gic_phases[p].key, &blob[p], &len[p])) ||
		    (err = arm64_regblob_check(blob[p], len[p], false, gic_phases[p].key, NULL)))
			return err;
	for (int p = 0; p < GIC_NPHASES; p++) {
		size_t off = 0;
		struct arm64_reg r;
		while (arm64_regblob_next(blob[p], len[p], &off, false, gic_phases[p].key, &r) > 0) {
			uint64_t v = arm64_reg_u64(&r);
			uint32_t v32 = (uint32_t)v;
			struct kvm_device_attr a = {
				.group = gic_phases[p].group, .attr = r.id,
				.addr = r.size == 8 ? (uintptr_t)&v : (uintptr_t)&v32,
			};
			if ((r.size != 4 && r.size != 8) ||
			    (r.size == 8) != (a.group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS))
				return pv_error(EINVAL, "GICv3 %s 0x%" PRIx64 ": %u bytes",
						gic_phases[p].key, r.id, r.size);
			if (ioctl(vm->arch->gic_fd, KVM_SET_DEVICE_ATTR, &a) < 0)
				return pv_error(errno, "GICv3 %s 0x%" PRIx64 " = 0x%" PRIx64 ": %s",
						gic_phases[p].key, r.id, v, strerror(errno));
		}
	}
	return 0;
}
