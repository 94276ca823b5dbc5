/* virtio_blk_int.h — virtio-blk's private state, shared by virtio_blk.c (the
 * device and its API) and virtio_blk_faults.c (the fault rules). Nothing else
 * includes it; everyone else uses devices/virtio_blk.h. */
#ifndef PROVIUM_VIRTIO_BLK_INT_H
#define PROVIUM_VIRTIO_BLK_INT_H

#include "devices/blk_store.h"
#include "devices/virtio.h"
#include "devices/virtio_blk.h"

#include <linux/virtio_blk.h>
#include <pthread.h>

#define SECT VIRTIO_BLK_SECTOR
#define MAX_FAULTS 64
#define MAX_DZ_SEGS 16 /* discard / write-zeroes segments per request */
/* Requests a `slow` rule may hold: a queue's worth (its size) still to be
 * answered, which is all a driver that waits for its buffers can have in flight,
 * and at most BLK_MAX_DELAYED in all, counting those a reset cancelled whose
 * timers have not fired yet. A guest that republishes heads without waiting gets
 * IOERR for the rest at once (docs/security.md). */
#define BLK_MAX_DELAYED (2 * VIRTQ_MAX_SIZE)

struct blk_rule {
	struct virtio_blk_fault f;
	uint64_t remaining;  /* for count-limited rules */
	uint64_t rng;
};

struct blk_seg {
	uint64_t sector, nsect;
	bool unmap;
};

/* One request as the device took it. Every field the guest controls is copied
 * here once by parse() and checked there; nothing after parse() reads the header
 * or the segments from guest memory again (the guest may rewrite them while a
 * `slow` rule holds the request, or from another vCPU). */
struct blk_req {
	struct virtio_blk *b;
	struct blk_req *next, *prev; /* b->pending */
	bool cancelled;              /* reset/detach already dealt with it */
	uint32_t type;
	uint64_t sector, nsect;      /* IN/OUT: checked against the capacity */
	unsigned nseg;               /* DISCARD/WRITE_ZEROES: the checked copy */
	struct blk_seg seg[MAX_DZ_SEGS];
	bool drop;                   /* a DROP_WRITES rule hit it */
	struct virtq_elem elem;
};

struct virtio_blk {
	struct virtio_dev vdev;
	struct virtio_blk_config cfg;
	char path[4096];
	bool own_path;               /* temporary image: unlink on destroy */
	char serial[VIRTIO_BLK_ID_BYTES];
	bool readonly;
	struct evloop *loop;         /* delayed completions */

	pthread_mutex_t lock;        /* everything below */
	struct blk_store store;
	struct blk_rule rules[MAX_FAULTS];
	size_t nrules;
	int next_rule_id;
	struct virtio_blk_stats stats;
	bool detached;
	struct blk_req *pending;     /* requests waiting on a timer */
	unsigned npending;           /* ... how many (<= BLK_MAX_DELAYED) */
	unsigned nlive;              /* ... not cancelled (<= the queue size) */
};

struct blk_verdict {
	bool fail, drop;
	unsigned delay_ms;
};

/* virtio_blk_faults.c, with b->lock held: the rules' verdict for a request
 * covering sectors [lo, hi] (flushes: only SLOW rules apply), and the CORRUPT
 * rules applied to the data a read returns. */
struct blk_verdict blk_judge(struct virtio_blk *b, bool is_read, bool is_flush,
			     uint64_t lo, uint64_t hi);
void blk_apply_corrupt(struct virtio_blk *b, struct blk_req *q, const struct iovec *iov,
		       unsigned n);

#endif
