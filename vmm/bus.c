/* bus.c — port-I/O and MMIO dispatch (vmm/bus.h). A bus is a sorted array of
 * ranges behind a rwlock: vCPU exits look up with a binary search under the read
 * lock, (hot-)registration takes the write lock. Unclaimed addresses are remembered
 * in a small open-addressing set so each is logged only once. */
#include "vmm/bus.h"
#include "vmm/util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bus_range {
	uint64_t base, len;
	const struct bus_ops *ops;
	void *opaque;
};

#define BUS_LOGGED_SLOTS 256 /* after this many distinct addresses, stop logging */

struct bus {
	char name[16];
	pthread_rwlock_t lock;
	struct bus_range *r;
	size_t n, cap;
	pthread_mutex_t log_lock;
	uint64_t logged[BUS_LOGGED_SLOTS]; /* addr + 1; 0 = empty */
	unsigned nlogged;
};

struct bus *bus_create(const char *name)
{
	struct bus *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	snprintf(b->name, sizeof(b->name), "%s", name ? name : "bus");
	pthread_rwlock_init(&b->lock, NULL);
	pthread_mutex_init(&b->log_lock, NULL);
	return b;
}

void bus_destroy(struct bus *b)
{
	if (!b)
		return;
	pthread_rwlock_destroy(&b->lock);
	pthread_mutex_destroy(&b->log_lock);
	free(b->r);
	free(b);
}

/* Index of the first range whose end is above addr (ranges are sorted and disjoint). */
static size_t bus_lower(const struct bus *b, uint64_t addr)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (b->r[mid].base + b->r[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque)
{
	if (!len || base + len < base)
		return pv_error(EINVAL, "%s bus: bad range 0x%" PRIx64 "+0x%" PRIx64,
				b->name, base, len);
	pthread_rwlock_wrlock(&b->lock);
	size_t i = bus_lower(b, base);
	if (i < b->n && b->r[i].base < base + len) {
		struct bus_range o = b->r[i];
		pthread_rwlock_unlock(&b->lock);
		return pv_error(EEXIST, "%s bus: 0x%" PRIx64 "+0x%" PRIx64
				" overlaps 0x%" PRIx64 "+0x%" PRIx64, b->name, base, len,
				o.base, o.len);
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *nr = realloc(b->r, cap * sizeof(*nr));
		if (!nr) {
			pthread_rwlock_unlock(&b->lock);
			return pv_error(ENOMEM, "%s bus: out of memory", b->name);
		}
		b->r = nr;
		b->cap = cap;
	}
	memmove(&b->r[i + 1], &b->r[i], (b->n - i) * sizeof(*b->r));
	b->r[i] = (struct bus_range){base, len, ops, opaque};
	b->n++;
	pthread_rwlock_unlock(&b->lock);
	return 0;
}

int bus_unregister(struct bus *b, uint64_t base)
{
	pthread_rwlock_wrlock(&b->lock);
	size_t i = bus_lower(b, base);
	if (i >= b->n || b->r[i].base != base) {
		pthread_rwlock_unlock(&b->lock);
		return pv_error(ENOENT, "%s bus: nothing registered at 0x%" PRIx64, b->name, base);
	}
	memmove(&b->r[i], &b->r[i + 1], (b->n - i - 1) * sizeof(*b->r));
	b->n--;
	pthread_rwlock_unlock(&b->lock);
	return 0;
}

/* True the first time addr is seen (and the set still has room). */
static bool bus_first_miss(struct bus *b, uint64_t addr)
{
	bool first = false;
	pthread_mutex_lock(&b->log_lock);
	if (b->nlogged < BUS_LOGGED_SLOTS * 3 / 4) {
		uint64_t key = addr + 1;
		unsigned h = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 56) % BUS_LOGGED_SLOTS;
		while (b->logged[h] && b->logged[h] != key)
			h = (h + 1) % BUS_LOGGED_SLOTS;
		if (!b->logged[h]) {
			b->logged[h] = key;
			b->nlogged++;
			first = true;
		}
	}
	pthread_mutex_unlock(&b->log_lock);
	return first;
}

bool bus_access(struct bus *b, uint64_t addr, void *data, unsigned len, bool is_write)
{
	struct bus_range r = {0};
	bool found = false;
	pthread_rwlock_rdlock(&b->lock);
	size_t i = bus_lower(b, addr);
	if (i < b->n && b->r[i].base <= addr) {
		r = b->r[i];
		found = true;
	}
	pthread_rwlock_unlock(&b->lock);
	if (found) {
		/* Devices may be called after unregistration races with an exit in
		 * flight; their owners unregister only after the vCPUs are stopped. */
		if (is_write) {
			if (r.ops->write)
				r.ops->write(r.opaque, addr - r.base, data, len);
		} else {
			memset(data, 0xff, len);
			if (r.ops->read)
				r.ops->read(r.opaque, addr - r.base, data, len);
		}
		return true;
	}
	if (!is_write)
		memset(data, 0xff, len);
	if (bus_first_miss(b, addr)) {
		uint64_t v = 0;
		if (is_write)
			memcpy(&v, data, len < sizeof(v) ? len : sizeof(v));
		if (is_write)
			pv_log("%s: unclaimed %u-byte write of 0x%" PRIx64 " to 0x%" PRIx64
			       " (ignored; logged once per address)", b->name, len, v, addr);
		else
			pv_log("%s: unclaimed %u-byte read at 0x%" PRIx64
			       " (reads as all-ones; logged once per address)", b->name, len, addr);
	}
	return false;
}
