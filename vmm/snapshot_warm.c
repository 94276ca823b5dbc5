/* snapshot_warm.c — the RAM of a VM that was snapshotted, handed whole to the next
 * restore of that snapshot in this process (docs/vmm.md, "What a restore costs").
 *
 * A restore maps the memory file privately: the guest's first touch of each page is
 * a fault, 4 KiB at a time, and a page it writes is copied. Under an emulated host
 * it is worse: the code in those page-cache pages, new physical pages, is translated
 * again, which doubles what the first restore of a snapshot costs. But the VM a
 * snapshot is taken of often goes away soon after (a fixture's build, a test that
 * snapshots a VM and ends), and its RAM, anonymous huge pages, held the snapshot's
 * bytes exactly when the snapshot was taken.
 *
 * So a snapshot clears the process's soft-dirty bits (/proc/self/clear_refs) just
 * before it writes the memory file, and claims the file. When the VM is destroyed,
 * the pages of its RAM whose soft-dirty bit is set (written since, by the guest, by
 * KVM or by a device thread) are compared with the file and put back where they
 * differ; the RAM then holds the file's bytes and goes to a small cache keyed by the
 * file's identity. The next restore of that file takes it instead of mapping the
 * file: no page faults but one per 2 MiB, no copy on write, and the code the guest
 * ran before. That restore claims the file in turn (vm_restore: when no other VM
 * runs in the process, since a clear makes every VM's next write to each page a
 * fault), so a series of restores of one snapshot keeps handing the RAM on, unless a VM
 * wrote more than SNAPSHOT_WARM_MAX_REPAIR pages, whose repair would cost about what
 * it saves.
 *
 * Soft-dirty bits belong to the whole process, so only the latest clear can be
 * trusted: a later snapshot's clear ends every earlier claim. A kernel without
 * CONFIG_MEM_SOFT_DIRTY (arm64 has none) fails the probe made with every clear, and
 * then nothing is claimed: every restore maps the file, as before. */
#include "vmm/snapshot.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096u
#define PM_SOFT_DIRTY (1ull << 55)
#define CHUNK (256u * 1024u) /* the file is read this much at a time for the repair */

struct ident {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct snapshot_warm {
	uint64_t gen;   /* the clear this claim counts from */
	int fd;         /* the memory file, for the repair */
	struct ident id;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t gen;        /* clears so far; a claim is good while it is the latest */
	int usable;          /* 0 unknown, 1 soft-dirty works, -1 it does not */
	char *probe;         /* one page, written and checked around each clear */
	struct {
		void *mem;
		uint64_t size;
		struct ident id;
		uint64_t stamp;
	} cache[SNAPSHOT_WARM_MAX];
	uint64_t stamp;
	struct snapshot_warm_stats stats;
} w = {0};

/* A forked child has none of the cached RAM (it is MADV_DONTFORK) and no claim of
 * the parent's can be good in it. */
static void before_fork(void) { pthread_mutex_lock(&lock); }
static void parent_after_fork(void) { pthread_mutex_unlock(&lock); }
static void child_after_fork(void)
{
	pthread_mutex_init(&lock, NULL);
	memset(w.cache, 0, sizeof(w.cache));
	w.gen++;
}
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void install_atfork(void) { pthread_atfork(before_fork, parent_after_fork, child_after_fork); }

static bool same(const struct ident *a, const struct ident *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void ident_of(const struct stat *st, struct ident *id)
{
	*id = (struct ident){st->st_dev, st->st_ino, st->st_size, st->st_mtim};
}

static bool soft_dirty(uint64_t entry)
{
	return entry & PM_SOFT_DIRTY;
}

/* Whether the probe page's soft-dirty bit is set: 1, 0, or -1 when unreadable. */
static int probe_dirty(void)
{
	uint8_t bm = 0;
	int64_t n = snapshot_pagemap_scan(w.probe, PAGE, soft_dirty, &bm);
	return n < 0 ? -1 : (int)n;
}

/* Clears every soft-dirty bit of the process, and checks on the probe page that the
 * kernel keeps them: clear after the clear, set after a write. Lock held. */
static bool clear_and_probe(void)
{
	if (!w.probe) {
		void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED)
			return false;
		w.probe = p;
	}
	w.probe[0]++;
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, "4", 1) == 1;
	close(fd);
	if (!ok || probe_dirty() != 0)
		return false;
	((volatile char *)w.probe)[0]++;
	return probe_dirty() == 1;
}

uint64_t snapshot_warm_begin(void)
{
	pthread_once(&once, install_atfork);
	pthread_mutex_lock(&lock);
	uint64_t gen = 0;
	if (w.usable >= 0) {
		bool ok = clear_and_probe();
		w.gen++; /* a clear that failed half-way may have cleared something: claims end */
		w.usable = ok ? 1 : -1;
		if (ok)
			gen = w.gen;
	}
	pthread_mutex_unlock(&lock);
	return gen;
}

struct snapshot_warm *snapshot_warm_claim(uint64_t gen, const char *memory_path)
{
	if (!gen)
		return NULL;
	struct snapshot_warm *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	struct stat st;
	c->gen = gen;
	c->fd = open(memory_path, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0 || fstat(c->fd, &st) < 0) {
		snapshot_warm_free(c);
		return NULL;
	}
	ident_of(&st, &c->id);
	return c;
}

void snapshot_warm_free(struct snapshot_warm *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* The pages of `mem` written since the claim's clear, into bm; false when the claim
 * is no longer good (a later clear) or pagemap cannot be read. Lock held. */
static bool harvest(const struct snapshot_warm *c, const void *mem, uint64_t size,
		    uint8_t *bm, uint64_t *ndirty)
{
	if (c->gen != w.gen || w.usable != 1)
		return false;
	int64_t n = snapshot_pagemap_scan(mem, size, soft_dirty, bm);
	*ndirty = n < 0 ? 0 : (uint64_t)n;
	return n >= 0;
}

/* Puts the file's bytes back into the marked pages that differ; the count, or -1. */
static int64_t repair(int fd, uint8_t *mem, uint64_t npages, const uint8_t *bm)
{
	uint8_t *buf = malloc(CHUNK);
	if (!buf)
		return -1;
	int64_t fixed = 0;
	for (uint64_t pg = 0; pg < npages;) {
		if (!(bm[pg / 8] & (1u << (pg % 8)))) {
			pg++;
			continue;
		}
		uint64_t end = pg;
		while (end < npages && end - pg < CHUNK / PAGE && (bm[end / 8] & (1u << (end % 8))))
			end++;
		size_t len = (size_t)(end - pg) * PAGE;
		ssize_t r = pread(fd, buf, len, (off_t)(pg * PAGE));
		if (r < 0 || (size_t)r != len) {
			free(buf);
			return -1;
		}
		for (uint64_t p = pg; p < end; p++) {
			uint8_t *dst = mem + p * PAGE;
			const uint8_t *src = buf + (p - pg) * PAGE;
			if (memcmp(dst, src, PAGE)) {
				memcpy(dst, src, PAGE);
				fixed++;
			}
		}
		pg = end;
	}
	free(buf);
	return fixed;
}

bool snapshot_warm_give(const struct snapshot_warm *c, void *mem, uint64_t size)
{
	struct stat st;
	struct ident now;
	if (!c || size % PAGE || fstat(c->fd, &st) < 0 || st.st_nlink == 0)
		return false;
	ident_of(&st, &now);
	if (!same(&now, &c->id) || (uint64_t)st.st_size != size)
		return false;
	uint64_t npages = size / PAGE, ndirty = 0;
	uint8_t *bm = calloc(1, npages / 8 + 1);
	if (!bm)
		return false;
	pthread_mutex_lock(&lock);
	bool ok = harvest(c, mem, size, bm, &ndirty);
	pthread_mutex_unlock(&lock);
	/* past this, putting the pages back costs about what mapping the file saves */
	if (ndirty > SNAPSHOT_WARM_MAX_REPAIR)
		ok = false;
	/* nothing writes mem any more (the VM is gone): the repair needs no lock */
	int64_t fixed = ok ? repair(c->fd, mem, npages, bm) : -1;
	free(bm);
	if (fixed < 0)
		return false;
	pthread_mutex_lock(&lock);
	unsigned slot = 0;
	for (unsigned i = 0; i < SNAPSHOT_WARM_MAX; i++) {
		if (!w.cache[i].mem) {
			slot = i;
			break;
		}
		if (w.cache[i].stamp < w.cache[slot].stamp)
			slot = i; /* the oldest goes when all are taken */
	}
	void *old = w.cache[slot].mem;
	uint64_t old_size = w.cache[slot].size;
	w.cache[slot].mem = mem;
	w.cache[slot].size = size;
	w.cache[slot].id = c->id;
	w.cache[slot].stamp = ++w.stamp;
	w.stats.given++;
	w.stats.dirty_pages += ndirty;
	w.stats.repaired_pages += (uint64_t)fixed;
	if (old)
		w.stats.evicted++;
	pthread_mutex_unlock(&lock);
	if (old)
		munmap(old, old_size);
	return true;
}

void *snapshot_warm_take(int fd, uint64_t size)
{
	struct stat st;
	struct ident id;
	if (fstat(fd, &st) < 0)
		return NULL;
	ident_of(&st, &id);
	void *mem = NULL;
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < SNAPSHOT_WARM_MAX && !mem; i++)
		if (w.cache[i].mem && w.cache[i].size == size && same(&w.cache[i].id, &id)) {
			mem = w.cache[i].mem;
			w.cache[i].mem = NULL;
			w.stats.taken++;
		}
	pthread_mutex_unlock(&lock);
	return mem;
}

void snapshot_warm_forget(const char *memory_path)
{
	struct stat st;
	struct ident id;
	if (stat(memory_path, &st) < 0)
		return;
	ident_of(&st, &id);
	void *drop[SNAPSHOT_WARM_MAX];
	uint64_t sizes[SNAPSHOT_WARM_MAX];
	unsigned n = 0;
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < SNAPSHOT_WARM_MAX; i++)
		if (w.cache[i].mem && same(&w.cache[i].id, &id)) {
			drop[n] = w.cache[i].mem;
			sizes[n++] = w.cache[i].size;
			w.cache[i].mem = NULL;
		}
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < n; i++)
		munmap(drop[i], sizes[i]);
}

void snapshot_warm_stats(struct snapshot_warm_stats *s)
{
	pthread_mutex_lock(&lock);
	*s = w.stats;
	s->usable = w.usable;
	s->cached = 0;
	for (unsigned i = 0; i < SNAPSHOT_WARM_MAX; i++)
		s->cached += w.cache[i].mem != NULL;
	pthread_mutex_unlock(&lock);
}
