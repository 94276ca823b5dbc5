/* evloop.h — the per-VM event loop (epoll): host fds (TAPs, sockets, eventfds) and
 * timers (one timerfd driving a min-heap). Runs on its own thread; callbacks run
 * on that thread. evloop_call() runs a function on the loop thread from any thread. */
#ifndef PROVIUM_EVLOOP_H
#define PROVIUM_EVLOOP_H

#include <stdint.h>

struct evloop;
typedef void (*evloop_fd_cb)(void *opaque, uint32_t events);
typedef void (*evloop_cb)(void *opaque);

int evloop_create(struct evloop **out);
void evloop_destroy(struct evloop *l);
/* events are EPOLLIN/EPOLLOUT/...; an fd may be added once. */
int evloop_add_fd(struct evloop *l, int fd, uint32_t events, evloop_fd_cb cb, void *opaque);
int evloop_mod_fd(struct evloop *l, int fd, uint32_t events);
int evloop_del_fd(struct evloop *l, int fd);
/* One-shot timer after delay_ns; returns an id > 0 (or -errno). Thread-safe. */
int64_t evloop_add_timer(struct evloop *l, uint64_t delay_ns, evloop_cb cb, void *opaque);
void evloop_cancel_timer(struct evloop *l, int64_t id);
/* Test and fuzzer seam: runs, on the calling thread, every timer pending now as if
 * its deadline had passed (earliest first; timers they add wait). The loop must not
 * be running on another thread. */
void evloop_fire_timers(struct evloop *l);
/* Queue fn to run on the loop thread; thread-safe. */
int evloop_call(struct evloop *l, evloop_cb fn, void *opaque);
/* Run until evloop_stop(); evloop_run_once() waits at most timeout_ms. */
int evloop_run(struct evloop *l);
int evloop_run_once(struct evloop *l, int timeout_ms);
void evloop_stop(struct evloop *l);

#endif
