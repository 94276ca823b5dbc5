/* netpath.h — the per-NIC datapath every Ethernet frame of a VM NIC crosses, on
 * both backends: virtio-net (kvm) hands it what the guest transmits and what it
 * reads from the TAP; the sandbox backend feeds it frames from its TAP/veth pair.
 * Faults are enforced here, in the provium process, because this host has no
 * netem (ENVIRONMENT.md).
 *
 * One `struct netpath` per NIC endpoint, two directions:
 *   NETPATH_TO_HOST   guest -> host (what the guest transmits; ends in the TAP)
 *   NETPATH_TO_GUEST  host -> guest (what the TAP delivers; ends in the guest)
 * The owner installs one sink per direction (where a frame goes once it passes).
 * netpath_send() runs every frame through:
 *   1. link state: link down drops everything, both ways (counted as dropped);
 *   2. the rule list, in order (netpath_rule below): each rule that matches the
 *      frame's direction (and its optional `match` predicate) and wins its
 *      probability draw contributes its action — DROP ends evaluation; DELAY adds
 *      delay_ns (+ uniform jitter); DUPLICATE and CORRUPT set flags;
 *   3. the capture hook (every frame that survived, before delay, with the
 *      direction and a timestamp; the networking issue's libpcap writer goes here);
 *   4. delivery: immediately through the sink, or — when delayed — copied onto the
 *      event loop's timer queue, so latency never blocks the vCPU, the event loop
 *      or other NICs. That queue holds at most NETPATH_MAX_DELAYED_FRAMES frames
 *      and NETPATH_MAX_DELAYED_BYTES bytes per direction; a frame that does not
 *      fit is dropped and counted (`overflowed`), as a router's full queue would. A duplicate is delivered twice; a corrupt frame has one
 *      pseudo-random byte flipped in a private copy (the caller's buffer is never
 *      written).
 * Frames are plain Ethernet frames (no virtio-net header, no FCS).
 *
 * Threading: every function may be called from any thread; a mutex guards rules,
 * link state and counters. Sinks and the capture hook run WITHOUT that mutex (on
 * the caller's thread for immediate frames, on the event-loop thread for delayed
 * ones) and must not call netpath_destroy(). Extension: new actions go into
 * enum netpath_action; new match kinds are just `match` predicates (e.g. by MAC
 * pair for partitions), so nothing here changes for them. */
#ifndef PROVIUM_NETPATH_H
#define PROVIUM_NETPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct netpath;

enum netpath_dir {
	NETPATH_TO_HOST = 0,   /* guest -> host (guest TX) */
	NETPATH_TO_GUEST = 1,  /* host -> guest (guest RX) */
};
#define NETPATH_DIR_BIT(d) (1u << (d))
#define NETPATH_BOTH (NETPATH_DIR_BIT(NETPATH_TO_HOST) | NETPATH_DIR_BIT(NETPATH_TO_GUEST))

enum netpath_action {
	NETPATH_PASS = 0,      /* matches but changes nothing (count-only rule) */
	NETPATH_DROP,
	NETPATH_DELAY,         /* delay_ns (+ jitter_ns) before delivery */
	NETPATH_DUPLICATE,     /* deliver twice */
	NETPATH_CORRUPT,       /* flip one byte of the delivered copy */
};

/* The delay queue's limits, per direction (netem's default limit is 1000 frames). */
#define NETPATH_MAX_DELAYED_FRAMES 1024u
#define NETPATH_MAX_DELAYED_BYTES (2u << 20)

/* What netpath_send() did with a frame. */
enum netpath_verdict {
	NETPATH_DELIVERED = 0, /* the sink took it (and returned 0) */
	NETPATH_DROPPED,       /* link down, a DROP rule, or the sink refused it */
	NETPATH_QUEUED,        /* delayed: the sink runs later on the event loop */
};

/* Optional predicate: true when the rule applies to this frame. Runs with the
 * netpath's mutex held: it must be quick and must not call netpath functions. */
typedef bool (*netpath_match_fn)(void *opaque, enum netpath_dir dir,
				 const uint8_t *frame, size_t len);

/* A rule as the caller describes it; netpath_add_rule() copies it. */
struct netpath_rule {
	enum netpath_action action;
	unsigned dirs;            /* NETPATH_DIR_BIT()s; 0 means both */
	double probability;       /* 0 < p <= 1 applies with p; 0 means always */
	uint64_t delay_ns;        /* NETPATH_DELAY */
	uint64_t jitter_ns;       /* NETPATH_DELAY: + uniform [0, jitter_ns] */
	uint64_t count;           /* apply to at most this many frames; 0 = no limit */
	netpath_match_fn match;   /* NULL = every frame in `dirs` */
	void *match_opaque;
	/* Called when the rule is removed (or the netpath destroyed); may be NULL. */
	void (*free_opaque)(void *opaque);
	const char *label;        /* for messages (the owner's rule name); copied */
};

/* Where a passing frame goes. Return 0 when delivered, -errno when it could not
 * be (e.g. the guest has no receive buffers): it then counts as dropped. */
typedef int (*netpath_sink_fn)(void *opaque, enum netpath_dir dir,
			       const uint8_t *frame, size_t len);
/* Sees every frame that passed the link and the rules (before any delay).
 * time_ns is pv_wall_ns() at that moment. */
typedef void (*netpath_capture_fn)(void *opaque, enum netpath_dir dir, uint64_t time_ns,
				   const uint8_t *frame, size_t len);

struct netpath_dir_counters {
	uint64_t packets, bytes;  /* delivered by the sink (a duplicate counts twice) */
	uint64_t dropped;         /* link down + DROP rules + refused by the sink + overflowed */
	uint64_t delayed;         /* frames that went through the timer queue */
	uint64_t overflowed;      /* delayed frames dropped: the delay queue was full */
	uint64_t duplicated, corrupted;
};

struct netpath_counters {
	struct netpath_dir_counters dir[2]; /* [NETPATH_TO_HOST], [NETPATH_TO_GUEST] */
};

/* name is used in messages ("net0"). loop may be NULL: DELAY rules then fail to
 * be added (-ENOTSUP). seed makes probabilities and corruption reproducible
 * (0 = seed from the clock). */
int netpath_create(const char *name, struct evloop *loop, uint64_t seed, struct netpath **out);
/* Cancels delayed frames and frees the rules. Call with the event loop stopped or
 * from its thread, never from a sink. NULL is fine. */
void netpath_destroy(struct netpath *np);
const char *netpath_name(const struct netpath *np);

/* Sets the event loop for delayed frames when it was not known at create (a NIC
 * made before its VM). Call before any DELAY rule is added. */
void netpath_set_loop(struct netpath *np, struct evloop *loop);

void netpath_set_sink(struct netpath *np, enum netpath_dir dir, netpath_sink_fn fn, void *opaque);
void netpath_set_capture(struct netpath *np, netpath_capture_fn fn, void *opaque);

/* Runs one frame through the path (see top). Never blocks. */
enum netpath_verdict netpath_send(struct netpath *np, enum netpath_dir dir,
				  const uint8_t *frame, size_t len);

/* Link state (up after create). Down drops every frame both ways. */
void netpath_set_link(struct netpath *np, bool up);
bool netpath_link_up(struct netpath *np);

/* Rules: returns an id > 0 or -errno (EINVAL for a bad rule, ENOTSUP for DELAY
 * without an event loop). Rules apply to frames sent after the call. */
int netpath_add_rule(struct netpath *np, const struct netpath_rule *rule);
int netpath_del_rule(struct netpath *np, int id);  /* 0 or -ENOENT */
void netpath_clear_rules(struct netpath *np);
/* How many frames rule `id` has applied to so far (-ENOENT when gone). */
int64_t netpath_rule_hits(struct netpath *np, int id);
unsigned netpath_rule_count(struct netpath *np);

void netpath_counters(struct netpath *np, struct netpath_counters *out);
void netpath_reset_counters(struct netpath *np);
/* Delayed frames not yet delivered. */
unsigned netpath_pending(struct netpath *np);

#endif
