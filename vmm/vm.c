/* vm.c — a VM's life: vm_create (KVM VM, hugepage guest RAM, the architecture's
 * irqchip and platform devices (vmm/arch.h), buses, event loop, console, vCPUs),
 * vm_start (the architecture's boot loader, then the threads), vm_wait /
 * vm_stop / vm_pause / vm_resume, vm_destroy (joins every thread, frees every fd
 * and mapping), and the helpers devices use (memory, buses, MMIO windows, IRQs,
 * irqfd/ioeventfd, cleanups, the console ring and its input sinks).
 * docs/vmm.md describes the whole structure. */
#include "vmm/vm_internal.h"
#include "vmm/arch.h"
#include "vmm/bus.h"
#include "vmm/evloop.h"
#include "vmm/snapshot.h"
#include "vmm/util.h"
#include "devices/serial.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *vm_exit_reason_name(enum vm_exit_reason r)
{
	switch (r) {
	case VM_EXIT_NONE: return "running";
	case VM_EXIT_PORT: return "exit-port";
	case VM_EXIT_RESET: return "reset";
	case VM_EXIT_TRIPLE_FAULT: return "triple-fault";
	case VM_EXIT_HALT: return "halt";
	case VM_EXIT_STOPPED: return "stopped";
	case VM_EXIT_ERROR: return "error";
	}
	return "?";
}

static const struct {
	long cap;
	const char *name;
} required_caps[] = {
	/* What every architecture needs; arch_vm_init checks its own. */
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

/* Opens /dev/kvm and checks the API version; messages say what to do. */
static int open_kvm(const char *name, int *out)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT || e == ENXIO || e == ENODEV)
			return pv_error(e, "vm %s: /dev/kvm does not exist: load the KVM module "
					"(modprobe kvm_intel or kvm_amd) or run on a host with "
					"virtualization enabled; `provium doctor` checks this", name);
		if (e == EACCES || e == EPERM)
			return pv_error(e, "vm %s: /dev/kvm: permission denied: add your user "
					"to the 'kvm' group (then log in again) or run as root",
					name);
		return pv_error(e, "vm %s: /dev/kvm: %s", name, strerror(e));
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		close(fd);
		return pv_error(ENOTSUP, "vm %s: /dev/kvm speaks API version %d, provium needs "
				"%d", name, v, KVM_API_VERSION);
	}
	*out = fd;
	return 0;
}

#define HUGE_2M (2ull << 20)

/* Anonymous memory of `size` bytes at a 2 MiB-aligned address: KVM maps a host
 * huge page as one only where guest-physical and host-virtual addresses agree
 * modulo 2 MiB, and guest RAM starts at guest-physical 0. NULL (errno) on failure. */
static void *map_ram(uint64_t size)
{
	uint8_t *p = mmap(NULL, size + HUGE_2M, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uint64_t head = (HUGE_2M - (uintptr_t)p % HUGE_2M) % HUGE_2M;
	if (head)
		munmap(p, head);
	munmap(p + head + size, HUGE_2M - head);
	madvise(p + head, size, MADV_HUGEPAGE);
	madvise(p + head, size, MADV_DONTFORK);
	return p + head;
}

/* Guest RAM from a snapshot's memory file: a private mapping, so guest writes
 * never reach the file and nothing is copied. Nothing is mapped up front: the
 * guest's first touch of a page maps its page-cache page (a nested fault and a
 * host one), except the pages the last restore wrote, which vm_restore copies in
 * (vmm/snapshot_writes.c). Populating every data range (MADV_POPULATE_READ) cost
 * a restore more than the host faults it saved (docs/vmm.md, "What a restore costs"). */
static int map_memory_file(struct vm *vm, const char *path)
{
	vm->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (vm->mem_fd < 0)
		return pv_error(errno, "guest memory %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(vm->mem_fd, &st) < 0)
		return pv_error(errno, "guest memory %s: %s", path, strerror(errno));
	if ((uint64_t)st.st_size != vm->mem_size)
		return pv_error(EINVAL, "guest memory %s: %lld bytes, the state says %" PRIu64
				" (truncated or from another snapshot)", path,
				(long long)st.st_size, vm->mem_size);
	/* the RAM of the VM this snapshot was taken of, when it went away since: it
	 * holds the file's bytes, and is then this VM's own anonymous RAM */
	if ((vm->mem = snapshot_warm_take(vm->mem_fd, vm->mem_size))) {
		close(vm->mem_fd);
		vm->mem_fd = -1;
		vm->ram_warm = true;
		return 0;
	}
	vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
		       vm->mem_fd, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return pv_error(errno, "mmap of guest memory %s: %s", path, strerror(errno));
	}
	madvise(vm->mem, vm->mem_size, MADV_DONTFORK);
	return 0;
}

static int setup_memory(struct vm *vm, const char *path)
{
	if (path) {
		int err = map_memory_file(vm, path);
		if (err)
			return err;
		goto region;
	}
	/* Anonymous RAM with transparent hugepages: KVM maps a 2 MiB page in the
	 * nested/EPT tables per fault where the host backs it with one, so a boot
	 * takes one fault per 2 MiB the guest touches rather than one per 4 KiB
	 * (about 6 000 exits fewer per Linux boot, each costly under nesting).
	 * A snapshot finds the written pages in /proc/self/pagemap.
	 * DONTFORK: a child of the VMM (an ip(8), a helper) never copies guest RAM. */
	vm->mem = map_ram(vm->mem_size);
	if (!vm->mem)
		return pv_error(errno, "guest RAM of %" PRIu64 " MiB: %s", vm->mem_size >> 20,
				strerror(errno));
region:;
	struct kvm_userspace_memory_region r = {
		.slot = 0,
		.guest_phys_addr = arch_layout.ram_gpa,
		.memory_size = vm->mem_size,
		.userspace_addr = (uintptr_t)vm->mem,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return pv_error(errno, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	return 0;
}

static int setup_kvm(struct vm *vm, const char *mem_path)
{
	int err;
	/* a restore takes the KVM VM the last restored VM's destroy made ahead */
	if ((!mem_path || !vm_spare_take(&vm->kvm_fd, &vm->vm_fd)) &&
	    (err = open_kvm(vm->name, &vm->kvm_fd)))
		return err;
	for (size_t i = 0; i < PV_ARRAY_SIZE(required_caps); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0)
			return pv_error(ENOTSUP, "this host's KVM lacks %s, which provium needs",
					required_caps[i].name);
	if (vm->vm_fd < 0)
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		vm->vm_fd = -1;
		return pv_error(errno, "KVM_CREATE_VM: %s", strerror(errno));
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0)
		return pv_error(errno, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	if ((err = setup_memory(vm, mem_path)))
		return err;
	return arch_vm_init(vm);
}

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	return vm_create_from(cfg, NULL, out);
}

/* VMs of this process not yet destroyed (vm_live_count) */
static atomic_uint live_vms;

unsigned vm_live_count(void)
{
	return atomic_load(&live_vms);
}

int vm_create_from(const struct vm_config *cfg, const char *mem_path, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int err;
	if (!vm)
		return pv_error(ENOMEM, "vm: out of memory");
	vm->kvm_fd = vm->vm_fd = vm->mem_fd = -1;
	for (unsigned i = 0; i < VM_MAX_CPUS; i++)
		vm->vcpus[i].fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	pthread_mutex_init(&vm->con_lock, NULL);
	vm->cfg = *cfg;
	snprintf(vm->name, sizeof(vm->name), "%s", cfg->name ? cfg->name : "vm");
	vm->cfg.name = vm->name;
	vm->kernel = cfg->kernel ? strdup(cfg->kernel) : NULL;
	vm->initrd = cfg->initrd ? strdup(cfg->initrd) : NULL;
	vm->cmdline = strdup(cfg->cmdline ? cfg->cmdline : "");
	vm->con_ring = malloc(VM_CONSOLE_RING);
	if ((cfg->kernel && !vm->kernel) || (cfg->initrd && !vm->initrd) || !vm->cmdline ||
	    !vm->con_ring) {
		err = pv_error(ENOMEM, "out of memory");
		goto fail;
	}
	vm->cfg.kernel = vm->kernel;
	vm->cfg.initrd = vm->initrd;
	vm->cfg.cmdline = NULL; /* vm->cmdline is the live one */

	unsigned mib = cfg->memory_mib ? cfg->memory_mib : 128;
	vm->ncpus = cfg->cpus ? cfg->cpus : 1;
	if (mib < arch_layout.min_ram_mib || mib > arch_layout.max_ram_mib) {
		err = pv_error(EINVAL, "memory %u MiB: must be between %u and %u MiB", mib,
			       arch_layout.min_ram_mib, arch_layout.max_ram_mib);
		goto fail;
	}
	if (vm->ncpus > VM_MAX_CPUS) {
		err = pv_error(EINVAL, "cpus %u: at most %d", vm->ncpus, VM_MAX_CPUS);
		goto fail;
	}
	vm->mem_size = (uint64_t)mib << 20;
	vm->next_mmio = arch_layout.mmio_base;
	vm->next_irq = arch_layout.irq_first;

	if ((err = setup_kvm(vm, mem_path)))
		goto fail;
	vm->pio = bus_create("pio");
	vm->mmio = bus_create("mmio");
	if (!vm->pio || !vm->mmio) {
		err = pv_error(ENOMEM, "out of memory");
		goto fail;
	}
	if ((err = evloop_create(&vm->loop)))
		goto fail;
	if ((err = arch_platform_create(vm)))
		goto fail;
	/* vCPUs last, after the irqchip and devices exist. */
	for (unsigned i = 0; i < vm->ncpus; i++)
		if ((err = vcpu_create(vm, i)))
			goto fail;
	if ((err = arch_vm_ready(vm)))
		goto fail;
	vm->counted = true;
	atomic_fetch_add(&live_vms, 1);
	*out = vm;
	return 0;
fail:
	pv_error_prefix(err, "vm %s", vm->name);
	vm_destroy(vm);
	return err;
}

static void *loop_thread(void *arg)
{
	struct vm *vm = arg;
	pthread_setname_np(pthread_self(), "evloop");
	int err = evloop_run(vm->loop);
	if (err)
		pv_log("vm %s: event loop: %s", vm->name, pv_errmsg());
	return NULL;
}

/* Every VM_HALT_PROBE_NS on the event loop: a VM whose vCPUs have all been found
 * halted with interrupts off twice in a row (APs never started count as idle) can
 * never run again, so it ends with VM_EXIT_HALT instead of hanging. The in-kernel
 * irqchip handles HLT without an exit, hence the probe: each vCPU is kicked and
 * reports its MP state from its own thread. */
static void halt_tick(void *opaque)
{
	struct vm *vm = opaque;
	pthread_mutex_lock(&vm->lock);
	if (atomic_load(&vm->stopping)) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	bool all = true, any = false;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->vcpus[i];
		if (atomic_load(&c->halted_rounds) >= 2)
			any = true;
		else if (!atomic_load(&c->waiting_start))
			all = false;
	}
	if (all && any) {
		pthread_mutex_unlock(&vm->lock);
		char msg[160];
		snprintf(msg, sizeof(msg), "every vCPU halted with interrupts disabled "
			 "(vcpu 0 at %s=0x%" PRIx64 "): the guest can never run again",
			 arch_layout.pc_name, vm->vcpus[0].halted_pc);
		vm_request_exit(vm, VM_EXIT_HALT, 0, msg);
		return;
	}
	if (!atomic_load(&vm->pausing))
		for (unsigned i = 0; i < vm->ncpus; i++) {
			atomic_store(&vm->vcpus[i].probe, true);
			vcpu_kick(&vm->vcpus[i]);
		}
	vm->halt_timer = evloop_add_timer(vm->loop, VM_HALT_PROBE_NS, halt_tick, vm);
	pthread_mutex_unlock(&vm->lock);
}

int vm_start_loaded(struct vm *vm, bool paused)
{
	if (vm->started)
		return pv_error(EBUSY, "vm %s: already started", vm->name);
	if (paused)
		atomic_store(&vm->pausing, true);
	int err = pthread_create(&vm->loop_thread, NULL, loop_thread, vm);
	if (err)
		return pv_error(err, "vm %s: pthread_create: %s", vm->name, strerror(err));
	vm->loop_started = true;
	/* Count every vCPU as running up front, so vm_wait (from any thread) cannot
	 * see zero running while the later threads are still being created. */
	pthread_mutex_lock(&vm->lock);
	vm->started = true;
	vm->running = vm->ncpus;
	vm->halt_timer = evloop_add_timer(vm->loop, VM_HALT_PROBE_NS, halt_tick, vm);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if ((err = vcpu_start_thread(&vm->vcpus[i]))) {
			pv_error_prefix(err, "vm %s", vm->name);
			pthread_mutex_lock(&vm->lock);
			vm->running -= vm->ncpus - i; /* the threads never created */
			pthread_mutex_unlock(&vm->lock);
			vm_request_exit(vm, VM_EXIT_ERROR, 0, pv_errmsg());
			return err;
		}
	}
	return 0;
}

int vm_start(struct vm *vm)
{
	if (vm->started)
		return pv_error(EBUSY, "vm %s: already started", vm->name);
	if (!vm->kernel)
		return pv_error(EINVAL, "vm %s: no kernel given", vm->name);
	/* Kernel, initrd, command line (or device tree) and the boot vCPU's
	 * registers; the others wait to be started by the guest. */
	int err = arch_boot(vm);
	if (err)
		return pv_error_prefix(err, "vm %s", vm->name);
	return vm_start_loaded(vm, false);
}

void vm_vcpu_finished(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->running--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason r, int code, const char *detail)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->exit.reason == VM_EXIT_NONE) {
		vm->exit.reason = r;
		vm->exit.code = code;
		snprintf(vm->exit.detail, sizeof(vm->exit.detail), "%s", detail ? detail : "");
	}
	bool already = atomic_exchange(&vm->stopping, true);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	/* Kick once: a caller that repeats the request (a loop around vm_stop) must not
	 * keep a vCPU thread busy taking queued real-time kick signals forever, which
	 * livelocked it inside KVM_RUN. A kick is never lost (vcpu.c), so one is enough. */
	if (!already)
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_kick(&vm->vcpus[i]);
}

void vm_stop(struct vm *vm)
{
	vm_request_exit(vm, VM_EXIT_STOPPED, 0, "stopped by the host");
}

int vm_wait(struct vm *vm, int timeout_ms, struct vm_exit *ex)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	if (timeout_ms > 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
	}
	int ret = 0;
	pthread_mutex_lock(&vm->lock);
	/* Exited = a reason is set and no vCPU thread is still inside KVM_RUN. */
	while (vm->exit.reason == VM_EXIT_NONE || vm->running > 0) {
		if (timeout_ms == 0) {
			ret = -ETIMEDOUT;
			break;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&vm->cond, &vm->lock);
		} else if (pthread_cond_timedwait(&vm->cond, &vm->lock, &dl) == ETIMEDOUT) {
			if (vm->exit.reason == VM_EXIT_NONE || vm->running > 0)
				ret = -ETIMEDOUT;
			break;
		}
	}
	if (ret == 0 && ex)
		*ex = vm->exit;
	pthread_mutex_unlock(&vm->lock);
	if (ret)
		pv_error(ETIMEDOUT, "vm %s: still running after %d ms", vm->name, timeout_ms);
	return ret;
}

int vm_pause(struct vm *vm)
{
	atomic_store(&vm->pausing, true);
	vm->was_paused = true;
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->lock);
	while (vm->started && vm->parked < vm->running && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int vm_resume(struct vm *vm)
{
	/* The vCPUs are parked: tell a kvmclock guest it was stopped, so its
	 * watchdogs do not take the pause for a lockup. */
	if (vm->was_paused && vm->started) {
		arch_after_pause(vm);
		vm->was_paused = false;
	}
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->pausing, false);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->counted)
		atomic_fetch_sub(&live_vms, 1);
	/* restores come in series, and one often follows a snapshot: the next one's
	 * KVM VM is made while this one goes */
	if (vm->writes || vm->ram_warm || vm->warm)
		vm_spare_prepare();
	if (vm->started) {
		pthread_mutex_lock(&vm->lock);
		atomic_store(&vm->stopping, true);
		pthread_cond_broadcast(&vm->cond);
		pthread_mutex_unlock(&vm->lock);
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_kick(&vm->vcpus[i]);
	}
	/* The loop thread first: its callbacks may kick vCPU threads, which must
	 * not have been joined yet. */
	if (vm->loop_started) {
		evloop_stop(vm->loop);
		pthread_join(vm->loop_thread, NULL);
	}
	if (vm->started)
		for (unsigned i = 0; i < vm->ncpus; i++)
			if (vm->vcpus[i].thread_started)
				pthread_join(vm->vcpus[i].thread, NULL);
	/* Devices go first (newest first): they may still use the VM's fds. */
	while (vm->cleanups) {
		struct vm_cleanup *c = vm->cleanups;
		vm->cleanups = c->next;
		c->fn(c->opaque);
		free(c);
	}
	/* with the devices gone nothing writes guest RAM any more; a VM whose guest
	 * never ran (a paused restore) tells nothing */
	if (vm->writes && vm->first_exit_ns)
		snapshot_writes_save(vm->writes, vm->mem);
	snapshot_writes_free(vm->writes);
	for (unsigned i = 0; i < VM_MAX_CPUS; i++)
		if (vm->vcpus[i].vm)
			vcpu_close(&vm->vcpus[i]);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	/* nothing writes guest RAM now: a snapshot's claim hands it to the next restore */
	if (vm->mem && vm->warm && vm->mem_fd < 0 && snapshot_warm_give(vm->warm, vm->mem,
									  vm->mem_size))
		vm->mem = NULL;
	snapshot_warm_free(vm->warm);
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	bus_destroy(vm->pio);
	bus_destroy(vm->mmio);
	evloop_destroy(vm->loop);
	arch_vm_free(vm);
	free(vm->kernel);
	free(vm->initrd);
	free(vm->cmdline);
	free(vm->con_ring);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->con_lock);
	free(vm);
}

const char *vm_name(const struct vm *vm) { return vm->name; }

/* ---- console ---- */

int vm_console_input(struct vm *vm, const void *data, size_t len)
{
	int n = 0;
	pthread_mutex_lock(&vm->con_lock);
	for (int i = 0; i < VM_CONSOLE_SINKS; i++)
		if (vm->sinks[i].fn) {
			vm->sinks[i].fn(vm->sinks[i].opaque, data, len);
			n++;
		}
	pthread_mutex_unlock(&vm->con_lock);
	if (!n)
		return pv_error(ENODEV, "vm %s: no console takes input", vm->name);
	return 0;
}

void vm_console_set_input(struct vm *vm, int slot,
			  void (*fn)(void *opaque, const void *data, size_t len), void *opaque)
{
	if (slot < 0 || slot >= VM_CONSOLE_SINKS)
		return;
	pthread_mutex_lock(&vm->con_lock);
	vm->sinks[slot].fn = fn;
	vm->sinks[slot].opaque = opaque;
	pthread_mutex_unlock(&vm->con_lock);
}

void vm_console_output(struct vm *vm, const char *data, size_t len)
{
	pthread_mutex_lock(&vm->con_lock);
	const char *p = data;
	size_t n = len;
	if (n > VM_CONSOLE_RING) {
		p += n - VM_CONSOLE_RING;
		vm->con_total += n - VM_CONSOLE_RING;
		n = VM_CONSOLE_RING;
	}
	size_t pos = vm->con_total % VM_CONSOLE_RING, first = PV_MIN(n, VM_CONSOLE_RING - pos);
	memcpy(vm->con_ring + pos, p, first);
	memcpy(vm->con_ring, p + first, n - first);
	vm->con_total += n;
	pthread_mutex_unlock(&vm->con_lock);
	/* Outside the lock: the callback may send input back (echo tests). */
	if (vm->cfg.console_out)
		vm->cfg.console_out(vm->cfg.console_opaque, data, len);
}

size_t vm_console_log(struct vm *vm, char *buf, size_t len)
{
	pthread_mutex_lock(&vm->con_lock);
	uint64_t stored = PV_MIN(vm->con_total, (uint64_t)VM_CONSOLE_RING);
	size_t n = PV_MIN((uint64_t)len, stored);
	uint64_t start = vm->con_total - n;
	for (size_t done = 0; done < n;) {
		size_t pos = (start + done) % VM_CONSOLE_RING;
		size_t chunk = PV_MIN(n - done, VM_CONSOLE_RING - pos);
		memcpy(buf + done, vm->con_ring + pos, chunk);
		done += chunk;
	}
	pthread_mutex_unlock(&vm->con_lock);
	return n;
}

/* ---- for devices ---- */

void *vm_gpa(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa < arch_layout.ram_gpa)
		return NULL;
	gpa -= arch_layout.ram_gpa;
	if (gpa > vm->mem_size || len > vm->mem_size - gpa)
		return NULL;
	return (uint8_t *)vm->mem + gpa;
}

uint64_t vm_mem_gpa(const struct vm *vm)
{
	(void)vm;
	return arch_layout.ram_gpa;
}

const char *vm_arch_name(void) { return arch_layout.name; }

uint64_t vm_mem_size(const struct vm *vm) { return vm->mem_size; }
void *vm_mem_base(const struct vm *vm) { return vm->mem; }
struct bus *vm_pio_bus(struct vm *vm) { return vm->pio; }
struct bus *vm_mmio_bus(struct vm *vm) { return vm->mmio; }
struct evloop *vm_evloop(struct vm *vm) { return vm->loop; }
int vm_kvm_fd(const struct vm *vm) { return vm->kvm_fd; }
struct serial *vm_serial(struct vm *vm) { return vm->serial; }
int vm_fd(const struct vm *vm) { return vm->vm_fd; }

uint64_t vm_alloc_mmio(struct vm *vm, uint64_t size)
{
	size = PV_ALIGN_UP(size ? size : 1, 4096);
	pthread_mutex_lock(&vm->lock);
	uint64_t base = vm->next_mmio;
	if (base + size > arch_layout.mmio_end) {
		base = 0;
		pv_error(ENOSPC, "vm %s: no MMIO space left for 0x%" PRIx64 " bytes", vm->name,
			 size);
	} else {
		vm->next_mmio += size;
	}
	pthread_mutex_unlock(&vm->lock);
	return base;
}

int vm_alloc_irq(struct vm *vm)
{
	int ret;
	pthread_mutex_lock(&vm->lock);
	ret = vm->next_irq <= arch_layout.irq_last ? vm->next_irq++ : -1;
	pthread_mutex_unlock(&vm->lock);
	if (ret < 0)
		return pv_error(ENOSPC, "vm %s: no free interrupt line (%d..%d)", vm->name,
				arch_layout.irq_first, arch_layout.irq_last);
	return ret;
}

int vm_cmdline_add(struct vm *vm, const char *text)
{
	if (vm->started)
		return pv_error(EBUSY, "vm %s: command line is fixed once started", vm->name);
	size_t a = strlen(vm->cmdline), b = strlen(text);
	char *n = realloc(vm->cmdline, a + b + 2);
	if (!n)
		return pv_error(ENOMEM, "vm %s: out of memory", vm->name);
	if (a)
		n[a++] = ' ';
	memcpy(n + a, text, b + 1);
	vm->cmdline = n;
	return 0;
}

int vm_describe_mmio(struct vm *vm, uint64_t base, uint64_t size, int irq)
{
	if (vm->started)
		return pv_error(EBUSY, "vm %s: devices are fixed once started", vm->name);
	return arch_describe_mmio(vm, base, size, irq);
}

int vm_irq_line(struct vm *vm, int gsi, int level)
{
	struct kvm_irq_level il = {.irq = arch_irq_line_id(gsi), .level = level};
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &il) < 0)
		return pv_error(errno, "vm %s: KVM_IRQ_LINE %d: %s", vm->name, gsi, strerror(errno));
	return 0;
}

int vm_irqfd(struct vm *vm, int gsi, int eventfd, bool assign)
{
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) <= 0)
		return pv_error(ENOTSUP, "vm %s: this host's KVM has no KVM_IRQFD", vm->name);
	struct kvm_irqfd f = {
		.fd = eventfd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};
	if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
		return pv_error(errno, "vm %s: KVM_IRQFD gsi %d: %s", vm->name, gsi, strerror(errno));
	return 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int eventfd,
		 bool match_value, uint64_t value, bool assign)
{
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) <= 0)
		return pv_error(ENOTSUP, "vm %s: this host's KVM has no KVM_IOEVENTFD", vm->name);
	struct kvm_ioeventfd f = {
		.datamatch = value, .addr = addr, .len = len, .fd = eventfd,
		.flags = (match_value ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &f) < 0)
		return pv_error(errno, "vm %s: KVM_IOEVENTFD at 0x%" PRIx64 ": %s", vm->name, addr,
				strerror(errno));
	return 0;
}

int vm_add_device(struct vm *vm, struct device *d, uint64_t mmio_base, int irq)
{
	int ret = 0;
	pthread_mutex_lock(&vm->lock);
	if (vm->ndevices >= VM_MAX_DEVICES)
		ret = pv_error(ENOSPC, "vm %s: more than %d devices", vm->name, VM_MAX_DEVICES);
	else
		vm->devices[vm->ndevices++] = (struct vm_device){d, mmio_base, irq};
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

void vm_remove_device(struct vm *vm, struct device *d)
{
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].dev == d) {
			memmove(&vm->devices[i], &vm->devices[i + 1],
				(vm->ndevices - i - 1) * sizeof(vm->devices[0]));
			vm->ndevices--;
			break;
		}
	pthread_mutex_unlock(&vm->lock);
}

void vm_add_cleanup(struct vm *vm, void (*fn)(void *opaque), void *opaque)
{
	struct vm_cleanup *c = malloc(sizeof(*c));
	if (!c) {
		/* Cannot record it: free now rather than leak at destroy. */
		pv_log("vm %s: out of memory registering a cleanup", vm->name);
		return;
	}
	*c = (struct vm_cleanup){fn, opaque, vm->cleanups};
	vm->cleanups = c;
}

uint64_t vm_first_exit_ns(const struct vm *vm)
{
	return __atomic_load_n(&vm->first_exit_ns, __ATOMIC_SEQ_CST);
}

bool vm_ram_warm(const struct vm *vm)
{
	return vm->ram_warm;
}

uint64_t vm_restore_prewritten(const struct vm *vm)
{
	return snapshot_writes_prewritten(vm->writes);
}
