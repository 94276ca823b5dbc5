/* stats.c — exit counters: KVM's binary stats per vCPU (KVM_GET_STATS_FD, Linux
 * 5.14+; absent elsewhere, e.g. some PVM hosts) summed over the vCPUs, and the
 * vCPU threads' own tables of user-space exits by port / MMIO address. */
#include "vmm/stats.h"
#include "vmm/vm_internal.h"
#include "vmm/util.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

const char *const vm_stats_kvm_names[VM_STATS_KVM_N] = {
	"exits", "io_exits", "mmio_exits", "irq_exits", "irq_window_exits",
	"nmi_window_exits", "halt_exits", "signal_exits", "request_irq_exits",
	"insn_emulation", "hypercalls", "pf_taken", "pf_fixed",
};

#define KEY(kind, write, addr) \
	(((uint64_t)(kind) << 62) | ((uint64_t)!!(write) << 61) | ((addr) & ((1ull << 61) - 1)))

void vcpu_stats_count(struct vcpu_stats *s, enum vm_stat_kind kind, bool write,
		      uint64_t addr)
{
	uint64_t key = KEY(kind, write, addr);
	unsigned h = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 57); /* 7 bits */
	s->total++;
	for (unsigned i = 0; i < VCPU_STATS_SLOTS; i++) {
		unsigned j = (h + i) % VCPU_STATS_SLOTS;
		if (s->keys[j] == key) {
			s->counts[j]++;
			return;
		}
		if (!s->keys[j]) {
			s->keys[j] = key;
			s->counts[j] = 1;
			return;
		}
	}
	s->overflow++;
}

/* Adds one vCPU's KVM counters to out->kvm; false when KVM has no binary stats. */
static bool add_kvm_stats(int vcpu_fd, struct vm_exit_stats *out)
{
	int fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		return false;
	bool ok = false;
	struct kvm_stats_header h;
	char *descs = NULL;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.num_desc > 4096 ||
	    h.name_size > 4096)
		goto out;
	size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	size_t len = dsz * h.num_desc;
	if (!(descs = malloc(len)) || pread(fd, descs, len, h.desc_offset) != (ssize_t)len)
		goto out;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * dsz);
		d->name[h.name_size - 1] = '\0';
		if (d->size != 1)
			continue;
		for (unsigned k = 0; k < VM_STATS_KVM_N; k++) {
			uint64_t v;
			if (strcmp(d->name, vm_stats_kvm_names[k]) ||
			    pread(fd, &v, sizeof(v), h.data_offset + d->offset) != sizeof(v))
				continue;
			out->kvm[k] += v;
		}
	}
	ok = true;
out:
	free(descs);
	close(fd);
	return ok;
}

static int by_key(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

static int by_count_desc(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[1] > y[1] ? -1 : x[1] < y[1] ? 1 : by_key(a, b);
}

int vm_exit_stats(struct vm *vm, struct vm_exit_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->have_kvm = vm->ncpus > 0;
	size_t n = 0;
	uint64_t (*pairs)[2] = calloc((size_t)vm->ncpus * VCPU_STATS_SLOTS + 1, sizeof(*pairs));
	if (!pairs)
		return pv_error(ENOMEM, "stats: out of memory");
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->vcpus[i];
		if (c->fd < 0 || !add_kvm_stats(c->fd, out))
			out->have_kvm = false;
		out->user_total += c->stats.total;
		out->user_rest += c->stats.overflow;
		for (unsigned j = 0; j < VCPU_STATS_SLOTS; j++)
			if (c->stats.keys[j]) {
				pairs[n][0] = c->stats.keys[j];
				pairs[n++][1] = c->stats.counts[j];
			}
	}
	if (!out->have_kvm)
		memset(out->kvm, 0, sizeof(out->kvm));
	/* merge the vCPUs' entries for one site, then most frequent first */
	qsort(pairs, n, sizeof(*pairs), by_key);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && pairs[m - 1][0] == pairs[i][0])
			pairs[m - 1][1] += pairs[i][1];
		else
			memcpy(pairs[m++], pairs[i], sizeof(*pairs));
	}
	qsort(pairs, m, sizeof(*pairs), by_count_desc);
	for (size_t i = 0; i < m; i++) {
		if (out->ntop == VM_STATS_TOP) {
			out->user_rest += pairs[i][1];
			continue;
		}
		struct vm_stat_site *s = &out->top[out->ntop++];
		s->kind = (enum vm_stat_kind)(pairs[i][0] >> 62);
		s->write = (pairs[i][0] >> 61) & 1;
		s->addr = pairs[i][0] & ((1ull << 61) - 1);
		s->count = pairs[i][1];
	}
	free(pairs);
	return 0;
}

void vm_exit_stats_print(const struct vm_exit_stats *s, FILE *f)
{
	if (s->have_kvm) {
		fprintf(f, "KVM exits (all vCPUs):");
		for (unsigned k = 0; k < VM_STATS_KVM_N; k++)
			fprintf(f, "%s %s %llu", k ? "," : "", vm_stats_kvm_names[k],
				(unsigned long long)s->kvm[k]);
		fputc('\n', f);
	} else {
		fprintf(f, "KVM exits: not available (no KVM_GET_STATS_FD on this host)\n");
	}
	fprintf(f, "handled in user space: %llu\n", (unsigned long long)s->user_total);
	for (unsigned i = 0; i < s->ntop; i++) {
		const struct vm_stat_site *t = &s->top[i];
		if (t->kind == VM_STAT_OTHER)
			fprintf(f, "  %10llu  KVM exit reason %llu\n",
				(unsigned long long)t->count, (unsigned long long)t->addr);
		else
			fprintf(f, "  %10llu  %s %s 0x%llx\n", (unsigned long long)t->count,
				t->kind == VM_STAT_PIO ? "pio " : "mmio",
				t->write ? "write" : "read ", (unsigned long long)t->addr);
	}
	if (s->user_rest)
		fprintf(f, "  %10llu  elsewhere\n", (unsigned long long)s->user_rest);
}
