/* stats.h — where a VM's exits go (vmm/stats.c): KVM's own per-vCPU counters (its
 * binary stats, KVM_GET_STATS_FD), summed over the vCPUs, and the exits this VMM
 * handled in user space, by port or MMIO address. `provium boot --stats` prints
 * them; the kvm backend's vm_exit event carries them. docs/vmm.md "What a boot
 * costs". */
#ifndef PROVIUM_VMM_STATS_H
#define PROVIUM_VMM_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;

/* KVM's counters we report, in this order (the names of its stats). */
#define VM_STATS_KVM_N 13
extern const char *const vm_stats_kvm_names[VM_STATS_KVM_N];

/* One vCPU's user-space exits: a small open-addressed table keyed by kind,
 * direction and address. Written by its vCPU thread only; read once the vCPUs
 * have stopped. */
#define VCPU_STATS_SLOTS 128
struct vcpu_stats {
	uint64_t keys[VCPU_STATS_SLOTS];   /* 0 = free */
	uint64_t counts[VCPU_STATS_SLOTS];
	uint64_t overflow;                 /* exits whose key found no free slot */
	uint64_t total;
};

enum vm_stat_kind { VM_STAT_PIO = 1, VM_STAT_MMIO = 2, VM_STAT_OTHER = 3 };

struct vm_stat_site {
	enum vm_stat_kind kind;
	bool write;
	uint64_t addr;       /* port, MMIO address, or KVM_EXIT_* for OTHER */
	uint64_t count;
};

#define VM_STATS_TOP 24
struct vm_exit_stats {
	bool have_kvm;                  /* KVM gave its binary stats */
	uint64_t kvm[VM_STATS_KVM_N];   /* by vm_stats_kvm_names; 0 when absent */
	uint64_t user_total;            /* exits handled in user space */
	struct vm_stat_site top[VM_STATS_TOP]; /* most frequent first */
	unsigned ntop;
	uint64_t user_rest;             /* user-space exits not in top[] */
};

/* Counts one user-space exit (the vCPU thread's own table). */
void vcpu_stats_count(struct vcpu_stats *s, enum vm_stat_kind kind, bool write,
		      uint64_t addr);

/* Fills *out. Call once the VM has exited (vm_wait returned 0) and before
 * vm_destroy: KVM's counters are read from the vCPU fds. */
int vm_exit_stats(struct vm *vm, struct vm_exit_stats *out);

/* The table `provium boot --stats` prints. */
void vm_exit_stats_print(const struct vm_exit_stats *s, FILE *f);

#endif
