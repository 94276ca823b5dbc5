/* vmm.h — the VMM's public face: make a VM from a config, add devices, run it,
 * watch it, stop it, free it. Everything here returns 0 / -errno with pv_errmsg()
 * set (vmm/util.h); nothing here exits the process.
 *
 * Order of use:
 *   vm_create(cfg)          KVM VM, guest RAM, irqchip, PIT, the platform devices
 *                           (8250 UART at 0x3f8/IRQ4, exit port 0xf4, i8042 reset)
 *   <device>_create(vm,..)  optional: virtio devices (devices/), which take an MMIO
 *                           window and an IRQ with vm_alloc_mmio()/vm_alloc_irq() and
 *                           add their "virtio_mmio.device=" entry with vm_cmdline_add()
 *   vm_start(vm)            loads kernel/initrd/cmdline, sets up vCPUs, starts the
 *                           vCPU threads and the event-loop thread
 *   vm_wait(vm, ...)        until the guest exits (exit port, reset, triple fault,
 *                           shutdown) or vm_stop() is called
 *   vm_destroy(vm)          joins threads, frees every fd, mapping and device
 */
#ifndef PROVIUM_VMM_H
#define PROVIUM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct bus;
struct evloop;
struct kvm_cpuid_entry2;

struct vm_config {
	const char *name;          /* used in messages; default "vm" */
	const char *kernel;        /* ELF vmlinux or bzImage (boot protocol >= 2.10) */
	const char *initrd;        /* optional */
	const char *cmdline;       /* optional; device entries are appended */
	unsigned memory_mib;       /* default 128 */
	unsigned cpus;             /* default 1 */
	/* Called (from the vCPU or event-loop thread) with everything the guest
	 * writes on its consoles, after it is stored in the console ring. */
	void (*console_out)(void *opaque, const char *buf, size_t len);
	void *console_opaque;
	/* Optional CPUID mask hook, called once per vCPU on the entries from
	 * KVM_GET_SUPPORTED_CPUID before KVM_SET_CPUID2. */
	void (*cpuid_hook)(void *opaque, struct kvm_cpuid_entry2 *entries, unsigned n);
	void *cpuid_opaque;
};

enum vm_exit_reason {
	VM_EXIT_NONE = 0,     /* still running */
	VM_EXIT_PORT,         /* guest wrote to the exit port 0xf4; code = value */
	VM_EXIT_RESET,        /* i8042 reset (0xfe to 0x64) or a reboot request */
	VM_EXIT_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN */
	VM_EXIT_HALT,         /* every vCPU halted with interrupts off */
	VM_EXIT_STOPPED,      /* the host called vm_stop() */
	VM_EXIT_ERROR,        /* internal error or an exit KVM could not handle */
};

struct vm_exit {
	enum vm_exit_reason reason;
	int code;            /* VM_EXIT_PORT: the value written */
	char detail[256];    /* a person-readable explanation */
};

const char *vm_exit_reason_name(enum vm_exit_reason r);

int vm_create(const struct vm_config *cfg, struct vm **out);
int vm_start(struct vm *vm);
/* Waits up to timeout_ms (-1 = forever). Returns 0 once the VM has exited (and
 * fills *ex), -ETIMEDOUT if it is still running. */
int vm_wait(struct vm *vm, int timeout_ms, struct vm_exit *ex);
/* Asks the VM to stop (kicks every vCPU out of KVM_RUN); safe from any thread. */
void vm_stop(struct vm *vm);
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
void vm_destroy(struct vm *vm);

const char *vm_name(const struct vm *vm);

/* Console: host input to the guest (serial RX; later also hvc0), and the ring of
 * everything the guest printed (at least 1 MiB). vm_console_log copies the newest
 * min(len, stored) bytes into buf and returns how many. */
int vm_console_input(struct vm *vm, const void *data, size_t len);
size_t vm_console_log(struct vm *vm, char *buf, size_t len);
/* Devices that print (serial, virtio-console) append here. */
void vm_console_output(struct vm *vm, const char *data, size_t len);
/* Devices that take console input register a sink; input goes to all of them. */
void vm_console_set_input(struct vm *vm, int slot,
			  void (*fn)(void *opaque, const void *data, size_t len), void *opaque);

/* ---- for devices (devices/) ---- */

/* Guest RAM: translate a guest-physical range into a host pointer; NULL when any
 * part of [gpa, gpa+len) lies outside guest RAM (devices must check). */
void *vm_gpa(struct vm *vm, uint64_t gpa, uint64_t len);
uint64_t vm_mem_size(const struct vm *vm);
void *vm_mem_base(const struct vm *vm);
/* Guest-physical address of the first byte of RAM (0 on x86, 2 GiB on arm64). */
uint64_t vm_mem_gpa(const struct vm *vm);
/* The guest architecture this VMM was built for: "x86_64" or "arm64". */
const char *vm_arch_name(void);

struct bus *vm_pio_bus(struct vm *vm);
struct bus *vm_mmio_bus(struct vm *vm);
struct evloop *vm_evloop(struct vm *vm);

/* Allocates a 4 KiB-aligned MMIO window above RAM, and a free GSI (5..23). */
uint64_t vm_alloc_mmio(struct vm *vm, uint64_t size);
int vm_alloc_irq(struct vm *vm);
/* Appends " text" to the kernel command line (before vm_start). */
int vm_cmdline_add(struct vm *vm, const char *text);
/* Tells the guest about a device's MMIO window and interrupt (before vm_start): a
 * "virtio_mmio.device=" command-line entry on x86, a virtio,mmio device-tree node on
 * arm64. */
int vm_describe_mmio(struct vm *vm, uint64_t base, uint64_t size, int irq);

/* Interrupts: level for the in-kernel irqchip (KVM_IRQ_LINE), or an eventfd wired
 * with KVM_IRQFD (edge; returns -ENOTSUP when KVM lacks it). */
int vm_irq_line(struct vm *vm, int gsi, int level);
int vm_irqfd(struct vm *vm, int gsi, int eventfd, bool assign);
/* KVM_IOEVENTFD on an MMIO address (optionally matching a 4-byte value). */
int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int eventfd,
		 bool match_value, uint64_t value, bool assign);

/* Registers a device so vm_destroy() frees it (after the threads are joined). */
void vm_add_cleanup(struct vm *vm, void (*fn)(void *opaque), void *opaque);

/* Requests the VM to end with a reason (used by the exit port, i8042, errors). */
void vm_request_exit(struct vm *vm, enum vm_exit_reason r, int code, const char *detail);

/* Tests and benchmarks: start vCPU 0 at `rip` in code the caller wrote into guest
 * RAM, in real mode or in 64-bit mode (flat GDT at 0x500, identity page tables for
 * the first 4 GiB at 0x9000-0xefff, rsp 0x8000); no kernel is loaded. arm64: at
 * `rip` (a guest-physical address in RAM) in EL1h with the MMU off; long_mode is
 * ignored. */
int vm_start_raw(struct vm *vm, uint64_t rip, bool long_mode);
/* `provium doctor`: writes a few instructions into guest RAM that end the VM with
 * VM_EXIT_PORT and `code` (the exit port on x86, the exit register on arm64), and
 * starts vCPU 0 there. */
int vm_start_exit_guest(struct vm *vm, uint8_t code);
/* pv_now_ns() of the first vCPU exit (0 before any): "first guest instruction". */
uint64_t vm_first_exit_ns(const struct vm *vm);
/* A KVM VM made ahead of the next restore (vmm/vm_spare.c): prepare starts a thread
 * making one unless one exists or is being made (a restored VM's destroy calls it);
 * take hands it over (waiting up to 2 s for one being made), false when there is
 * none. made/taken count them, for tests. */
struct vm_spare_stats {
	uint64_t made, taken;
};
void vm_spare_prepare(void);
bool vm_spare_take(int *kvm_fd, int *vm_fd);
void vm_spare_stats(struct vm_spare_stats *out);

/* Pages of guest RAM a restore copied in before the guest ran: the write set the
 * last VM restored from the same snapshot left (vmm/snapshot_writes.c); 0 for a boot. */
uint64_t vm_restore_prewritten(const struct vm *vm);
/* Whether this restore took, as its RAM, the RAM of the VM the snapshot was taken
 * of, which was destroyed since (vmm/snapshot_warm.c); false for a boot. */
bool vm_ram_warm(const struct vm *vm);

/* KVM fds, for snapshot code and tests. */
int vm_kvm_fd(const struct vm *vm);
int vm_fd(const struct vm *vm);

/* ---- snapshots (vmm/snapshot.c, docs/snapshots.md) ---- */

/* Devices that can be saved register here (virtio_mmio_attach does it for every
 * virtio device): snapshots save them in registration order and a restore
 * re-creates them in the same order, so MMIO windows and IRQs match. */
struct device;
int vm_add_device(struct vm *vm, struct device *d, uint64_t mmio_base, int irq);
void vm_remove_device(struct vm *vm, struct device *d);

/* Writes a snapshot of a paused (or not yet started / exited) VM into the
 * directory `dir` (created; must not exist or be empty): vm.state, memory and
 * disk images. The VM stays paused; vm_resume() continues it. */
int vm_snapshot(struct vm *vm, const char *dir);

/* Re-creates a device of a kind the VMM cannot build itself (or replaces a
 * built-in kind) during vm_restore: make the device, attach it to `vm` (which
 * registers it), and return 0; return -ENOENT to let the built-in factory try.
 * `state` is the device's saved map; `files_dir` is the snapshot directory. */
struct msgpack_object;
typedef int (*vm_restore_device_fn)(void *opaque, struct vm *vm, const char *kind,
				     const char *id, const struct msgpack_object *state,
				     const char *files_dir);

struct vm_restore_opts {
	const char *name;          /* the new VM's name; default: the saved one */
	/* Console hooks, as in vm_config (not saved). */
	void (*console_out)(void *opaque, const char *buf, size_t len);
	void *console_opaque;
	/* Where the restored VM's private disk copies go (default $TMPDIR or /tmp);
	 * they are removed when the VM is destroyed. */
	const char *work_dir;
	/* Guest time: by default kvmclock (and the TSC) continue from the values saved
	 * in the snapshot, as if the VM had been paused; this moves them forward. */
	uint64_t clock_advance_ns;
	vm_restore_device_fn device_hook;
	void *device_opaque;
	bool paused;               /* leave the vCPUs parked (vm_resume() starts them) */
};

/* A new, running VM from a snapshot directory. Memory is mapped privately from
 * the snapshot's memory file (restore cost does not grow with RAM size; the file
 * is never written). Refuses a state file of another format version, with a bad
 * CRC, or truncated, naming the file and the problem. */
int vm_restore(const char *dir, const struct vm_restore_opts *opts, struct vm **out);

/* What `provium snapshots ls` shows; filled from a verified vm.state. */
struct vm_snapshot_info {
	char arch[16];          /* "x86_64" or "arm64" */
	char name[64];          /* the VM's name when saved */
	char kernel[512];
	unsigned memory_mib, cpus, ndevices;
	uint64_t created_ns;    /* wall clock */
	uint64_t clock_ns;      /* guest kvmclock when saved */
	char devices[256];      /* "hvc0:virtio-console vda:virtio-blk ..." */
};
int vm_snapshot_info(const char *dir, struct vm_snapshot_info *info);

/* ---- guest clock (vmm/clock.c, docs/clock.md) ---- */

/* The guest's kvmclock in ns (KVM_GET_CLOCK); arm64: its virtual counter in ns. */
int vm_clock_get(struct vm *vm, uint64_t *ns);
/* Jumps guest time forward by ns: kvmclock (KVM_SET_CLOCK), every vCPU's TSC by
 * the same amount, and pending LAPIC one-shot/periodic, TSC-deadline and PIT
 * timers as if the time had passed (a timer that would have expired fires now);
 * arm64: the virtual counter, against which its timers compare. Pauses the VM for
 * the change when it is running. */
int vm_clock_advance(struct vm *vm, uint64_t ns);

#endif
