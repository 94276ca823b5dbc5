/* vcpu.c — one thread per vCPU running the KVM_RUN loop, and the exits every
 * architecture has: MMIO goes to the bus; failed entry, internal errors and system
 * events (power-off, reset) end the VM with a message that says what happened and
 * where. The rest (port I/O, triple fault, unknown exits) is arch_handle_exit's.
 *
 * Kicking: vcpu_kick() sets run->immediate_exit and sends VCPU_KICK_SIGNAL to the
 * thread, so KVM_RUN returns -EINTR whether the thread is inside KVM_RUN or about to
 * enter it (KVM_CAP_IMMEDIATE_EXIT). The thread clears immediate_exit before it
 * looks at the stop/pause flags, so no kick is lost; and it marks itself kickable
 * before it first looks at them, so a kick racing its start is not lost either. */
#include "vmm/vm_internal.h"
#include "vmm/arch.h"
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
	if ((err = arch_vcpu_init(c)) < 0)
		return pv_error_prefix(err, "vcpu %u", index);
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

/* Handles one exit; returns false when the vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *c)
{
	struct vm *vm = c->vm;
	struct kvm_run *run = c->run;
	char msg[256], where[96];
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		vcpu_stats_count(&c->stats, VM_STAT_MMIO, run->mmio.is_write,
				 run->mmio.phys_addr);
		bus_access(vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			   run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_DEBUG:
		vcpu_stats_count(&c->stats, VM_STAT_OTHER, false, run->exit_reason);
		return true;
	case KVM_EXIT_HLT:
		snprintf(msg, sizeof(msg), "vcpu %u halted", c->index);
		vm_request_exit(vm, VM_EXIT_HALT, 0, msg);
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
		arch_describe_pc(c, where, sizeof(where));
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
		return arch_handle_exit(c);
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
					arch_probe_halt(c);
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
