/* snapshot.h — the snapshot directory's files (vmm/snapshot_file.c), separate from
 * the VM-state code (vmm/snapshot.c) so unit tests can check the format without
 * KVM. docs/snapshots.md describes the format.
 *
 *   vm.state   magic "PVSNAP\r\n" | u32 format version | u32 0 | u64 state length |
 *              msgpack state | u32 CRC-32 (IEEE) of everything before it; all LE
 *   memory     raw guest RAM, sparse (holes read as zero)
 *   disk-*.img copies of the VM's disk images (the restored VM works on a copy)
 *   written    the pages the VM restored last wrote (snapshot_writes.c; a hint) */
#ifndef PROVIUM_SNAPSHOT_H
#define PROVIUM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_MAGIC "PVSNAP\r\n"
#define SNAPSHOT_VERSION 1u
#define SNAPSHOT_HEADER_SIZE 24u
#define SNAPSHOT_STATE_FILE "vm.state"
#define SNAPSHOT_MEMORY_FILE "memory"
#define SNAPSHOT_WRITES_FILE "written" /* snapshot_writes.c: a hint, not part of the state */

uint32_t snapshot_crc32(uint32_t crc, const void *buf, size_t len);

/* Writes header + state + CRC to `path` (through a temporary file and rename). */
int snapshot_state_write(const char *path, const void *state, size_t len);
/* Reads and checks `path`: refuses (-EINVAL, message naming the file) a bad magic,
 * another format version, a truncated file or a CRC mismatch. *state is malloc'd. */
int snapshot_state_read(const char *path, void **state, size_t *len);

/* Writes guest RAM to `path` as a sparse file of `size` bytes. Only pages that can
 * hold data are written: the data ranges of `backing_fd` (SEEK_DATA; -1: none, as
 * for fresh anonymous RAM) and the anonymous pages of the mapping, which the guest
 * wrote or read in (from /proc/self/pagemap). */
int snapshot_memory_write(const char *path, const void *mem, uint64_t size, int backing_fd);
/* Sets bit n of `bm` for each page n of the private mapping `mem` (`size` bytes)
 * that has a copy of its own (written, or swapped out), from /proc/self/pagemap.
 * 0, or -errno with the message set. */
int snapshot_private_pages(const void *mem, uint64_t size, uint8_t *bm);
/* The scan under it: sets bit n of `bm` for each page n of `mem` whose pagemap
 * entry `keep` accepts; the number of them, or -errno (no message set). */
int64_t snapshot_pagemap_scan(const void *mem, uint64_t size, bool (*keep)(uint64_t entry),
			      uint8_t *bm);

/* A restore's write set (snapshot_writes.c): apply copies in the pages the last VM
 * restored from `dir` wrote (its SNAPSHOT_WRITES_FILE; none when missing or
 * malformed) into `mem`, a private mapping of the memory file `mem_fd`, and returns
 * the tracker (NULL: out of memory). save, when the VM is done, replaces the file
 * with the pages this VM wrote, unless it wrote none or more than the cap. */
#define SNAPSHOT_WRITES_MAX_PAGES 8192u /* 32 MiB */
struct snapshot_writes;
struct snapshot_writes *snapshot_writes_apply(const char *dir, void *mem, uint64_t size,
					      int mem_fd);
uint64_t snapshot_writes_prewritten(const struct snapshot_writes *w);
int snapshot_writes_save(struct snapshot_writes *w, const void *mem);
void snapshot_writes_free(struct snapshot_writes *w);

/* The RAM of a snapshotted VM, handed to the next restore of that snapshot in this
 * process (snapshot_warm.c, docs/vmm.md). begin, with the VM paused and before the
 * memory file is written: clears the process's soft-dirty bits; the generation, or
 * 0 when this kernel does not keep them. claim, once the file is complete: a claim
 * on it (NULL for generation 0 or when it cannot be opened). give, when nothing
 * writes `mem` any more: puts the file's bytes back into the pages written since
 * the clear and caches `mem` (true: the caller must not unmap it); false when a
 * later clear ended the claim, more than SNAPSHOT_WARM_MAX_REPAIR pages were
 * written, the file changed or is gone, or a read failed. take,
 * at a restore with the memory file open: the cached RAM of that file, or NULL.
 * forget: drops the cached RAM of a memory file about to be removed. */
#define SNAPSHOT_WARM_MAX 2 /* cached RAMs; the oldest is dropped for a third */
#define SNAPSHOT_WARM_MAX_REPAIR 16384u /* pages (64 MiB) written since: not kept */
struct snapshot_warm;
struct snapshot_warm_stats {
	int usable;              /* soft-dirty bits: 1 kept, -1 not, 0 not tried yet */
	unsigned cached;         /* RAMs in the cache now */
	uint64_t given, taken, evicted;
	uint64_t dirty_pages;    /* pages written after their snapshot, over all gives */
	uint64_t repaired_pages; /* of them, the ones that differed from the file */
};
uint64_t snapshot_warm_begin(void);
struct snapshot_warm *snapshot_warm_claim(uint64_t gen, const char *memory_path);
bool snapshot_warm_give(const struct snapshot_warm *c, void *mem, uint64_t size);
void snapshot_warm_free(struct snapshot_warm *c);
void *snapshot_warm_take(int fd, uint64_t size);
void snapshot_warm_forget(const char *memory_path);
void snapshot_warm_stats(struct snapshot_warm_stats *s);

/* Copies a file keeping holes (FICLONE reflink when the file system can). */
int snapshot_copy_file(const char *src, const char *dst);

/* Snapshot directories on disk, for `provium snapshots` (runner/cmd_snapshots.c) and
 * the Lua cache (lua/snapshot.c). snapshot_du: bytes allocated under `path` (memory
 * files are sparse), 0 when it is missing. snapshot_rm_tree: removes `path` and
 * everything below it; -errno of the lstat/rmdir/unlink of `path` itself (-ENOENT
 * when missing), errors below it are ignored. No message is set. */
uint64_t snapshot_du(const char *path);
int snapshot_rm_tree(const char *path);

#endif
