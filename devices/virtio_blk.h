/* virtio_blk.h — the virtio-blk device's C API: create over a raw image (or a
 * sparse one made from a size), attach to a VM, fault rules, cache mode and crash,
 * host-side sector access, stats, detach. The Lua Disk userdata wraps this.
 *
 * Every function here is thread-safe and may be called while the guest runs; fault
 * rules and the cache mode take effect from the next request the device takes.
 * Ownership: after virtio_blk_attach() succeeds the VM owns the device (freed by
 * vm_destroy()); before that, the caller frees it with virtio_blk_destroy(). */
#ifndef PROVIUM_VIRTIO_BLK_H
#define PROVIUM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct evloop;
struct virtio_blk;
struct virtio_dev;

#define VIRTIO_BLK_SECTOR 512u

struct virtio_blk_opts {
	const char *id;      /* device name for messages and the guest ("vda"); default "vda" */
	const char *path;    /* raw image; created sparse with `size` when it does not exist;
			      * NULL with `size`: a temporary image, removed on destroy */
	uint64_t size;       /* bytes, for a new image (rounded up to 512) */
	bool readonly;       /* VIRTIO_BLK_F_RO; guest writes fail with IOERR */
	const char *serial;  /* GET_ID answer (at most 20 bytes used); default id */
};

int virtio_blk_create(const struct virtio_blk_opts *o, struct virtio_blk **out);
/* Puts the device on the VM's MMIO bus with an IRQ and a command-line entry; the VM
 * then owns it. */
int virtio_blk_attach(struct virtio_blk *b, struct vm *vm);
/* Frees a device that was never attached (the VM frees attached ones). The event
 * loop that served its slow-I/O timers must no longer be running. */
void virtio_blk_destroy(struct virtio_blk *b);

/* Test seam: the transport part (for virtio_dev_bind_mem and the mmio handlers)
 * and the event loop used for delayed completions when there is no VM. */
struct virtio_dev *virtio_blk_vdev(struct virtio_blk *b);
void virtio_blk_set_evloop(struct virtio_blk *b, struct evloop *loop);

/* ---- fault rules ---- */
enum virtio_blk_fault_kind {
	VIRTIO_BLK_FAIL_READS,   /* the guest's read gets VIRTIO_BLK_S_IOERR */
	VIRTIO_BLK_FAIL_WRITES,  /* write/discard/write-zeroes get IOERR, nothing written */
	VIRTIO_BLK_SLOW,         /* completion delayed by delay_ms on a timer */
	VIRTIO_BLK_DROP_WRITES,  /* reported as success, nothing written */
	VIRTIO_BLK_CORRUPT,      /* data returned for sectors in range: byte `offset` ^= xor */
};

struct virtio_blk_fault {
	enum virtio_blk_fault_kind kind;
	uint64_t from, to;       /* LBA range, inclusive (a request overlapping it matches) */
	uint64_t count;          /* how many requests it may still hit; 0 = unlimited */
	double probability;      /* 0..1 chance per matching request */
	uint64_t seed;           /* PRNG seed for probability; 0 = random */
	unsigned delay_ms;       /* SLOW */
	bool reads_only, writes_only; /* SLOW */
	unsigned offset;         /* CORRUPT: byte within the sector (0..511) */
	uint8_t xor;             /* CORRUPT: bits to flip (default 0xff) */
	int id;                  /* set by virtio_blk_fault_add */
	uint64_t hits;           /* requests this rule acted on (read back by list) */
};

/* Defaults: whole disk, unlimited, probability 1, xor 0xff. */
void virtio_blk_fault_init(struct virtio_blk_fault *f, enum virtio_blk_fault_kind kind);
/* Returns the rule id (> 0) or -errno (bad kind, range, probability, offset). */
int virtio_blk_fault_add(struct virtio_blk *b, const struct virtio_blk_fault *f);
int virtio_blk_fault_remove(struct virtio_blk *b, int id);
void virtio_blk_faults_clear(struct virtio_blk *b);
/* Copies up to max active rules into out; returns how many are active. */
size_t virtio_blk_faults_list(struct virtio_blk *b, struct virtio_blk_fault *out, size_t max);
const char *virtio_blk_fault_kind_name(enum virtio_blk_fault_kind k);

/* ---- cache, crash ---- */
enum virtio_blk_cache { VIRTIO_BLK_CACHE_NONE, VIRTIO_BLK_CACHE_WRITEBACK };
/* Switching writeback -> none writes the cache to the image first. */
int virtio_blk_set_cache(struct virtio_blk *b, enum virtio_blk_cache mode);
enum virtio_blk_cache virtio_blk_get_cache(struct virtio_blk *b);
/* Power loss: every write the guest has not flushed is gone. Returns how many
 * sectors were discarded. (Freeing the device — vm_destroy() — writes the cache
 * out like a clean shutdown, so vm:crash() must call this first.) */
uint64_t virtio_blk_crash(struct virtio_blk *b);
/* Bytes held in the volatile cache. */
uint64_t virtio_blk_dirty_bytes(struct virtio_blk *b);

/* ---- host-side access (bypasses the guest and every fault rule) ----
 * Reads see unflushed cached writes; writes go to the image and replace cached
 * sectors they cover. */
int virtio_blk_read_sectors(struct virtio_blk *b, uint64_t lba, uint64_t count, void *buf);
int virtio_blk_write_sectors(struct virtio_blk *b, uint64_t lba, const void *buf, uint64_t count);

struct virtio_blk_stats {
	uint64_t reads, writes, read_bytes, write_bytes, flushes, errors;
};
void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *s);
uint64_t virtio_blk_size(struct virtio_blk *b);     /* bytes */
const char *virtio_blk_path(struct virtio_blk *b);
const char *virtio_blk_id(struct virtio_blk *b);

/* Removes the disk from the live guest: pending and later requests fail with
 * IOERR, the device signals DEVICE_NEEDS_RESET, cached writes are written to the
 * image first (completed writes are never lost). Host-side access keeps working. */
int virtio_blk_detach(struct virtio_blk *b);
bool virtio_blk_detached(struct virtio_blk *b);

/* Replaces the image under a live device (a pre-provisioned empty slot getting its
 * disk on a running VM): the old image is written out and closed, `path` opened
 * (created sparse with `size` when missing), the capacity updated and a config-change
 * interrupt sent so the guest driver sees the new size. serial may be NULL. */
int virtio_blk_insert(struct virtio_blk *b, const char *path, uint64_t size, const char *serial);

#endif
