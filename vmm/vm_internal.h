/* vm_internal.h — struct vm and struct vcpu, shared by the files in vmm/ and the
 * architecture's files (vmm/x86/, vmm/arm64/, behind vmm/arch.h) only. Everything
 * outside vmm/ goes through vmm/vmm.h. */
#ifndef PROVIUM_VM_INTERNAL_H
#define PROVIUM_VM_INTERNAL_H

#include "vmm/stats.h"
#include "vmm/vmm.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct arch_vm; /* the architecture's own per-VM state (vmm/x86/, vmm/arm64/) */

#define VM_MAX_CPUS 64
#define VM_CONSOLE_RING (1u << 20)     /* 1 MiB of console history */
#define VM_CONSOLE_SINKS 4
#define VM_HALT_PROBE_NS (250 * 1000000ull)
#define VM_MAX_DEVICES 32

/* A device registered with vm_add_device (snapshots walk these in order). */
struct vm_device {
	struct device *dev;
	uint64_t mmio_base;
	int irq;
};

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	/* Set by the vCPU thread itself before it first looks at the stop/pause
	 * flags: a kicker that sees it false knows the thread will see the flag. */
	pthread_t self;
	atomic_bool kickable;
	bool paused;   /* parked in vcpu_park(); protected by vm->lock */
	/* Halt detection (vm.c's halt_tick): the thread answers a probe kick with
	 * its MP state (arch_probe_halt); halted_rounds counts probes in a row that
	 * found it halted with interrupts off, waiting_start marks a secondary vCPU
	 * not started yet (x86: waiting for SIPI; arm64: PSCI powered off). */
	atomic_bool probe;
	atomic_int halted_rounds;
	atomic_bool waiting_start;
	uint64_t halted_pc;
	struct vcpu_stats stats;  /* user-space exits, this thread's own (stats.c) */
};

struct vm_cleanup {
	void (*fn)(void *opaque);
	void *opaque;
	struct vm_cleanup *next;
};

struct vm {
	char name[64];
	struct vm_config cfg;      /* strings below are our own copies */
	char *kernel, *initrd, *cmdline;
	int kvm_fd, vm_fd, mem_fd; /* mem_fd: the memory file of a restore, or -1 */
	void *mem;
	uint64_t mem_size;
	int run_size;

	struct bus *pio, *mmio;
	struct evloop *loop;
	pthread_t loop_thread;
	bool loop_started;

	struct vcpu vcpus[VM_MAX_CPUS];
	unsigned ncpus;
	struct arch_vm *arch;      /* arch_vm_init's, freed by arch_vm_free */

	uint64_t next_mmio;
	int next_irq;              /* vm_alloc_irq's next, from arch_layout */

	/* Console ring: total bytes ever written; the ring holds the newest. */
	pthread_mutex_t con_lock;
	char *con_ring;
	uint64_t con_total;
	struct {
		void (*fn)(void *opaque, const void *data, size_t len);
		void *opaque;
	} sinks[VM_CONSOLE_SINKS];

	/* Run state, protected by lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started;
	atomic_bool stopping;      /* vCPUs must leave KVM_RUN and end */
	atomic_bool pausing;       /* vCPUs must park until resumed */
	unsigned running;          /* vCPU threads not yet finished */
	unsigned parked;
	struct vm_exit exit;
	uint64_t first_exit_ns;    /* pv_now_ns() of the first vCPU exit (bench) */
	int64_t halt_timer;

	struct vm_cleanup *cleanups;
	struct serial *serial;     /* the console UART (arch_platform_create) */

	/* Snapshot support: registered devices (under lock), and whether a pause
	 * happened since the last KVM_KVMCLOCK_CTRL. */
	struct vm_device devices[VM_MAX_DEVICES];
	unsigned ndevices;
	bool was_paused;
	struct snapshot_writes *writes; /* a restore's write set (vm_restore), or NULL */
	/* The claim of the last snapshot on its memory file: the RAM goes to the next
	 * restore of it when this VM is destroyed (snapshot_warm.c), or NULL. */
	struct snapshot_warm *warm;
	bool ram_warm;             /* this restore took a snapshotted VM's RAM */
	bool counted;              /* in vm_live_count() */
};

/* vcpu.c */
int vcpu_create(struct vm *vm, unsigned index);
void vcpu_close(struct vcpu *c);
int vcpu_start_thread(struct vcpu *c);
void vcpu_kick(struct vcpu *c);

/* vm.c: called by a vCPU thread when it ends. */
void vm_vcpu_finished(struct vm *vm);
/* vm.c, for snapshot.c: a VM whose guest RAM is a private mapping of
 * `memory_path` (NULL: fresh RAM, as vm_create), and starting the threads of
 * a VM whose registers were loaded (optionally parked). */
int vm_create_from(const struct vm_config *cfg, const char *memory_path, struct vm **out);
int vm_start_loaded(struct vm *vm, bool paused);
/* VMs of this process created and not yet destroyed. */
unsigned vm_live_count(void);

#endif
