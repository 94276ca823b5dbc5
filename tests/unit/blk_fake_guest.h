/* blk_fake_guest.h — a virtio-blk disk driven by the fake driver
 * (virtio_fake_driver.h) for cmocka tests: a 1 MiB image, one 128-entry queue,
 * an optional event loop on its own thread for slow completions, and helpers that
 * submit one request and take its completion. Include after <cmocka.h>. Used by
 * test_virtio_blk.c and test_hostile_devices.c. */
#ifndef PROVIUM_TESTS_BLK_FAKE_GUEST_H
#define PROVIUM_TESTS_BLK_FAKE_GUEST_H

#include "devices/virtio_blk.h"
#include "tests/unit/virtio_fake_driver.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define SECTORS 2048u /* 1 MiB disk */
#define MEM (8u << 20)

struct fix {
	struct virtio_blk *b;
	struct fake_drv f;
	char path[128];
	struct evloop *loop;
	pthread_t thr;
	bool loop_running;
};

struct req {
	uint16_t head;
	uint64_t hdr, data, status;
	uint32_t len;
};

static inline int make_disk(struct fix *x, const struct virtio_blk_opts *extra)
{
	snprintf(x->path, sizeof(x->path), "/tmp/provium-test-blk-%d-%p.img", getpid(), (void *)x);
	unlink(x->path);
	struct virtio_blk_opts o = {.path = x->path, .size = SECTORS * 512ull, .serial = "SN-1234"};
	if (extra)
		o.readonly = extra->readonly;
	if (virtio_blk_create(&o, &x->b) < 0)
		return -1;
	if (fake_init(&x->f, virtio_blk_vdev(x->b), MEM) < 0)
		return -1;
	if (!fake_negotiate(&x->f, ~0ull))
		return -1;
	fake_setup_queue(&x->f, 0, 128);
	fake_driver_ok(&x->f);
	return 0;
}

static inline int setup(void **state)
{
	struct fix *x = calloc(1, sizeof(*x));
	if (!x || make_disk(x, NULL) < 0)
		return -1;
	*state = x;
	return 0;
}

static inline void *loop_thread(void *arg)
{
	evloop_run(arg);
	return NULL;
}

static inline void start_loop(struct fix *x)
{
	assert_int_equal(evloop_create(&x->loop), 0);
	virtio_blk_set_evloop(x->b, x->loop);
	assert_int_equal(pthread_create(&x->thr, NULL, loop_thread, x->loop), 0);
	x->loop_running = true;
}

static inline int teardown(void **state)
{
	struct fix *x = *state;
	if (x->loop_running) {
		evloop_stop(x->loop);
		pthread_join(x->thr, NULL);
	}
	virtio_blk_destroy(x->b);
	if (x->loop)
		evloop_destroy(x->loop);
	fake_fini(&x->f);
	unlink(x->path);
	free(x);
	return 0;
}

/* Submits one request; data is copied in for writes. */
static inline struct req submit(struct fix *x, uint32_t type, uint64_t sector, const void *data,
			 uint32_t len)
{
	struct req r = {.len = len};
	r.hdr = fake_alloc(&x->f, 16, 16);
	struct virtio_blk_outhdr h = {.type = type, .sector = sector};
	memcpy(fake_ptr(&x->f, r.hdr), &h, sizeof(h));
	r.data = len ? fake_alloc(&x->f, len, 16) : 0;
	r.status = fake_alloc(&x->f, 1, 1);
	*(uint8_t *)fake_ptr(&x->f, r.status) = 0xee;
	bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	if (data && !dev_writes)
		memcpy(fake_ptr(&x->f, r.data), data, len);
	struct fake_buf fb[3] = {{r.hdr, 16, false}};
	unsigned n = 1;
	if (len)
		fb[n++] = (struct fake_buf){r.data, len, dev_writes};
	fb[n++] = (struct fake_buf){r.status, 1, true};
	r.head = fake_submit(&x->f, 0, fb, n, (r.hdr >> 4) & 1); /* mix in indirect chains */
	return r;
}

static inline uint8_t status_of(struct fix *x, const struct req *r)
{
	return *(uint8_t *)fake_ptr(&x->f, r->status);
}

/* Submit + kick + take the completion; returns the status byte. */
static inline uint8_t run(struct fix *x, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	struct req r = submit(x, type, sector, data, len);
	fake_kick(&x->f, 0);
	uint32_t id, ulen;
	assert_int_equal(fake_get_used(&x->f, 0, &id, &ulen), 1);
	assert_int_equal(id, r.head);
	uint8_t st = status_of(x, &r);
	if ((type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID) && data && st == 0) {
		memcpy(data, fake_ptr(&x->f, r.data), len);
		assert_int_equal(ulen, type == VIRTIO_BLK_T_IN ? len + 1 : PV_MIN(len, 20u) + 1);
	}
	return st;
}

static inline void fill(uint8_t *buf, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(seed + i * 7);
}

static inline int wait_used(struct fix *x, uint32_t *id, int timeout_ms)
{
	for (int i = 0; i < timeout_ms; i++) {
		if (fake_get_used(&x->f, 0, id, NULL))
			return 1;
		usleep(1000);
	}
	return 0;
}

#endif
