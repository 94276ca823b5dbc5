/* snapshot_cpu.c — the x86-64 part of vm.state (vmm/arch.h): per vCPU the
 * registers, FPU/XSAVE, LAPIC, events, MP state, debug registers and every MSR KVM
 * lists; per VM the PICs, IOAPIC, PIT and kvmclock. docs/snapshots.md. */
#include "vmm/x86/x86.h"
#include "vmm/arch.h"
#include "vmm/snapshot_pack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

/* ---- save ---- */

/* The MSRs KVM offers (KVM_GET_MSR_INDEX_LIST) that this vCPU can read. */
static int read_msrs(struct vm *vm, struct vcpu *c, struct kvm_msrs **out)
{
	struct kvm_msr_list probe = {.nmsrs = 0};
	ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe); /* E2BIG, fills nmsrs */
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	struct kvm_msrs *m = calloc(1, sizeof(*m) + probe.nmsrs * sizeof(m->entries[0]));
	if (!list || !m) {
		free(list);
		free(m);
		return pv_error(ENOMEM, "out of memory");
	}
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int e = errno;
		free(list);
		free(m);
		return pv_error(e, "KVM_GET_MSR_INDEX_LIST: %s", strerror(e));
	}
	/* KVM_GET_MSRS stops at the first MSR it cannot read: drop it and go on. */
	uint32_t n = 0;
	for (uint32_t i = 0; i < list->nmsrs;) {
		uint32_t left = list->nmsrs - i;
		struct kvm_msrs *part = calloc(1, sizeof(*part) + left * sizeof(part->entries[0]));
		if (!part) {
			free(list);
			free(m);
			return pv_error(ENOMEM, "out of memory");
		}
		part->nmsrs = left;
		for (uint32_t k = 0; k < left; k++)
			part->entries[k].index = list->indices[i + k];
		int r = ioctl(c->fd, KVM_GET_MSRS, part);
		if (r < 0)
			r = 0;
		memcpy(&m->entries[n], part->entries, (size_t)r * sizeof(part->entries[0]));
		free(part);
		n += (uint32_t)r;
		i += (uint32_t)r;
		if (i < list->nmsrs) {
			pv_debug("vcpu %u: MSR 0x%x cannot be read; not saved", c->index,
				 list->indices[i]);
			i++;
		}
	}
	m->nmsrs = n;
	free(list);
	*out = m;
	return 0;
}

int arch_save_vcpu(struct vcpu *c, msgpack_packer *pk)
{
	struct vm *vm = c->vm;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dregs;
	struct kvm_msrs *msrs = NULL;
	bool has_xsave = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	bool has_xcrs = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	const char *op;
#define GET(ioc, p) do { op = #ioc; if (ioctl(c->fd, ioc, p) < 0) goto fail; } while (0)
	GET(KVM_GET_REGS, &regs);
	GET(KVM_GET_SREGS, &sregs);
	GET(KVM_GET_FPU, &fpu);
	if (has_xsave)
		GET(KVM_GET_XSAVE, &xsave);
	if (has_xcrs)
		GET(KVM_GET_XCRS, &xcrs);
	GET(KVM_GET_LAPIC, &lapic);
	GET(KVM_GET_VCPU_EVENTS, &events);
	GET(KVM_GET_MP_STATE, &mp);
	GET(KVM_GET_DEBUGREGS, &dregs);
#undef GET
	int err = read_msrs(vm, c, &msrs);
	if (err)
		return pv_error_prefix(-err, "vcpu %u", c->index);
	msgpack_pack_map(pk, 8 + has_xsave + has_xcrs);
	pk_kv_bin(pk, "regs", &regs, sizeof(regs));
	pk_kv_bin(pk, "sregs", &sregs, sizeof(sregs));
	pk_kv_bin(pk, "fpu", &fpu, sizeof(fpu));
	if (has_xsave)
		pk_kv_bin(pk, "xsave", &xsave, sizeof(xsave));
	if (has_xcrs)
		pk_kv_bin(pk, "xcrs", &xcrs, sizeof(xcrs));
	pk_kv_bin(pk, "lapic", &lapic, sizeof(lapic));
	pk_kv_bin(pk, "events", &events, sizeof(events));
	pk_kv_u64(pk, "mp_state", mp.mp_state);
	pk_kv_bin(pk, "debugregs", &dregs, sizeof(dregs));
	pk_str(pk, "msrs");
	msgpack_pack_array(pk, msrs->nmsrs);
	for (uint32_t i = 0; i < msrs->nmsrs; i++) {
		msgpack_pack_array(pk, 2);
		msgpack_pack_uint32(pk, msrs->entries[i].index);
		msgpack_pack_uint64(pk, msrs->entries[i].data);
	}
	free(msrs);
	return 0;
fail:
	return pv_error(errno, "vcpu %u: %s: %s", c->index, op, strerror(errno));
}

int arch_save_vm(struct vm *vm, msgpack_packer *pk)
{
	struct kvm_irqchip chips[3] = {{.chip_id = KVM_IRQCHIP_PIC_MASTER},
				       {.chip_id = KVM_IRQCHIP_PIC_SLAVE},
				       {.chip_id = KVM_IRQCHIP_IOAPIC}};
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = {0};
	for (int i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chips[i]) < 0)
			return pv_error(errno, "KVM_GET_IRQCHIP %d: %s", i, strerror(errno));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return pv_error(errno, "KVM_GET_PIT2: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return pv_error(errno, "KVM_GET_CLOCK: %s", strerror(errno));
	int khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	msgpack_pack_map(pk, 6);
	pk_kv_bin(pk, "pic_master", &chips[0].chip.pic, sizeof(chips[0].chip.pic));
	pk_kv_bin(pk, "pic_slave", &chips[1].chip.pic, sizeof(chips[1].chip.pic));
	pk_kv_bin(pk, "ioapic", &chips[2].chip.ioapic, sizeof(chips[2].chip.ioapic));
	pk_kv_bin(pk, "pit2", &pit, sizeof(pit));
	pk_kv_u64(pk, "clock_ns", clock.clock);
	pk_kv_u64(pk, "tsc_khz", khz > 0 ? (uint64_t)khz : 0);
	return 0;
}

/* ---- restore ---- */

static int set_msrs(struct vcpu *c, const msgpack_object *arr, uint64_t *tsc)
{
	if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
		return pv_error(EINVAL, "\"msrs\" is missing");
	uint32_t n = arr->via.array.size;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + (n + 1) * sizeof(m->entries[0]));
	if (!m)
		return pv_error(ENOMEM, "out of memory");
	uint32_t k = 0, deadline = UINT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *e = &arr->via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
		    e->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    e->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
			free(m);
			return pv_error(EINVAL, "MSR entry %u is malformed", i);
		}
		uint32_t idx = (uint32_t)e->via.array.ptr[0].via.u64;
		uint64_t val = e->via.array.ptr[1].via.u64;
		if (idx == MSR_IA32_TSC) {
			*tsc = val; /* set exactly by the caller (clock_move_tsc) */
			continue;
		}
		if (idx == MSR_IA32_TSC_DEADLINE)
			deadline = k;
		m->entries[k++] = (struct kvm_msr_entry){.index = idx, .data = val};
	}
	/* The deadline goes last: it is armed against the TSC set before it. */
	if (deadline != UINT32_MAX) {
		struct kvm_msr_entry dl = m->entries[deadline];
		memmove(&m->entries[deadline], &m->entries[deadline + 1],
			(k - deadline - 1) * sizeof(dl));
		m->entries[k - 1] = dl;
	}
	for (uint32_t done = 0; done < k;) {
		struct kvm_msrs *q = calloc(1, sizeof(*q) + (k - done) * sizeof(q->entries[0]));
		if (!q) {
			free(m);
			return pv_error(ENOMEM, "out of memory");
		}
		q->nmsrs = k - done;
		memcpy(q->entries, &m->entries[done], q->nmsrs * sizeof(q->entries[0]));
		int r = ioctl(c->fd, KVM_SET_MSRS, q);
		free(q);
		if (r < 0)
			r = 0;
		done += (uint32_t)r;
		if (done < k) {
			pv_debug("vcpu %u: KVM refused MSR 0x%x on restore; skipped", c->index,
				 m->entries[done].index);
			done++;
		}
	}
	free(m);
	return 0;
}

int arch_restore_vcpu(struct vcpu *c, const msgpack_object *st)
{
	char what[32];
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dregs;
	uint64_t mp = 0, tsc = 0, now = 0;
	bool has_xsave = mp_get(st, "xsave") != NULL, has_xcrs = mp_get(st, "xcrs") != NULL;
	snprintf(what, sizeof(what), "vcpu %u", c->index);
	int err = 0;
	if ((err = mp_bin(st, what, "regs", &regs, sizeof(regs))) ||
	    (err = mp_bin(st, what, "sregs", &sregs, sizeof(sregs))) ||
	    (err = mp_bin(st, what, "fpu", &fpu, sizeof(fpu))) ||
	    (has_xsave && (err = mp_bin(st, what, "xsave", &xsave, sizeof(xsave)))) ||
	    (has_xcrs && (err = mp_bin(st, what, "xcrs", &xcrs, sizeof(xcrs)))) ||
	    (err = mp_bin(st, what, "lapic", &lapic, sizeof(lapic))) ||
	    (err = mp_bin(st, what, "events", &events, sizeof(events))) ||
	    (err = mp_bin(st, what, "debugregs", &dregs, sizeof(dregs))) ||
	    (err = mp_u64(st, what, "mp_state", &mp)))
		return err;
	const char *op;
	struct kvm_mp_state mps = {.mp_state = (uint32_t)mp};
#define SET(ioc, p) do { op = #ioc; if (ioctl(c->fd, ioc, p) < 0) goto fail; } while (0)
	/* Firecracker's order: registers, then the LAPIC, MSRs, and pending events. */
	SET(KVM_SET_MP_STATE, &mps);
	SET(KVM_SET_REGS, &regs);
	SET(KVM_SET_SREGS, &sregs);
	if (has_xsave)
		SET(KVM_SET_XSAVE, &xsave);
	else
		SET(KVM_SET_FPU, &fpu);
	if (has_xcrs)
		SET(KVM_SET_XCRS, &xcrs);
	SET(KVM_SET_DEBUGREGS, &dregs);
	SET(KVM_SET_LAPIC, &lapic);
	/* The TSC before the other MSRs (the TSC deadline is armed against it). */
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} one = {.h.nmsrs = 1, .e.index = MSR_IA32_TSC};
	const msgpack_object *msrs = mp_get(st, "msrs");
	tsc = UINT64_MAX;
	for (uint32_t i = 0; msrs && msrs->type == MSGPACK_OBJECT_ARRAY && i < msrs->via.array.size; i++) {
		const msgpack_object *e = &msrs->via.array.ptr[i];
		if (e->type == MSGPACK_OBJECT_ARRAY && e->via.array.size == 2 &&
		    e->via.array.ptr[0].via.u64 == MSR_IA32_TSC)
			tsc = e->via.array.ptr[1].via.u64;
	}
	if (tsc != UINT64_MAX && ioctl(c->fd, KVM_GET_MSRS, &one) == 1) {
		now = one.e.data;
		if ((err = clock_move_tsc(c, now, tsc)))
			return pv_error_prefix(-err, "%s", what);
	}
	if ((err = set_msrs(c, msrs, &now)))
		return pv_error_prefix(-err, "%s", what);
	SET(KVM_SET_VCPU_EVENTS, &events);
#undef SET
	return 0;
fail:
	return pv_error(errno, "%s: %s: %s", what, op, strerror(errno));
}

int arch_restore_chips(struct vm *vm, const msgpack_object *st)
{
	struct kvm_irqchip chips[3] = {{.chip_id = KVM_IRQCHIP_PIC_MASTER},
				       {.chip_id = KVM_IRQCHIP_PIC_SLAVE},
				       {.chip_id = KVM_IRQCHIP_IOAPIC}};
	struct kvm_pit_state2 pit;
	int err;
	if ((err = mp_bin(st, "vm", "pic_master", &chips[0].chip.pic, sizeof(chips[0].chip.pic))) ||
	    (err = mp_bin(st, "vm", "pic_slave", &chips[1].chip.pic, sizeof(chips[1].chip.pic))) ||
	    (err = mp_bin(st, "vm", "ioapic", &chips[2].chip.ioapic, sizeof(chips[2].chip.ioapic))) ||
	    (err = mp_bin(st, "vm", "pit2", &pit, sizeof(pit))))
		return err;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return pv_error(errno, "KVM_SET_PIT2: %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
			return pv_error(errno, "KVM_SET_IRQCHIP %d: %s", i, strerror(errno));
	return 0;
}

int arch_restore_clock(struct vm *vm, const msgpack_object *st)
{
	uint64_t ns = 0;
	int err = mp_u64(st, "vm", "clock_ns", &ns);
	if (err)
		return err;
	struct kvm_clock_data d = {.clock = ns};
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &d) < 0)
		return pv_error(errno, "KVM_SET_CLOCK: %s", strerror(errno));
	return 0;
}

