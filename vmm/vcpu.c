/* vcpu.c — one thread per vCPU running the KVM_RUN loop, the register setup for a
 * 64-bit (or real-mode) entry, and exit handling: port I/O and MMIO go to the
 * buses; shutdown (triple fault), failed entry, internal errors and unknown exits
 * end the VM with a message that says what happened and where.
 *
 * Kicking: vcpu_kick() sets run->immediate_exit and sends VCPU_KICK_SIGNAL to the
 * thread, so KVM_RUN returns -EINTR whether the thread is inside KVM_RUN or about to
 * enter it (KVM_CAP_IMMEDIATE_EXIT). The thread clears immediate_exit before it
 * looks at the stop/pause flags, so no kick is lost; and it marks itself kickable
 * before it first looks at them, so a kick racing its start is not lost either. */
#include "vmm/vm_internal.h"
#include "vmm/boot.h"
#include "vmm/bus.h"
#include "vmm/util.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define VCPU_KICK_SIGNAL (SIGRTMIN + 4)

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

static void install_kick_handler(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

/* The LAPIC's LINT0 delivers the PIC's ExtINT and LINT1 NMI, as firmware sets up
 * on a PC, so interrupts reach the BSP before the guest programs its IOAPIC. */
static int setup_lapic(struct vcpu *c)
{
	struct kvm_lapic_state la;
	if (ioctl(c->fd, KVM_GET_LAPIC, &la) < 0)
		return pv_error(errno, "KVM_GET_LAPIC: %s", strerror(errno));
	uint32_t *lint0 = (uint32_t *)&la.regs[0x350], *lint1 = (uint32_t *)&la.regs[0x360];
	*lint0 = (*lint0 & ~0x700u & ~0x10000u) | (7u << 8);  /* ExtINT, unmasked */
	*lint1 = (*lint1 & ~0x700u & ~0x10000u) | (4u << 8);  /* NMI, unmasked */
	if (ioctl(c->fd, KVM_SET_LAPIC, &la) < 0)
		return pv_error(errno, "KVM_SET_LAPIC: %s", strerror(errno));
	return 0;
}

int vcpu_create(struct vm *vm, unsigned index)
{
	struct vcpu *c = &vm->vcpus[index];
	int err;
	c->vm = vm;
	c->index = index;
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (c->fd < 0) {
		c->fd = -1;
		return pv_error(errno, "vcpu %u: KVM_CREATE_VCPU: %s", index, strerror(errno));
	}
	c->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return pv_error(errno, "vcpu %u: mmap of kvm_run: %s", index, strerror(errno));
	}
	if ((err = cpuid_setup_vcpu(vm, c)) < 0)
		return pv_error_prefix(err, "vcpu %u", index);
	if ((err = msr_setup_vcpu(vm, c)) < 0)
		return pv_error_prefix(err, "vcpu %u", index);
	if ((err = setup_lapic(c)) < 0)
		return pv_error_prefix(err, "vcpu %u", index);
	struct kvm_fpu fpu = {0};
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_FPU: %s", index, strerror(errno));
	return 0;
}

void vcpu_close(struct vcpu *c)
{
	if (c->run)
		munmap(c->run, c->vm->run_size);
	if (c->fd >= 0)
		close(c->fd);
	c->run = NULL;
	c->fd = -1;
}

int vcpu_setup_long_mode(struct vcpu *c, const struct boot_info *bi)
{
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return pv_error(errno, "vcpu %u: KVM_GET_SREGS: %s", c->index, strerror(errno));
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = bi->cs, .type = 0xb,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = code;
	data.selector = bi->ds;
	data.type = 0x3;
	data.db = 1;
	data.l = 0;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.gdt.base = bi->gdt_base;
	s.gdt.limit = bi->gdt_limit;
	s.cr3 = bi->pml4;
	s.cr4 |= 0x20;                                     /* PAE */
	s.cr0 = (s.cr0 & ~0x60000000ull) | 0x80000031ull;  /* PG NE ET PE; caches on */
	s.efer |= 0x500;                                   /* LME | LMA */
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_SREGS: %s", c->index, strerror(errno));
	struct kvm_regs r = {0};
	r.rflags = 2;
	r.rip = bi->entry;
	r.rsi = bi->boot_params;
	r.rsp = bi->stack;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_REGS: %s", c->index, strerror(errno));
	return 0;
}

int vcpu_setup_real_mode(struct vcpu *c, uint64_t rip)
{
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return pv_error(errno, "vcpu %u: KVM_GET_SREGS: %s", c->index, strerror(errno));
	uint64_t base = rip & ~0xffffull;
	if (base > 0xf0000)
		return pv_error(EINVAL, "vcpu %u: real-mode entry 0x%" PRIx64 " above 1 MiB",
				c->index, rip);
	s.cs.selector = base >> 4;
	s.cs.base = base;
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_SREGS: %s", c->index, strerror(errno));
	struct kvm_regs r = {0};
	r.rflags = 2;
	r.rip = rip - base;
	r.rsp = 0x7000;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return pv_error(errno, "vcpu %u: KVM_SET_REGS: %s", c->index, strerror(errno));
	return 0;
}

void vcpu_kick(struct vcpu *c)
{
	if (!c->run)
		return;
	__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	/* Not c->thread_started: that is set after pthread_create returns, by which
	 * time the new thread may already sleep in KVM_RUN (an AP waiting for SIPI)
	 * and would never see immediate_exit. */
	if (atomic_load(&c->kickable))
		pthread_kill(c->self, VCPU_KICK_SIGNAL);
}

/* Answers a halt probe (see halt_tick in vm.c) from the vCPU's own thread, which
 * may use its fd while it is outside KVM_RUN. */
static void vcpu_probe_halt(struct vcpu *c)
{
	struct kvm_mp_state mp;
	if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0)
		return;
	atomic_store(&c->waiting_sipi, mp.mp_state == KVM_MP_STATE_UNINITIALIZED);
	struct kvm_regs r;
	if (mp.mp_state == KVM_MP_STATE_HALTED && ioctl(c->fd, KVM_GET_REGS, &r) == 0 &&
	    !(r.rflags & 0x200)) {
		c->halted_rip = r.rip;
		atomic_fetch_add(&c->halted_rounds, 1);
	} else {
		atomic_store(&c->halted_rounds, 0);
	}
}

/* Blocks while the VM is paused (vm_pause); returns when resumed or stopping. */
static void vcpu_park(struct vcpu *c)
{
	struct vm *vm = c->vm;
	pthread_mutex_lock(&vm->lock);
	c->paused = true;
	vm->parked++;
	pthread_cond_broadcast(&vm->cond);
	while (atomic_load(&vm->pausing) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->cond, &vm->lock);
	c->paused = false;
	vm->parked--;
	pthread_mutex_unlock(&vm->lock);
}

static const char *internal_suberror(uint32_t s)
{
	switch (s) {
	case KVM_INTERNAL_ERROR_EMULATION: return "KVM could not emulate an instruction";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason";
	default: return "unknown internal error";
	}
}

/* "rip=0x... (bytes: 0f 01 ...)" for messages; best effort. */
static void describe_rip(struct vcpu *c, char *buf, size_t len)
{
	struct kvm_regs r;
	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0) {
		snprintf(buf, len, "rip unknown");
		return;
	}
	struct kvm_sregs s;
	uint64_t lin = r.rip;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) == 0)
		lin += s.cs.base;
	struct kvm_translation t = {.linear_address = lin};
	int n = lin == r.rip ? snprintf(buf, len, "rip=0x%llx", (unsigned long long)r.rip) :
		snprintf(buf, len, "rip=0x%llx (linear 0x%llx)", (unsigned long long)r.rip,
			 (unsigned long long)lin);
	if (ioctl(c->fd, KVM_TRANSLATE, &t) == 0 && t.valid) {
		const uint8_t *p = vm_gpa(c->vm, t.physical_address, 8);
		if (p && n > 0 && (size_t)n < len)
			snprintf(buf + n, len - n, " (bytes %02x %02x %02x %02x %02x %02x %02x %02x)",
				 p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
	}
}

/* Handles one exit; returns false when the vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *c)
{
	struct vm *vm = c->vm;
	struct kvm_run *run = c->run;
	char msg[256], where[96];
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		vcpu_stats_count(&c->stats, VM_STAT_PIO, run->io.direction == KVM_EXIT_IO_OUT,
				 run->io.port);
		uint8_t *p = (uint8_t *)run + run->io.data_offset;
		for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
			bus_access(vm->pio, run->io.port, p, run->io.size,
				   run->io.direction == KVM_EXIT_IO_OUT);
		return true;
	}
	case KVM_EXIT_MMIO:
		vcpu_stats_count(&c->stats, VM_STAT_MMIO, run->mmio.is_write,
				 run->mmio.phys_addr);
		bus_access(vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			   run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_DEBUG:
		vcpu_stats_count(&c->stats, VM_STAT_OTHER, false, run->exit_reason);
		return true;
	case KVM_EXIT_HLT:
		snprintf(msg, sizeof(msg), "vcpu %u halted", c->index);
		vm_request_exit(vm, VM_EXIT_HALT, 0, msg);
		return false;
	case KVM_EXIT_SHUTDOWN:
		describe_rip(c, where, sizeof(where));
		snprintf(msg, sizeof(msg), "vcpu %u: triple fault (KVM_EXIT_SHUTDOWN) at %s",
			 c->index, where);
		vm_request_exit(vm, VM_EXIT_TRIPLE_FAULT, 0, msg);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(msg, sizeof(msg), "vcpu %u: KVM could not enter the guest "
			 "(hardware entry failure reason 0x%llx on host cpu %u): the vCPU "
			 "state is invalid", c->index,
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
			 run->fail_entry.cpu);
		vm_request_exit(vm, VM_EXIT_ERROR, 0, msg);
		return false;
	case KVM_EXIT_INTERNAL_ERROR: {
		describe_rip(c, where, sizeof(where));
		int n = snprintf(msg, sizeof(msg), "vcpu %u: KVM internal error %u (%s) at %s",
				 c->index, run->internal.suberror,
				 internal_suberror(run->internal.suberror), where);
		for (uint32_t i = 0; i < run->internal.ndata && i < 4 && n > 0 &&
		     (size_t)n < sizeof(msg); i++)
			n += snprintf(msg + n, sizeof(msg) - n, "%s0x%llx", i ? " " : "; data ",
				      (unsigned long long)run->internal.data[i]);
		vm_request_exit(vm, VM_EXIT_ERROR, 0, msg);
		return false;
	}
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			vm_request_exit(vm, VM_EXIT_RESET, 0, "guest requested a reset");
		} else {
			snprintf(msg, sizeof(msg), "vcpu %u: system event %u (power-off)",
				 c->index, run->system_event.type);
			vm_request_exit(vm, VM_EXIT_HALT, 0, msg);
		}
		return false;
	default:
		describe_rip(c, where, sizeof(where));
		snprintf(msg, sizeof(msg), "vcpu %u: unhandled KVM exit reason %u at %s",
			 c->index, run->exit_reason, where);
		vm_request_exit(vm, VM_EXIT_ERROR, 0, msg);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->vm;
	char tname[16];
	snprintf(tname, sizeof(tname), "vcpu%u", c->index);
	pthread_setname_np(pthread_self(), tname);
	c->self = pthread_self();
	atomic_store(&c->kickable, true);
	for (;;) {
		if (atomic_load(&vm->stopping))
			break;
		if (atomic_load(&vm->pausing)) {
			vcpu_park(c);
			continue;
		}
		int r = ioctl(c->fd, KVM_RUN, 0);
		if (r < 0) {
			int e = errno;
			if (e == EINTR || e == EAGAIN) {
				vcpu_stats_count(&c->stats, VM_STAT_OTHER, false, KVM_EXIT_INTR);
				__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				if (atomic_exchange(&c->probe, false))
					vcpu_probe_halt(c);
				continue;
			}
			char msg[160];
			snprintf(msg, sizeof(msg), "vcpu %u: KVM_RUN failed: %s", c->index,
				 strerror(e));
			vm_request_exit(vm, VM_EXIT_ERROR, 0, msg);
			break;
		}
		uint64_t zero = 0;
		__atomic_compare_exchange_n(&vm->first_exit_ns, &zero, pv_now_ns(), false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		if (!vcpu_handle_exit(c))
			break;
	}
	vm_vcpu_finished(vm);
	return NULL;
}

int vcpu_start_thread(struct vcpu *c)
{
	pthread_once(&kick_once, install_kick_handler);
	/* The thread starts with the kick signal unblocked whatever the caller has. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, &old);
	int err = pthread_create(&c->thread, NULL, vcpu_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return pv_error(err, "vcpu %u: pthread_create: %s", c->index, strerror(err));
	c->thread_started = true;
	return 0;
}
