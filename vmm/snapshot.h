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
