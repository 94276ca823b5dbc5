/* snapshot_writes.c — a restore's write set. Guest RAM of a restore is a private
 * mapping of the snapshot's memory file, so each page the guest writes is first
 * mapped read-only and then copied on a second fault; under nested virtualization
 * each of those faults is an exit to the host's KVM. The VM restored last from a
 * snapshot leaves beside it (SNAPSHOT_WRITES_FILE) the pages it wrote, and the next
 * restore copies those in (MADV_POPULATE_WRITE) before the guest runs, so the
 * guest's first touch of them maps them writable at once (docs/vmm.md, "What a
 * restore costs").
 *
 * The file is a hint: one that is missing, unreadable or malformed is ignored, and
 * a VM that wrote nothing or more than SNAPSHOT_WRITES_MAX_PAGES leaves the old one.
 * Format (native endian): magic "PVWS" | version | RAM bytes | ranges | pages |
 * ranges × (first page, pages), sorted and disjoint. */
#include "vmm/snapshot.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE 4096u
#define WRITES_MAGIC 0x53575650u /* "PVWS" */
#define WRITES_VERSION 1u

struct writes_header {
	uint32_t magic, version;
	uint64_t mem_size;
	uint32_t nranges, npages;
};

struct writes_range {
	uint32_t first, count;
};

struct snapshot_writes {
	char path[PATH_MAX];
	int mem_fd;
	uint64_t npages;
	uint8_t *pre;        /* bitmap of the pages copied in at the restore */
	uint64_t prewritten;
};

static bool bit(const uint8_t *bm, uint64_t pg) { return bm[pg / 8] & (1u << (pg % 8)); }
static void set_bit(uint8_t *bm, uint64_t pg) { bm[pg / 8] |= (uint8_t)(1u << (pg % 8)); }

/* The ranges of a write-set file, checked against RAM of `mem_size` bytes;
 * NULL when it is missing or malformed. */
static struct writes_range *read_ranges(const char *path, uint64_t mem_size, uint32_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct writes_header h;
	struct writes_range *r = NULL;
	struct stat st;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || fstat(fd, &st) < 0 ||
	    h.magic != WRITES_MAGIC || h.version != WRITES_VERSION || h.mem_size != mem_size ||
	    h.nranges == 0 || h.nranges > SNAPSHOT_WRITES_MAX_PAGES ||
	    h.npages > SNAPSHOT_WRITES_MAX_PAGES ||
	    (uint64_t)st.st_size != sizeof(h) + (uint64_t)h.nranges * sizeof(*r))
		goto bad;
	size_t len = (size_t)h.nranges * sizeof(*r);
	if (!(r = malloc(len)) || pread(fd, r, len, sizeof(h)) != (ssize_t)len)
		goto bad;
	uint64_t end = 0, total = 0, npages = mem_size / PAGE;
	for (uint32_t i = 0; i < h.nranges; i++) {
		if (r[i].count == 0 || r[i].first < end ||
		    (uint64_t)r[i].first + r[i].count > npages)
			goto bad;
		end = (uint64_t)r[i].first + r[i].count;
		total += r[i].count;
	}
	if (total != h.npages)
		goto bad;
	close(fd);
	*n = h.nranges;
	return r;
bad:
	free(r);
	close(fd);
	return NULL;
}

struct snapshot_writes *snapshot_writes_apply(const char *dir, void *mem, uint64_t size,
					      int mem_fd)
{
	struct snapshot_writes *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->npages = size / PAGE;
	w->mem_fd = mem_fd;
	if (snprintf(w->path, sizeof(w->path), "%s/%s", dir, SNAPSHOT_WRITES_FILE) >=
		    (int)sizeof(w->path) ||
	    !(w->pre = calloc(1, w->npages / 8 + 1))) {
		snapshot_writes_free(w);
		return NULL;
	}
	uint32_t n = 0;
	struct writes_range *r = read_ranges(w->path, size, &n);
	for (uint32_t i = 0; r && i < n; i++) {
		/* best effort: a kernel before 5.14 leaves them to fault in */
		if (madvise((uint8_t *)mem + (uint64_t)r[i].first * PAGE,
			    (size_t)r[i].count * PAGE, MADV_POPULATE_WRITE) < 0)
			break;
		for (uint32_t k = 0; k < r[i].count; k++)
			set_bit(w->pre, (uint64_t)r[i].first + k);
		w->prewritten += r[i].count;
	}
	free(r);
	return w;
}

uint64_t snapshot_writes_prewritten(const struct snapshot_writes *w)
{
	return w ? w->prewritten : 0;
}

/* Whether page `pg`, copied in at the restore, still holds the file's bytes. */
static bool unchanged(const struct snapshot_writes *w, const uint8_t *mem, uint64_t pg)
{
	uint8_t buf[PAGE];
	ssize_t r = pread(w->mem_fd, buf, PAGE, (off_t)(pg * PAGE));
	if (r < 0)
		return false;
	memset(buf + r, 0, PAGE - (size_t)r); /* past the end reads as zeros */
	return !memcmp(buf, mem + pg * PAGE, PAGE);
}

/* The pages the guest wrote: those with a copy of their own, except the ones the
 * restore copied in that still hold the file's bytes. Returns the count, or -errno. */
static int64_t written(const struct snapshot_writes *w, const uint8_t *mem, uint8_t *bm)
{
	int err = snapshot_private_pages(mem, w->npages * PAGE, bm);
	if (err < 0)
		return err;
	int64_t count = 0;
	for (uint64_t p = 0; p < w->npages; p++) {
		if (!bit(bm, p))
			continue;
		if (bit(w->pre, p) && unchanged(w, mem, p))
			bm[p / 8] &= (uint8_t)~(1u << (p % 8));
		else
			count++;
	}
	return count;
}

static int write_file(const struct snapshot_writes *w, const uint8_t *bm, uint32_t npages)
{
	uint32_t nranges = 0;
	struct writes_range *r = malloc((size_t)npages * sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (uint64_t pg = 0; pg < w->npages;) {
		if (!bit(bm, pg)) {
			pg++;
			continue;
		}
		uint64_t end = pg;
		while (end < w->npages && bit(bm, end))
			end++;
		r[nranges++] = (struct writes_range){(uint32_t)pg, (uint32_t)(end - pg)};
		pg = end;
	}
	struct writes_header h = {WRITES_MAGIC, WRITES_VERSION, w->npages * PAGE, nranges,
				  npages};
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp-%d", w->path, (int)getpid());
	int err = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = (size_t)nranges * sizeof(*r);
	if (fd < 0)
		err = -errno;
	else if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) ||
		 write(fd, r, len) != (ssize_t)len)
		err = -EIO;
	if (fd >= 0 && close(fd) < 0 && !err)
		err = -errno;
	/* rename: a parallel restore of the same snapshot reads one whole file or the other */
	if (!err && rename(tmp, w->path) < 0)
		err = -errno;
	if (err && fd >= 0)
		unlink(tmp);
	free(r);
	return err;
}

int snapshot_writes_save(struct snapshot_writes *w, const void *mem)
{
	if (!w)
		return 0;
	uint8_t *bm = calloc(1, w->npages / 8 + 1);
	if (!bm)
		return -ENOMEM;
	int64_t n = written(w, mem, bm);
	int err = n < 0 ? (int)n : 0;
	if (n > 0 && n <= SNAPSHOT_WRITES_MAX_PAGES)
		err = write_file(w, bm, (uint32_t)n);
	free(bm);
	return err;
}

void snapshot_writes_free(struct snapshot_writes *w)
{
	if (!w)
		return;
	free(w->pre);
	free(w);
}
