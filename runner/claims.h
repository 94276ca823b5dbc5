/* claims.h — the parent's arbitration of lab:claim and lab:barrier across the
 * workers of one run (runner/worker.h). Claims: named resources with a capacity,
 * granted in FIFO order, released by the holder or when its worker exits.
 * Barriers: by name; every waiter is released when `parties` arrivals happened across
 * all workers, each told its 1-based arrival index; then the barrier is reusable. */
#ifndef PROVIUM_CLAIMS_H
#define PROVIUM_CLAIMS_H

#include <stdbool.h>
#include <stdint.h>

struct claims;
/* Sends {k="reply", id, ok, index|message} to worker `worker`. */
typedef void (*claims_reply_fn)(void *ctx, int worker, uint64_t id, bool ok, uint64_t index,
				const char *message);

struct claims *claims_new(claims_reply_fn reply, void *ctx);
void claims_free(struct claims *c);
void claims_acquire(struct claims *c, int worker, uint64_t id, const char *resource,
		    uint64_t count, uint64_t capacity);
void claims_release(struct claims *c, int worker, const char *resource, uint64_t count);
void claims_barrier(struct claims *c, int worker, uint64_t id, const char *name,
		    uint64_t parties);
/* Releases everything `worker` held, drops its queued claims and barrier arrivals. */
void claims_worker_exit(struct claims *c, int worker);
/* Units of `resource` held now (tests and status). */
uint64_t claims_in_use(const struct claims *c, const char *resource);

#endif
