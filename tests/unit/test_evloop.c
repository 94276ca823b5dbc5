/* test_evloop.c — the per-VM event loop: fd readiness callbacks, deleting fds
 * (also from inside a callback), timers firing in deadline order, cancelled timers
 * not firing, evloop_call from other threads, and evloop_stop ending evloop_run on
 * its thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/evloop.h"
#include "vmm/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct fdrec {
	struct evloop *l;
	int fd, calls;
	uint32_t events;
	int del_self;
};

static void on_fd(void *opaque, uint32_t events)
{
	struct fdrec *r = opaque;
	r->calls++;
	r->events = events;
	uint64_t v;
	ssize_t n = read(r->fd, &v, sizeof(v));
	(void)n;
	if (r->del_self)
		evloop_del_fd(r->l, r->fd);
}

static void test_fd_callback(void **state)
{
	(void)state;
	struct evloop *l;
	assert_int_equal(evloop_create(&l), 0);
	struct fdrec r = {.l = l, .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
	assert_int_equal(evloop_add_fd(l, r.fd, EPOLLIN, on_fd, &r), 0);
	assert_int_equal(evloop_add_fd(l, r.fd, EPOLLIN, on_fd, &r), -EEXIST);
	assert_int_equal(evloop_run_once(l, 0), 0); /* nothing ready */
	assert_int_equal(r.calls, 0);
	uint64_t one = 1;
	assert_int_equal(write(r.fd, &one, sizeof(one)), 8);
	assert_int_equal(evloop_run_once(l, 1000), 1);
	assert_int_equal(r.calls, 1);
	assert_true(r.events & EPOLLIN);
	/* Level-triggered: drained, so no further call. */
	assert_int_equal(evloop_run_once(l, 0), 0);
	/* mod to nothing: a write does not wake us. */
	assert_int_equal(evloop_mod_fd(l, r.fd, 0), 0);
	assert_int_equal(write(r.fd, &one, sizeof(one)), 8);
	assert_int_equal(evloop_run_once(l, 0), 0);
	assert_int_equal(evloop_mod_fd(l, r.fd, EPOLLIN), 0);
	assert_int_equal(evloop_run_once(l, 1000), 1);
	assert_int_equal(r.calls, 2);
	assert_int_equal(evloop_del_fd(l, r.fd), 0);
	assert_int_equal(evloop_del_fd(l, r.fd), -ENOENT);
	assert_int_equal(evloop_mod_fd(l, r.fd, EPOLLIN), -ENOENT);
	assert_int_equal(write(r.fd, &one, sizeof(one)), 8);
	assert_int_equal(evloop_run_once(l, 0), 0);
	assert_int_equal(r.calls, 2);
	close(r.fd);
	evloop_destroy(l);
}

static void test_delete_fds_inside_callback(void **state)
{
	(void)state;
	struct evloop *l;
	assert_int_equal(evloop_create(&l), 0);
	struct fdrec a = {.l = l, .fd = eventfd(1, EFD_NONBLOCK), .del_self = 1};
	struct fdrec b = {.l = l, .fd = eventfd(1, EFD_NONBLOCK), .del_self = 1};
	assert_int_equal(evloop_add_fd(l, a.fd, EPOLLIN, on_fd, &a), 0);
	assert_int_equal(evloop_add_fd(l, b.fd, EPOLLIN, on_fd, &b), 0);
	assert_int_equal(evloop_run_once(l, 1000), 2);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	uint64_t one = 1;
	assert_int_equal(write(a.fd, &one, 8), 8);
	assert_int_equal(evloop_run_once(l, 0), 0);
	/* The fd can be added again after deletion. */
	assert_int_equal(evloop_add_fd(l, a.fd, EPOLLIN, on_fd, &a), 0);
	close(a.fd);
	close(b.fd);
	evloop_destroy(l); /* frees the entry still registered */
}

struct order {
	int seq[8];
	int n;
};

struct tmark {
	struct order *o;
	int id;
};

static void on_timer(void *opaque)
{
	struct tmark *m = opaque;
	m->o->seq[m->o->n++] = m->id;
}

static void test_timers_fire_in_deadline_order(void **state)
{
	(void)state;
	struct evloop *l;
	assert_int_equal(evloop_create(&l), 0);
	struct order o = {0};
	struct tmark m[5] = {{&o, 1}, {&o, 2}, {&o, 3}, {&o, 4}, {&o, 5}};
	/* Added out of order: 30, 10, 50 (cancelled), 20, 40 ms. */
	assert_true(evloop_add_timer(l, 30000000, on_timer, &m[2]) > 0);
	assert_true(evloop_add_timer(l, 10000000, on_timer, &m[0]) > 0);
	int64_t c = evloop_add_timer(l, 50000000, on_timer, &m[4]);
	assert_true(c > 0);
	assert_true(evloop_add_timer(l, 20000000, on_timer, &m[1]) > 0);
	assert_true(evloop_add_timer(l, 40000000, on_timer, &m[3]) > 0);
	evloop_cancel_timer(l, c);
	uint64_t t0 = pv_now_ns();
	while (o.n < 4 && pv_now_ns() - t0 < 5000000000ull)
		evloop_run_once(l, 100);
	assert_int_equal(o.n, 4);
	assert_true(pv_now_ns() - t0 >= 40000000ull); /* never early */
	for (int i = 0; i < 4; i++)
		assert_int_equal(o.seq[i], i + 1);
	/* The cancelled one never fires. */
	t0 = pv_now_ns();
	while (pv_now_ns() - t0 < 80000000ull)
		evloop_run_once(l, 20);
	assert_int_equal(o.n, 4);
	evloop_destroy(l);
}

static void test_zero_delay_timer(void **state)
{
	(void)state;
	struct evloop *l;
	assert_int_equal(evloop_create(&l), 0);
	struct order o = {0};
	struct tmark m = {&o, 9};
	assert_true(evloop_add_timer(l, 0, on_timer, &m) > 0);
	assert_int_equal(evloop_run_once(l, 1000), 1);
	assert_int_equal(o.n, 1);
	evloop_destroy(l);
}

/* The seam the fuzzers use: every pending timer fires now, in deadline order; a
 * timer added meanwhile waits for the next call. */
static void readd(void *opaque);
struct readder {
	struct evloop *l;
	struct tmark m;
};
static void readd(void *opaque)
{
	struct readder *r = opaque;
	on_timer(&r->m);
	evloop_add_timer(r->l, 0, on_timer, &r->m);
}

static void test_fire_timers_now(void **state)
{
	(void)state;
	struct evloop *l;
	assert_int_equal(evloop_create(&l), 0);
	struct order o = {0};
	struct tmark m[2] = {{&o, 1}, {&o, 2}};
	struct readder r = {l, {&o, 3}};
	assert_true(evloop_add_timer(l, 3600ull * 1000000000ull, on_timer, &m[1]) > 0);
	assert_true(evloop_add_timer(l, 60ull * 1000000000ull, on_timer, &m[0]) > 0);
	assert_true(evloop_add_timer(l, 7200ull * 1000000000ull, readd, &r) > 0);
	evloop_fire_timers(l);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.seq[0], 1);
	assert_int_equal(o.seq[1], 2);
	assert_int_equal(o.seq[2], 3);
	evloop_fire_timers(l); /* the one readd added */
	assert_int_equal(o.n, 4);
	evloop_fire_timers(l);
	assert_int_equal(o.n, 4);
	evloop_destroy(l);
}

struct loopctx {
	struct evloop *l;
	atomic_int calls;
	pthread_t owner;
	atomic_int on_loop_thread;
};

static void on_call(void *opaque)
{
	struct loopctx *c = opaque;
	if (pthread_equal(pthread_self(), c->owner))
		atomic_fetch_add(&c->on_loop_thread, 1);
	atomic_fetch_add(&c->calls, 1);
}

static void *run_loop(void *arg)
{
	struct loopctx *c = arg;
	c->owner = pthread_self();
	evloop_run(c->l);
	return NULL;
}

static void *caller(void *arg)
{
	struct loopctx *c = arg;
	for (int i = 0; i < 500; i++)
		evloop_call(c->l, on_call, c);
	return NULL;
}

static void stop_from_loop(void *opaque)
{
	evloop_stop(opaque);
}

static void test_calls_from_threads_and_stop(void **state)
{
	(void)state;
	struct loopctx c = {0};
	assert_int_equal(evloop_create(&c.l), 0);
	pthread_t lt, t1, t2;
	assert_int_equal(pthread_create(&lt, NULL, run_loop, &c), 0);
	assert_int_equal(pthread_create(&t1, NULL, caller, &c), 0);
	assert_int_equal(pthread_create(&t2, NULL, caller, &c), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	uint64_t t0 = pv_now_ns();
	while (atomic_load(&c.calls) < 1000 && pv_now_ns() - t0 < 5000000000ull)
		usleep(1000);
	assert_int_equal(atomic_load(&c.calls), 1000);
	assert_int_equal(atomic_load(&c.on_loop_thread), 1000);
	/* A timer from another thread wakes the sleeping loop; it stops the loop. */
	assert_true(evloop_add_timer(c.l, 5000000, stop_from_loop, c.l) > 0);
	pthread_join(lt, NULL); /* returns only if the stop worked */
	/* And evloop_stop from outside ends a fresh run. */
	assert_int_equal(pthread_create(&lt, NULL, run_loop, &c), 0);
	usleep(10000);
	evloop_stop(c.l);
	pthread_join(lt, NULL);
	evloop_destroy(c.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_callback),
		cmocka_unit_test(test_delete_fds_inside_callback),
		cmocka_unit_test(test_timers_fire_in_deadline_order),
		cmocka_unit_test(test_zero_delay_timer),
		cmocka_unit_test(test_fire_timers_now),
		cmocka_unit_test(test_calls_from_threads_and_stop),
	};
	return cmocka_run_group_tests_name("evloop", tests, NULL, NULL);
}
