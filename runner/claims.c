/* claims.c — claims and barriers arbitrated by the parent (see claims.h). Few
 * resources and waiters per run, so plain linked lists. */
#include "runner/claims.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hold {
	struct hold *next;
	int worker;
	uint64_t id; /* request id while waiting */
	uint64_t count;
};

struct resource {
	struct resource *next;
	char *name;
	uint64_t capacity, in_use;
	struct hold *holders;
	struct hold *waiters; /* FIFO: head is first */
};

struct barrier {
	struct barrier *next;
	char *name;
	uint64_t parties, arrived;
	struct hold *waiters; /* count = arrival index */
};

struct claims {
	claims_reply_fn reply;
	void *ctx;
	struct resource *res;
	struct barrier *bar;
};

struct claims *claims_new(claims_reply_fn reply, void *ctx)
{
	struct claims *c = calloc(1, sizeof(*c));
	if (c) {
		c->reply = reply;
		c->ctx = ctx;
	}
	return c;
}

static void free_holds(struct hold *h)
{
	while (h) {
		struct hold *n = h->next;
		free(h);
		h = n;
	}
}

void claims_free(struct claims *c)
{
	if (!c)
		return;
	for (struct resource *r = c->res, *n; r; r = n) {
		n = r->next;
		free_holds(r->holders);
		free_holds(r->waiters);
		free(r->name);
		free(r);
	}
	for (struct barrier *b = c->bar, *n; b; b = n) {
		n = b->next;
		free_holds(b->waiters);
		free(b->name);
		free(b);
	}
	free(c);
}

static struct resource *find_res(const struct claims *c, const char *name)
{
	for (struct resource *r = c->res; r; r = r->next)
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

static void append(struct hold **list, struct hold *h)
{
	while (*list)
		list = &(*list)->next;
	h->next = NULL;
	*list = h;
}

/* Queues worker's request id (count units, or its barrier place) at the end of
 * list. False when out of memory: the request has then had its failure reply. */
static bool add_waiter(struct claims *c, struct hold **list, int worker, uint64_t id,
		       uint64_t count)
{
	struct hold *w = calloc(1, sizeof(*w));
	if (!w) {
		c->reply(c->ctx, worker, id, false, 0, "out of memory");
		return false;
	}
	w->worker = worker;
	w->id = id;
	w->count = count;
	append(list, w);
	return true;
}

static void add_holding(struct resource *r, int worker, uint64_t count)
{
	r->in_use += count;
	for (struct hold *h = r->holders; h; h = h->next)
		if (h->worker == worker) {
			h->count += count;
			return;
		}
	struct hold *h = calloc(1, sizeof(*h));
	if (!h)
		return; /* accounted in in_use; released on worker exit by in_use reset below */
	h->worker = worker;
	h->count = count;
	append(&r->holders, h);
}

/* Grants queued claims in FIFO order while the head fits (no overtaking, so a large
 * claim is not starved by small ones). */
static void grant_waiters(struct claims *c, struct resource *r)
{
	while (r->waiters && r->in_use + r->waiters->count <= r->capacity) {
		struct hold *w = r->waiters;
		r->waiters = w->next;
		add_holding(r, w->worker, w->count);
		c->reply(c->ctx, w->worker, w->id, true, 0, NULL);
		free(w);
	}
}

void claims_acquire(struct claims *c, int worker, uint64_t id, const char *resource,
		    uint64_t count, uint64_t capacity)
{
	char msg[256];
	if (count == 0)
		count = 1;
	if (capacity == 0)
		capacity = 1;
	struct resource *r = find_res(c, resource);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || !(r->name = strdup(resource))) {
			free(r);
			c->reply(c->ctx, worker, id, false, 0, "out of memory");
			return;
		}
		r->capacity = capacity;
		r->next = c->res;
		c->res = r;
	}
	if (count > r->capacity) {
		snprintf(msg, sizeof(msg), "claim %s: %llu units asked, capacity is %llu", resource,
			 (unsigned long long)count, (unsigned long long)r->capacity);
		c->reply(c->ctx, worker, id, false, 0, msg);
		return;
	}
	if (!r->waiters && r->in_use + count <= r->capacity) {
		add_holding(r, worker, count);
		c->reply(c->ctx, worker, id, true, 0, NULL);
		return;
	}
	add_waiter(c, &r->waiters, worker, id, count);
}

static void release_in(struct claims *c, struct resource *r, int worker, uint64_t count,
		       bool all)
{
	for (struct hold **p = &r->holders; *p; p = &(*p)->next) {
		struct hold *h = *p;
		if (h->worker != worker)
			continue;
		uint64_t n = all || count > h->count ? h->count : count;
		h->count -= n;
		r->in_use -= n;
		if (!h->count) {
			*p = h->next;
			free(h);
		}
		break;
	}
	grant_waiters(c, r);
}

void claims_release(struct claims *c, int worker, const char *resource, uint64_t count)
{
	struct resource *r = find_res(c, resource);
	if (r)
		release_in(c, r, worker, count ? count : 1, false);
}

static struct hold *drop_worker(struct hold *list, int worker, uint64_t *dropped)
{
	struct hold **p = &list;
	while (*p) {
		if ((*p)->worker == worker) {
			struct hold *h = *p;
			*p = h->next;
			free(h);
			if (dropped)
				(*dropped)++;
		} else {
			p = &(*p)->next;
		}
	}
	return list;
}

void claims_barrier(struct claims *c, int worker, uint64_t id, const char *name,
		    uint64_t parties)
{
	char msg[256];
	struct barrier *b;
	if (parties == 0)
		parties = 1;
	for (b = c->bar; b; b = b->next)
		if (!strcmp(b->name, name))
			break;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b || !(b->name = strdup(name))) {
			free(b);
			c->reply(c->ctx, worker, id, false, 0, "out of memory");
			return;
		}
		b->next = c->bar;
		c->bar = b;
	}
	if (b->arrived == 0) {
		b->parties = parties;
	} else if (b->parties != parties) {
		snprintf(msg, sizeof(msg), "barrier %s: %llu parties, but others wait for %llu", name,
			 (unsigned long long)parties, (unsigned long long)b->parties);
		c->reply(c->ctx, worker, id, false, 0, msg);
		return;
	}
	if (!add_waiter(c, &b->waiters, worker, id, b->arrived + 1))
		return;
	if (++b->arrived < b->parties)
		return;
	/* Everyone is here: release them all, then the barrier starts over. */
	struct hold *list = b->waiters;
	b->waiters = NULL;
	b->arrived = 0;
	for (struct hold *h = list; h; h = h->next)
		c->reply(c->ctx, h->worker, h->id, true, h->count, NULL);
	free_holds(list);
}

void claims_worker_exit(struct claims *c, int worker)
{
	for (struct resource *r = c->res; r; r = r->next) {
		r->waiters = drop_worker(r->waiters, worker, NULL);
		release_in(c, r, worker, 0, true);
	}
	for (struct barrier *b = c->bar; b; b = b->next) {
		uint64_t dropped = 0;
		b->waiters = drop_worker(b->waiters, worker, &dropped);
		b->arrived -= dropped;
		/* Renumber the remaining arrivals so indices stay 1..arrived. */
		uint64_t i = 0;
		for (struct hold *h = b->waiters; h; h = h->next)
			h->count = ++i;
	}
}

uint64_t claims_in_use(const struct claims *c, const char *resource)
{
	struct resource *r = find_res(c, resource);
	return r ? r->in_use : 0;
}
