/* blk_store.h — the storage under virtio-blk: a raw image file plus an optional
 * volatile writeback cache (sector -> data) that only a flush makes durable and a
 * crash discards. Not thread-safe by itself: virtio_blk.c calls it under its lock. */
#ifndef PROVIUM_BLK_STORE_H
#define PROVIUM_BLK_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_cache_ent;

/* Sectors the writeback cache holds at most (16 MiB of data). A write that needs
 * one more first writes the whole cache back to the image, as a real disk
 * destages its cache: a crash then loses only what is still cached. So whatever
 * a guest writes, the cache costs the host at most this much memory. */
#define BLK_CACHE_MAX_SECTORS (32u * 1024)

struct blk_store {
	int fd;
	uint64_t sectors;
	bool writeback;
	/* The cache: chained hash of 512-byte sectors. */
	struct blk_cache_ent **bucket;
	uint64_t nbucket, nent;
	uint64_t spills;            /* times the full cache was written back early */
};

int blk_store_open(struct blk_store *s, int fd, uint64_t sectors);
void blk_store_close(struct blk_store *s);
/* Reads/writes `nsect` sectors at `lba` to/from an iovec (exactly nsect*512 bytes).
 * These and blk_store_zero refuse (-ERANGE) any range that is not inside the disk,
 * whatever the caller checked before. */
int blk_store_readv(struct blk_store *s, uint64_t lba, uint64_t nsect,
		    const struct iovec *iov, unsigned n);
int blk_store_writev(struct blk_store *s, uint64_t lba, uint64_t nsect,
		     const struct iovec *iov, unsigned n);
/* Zeroes sectors (write-zeroes, discard); `unmap` punches a hole when not caching. */
int blk_store_zero(struct blk_store *s, uint64_t lba, uint64_t nsect, bool unmap);
/* Makes every cached write durable (writes it to the image, fdatasync). */
int blk_store_flush(struct blk_store *s);
/* Drops the cache; returns how many sectors were lost. */
uint64_t blk_store_discard_cache(struct blk_store *s);
/* Calls fn for every cached sector (snapshot save). */
void blk_store_foreach(struct blk_store *s,
		       void (*fn)(void *opaque, uint64_t lba, const uint8_t *data), void *opaque);
/* Puts one sector into the cache (snapshot load); -ENOMEM or -ERANGE. */
int blk_store_cache_put(struct blk_store *s, uint64_t lba, const uint8_t *data);
/* Drops cached copies of [lba, lba+nsect) (the image was written behind the cache). */
void blk_store_invalidate(struct blk_store *s, uint64_t lba, uint64_t nsect);

#endif
