/* netpath.c — the per-NIC datapath (devices/netpath.h): link state, the ordered
 * rule list with per-frame verdicts, the capture hook, counters, and delayed
 * delivery on the event loop's timer queue. */
#include "devices/netpath.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct np_rule {
	struct netpath_rule r;
	int id;
	uint64_t hits;
	char label[64];
	struct np_rule *next;
};

struct np_delayed {
	struct netpath *np;
	enum netpath_dir dir;
	int64_t timer;
	unsigned copies;
	size_t len;
	struct np_delayed *prev, *next;
	uint8_t data[];
};

struct netpath {
	char name[32];
	struct evloop *loop;
	pthread_mutex_t lock;
	bool link_up;
	uint64_t rng;
	struct np_rule *rules;
	int next_id;
	netpath_sink_fn sink[2];
	void *sink_opaque[2];
	netpath_capture_fn capture;
	void *capture_opaque;
	struct netpath_counters c;
	struct np_delayed *pending;
	unsigned npending;
	unsigned dir_pending[2];        /* frames and bytes queued per direction */
	size_t dir_bytes[2];
};

/* xorshift64*: cheap and reproducible from the seed. lock held. */
static uint64_t rnd(struct netpath *np)
{
	uint64_t x = np->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	np->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static double rnd_unit(struct netpath *np)
{
	return (double)(rnd(np) >> 11) * (1.0 / 9007199254740992.0);
}

int netpath_create(const char *name, struct evloop *loop, uint64_t seed, struct netpath **out)
{
	struct netpath *np = calloc(1, sizeof(*np));
	if (!np)
		return pv_error(ENOMEM, "netpath %s: out of memory", name);
	snprintf(np->name, sizeof(np->name), "%s", name ? name : "nic");
	int err = pthread_mutex_init(&np->lock, NULL);
	if (err) {
		free(np);
		return pv_error(err, "netpath %s: mutex: %s", np->name, strerror(err));
	}
	np->loop = loop;
	np->link_up = true;
	np->rng = seed ? seed : (pv_now_ns() | 1);
	np->next_id = 1;
	*out = np;
	return 0;
}

static void rule_free(struct np_rule *r)
{
	if (r->r.free_opaque)
		r->r.free_opaque(r->r.match_opaque);
	free(r);
}

void netpath_destroy(struct netpath *np)
{
	if (!np)
		return;
	pthread_mutex_lock(&np->lock);
	struct np_delayed *d = np->pending;
	np->pending = NULL;
	pthread_mutex_unlock(&np->lock);
	while (d) {
		struct np_delayed *n = d->next;
		if (np->loop)
			evloop_cancel_timer(np->loop, d->timer);
		free(d);
		d = n;
	}
	netpath_clear_rules(np);
	pthread_mutex_destroy(&np->lock);
	free(np);
}

const char *netpath_name(const struct netpath *np)
{
	return np->name;
}

void netpath_set_loop(struct netpath *np, struct evloop *loop)
{
	pthread_mutex_lock(&np->lock);
	if (!np->pending)
		np->loop = loop;
	pthread_mutex_unlock(&np->lock);
}

void netpath_set_sink(struct netpath *np, enum netpath_dir dir, netpath_sink_fn fn, void *opaque)
{
	pthread_mutex_lock(&np->lock);
	np->sink[dir & 1] = fn;
	np->sink_opaque[dir & 1] = opaque;
	pthread_mutex_unlock(&np->lock);
}

void netpath_set_capture(struct netpath *np, netpath_capture_fn fn, void *opaque)
{
	pthread_mutex_lock(&np->lock);
	np->capture = fn;
	np->capture_opaque = opaque;
	pthread_mutex_unlock(&np->lock);
}

void netpath_set_link(struct netpath *np, bool up)
{
	pthread_mutex_lock(&np->lock);
	np->link_up = up;
	pthread_mutex_unlock(&np->lock);
}

bool netpath_link_up(struct netpath *np)
{
	pthread_mutex_lock(&np->lock);
	bool up = np->link_up;
	pthread_mutex_unlock(&np->lock);
	return up;
}

/* Delivers `copies` copies through the sink; counts. No lock held. The copies are
 * counted as delivered before the sink runs, and moved to `dropped` after if it
 * refused them: the receiver may act on a frame at once (a guest's ping gets its
 * last reply and exits), and a counter read after that must include it. */
static enum netpath_verdict deliver(struct netpath *np, enum netpath_dir dir,
				    const uint8_t *frame, size_t len, unsigned copies)
{
	pthread_mutex_lock(&np->lock);
	netpath_sink_fn sink = np->sink[dir];
	void *opaque = np->sink_opaque[dir];
	struct netpath_dir_counters *c = &np->c.dir[dir];
	c->packets += copies;
	c->bytes += copies * (uint64_t)len;
	pthread_mutex_unlock(&np->lock);
	unsigned ok = 0;
	for (unsigned i = 0; i < copies; i++)
		if (sink && sink(opaque, dir, frame, len) == 0)
			ok++;
	if (ok < copies) {
		pthread_mutex_lock(&np->lock);
		/* (saturating: a counter reset may have come in between) */
		uint64_t n = copies - ok;
		c->packets -= n < c->packets ? n : c->packets;
		c->bytes -= n * len < c->bytes ? n * len : c->bytes;
		c->dropped += n;
		pthread_mutex_unlock(&np->lock);
	}
	return ok ? NETPATH_DELIVERED : NETPATH_DROPPED;
}

static void delayed_fire(void *opaque)
{
	struct np_delayed *d = opaque;
	struct netpath *np = d->np;
	pthread_mutex_lock(&np->lock);
	if (d->prev)
		d->prev->next = d->next;
	else
		np->pending = d->next;
	if (d->next)
		d->next->prev = d->prev;
	np->npending--;
	np->dir_pending[d->dir]--;
	np->dir_bytes[d->dir] -= d->len;
	pthread_mutex_unlock(&np->lock);
	deliver(np, d->dir, d->data, d->len, d->copies);
	free(d);
}

enum netpath_verdict netpath_send(struct netpath *np, enum netpath_dir dir,
				  const uint8_t *frame, size_t len)
{
	dir &= 1;
	uint64_t delay = 0;
	bool dup = false, corrupt = false;
	size_t flip = 0;
	uint8_t flip_mask = 0;

	pthread_mutex_lock(&np->lock);
	struct netpath_dir_counters *c = &np->c.dir[dir];
	if (!np->link_up)
		goto drop;
	for (struct np_rule *r = np->rules; r; r = r->next) {
		unsigned dirs = r->r.dirs ? r->r.dirs : NETPATH_BOTH;
		if (!(dirs & NETPATH_DIR_BIT(dir)))
			continue;
		if (r->r.count && r->hits >= r->r.count)
			continue;
		if (r->r.match && !r->r.match(r->r.match_opaque, dir, frame, len))
			continue;
		if (r->r.probability > 0 && r->r.probability < 1 &&
		    rnd_unit(np) >= r->r.probability)
			continue;
		r->hits++;
		switch (r->r.action) {
		case NETPATH_PASS:
			break;
		case NETPATH_DROP:
			goto drop;
		case NETPATH_DELAY:
			delay += r->r.delay_ns;
			if (r->r.jitter_ns)
				delay += rnd(np) % (r->r.jitter_ns + 1);
			break;
		case NETPATH_DUPLICATE:
			dup = true;
			break;
		case NETPATH_CORRUPT:
			if (len) {
				corrupt = true;
				flip = rnd(np) % len;
				flip_mask = (uint8_t)(1u << (rnd(np) % 8));
			}
			break;
		}
	}
	netpath_capture_fn cap = np->capture;
	void *cap_opaque = np->capture_opaque;
	c->duplicated += dup;
	c->corrupted += corrupt;
	struct np_delayed *d = NULL;
	if (delay && (np->dir_pending[dir] >= NETPATH_MAX_DELAYED_FRAMES ||
		      len > NETPATH_MAX_DELAYED_BYTES - np->dir_bytes[dir])) {
		c->overflowed++;
		goto drop; /* the queue is full: no copy is made */
	}
	if (delay || corrupt) {
		/* A private copy: corruption never writes the caller's buffer, and a
		 * delayed frame outlives it. */
		d = malloc(sizeof(*d) + len);
		if (!d)
			goto drop;
		memcpy(d->data, frame, len);
		if (corrupt)
			d->data[flip] ^= flip_mask;
		d->np = np;
		d->dir = dir;
		d->len = len;
		d->copies = dup ? 2 : 1;
	}
	if (d && delay) {
		if (!np->loop) {
			free(d);
			goto drop;
		}
		c->delayed++;
		d->prev = NULL;
		d->next = np->pending;
		if (np->pending)
			np->pending->prev = d;
		np->pending = d;
		np->npending++;
		np->dir_pending[dir]++;
		np->dir_bytes[dir] += len;
		/* The timer is added under the lock so destroy sees its id; the
		 * callback takes the lock itself, on the loop thread, later. */
		d->timer = evloop_add_timer(np->loop, delay, delayed_fire, d);
		if (d->timer < 0) {
			np->pending = d->next;
			if (d->next)
				d->next->prev = NULL;
			np->npending--;
			np->dir_pending[dir]--;
			np->dir_bytes[dir] -= len;
			c->delayed--;
			free(d);
			goto drop;
		}
	}
	pthread_mutex_unlock(&np->lock);

	if (cap)
		cap(cap_opaque, dir, pv_wall_ns(), d ? d->data : frame, len);
	if (d && delay)
		return NETPATH_QUEUED;
	if (d) {
		enum netpath_verdict v = deliver(np, dir, d->data, len, d->copies);
		free(d);
		return v;
	}
	return deliver(np, dir, frame, len, dup ? 2 : 1);

drop:
	c->dropped++;
	pthread_mutex_unlock(&np->lock);
	return NETPATH_DROPPED;
}

int netpath_add_rule(struct netpath *np, const struct netpath_rule *rule)
{
	if (!rule || rule->action > NETPATH_CORRUPT || rule->probability < 0 ||
	    rule->probability > 1 || (rule->dirs & ~NETPATH_BOTH))
		return pv_error(EINVAL, "netpath %s: bad rule", np->name);
	if (rule->action == NETPATH_DELAY && !np->loop)
		return pv_error(ENOTSUP, "netpath %s: delay rules need an event loop", np->name);
	struct np_rule *r = calloc(1, sizeof(*r));
	if (!r)
		return pv_error(ENOMEM, "netpath %s: out of memory", np->name);
	r->r = *rule;
	snprintf(r->label, sizeof(r->label), "%s", rule->label ? rule->label : "");
	r->r.label = r->label;
	pthread_mutex_lock(&np->lock);
	r->id = np->next_id++;
	struct np_rule **pp = &np->rules;
	while (*pp)
		pp = &(*pp)->next;
	*pp = r;
	pthread_mutex_unlock(&np->lock);
	return r->id;
}

int netpath_del_rule(struct netpath *np, int id)
{
	pthread_mutex_lock(&np->lock);
	for (struct np_rule **pp = &np->rules; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct np_rule *r = *pp;
			*pp = r->next;
			pthread_mutex_unlock(&np->lock);
			rule_free(r);
			return 0;
		}
	}
	pthread_mutex_unlock(&np->lock);
	return -ENOENT;
}

void netpath_clear_rules(struct netpath *np)
{
	pthread_mutex_lock(&np->lock);
	struct np_rule *r = np->rules;
	np->rules = NULL;
	pthread_mutex_unlock(&np->lock);
	while (r) {
		struct np_rule *n = r->next;
		rule_free(r);
		r = n;
	}
}

int64_t netpath_rule_hits(struct netpath *np, int id)
{
	int64_t hits = -ENOENT;
	pthread_mutex_lock(&np->lock);
	for (struct np_rule *r = np->rules; r; r = r->next)
		if (r->id == id)
			hits = (int64_t)r->hits;
	pthread_mutex_unlock(&np->lock);
	return hits;
}

unsigned netpath_rule_count(struct netpath *np)
{
	unsigned n = 0;
	pthread_mutex_lock(&np->lock);
	for (struct np_rule *r = np->rules; r; r = r->next)
		n++;
	pthread_mutex_unlock(&np->lock);
	return n;
}

void netpath_counters(struct netpath *np, struct netpath_counters *out)
{
	pthread_mutex_lock(&np->lock);
	*out = np->c;
	pthread_mutex_unlock(&np->lock);
}

void netpath_reset_counters(struct netpath *np)
{
	pthread_mutex_lock(&np->lock);
	memset(&np->c, 0, sizeof(np->c));
	pthread_mutex_unlock(&np->lock);
}

unsigned netpath_pending(struct netpath *np)
{
	pthread_mutex_lock(&np->lock);
	unsigned n = np->npending;
	pthread_mutex_unlock(&np->lock);
	return n;
}
