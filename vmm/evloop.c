/* evloop.c — the per-VM event loop (vmm/evloop.h): one epoll fd watching host fds,
 * one timerfd armed for the earliest of a min-heap of one-shot timers, and one
 * eventfd that wakes the loop for evloop_call() and evloop_stop().
 *
 * Threading: add/del/timers/calls may be used from any thread (a mutex guards the
 * lists). Callbacks run on the thread inside evloop_run(). A deleted fd entry is
 * freed only between dispatch rounds, so deleting an fd from inside any callback is
 * safe; to delete from another thread without racing a callback in flight, do it
 * through evloop_call(). */
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct ev_fd {
	int fd;
	bool dead;
	evloop_fd_cb cb;
	void *opaque;
	struct ev_fd *next;
};

struct ev_timer {
	uint64_t deadline;
	int64_t id;
	evloop_cb cb;
	void *opaque;
};

struct ev_call {
	evloop_cb fn;
	void *opaque;
	struct ev_call *next;
};

struct evloop {
	int epfd, tfd, efd;
	pthread_mutex_t lock;
	struct ev_fd *fds;        /* live entries */
	struct ev_fd *grave;      /* deleted, freed between rounds */
	struct ev_timer *heap;
	size_t nheap, capheap;
	int64_t next_id;
	struct ev_call *calls, **calls_tail;
	atomic_bool stop;
};

/* epoll data.ptr values for the loop's own fds. */
static char tag_timer, tag_wake;

int evloop_create(struct evloop **out)
{
	struct evloop *l = calloc(1, sizeof(*l));
	if (!l)
		return pv_error(ENOMEM, "event loop: out of memory");
	l->epfd = l->tfd = l->efd = -1;
	pthread_mutex_init(&l->lock, NULL);
	l->calls_tail = &l->calls;
	l->next_id = 1;
	int err;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		goto fail;
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->tfd < 0)
		goto fail;
	l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->efd < 0)
		goto fail;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_timer};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev) < 0)
		goto fail;
	ev.data.ptr = &tag_wake;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->efd, &ev) < 0)
		goto fail;
	*out = l;
	return 0;
fail:
	err = errno;
	evloop_destroy(l);
	return pv_error(err, "event loop: %s", strerror(err));
}

static void free_fd_list(struct ev_fd *f)
{
	while (f) {
		struct ev_fd *n = f->next;
		free(f);
		f = n;
	}
}

void evloop_destroy(struct evloop *l)
{
	if (!l)
		return;
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->efd >= 0)
		close(l->efd);
	free_fd_list(l->fds);
	free_fd_list(l->grave);
	struct ev_call *c = l->calls;
	while (c) {
		struct ev_call *n = c->next;
		free(c);
		c = n;
	}
	free(l->heap);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static void wake(struct evloop *l)
{
	uint64_t one = 1;
	ssize_t r = write(l->efd, &one, sizeof(one));
	(void)r; /* EAGAIN means the counter is already non-zero: loop will wake */
}

int evloop_add_fd(struct evloop *l, int fd, uint32_t events, evloop_fd_cb cb, void *opaque)
{
	struct ev_fd *f = calloc(1, sizeof(*f));
	if (!f)
		return pv_error(ENOMEM, "event loop: out of memory");
	*f = (struct ev_fd){.fd = fd, .cb = cb, .opaque = opaque};
	pthread_mutex_lock(&l->lock);
	for (struct ev_fd *p = l->fds; p; p = p->next)
		if (p->fd == fd) {
			pthread_mutex_unlock(&l->lock);
			free(f);
			return pv_error(EEXIST, "event loop: fd %d is already watched", fd);
		}
	struct epoll_event ev = {.events = events, .data.ptr = f};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		pthread_mutex_unlock(&l->lock);
		free(f);
		return pv_error(e, "event loop: watching fd %d: %s", fd, strerror(e));
	}
	f->next = l->fds;
	l->fds = f;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static struct ev_fd *find_fd(struct evloop *l, int fd, struct ev_fd ***link)
{
	for (struct ev_fd **pp = &l->fds; *pp; pp = &(*pp)->next)
		if ((*pp)->fd == fd) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

int evloop_mod_fd(struct evloop *l, int fd, uint32_t events)
{
	pthread_mutex_lock(&l->lock);
	struct ev_fd *f = find_fd(l, fd, NULL);
	int ret = 0;
	if (!f) {
		ret = pv_error(ENOENT, "event loop: fd %d is not watched", fd);
	} else {
		struct epoll_event ev = {.events = events, .data.ptr = f};
		if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
			ret = pv_error(errno, "event loop: fd %d: %s", fd, strerror(errno));
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

int evloop_del_fd(struct evloop *l, int fd)
{
	struct ev_fd **link;
	pthread_mutex_lock(&l->lock);
	struct ev_fd *f = find_fd(l, fd, &link);
	if (!f) {
		pthread_mutex_unlock(&l->lock);
		return pv_error(ENOENT, "event loop: fd %d is not watched", fd);
	}
	/* The fd may already be closed by the caller: ignore EBADF/ENOENT here. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	*link = f->next;
	f->dead = true;
	f->next = l->grave;
	l->grave = f;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* ---- timers: a binary min-heap on deadline, lock held ---- */

static void heap_swap(struct evloop *l, size_t a, size_t b)
{
	struct ev_timer t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
}

static void heap_up(struct evloop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p].deadline <= l->heap[i].deadline)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void heap_down(struct evloop *l, size_t i)
{
	for (;;) {
		size_t m = i, a = 2 * i + 1, b = a + 1;
		if (a < l->nheap && l->heap[a].deadline < l->heap[m].deadline)
			m = a;
		if (b < l->nheap && l->heap[b].deadline < l->heap[m].deadline)
			m = b;
		if (m == i)
			return;
		heap_swap(l, m, i);
		i = m;
	}
}

static void heap_remove(struct evloop *l, size_t i)
{
	l->heap[i] = l->heap[--l->nheap];
	if (i < l->nheap) {
		heap_down(l, i);
		heap_up(l, i);
	}
}

/* Arms the timerfd for the earliest deadline (or disarms it). */
static void rearm(struct evloop *l)
{
	struct itimerspec its = {0};
	if (l->nheap) {
		uint64_t d = l->heap[0].deadline;
		if (d == 0)
			d = 1; /* 0 would disarm */
		its.it_value.tv_sec = d / 1000000000ull;
		its.it_value.tv_nsec = d % 1000000000ull;
	}
	timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

int64_t evloop_add_timer(struct evloop *l, uint64_t delay_ns, evloop_cb cb, void *opaque)
{
	pthread_mutex_lock(&l->lock);
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 16;
		struct ev_timer *nh = realloc(l->heap, cap * sizeof(*nh));
		if (!nh) {
			pthread_mutex_unlock(&l->lock);
			return pv_error(ENOMEM, "event loop: out of memory");
		}
		l->heap = nh;
		l->capheap = cap;
	}
	int64_t id = l->next_id++;
	l->heap[l->nheap] = (struct ev_timer){pv_now_ns() + delay_ns, id, cb, opaque};
	heap_up(l, l->nheap++);
	if (l->heap[0].id == id)
		rearm(l);
	pthread_mutex_unlock(&l->lock);
	return id;
}

void evloop_cancel_timer(struct evloop *l, int64_t id)
{
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->nheap; i++)
		if (l->heap[i].id == id) {
			heap_remove(l, i);
			rearm(l);
			break;
		}
	pthread_mutex_unlock(&l->lock);
}

static void run_timers(struct evloop *l)
{
	uint64_t exp;
	ssize_t r = read(l->tfd, &exp, sizeof(exp));
	(void)r;
	for (;;) {
		pthread_mutex_lock(&l->lock);
		if (!l->nheap || l->heap[0].deadline > pv_now_ns()) {
			rearm(l);
			pthread_mutex_unlock(&l->lock);
			return;
		}
		struct ev_timer t = l->heap[0];
		heap_remove(l, 0);
		pthread_mutex_unlock(&l->lock);
		t.cb(t.opaque);
	}
}

void evloop_fire_timers(struct evloop *l)
{
	pthread_mutex_lock(&l->lock);
	size_t n = l->nheap;
	pthread_mutex_unlock(&l->lock);
	while (n--) {
		pthread_mutex_lock(&l->lock);
		if (!l->nheap) {
			pthread_mutex_unlock(&l->lock);
			break;
		}
		struct ev_timer t = l->heap[0];
		heap_remove(l, 0);
		rearm(l);
		pthread_mutex_unlock(&l->lock);
		t.cb(t.opaque);
	}
}

/* ---- calls ---- */

int evloop_call(struct evloop *l, evloop_cb fn, void *opaque)
{
	struct ev_call *c = malloc(sizeof(*c));
	if (!c)
		return pv_error(ENOMEM, "event loop: out of memory");
	*c = (struct ev_call){fn, opaque, NULL};
	pthread_mutex_lock(&l->lock);
	*l->calls_tail = c;
	l->calls_tail = &c->next;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	return 0;
}

static void run_calls(struct evloop *l)
{
	uint64_t v;
	ssize_t r = read(l->efd, &v, sizeof(v));
	(void)r;
	pthread_mutex_lock(&l->lock);
	struct ev_call *c = l->calls;
	l->calls = NULL;
	l->calls_tail = &l->calls;
	pthread_mutex_unlock(&l->lock);
	while (c) {
		struct ev_call *n = c->next;
		c->fn(c->opaque);
		free(c);
		c = n;
	}
}

static void bury(struct evloop *l)
{
	pthread_mutex_lock(&l->lock);
	struct ev_fd *g = l->grave;
	l->grave = NULL;
	pthread_mutex_unlock(&l->lock);
	free_fd_list(g);
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event evs[32];
	int n = epoll_wait(l->epfd, evs, PV_ARRAY_SIZE(evs), timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return pv_error(errno, "event loop: epoll_wait: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		void *p = evs[i].data.ptr;
		if (p == &tag_timer) {
			run_timers(l);
		} else if (p == &tag_wake) {
			run_calls(l);
		} else {
			struct ev_fd *f = p;
			/* Entries deleted earlier in this round are still allocated (in the
			 * grave) and marked dead: skip them. */
			if (!f->dead)
				f->cb(f->opaque, evs[i].events);
		}
	}
	bury(l);
	return n;
}

int evloop_run(struct evloop *l)
{
	int ret = 0;
	while (!atomic_load(&l->stop)) {
		ret = evloop_run_once(l, -1);
		if (ret < 0)
			break;
		ret = 0;
	}
	atomic_store(&l->stop, false);
	return ret;
}

void evloop_stop(struct evloop *l)
{
	atomic_store(&l->stop, true);
	wake(l);
}
