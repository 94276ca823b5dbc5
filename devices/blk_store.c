/* blk_store.c — raw image I/O for virtio-blk with a volatile writeback cache
 * (blk_store.h). With the cache off, reads and writes go straight to the image
 * with preadv/pwritev on the caller's iovec (the guest's buffers). With it on,
 * writes land in a hash of 512-byte sectors; reads overlay cached sectors on the
 * image; flush writes them out and fdatasyncs; a crash frees them unwritten. */
#define _FILE_OFFSET_BITS 64
#include "devices/blk_store.h"
#include "devices/virtio.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECT 512u

struct blk_cache_ent {
	uint64_t lba;
	struct blk_cache_ent *next;
	uint8_t data[SECT];
};

int blk_store_open(struct blk_store *s, int fd, uint64_t sectors)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->sectors = sectors;
	return 0;
}

void blk_store_close(struct blk_store *s)
{
	blk_store_discard_cache(s);
	free(s->bucket);
	s->bucket = NULL;
	s->nbucket = 0;
}

static uint64_t hash(uint64_t lba, uint64_t nb)
{
	return (lba * 0x9e3779b97f4a7c15ull >> 17) & (nb - 1);
}

static struct blk_cache_ent *cache_find(struct blk_store *s, uint64_t lba)
{
	if (!s->nent)
		return NULL;
	for (struct blk_cache_ent *e = s->bucket[hash(lba, s->nbucket)]; e; e = e->next)
		if (e->lba == lba)
			return e;
	return NULL;
}

static int cache_grow(struct blk_store *s)
{
	uint64_t nb = s->nbucket ? s->nbucket * 2 : 1024;
	struct blk_cache_ent **nbk = calloc(nb, sizeof(*nbk));
	if (!nbk)
		return -ENOMEM;
	for (uint64_t i = 0; i < s->nbucket; i++) {
		struct blk_cache_ent *e = s->bucket[i];
		while (e) {
			struct blk_cache_ent *n = e->next;
			uint64_t h = hash(e->lba, nb);
			e->next = nbk[h];
			nbk[h] = e;
			e = n;
		}
	}
	free(s->bucket);
	s->bucket = nbk;
	s->nbucket = nb;
	return 0;
}

static int write_back(struct blk_store *s);

static bool in_disk(const struct blk_store *s, uint64_t lba, uint64_t nsect)
{
	return lba <= s->sectors && nsect <= s->sectors - lba;
}

/* The cache entry for lba, made when missing; a full cache is written back to the
 * image first. NULL when out of memory or the write-back failed (*err says). */
static struct blk_cache_ent *cache_get(struct blk_store *s, uint64_t lba, int *err)
{
	struct blk_cache_ent *e = cache_find(s, lba);
	*err = -ENOMEM;
	if (e)
		return e;
	if (s->nent >= BLK_CACHE_MAX_SECTORS) {
		if ((*err = write_back(s)) < 0)
			return NULL;
		s->spills++;
		*err = -ENOMEM;
	}
	if (s->nent >= s->nbucket * 2 && cache_grow(s) < 0)
		return NULL;
	e = malloc(sizeof(*e));
	if (!e)
		return NULL;
	e->lba = lba;
	uint64_t h = hash(lba, s->nbucket);
	e->next = s->bucket[h];
	s->bucket[h] = e;
	s->nent++;
	return e;
}

void blk_store_invalidate(struct blk_store *s, uint64_t lba, uint64_t nsect)
{
	if (!s->nent)
		return;
	for (uint64_t i = 0; i < nsect && s->nent; i++) {
		struct blk_cache_ent **pp = &s->bucket[hash(lba + i, s->nbucket)];
		for (; *pp; pp = &(*pp)->next)
			if ((*pp)->lba == lba + i) {
				struct blk_cache_ent *e = *pp;
				*pp = e->next;
				free(e);
				s->nent--;
				break;
			}
	}
}

/* The part of iov from byte skip on, as at most VIRTQ_MAX_SEGS segments in sub
 * (preadv/pwritev take at most IOV_MAX (1024); ours are <= VIRTQ_MAX_SEGS).
 * Returns how many. */
static unsigned iov_from(const struct iovec *iov, unsigned n, size_t skip,
			 struct iovec sub[VIRTQ_MAX_SEGS])
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && k < VIRTQ_MAX_SEGS; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		sub[k].iov_base = (char *)iov[i].iov_base + skip;
		sub[k++].iov_len = iov[i].iov_len - skip;
		skip = 0;
	}
	return k;
}

int blk_store_readv(struct blk_store *s, uint64_t lba, uint64_t nsect,
		    const struct iovec *iov, unsigned n)
{
	if (!in_disk(s, lba, nsect))
		return -ERANGE;
	size_t want = nsect * SECT, got = 0;
	while (got < want) {
		struct iovec sub[VIRTQ_MAX_SEGS];
		unsigned k = iov_from(iov, n, got, sub);
		ssize_t r = preadv(s->fd, sub, (int)k, (off_t)(lba * SECT + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) { /* past the end of a short image: zeroes */
			static const uint8_t zero[SECT];
			while (got < want)
				got += buf_to_iov(iov, n, got, zero, PV_MIN(SECT, want - got));
			break;
		}
		got += (size_t)r;
	}
	if (s->nent)
		for (uint64_t i = 0; i < nsect; i++) {
			struct blk_cache_ent *e = cache_find(s, lba + i);
			if (e)
				buf_to_iov(iov, n, i * SECT, e->data, SECT);
		}
	return 0;
}

static int write_image(struct blk_store *s, uint64_t lba, uint64_t nsect,
		       const struct iovec *iov, unsigned n)
{
	size_t want = nsect * SECT, done = 0;
	while (done < want) {
		struct iovec sub[VIRTQ_MAX_SEGS];
		unsigned k = iov_from(iov, n, done, sub);
		ssize_t r = pwritev(s->fd, sub, (int)k, (off_t)(lba * SECT + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return 0;
}

int blk_store_writev(struct blk_store *s, uint64_t lba, uint64_t nsect,
		     const struct iovec *iov, unsigned n)
{
	int err;
	if (!in_disk(s, lba, nsect))
		return -ERANGE;
	if (!s->writeback)
		return write_image(s, lba, nsect, iov, n);
	for (uint64_t i = 0; i < nsect; i++) {
		struct blk_cache_ent *e = cache_get(s, lba + i, &err);
		if (!e)
			return err;
		iov_to_buf(iov, n, i * SECT, e->data, SECT);
	}
	return 0;
}

int blk_store_zero(struct blk_store *s, uint64_t lba, uint64_t nsect, bool unmap)
{
	int err;
	if (!in_disk(s, lba, nsect))
		return -ERANGE;
	if (s->writeback) {
		for (uint64_t i = 0; i < nsect; i++) {
			struct blk_cache_ent *e = cache_get(s, lba + i, &err);
			if (!e)
				return err;
			memset(e->data, 0, SECT);
		}
		return 0;
	}
	int mode = unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
	if (fallocate(s->fd, mode, (off_t)(lba * SECT), (off_t)(nsect * SECT)) == 0)
		return 0;
	static const uint8_t zero[64 * SECT];
	for (uint64_t i = 0; i < nsect;) {
		uint64_t c = PV_MIN(nsect - i, (uint64_t)64);
		struct iovec v = {(void *)zero, c * SECT};
		err = write_image(s, lba + i, c, &v, 1);
		if (err < 0)
			return err;
		i += c;
	}
	return 0;
}

/* Writes every cached sector to the image and drops it from the cache. */
static int write_back(struct blk_store *s)
{
	for (uint64_t b = 0; b < s->nbucket && s->nent; b++) {
		while (s->bucket[b]) {
			struct blk_cache_ent *e = s->bucket[b];
			struct iovec v = {e->data, SECT};
			int err = write_image(s, e->lba, 1, &v, 1);
			if (err < 0)
				return err;
			s->bucket[b] = e->next;
			free(e);
			s->nent--;
		}
	}
	return 0;
}

int blk_store_flush(struct blk_store *s)
{
	int err = write_back(s);
	if (err < 0)
		return err;
	if (fdatasync(s->fd) < 0 && errno != EINVAL && errno != EROFS)
		return -errno;
	return 0;
}

uint64_t blk_store_discard_cache(struct blk_store *s)
{
	uint64_t lost = s->nent;
	for (uint64_t b = 0; b < s->nbucket; b++) {
		struct blk_cache_ent *e = s->bucket[b];
		while (e) {
			struct blk_cache_ent *n = e->next;
			free(e);
			e = n;
		}
		s->bucket[b] = NULL;
	}
	s->nent = 0;
	return lost;
}

void blk_store_foreach(struct blk_store *s,
		       void (*fn)(void *opaque, uint64_t lba, const uint8_t *data), void *opaque)
{
	for (uint64_t b = 0; b < s->nbucket; b++)
		for (struct blk_cache_ent *e = s->bucket[b]; e; e = e->next)
			fn(opaque, e->lba, e->data);
}

int blk_store_cache_put(struct blk_store *s, uint64_t lba, const uint8_t *data)
{
	int err;
	if (lba >= s->sectors)
		return -ERANGE;
	struct blk_cache_ent *e = cache_get(s, lba, &err);
	if (!e)
		return err;
	memcpy(e->data, data, SECT);
	return 0;
}
