/* test_virtqueue.c — split virtqueues and the virtio-mmio transport without KVM:
 * chains (direct, indirect, split headers), every ring-rule violation the device
 * must survive (loops, out-of-range addresses and lengths, overflow, too-long and
 * nested chains, bad indices), notification suppression, feature negotiation,
 * DEVICE_NEEDS_RESET, reset, save/load, and a randomized ring fuzzer whose
 * results are checked against the guest-RAM bounds (and run under ASan by
 * `make check-asan`). virtio-rng serves as the device behind the transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/virtio.h"
#include "devices/virtio_rng.h"
#include "tests/fuzz/fuzz_virtqueue.h"
#include "tests/unit/fuzz_replay.h"
#include "tests/unit/virtio_fake_driver.h"
#include "vmm/util.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM (1u << 20)
#define QN 16

static uint16_t avail_event(struct vring_used *u, unsigned num)
{
	uint16_t v;
	memcpy(&v, &u->ring[num], 2);
	return v;
}

/* A bare queue over a test buffer. */
struct rawq {
	uint8_t *mem;
	struct guest_mem gm;
	struct virtqueue vq;
	struct vring_desc *d;
	struct vring_avail *av;
	struct vring_used *u;
};

static void rawq_init(struct rawq *r, bool event_idx)
{
	r->mem = calloc(1, MEM);
	assert_non_null(r->mem);
	r->gm = (struct guest_mem){r->mem, MEM, 0};
	memset(&r->vq, 0, sizeof(r->vq));
	r->vq.num = QN;
	r->vq.desc_gpa = 0x1000;
	r->vq.avail_gpa = 0x2000;
	r->vq.used_gpa = 0x3000;
	assert_int_equal(virtq_activate(&r->vq, &r->gm, event_idx), 0);
	r->d = (void *)(r->mem + 0x1000);
	r->av = (void *)(r->mem + 0x2000);
	r->u = (void *)(r->mem + 0x3000);
}

static void rawq_fini(struct rawq *r)
{
	free(r->mem);
}

static void rawq_publish(struct rawq *r, uint16_t head)
{
	r->av->ring[r->av->idx % QN] = head;
	r->av->idx++;
}

static void set_desc(struct rawq *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	r->d[i] = (struct vring_desc){addr, len, flags, next};
}

static void test_pop_empty_and_simple_chain(void **state)
{
	(void)state;
	static struct virtq_elem e;
	struct rawq r;
	rawq_init(&r, false);
	assert_int_equal(virtq_pop(&r.vq, &e), 0);
	set_desc(&r, 3, 0x10000, 16, VRING_DESC_F_NEXT, 4);
	set_desc(&r, 4, 0x10010, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 5);
	set_desc(&r, 5, 0x10210, 1, VRING_DESC_F_WRITE, 0);
	rawq_publish(&r, 3);
	assert_true(virtq_has_avail(&r.vq));
	assert_int_equal(virtq_pop(&r.vq, &e), 1);
	assert_int_equal(e.head, 3);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.out_len, 16);
	assert_int_equal(e.in_len, 513);
	assert_ptr_equal(e.iov[0].iov_base, r.mem + 0x10000);
	assert_ptr_equal(e.iov[2].iov_base, r.mem + 0x10210);
	assert_false(virtq_has_avail(&r.vq));
	assert_int_equal(virtq_pop(&r.vq, &e), 0);
	/* push: used ring gets id and len, idx advances, interrupt wanted */
	assert_true(virtq_push(&r.vq, 3, 513));
	assert_int_equal(r.u->idx, 1);
	assert_int_equal(r.u->ring[0].id, 3);
	assert_int_equal(r.u->ring[0].len, 513);
	rawq_fini(&r);
}

static void test_indirect_chain(void **state)
{
	(void)state;
	static struct virtq_elem e;
	struct rawq r;
	rawq_init(&r, false);
	struct vring_desc *t = (void *)(r.mem + 0x5000);
	t[0] = (struct vring_desc){0x20000, 16, VRING_DESC_F_NEXT, 1};
	t[1] = (struct vring_desc){0x20010, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2};
	t[2] = (struct vring_desc){0x21010, 1, VRING_DESC_F_WRITE, 0};
	set_desc(&r, 0, 0x5000, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	rawq_publish(&r, 0);
	assert_int_equal(virtq_pop(&r.vq, &e), 1);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.in_len, 4097);
	assert_ptr_equal(e.iov[1].iov_base, r.mem + 0x20010);
	/* Linux kmallocs indirect tables: 8-byte alignment must do (found by the
	 * slow-tier Linux boot). */
	t = (void *)(r.mem + 0x6008);
	memcpy(t, r.mem + 0x5000, 3 * 16);
	set_desc(&r, 1, 0x6008, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	rawq_publish(&r, 1);
	assert_int_equal(virtq_pop(&r.vq, &e), 1);
	assert_int_equal(e.head, 1);
	assert_int_equal(e.in_len, 4097);
	rawq_fini(&r);
}

/* Each malformed chain must make virtq_pop fail with -EINVAL and a message. */
static void expect_bad(struct rawq *r, const char *msg_part)
{
	static struct virtq_elem e;
	int ret = virtq_pop(&r->vq, &e);
	assert_int_equal(ret, -EINVAL);
	if (!strstr(pv_errmsg(), msg_part))
		fail_msg("message \"%s\" lacks \"%s\"", pv_errmsg(), msg_part);
}

static void test_descriptor_loop(void **state)
{
	(void)state;
	struct rawq r;
	rawq_init(&r, false);
	set_desc(&r, 0, 0x10000, 8, VRING_DESC_F_NEXT, 1);
	set_desc(&r, 1, 0x10000, 8, VRING_DESC_F_NEXT, 0);
	rawq_publish(&r, 0);
	expect_bad(&r, "loop");
	rawq_fini(&r);
}

static void test_self_loop_in_indirect(void **state)
{
	(void)state;
	struct rawq r;
	rawq_init(&r, false);
	struct vring_desc *t = (void *)(r.mem + 0x5000);
	t[0] = (struct vring_desc){0x20000, 16, VRING_DESC_F_NEXT, 1};
	t[1] = (struct vring_desc){0x20000, 16, VRING_DESC_F_NEXT, 0};
	set_desc(&r, 0, 0x5000, 32, VRING_DESC_F_INDIRECT, 0);
	rawq_publish(&r, 0);
	expect_bad(&r, "loop");
	rawq_fini(&r);
}

static void test_out_of_range_buffers(void **state)
{
	(void)state;
	struct rawq r;
	rawq_init(&r, false);
	set_desc(&r, 0, MEM - 8, 16, 0, 0); /* runs past the end */
	rawq_publish(&r, 0);
	expect_bad(&r, "outside guest RAM");
	rawq_fini(&r);

	rawq_init(&r, false);
	set_desc(&r, 0, UINT64_MAX - 7, 16, 0, 0); /* wraps around */
	rawq_publish(&r, 0);
	expect_bad(&r, "outside guest RAM");
	rawq_fini(&r);

	rawq_init(&r, false);
	set_desc(&r, 0, 0x10000, UINT32_MAX, 0, 0); /* 4 GiB length in 1 MiB */
	rawq_publish(&r, 0);
	expect_bad(&r, "outside guest RAM");
	rawq_fini(&r);

	rawq_init(&r, false);
	set_desc(&r, 0, MEM + 0x1000, 16, VRING_DESC_F_INDIRECT, 0);
	rawq_publish(&r, 0);
	expect_bad(&r, "indirect table outside");
	rawq_fini(&r);
}

static void test_bad_indices_and_shapes(void **state)
{
	(void)state;
	struct rawq r;
	rawq_init(&r, false);
	rawq_publish(&r, QN + 5); /* head beyond the table */
	expect_bad(&r, "names descriptor");
	rawq_fini(&r);

	rawq_init(&r, false);
	r.av->idx = QN + 1; /* more new entries than the ring holds */
	expect_bad(&r, "ahead");
	rawq_fini(&r);

	rawq_init(&r, false);
	set_desc(&r, 0, 0x10000, 8, VRING_DESC_F_NEXT, QN); /* next beyond the table */
	rawq_publish(&r, 0);
	expect_bad(&r, "next index");
	rawq_fini(&r);

	rawq_init(&r, false);
	set_desc(&r, 0, 0x10000, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(&r, 1, 0x10000, 8, 0, 0);
	rawq_publish(&r, 0);
	expect_bad(&r, "readable descriptor after");
	rawq_fini(&r);

	rawq_init(&r, false);
	struct vring_desc *t = (void *)(r.mem + 0x5000);
	t[0] = (struct vring_desc){0x6000, 16, VRING_DESC_F_INDIRECT, 0};
	set_desc(&r, 0, 0x5000, 16, VRING_DESC_F_INDIRECT, 0);
	rawq_publish(&r, 0);
	expect_bad(&r, "nested");
	rawq_fini(&r);

	rawq_init(&r, false);
	set_desc(&r, 0, 0x5000, 17, VRING_DESC_F_INDIRECT, 0);
	rawq_publish(&r, 0);
	expect_bad(&r, "multiple of 16");
	rawq_fini(&r);

	rawq_init(&r, false);
	set_desc(&r, 0, 0x5000, 16 * (VIRTQ_MAX_SEGS + 1), VRING_DESC_F_INDIRECT, 0);
	rawq_publish(&r, 0);
	expect_bad(&r, "too long");
	rawq_fini(&r);

	rawq_init(&r, false);
	set_desc(&r, 0, 0x5000, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	rawq_publish(&r, 0);
	expect_bad(&r, "NEXT");
	rawq_fini(&r);
}

static void test_chain_byte_limit(void **state)
{
	(void)state;
	/* A 1 MiB buffer named 100 times: 100 MiB of chain > the 64 MiB cap. */
	uint8_t *mem = calloc(1, 2 << 20);
	assert_non_null(mem);
	struct guest_mem gm = {mem, 2 << 20, 0};
	struct virtqueue vq = {.num = 128, .desc_gpa = 0x1000, .avail_gpa = 0x2000,
			       .used_gpa = 0x3000};
	assert_int_equal(virtq_activate(&vq, &gm, false), 0);
	struct vring_desc *d = (void *)(mem + 0x1000);
	for (int i = 0; i < 100; i++)
		d[i] = (struct vring_desc){1 << 20, 1 << 20, VRING_DESC_F_NEXT, (uint16_t)(i + 1)};
	d[99].flags = 0;
	struct vring_avail *av = (void *)(mem + 0x2000);
	av->ring[0] = 0;
	av->idx = 1;
	static struct virtq_elem e;
	assert_int_equal(virtq_pop(&vq, &e), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "64 MiB"));
	free(mem);
}

static void test_activate_rejects_bad_rings(void **state)
{
	(void)state;
	uint8_t *mem = calloc(1, MEM);
	struct guest_mem gm = {mem, MEM, 0};
	struct virtqueue vq = {.num = 16, .desc_gpa = MEM - 64, .avail_gpa = 0, .used_gpa = 0x100};
	assert_int_equal(virtq_activate(&vq, &gm, false), -EINVAL);
	vq = (struct virtqueue){.num = 12, .desc_gpa = 0, .avail_gpa = 0x400, .used_gpa = 0x800};
	assert_int_equal(virtq_activate(&vq, &gm, false), -EINVAL); /* not a power of 2 */
	vq = (struct virtqueue){.num = 16, .desc_gpa = 8, .avail_gpa = 0x400, .used_gpa = 0x800};
	assert_int_equal(virtq_activate(&vq, &gm, false), -EINVAL); /* misaligned */
	vq = (struct virtqueue){.num = 512, .desc_gpa = 0, .avail_gpa = 0x4000, .used_gpa = 0x8000};
	assert_int_equal(virtq_activate(&vq, &gm, false), -EINVAL); /* above the max */
	free(mem);
}

static void test_notification_suppression(void **state)
{
	(void)state;
	struct rawq r;
	rawq_init(&r, false);
	r.av->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_false(virtq_push(&r.vq, 0, 1));
	r.av->flags = 0;
	assert_true(virtq_push(&r.vq, 0, 1));
	virtq_enable_notify(&r.vq, false);
	assert_int_equal(r.u->flags, VRING_USED_F_NO_NOTIFY);
	virtq_enable_notify(&r.vq, true);
	assert_int_equal(r.u->flags, 0);
	rawq_fini(&r);

	/* EVENT_IDX: interrupt exactly when used idx passes used_event. */
	rawq_init(&r, true);
	uint16_t *used_event = &r.av->ring[QN];
	*used_event = 2;
	assert_false(virtq_push(&r.vq, 0, 1)); /* idx 0 -> 1 */
	assert_false(virtq_push(&r.vq, 0, 1)); /* 1 -> 2 */
	assert_true(virtq_push(&r.vq, 0, 1));  /* 2 -> 3 crosses used_event 2 */
	assert_false(virtq_push(&r.vq, 0, 1));
	/* avail_event follows last_avail when notifications are enabled. */
	set_desc(&r, 0, 0x10000, 8, 0, 0);
	rawq_publish(&r, 0);
	rawq_publish(&r, 0);
	static struct virtq_elem e;
	assert_int_equal(virtq_pop(&r.vq, &e), 1);
	assert_int_equal(virtq_pop(&r.vq, &e), 1);
	virtq_enable_notify(&r.vq, true);
	assert_int_equal(avail_event(r.u, QN), 2);
	rawq_fini(&r);
}

static void test_iov_copy_helpers(void **state)
{
	(void)state;
	char a[3], b[5], out[8] = {0};
	struct iovec iov[2] = {{a, 3}, {b, 5}};
	assert_int_equal(buf_to_iov(iov, 2, 2, "XYZW", 4), 4);
	assert_memory_equal(a + 2, "X", 1);
	assert_memory_equal(b, "YZW", 3);
	assert_int_equal(iov_to_buf(iov, 2, 2, out, 8), 6);
	assert_memory_equal(out, "XYZW", 4);
	assert_int_equal(iov_to_buf(iov, 2, 9, out, 8), 0);
}

/* ---- through the transport, with virtio-rng ---- */

struct rngfix {
	struct virtio_rng *rng;
	struct fake_drv f;
};

static int rng_setup(void **state)
{
	struct rngfix *x = calloc(1, sizeof(*x));
	if (!x || virtio_rng_create("rng-test", &x->rng) < 0)
		return -1;
	if (fake_init(&x->f, virtio_rng_vdev(x->rng), MEM) < 0)
		return -1;
	*state = x;
	return 0;
}

static int rng_teardown(void **state)
{
	struct rngfix *x = *state;
	virtio_rng_destroy(x->rng);
	fake_fini(&x->f);
	free(x);
	return 0;
}

static void test_registers_identify_device(void **state)
{
	struct rngfix *x = *state;
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	fake_wr32(&x->f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTQ_MAX_SIZE);
	fake_wr32(&x->f, VIRTIO_MMIO_QUEUE_SEL, 1); /* rng has one queue */
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	fake_wr32(&x->f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_DEVICE_FEATURES) & 1); /* VERSION_1 = bit 32 */
	/* 16-bit register access is ignored / reads 0 */
	uint16_t h = 0xffff;
	x->f.v->dev.ops->mmio_read(&x->f.v->dev, VIRTIO_MMIO_MAGIC_VALUE, &h, 2);
	assert_int_equal(h, 0);
}

static void test_feature_negotiation(void **state)
{
	struct rngfix *x = *state;
	/* Without VERSION_1 the device refuses FEATURES_OK (modern only). */
	assert_int_equal(fake_negotiate(&x->f, 1ull << VIRTIO_RING_F_EVENT_IDX), 0);
	/* Asking for a feature the device does not offer is refused too. */
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, 0);
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, 3);
	fake_wr32(&x->f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fake_wr32(&x->f, VIRTIO_MMIO_DRIVER_FEATURES, 1 | (1u << 8)); /* VERSION_1 + bit 40 */
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_false(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	uint64_t acc = fake_negotiate(&x->f, ~0ull);
	assert_true(acc & (1ull << VIRTIO_F_VERSION_1));
	assert_true(acc & (1ull << VIRTIO_RING_F_EVENT_IDX));
	assert_true(acc & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	/* Features are frozen after FEATURES_OK. */
	fake_wr32(&x->f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fake_wr32(&x->f, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_true(x->f.v->driver_features & (1ull << VIRTIO_RING_F_EVENT_IDX));
}

static void rng_up(struct rngfix *x, uint64_t feats)
{
	assert_int_not_equal(fake_negotiate(&x->f, feats), 0);
	fake_setup_queue(&x->f, 0, 16);
	fake_driver_ok(&x->f);
}

static void test_rng_fills_buffers_and_interrupts(void **state)
{
	struct rngfix *x = *state;
	rng_up(x, ~0ull);
	uint64_t b1 = fake_alloc(&x->f, 64, 8), b2 = fake_alloc(&x->f, 64, 8);
	struct fake_buf fb = {b1, 64, true};
	fake_submit(&x->f, 0, &fb, 1, false);
	fb.gpa = b2;
	fake_submit(&x->f, 0, &fb, 1, true); /* indirect */
	fake_kick(&x->f, 0);
	uint32_t id, len;
	assert_int_equal(fake_get_used(&x->f, 0, &id, &len), 1);
	assert_int_equal(len, 64);
	assert_int_equal(fake_get_used(&x->f, 0, &id, &len), 1);
	assert_int_equal(len, 64);
	assert_int_equal(fake_get_used(&x->f, 0, &id, &len), 0);
	static const uint8_t zero[64];
	assert_memory_not_equal(fake_ptr(&x->f, b1), zero, 64);
	assert_memory_not_equal(fake_ptr(&x->f, b1), fake_ptr(&x->f, b2), 64);
	assert_true(atomic_load(&x->f.irqs) >= 1);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING,
			 VIRTIO_MMIO_INT_VRING);
	fake_wr32(&x->f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(atomic_load(&x->f.lowers), 1);
	assert_int_equal(virtio_rng_bytes(x->rng), 128);
}

static void test_broken_ring_sets_needs_reset(void **state)
{
	struct rngfix *x = *state;
	rng_up(x, ~0ull);
	struct vring_desc *d = fake_desc(&x->f, 0);
	d[0] = (struct vring_desc){0x10000, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0};
	fake_publish(&x->f, 0, 0);
	fake_kick(&x->f, 0);
	uint32_t st = fake_rd32(&x->f, VIRTIO_MMIO_STATUS);
	assert_true(st & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(fake_get_used(&x->f, 0, NULL, NULL), 0);
	/* Kicking again does nothing (the device stopped using the queue). */
	fake_kick(&x->f, 0);
	assert_int_equal(fake_get_used(&x->f, 0, NULL, NULL), 0);
	/* A reset brings it back to life. */
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	rng_up(x, ~0ull);
	struct fake_buf fb = {fake_alloc(&x->f, 32, 8), 32, true};
	fake_submit(&x->f, 0, &fb, 1, false);
	fake_kick(&x->f, 0);
	assert_int_equal(fake_get_used(&x->f, 0, NULL, NULL), 1);
}

static void test_queue_outside_ram_needs_reset(void **state)
{
	struct rngfix *x = *state;
	assert_int_not_equal(fake_negotiate(&x->f, ~0ull), 0);
	fake_wr32(&x->f, VIRTIO_MMIO_QUEUE_SEL, 0);
	fake_wr32(&x->f, VIRTIO_MMIO_QUEUE_NUM, 16);
	fake_wr32(&x->f, VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
	fake_wr32(&x->f, VIRTIO_MMIO_QUEUE_DESC_HIGH, 5); /* 20 GiB */
	fake_wr32(&x->f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_event_idx_suppresses_interrupts(void **state)
{
	struct rngfix *x = *state;
	rng_up(x, ~0ull);
	struct vring_avail *av = fake_ptr(&x->f, x->f.q[0].avail);
	av->ring[16] = 5; /* used_event: interrupt only when used idx passes 5 */
	for (int i = 0; i < 4; i++) {
		struct fake_buf fb = {fake_alloc(&x->f, 8, 8), 8, true};
		fake_submit(&x->f, 0, &fb, 1, false);
		fake_kick(&x->f, 0);
	}
	assert_int_equal(atomic_load(&x->f.irqs), 0);
	for (int i = 0; i < 3; i++) {
		struct fake_buf fb = {fake_alloc(&x->f, 8, 8), 8, true};
		fake_submit(&x->f, 0, &fb, 1, false);
		fake_kick(&x->f, 0);
	}
	assert_int_equal(atomic_load(&x->f.irqs), 1);
	/* avail_event tells the driver which kick we want next. */
	struct vring_used *u = fake_ptr(&x->f, x->f.q[0].used);
	assert_int_equal(avail_event(u, 16), 7);
}

static void test_config_change_and_status_rules(void **state)
{
	struct rngfix *x = *state;
	struct virtio_dev *v = x->f.v;
	/* Before DRIVER_OK a config change bumps the generation without an interrupt. */
	uint32_t gen = fake_rd32(&x->f, VIRTIO_MMIO_CONFIG_GENERATION);
	pthread_mutex_lock(&v->lock);
	virtio_dev_config_changed(v);
	pthread_mutex_unlock(&v->lock);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_int_equal(atomic_load(&x->f.irqs), 0);
	rng_up(x, ~0ull);
	pthread_mutex_lock(&v->lock);
	virtio_dev_config_changed(v);
	pthread_mutex_unlock(&v->lock);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_CONFIG_GENERATION), gen + 2);
	assert_int_equal(atomic_load(&x->f.irqs), 1);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	/* The driver cannot clear status bits other than by a reset. */
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK);
	/* DRIVER_OK without FEATURES_OK is a driver bug: NEEDS_RESET. */
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, 0);
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, 3);
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, 3 | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(fake_rd32(&x->f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Queue registers are frozen while the queue is ready. */
	fake_wr32(&x->f, VIRTIO_MMIO_STATUS, 0);
	rng_up(x, ~0ull);
	uint32_t desc = fake_rd32(&x->f, VIRTIO_MMIO_QUEUE_DESC_LOW);
	fake_wr32(&x->f, VIRTIO_MMIO_QUEUE_DESC_LOW, desc + 0x1000);
	assert_int_equal(fake_rd32(&x->f, VIRTIO_MMIO_QUEUE_DESC_LOW), desc);
}

static void test_save_load_roundtrip(void **state)
{
	struct rngfix *x = *state;
	rng_up(x, ~0ull);
	struct fake_buf fb = {fake_alloc(&x->f, 8, 8), 8, true};
	fake_submit(&x->f, 0, &fb, 1, false);
	fake_kick(&x->f, 0);
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	assert_int_equal(fake_save_state(&x->f.v->dev, &sb, &up), 0);

	struct virtio_rng *r2;
	assert_int_equal(virtio_rng_create("rng2", &r2), 0);
	struct virtio_dev *v2 = virtio_rng_vdev(r2);
	virtio_dev_bind_mem(v2, x->f.mem, x->f.size);
	assert_int_equal(v2->dev.ops->load(&v2->dev, &up.data), 0);
	assert_int_equal(v2->status, x->f.v->status);
	assert_int_equal(v2->driver_features, x->f.v->driver_features);
	assert_true(v2->vq[0].ready);
	assert_int_equal(v2->vq[0].last_avail, 1);
	assert_int_equal(v2->vq[0].used_idx, 1);
	/* The restored device continues the same ring. */
	x->f.v = v2;
	v2->signal = fake_signal;
	v2->signal_opaque = &x->f;
	fake_submit(&x->f, 0, &fb, 1, false);
	fake_kick(&x->f, 0);
	assert_int_equal(fake_get_used(&x->f, 0, NULL, NULL), 1);
	assert_int_equal(fake_get_used(&x->f, 0, NULL, NULL), 1);
	/* A garbled state is refused with a message. */
	msgpack_object bogus = {.type = MSGPACK_OBJECT_NIL};
	assert_int_equal(v2->dev.ops->load(&v2->dev, &bogus), -EINVAL);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	x->f.v = virtio_rng_vdev(x->rng);
	virtio_rng_destroy(r2);
}

/* ---- randomized ring fuzzing ----
 * Random descriptor tables, avail rings, indirect tables and indices: virtq_pop
 * must either fail cleanly or return segments that lie inside guest RAM and
 * respect the limits. Under ASan any stray access aborts the test. */
static uint64_t fz_state;
static uint64_t fz(void)
{
	uint64_t z = (fz_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t fz_addr(uint64_t memsz)
{
	switch (fz() % 6) {
	case 0: return fz();                      /* anywhere */
	case 1: return memsz - fz() % 64;         /* near the end */
	case 2: return UINT64_MAX - fz() % 64;    /* wrapping */
	default: return fz() % memsz;             /* inside */
	}
}

static void test_fuzz_ring_parser(void **state)
{
	(void)state;
	const uint64_t memsz = 64 << 10;
	/* Guest RAM is its own allocation so ASan catches any access past it. */
	uint8_t *mem = malloc(memsz);
	assert_non_null(mem);
	struct guest_mem gm = {mem, memsz, 0};
	static struct virtq_elem e;
	const char *seed_env = getenv("PROVIUM_FUZZ_SEED");
	fz_state = seed_env ? strtoull(seed_env, NULL, 0) : 12345;
	unsigned iters = getenv("PROVIUM_FUZZ_ITERS") ? (unsigned)atoi(getenv("PROVIUM_FUZZ_ITERS"))
						      : 20000;
	unsigned ok = 0, bad = 0;
	for (unsigned it = 0; it < iters; it++) {
		for (uint64_t i = 0; i < memsz; i += 8)
			*(uint64_t *)(mem + i) = fz();
		struct virtqueue vq = {.num = (uint16_t)(1u << (fz() % 9))};
		vq.desc_gpa = (fz() % (memsz / 2)) & ~15ull;
		vq.avail_gpa = (fz() % (memsz / 2)) & ~1ull;
		vq.used_gpa = (fz() % (memsz / 2)) & ~3ull;
		if (virtq_activate(&vq, &gm, fz() & 1) < 0)
			continue;
		struct vring_desc *d = vq.desc;
		for (unsigned i = 0; i < vq.num; i++) {
			if (fz() % 4) {
				d[i].addr = fz_addr(memsz);
				d[i].len = fz() % 3 ? (uint32_t)(fz() % 4096) : (uint32_t)fz();
			}
			d[i].flags = (uint16_t)(fz() % 4) | (fz() % 8 ? 0 : VRING_DESC_F_INDIRECT);
			d[i].next = (uint16_t)(fz() % 3 ? fz() % vq.num : fz());
		}
		vq.last_avail = (uint16_t)fz();
		struct vring_avail *av = vq.avail;
		av->idx = fz() % 8 ? (uint16_t)(vq.last_avail + 1 + fz() % vq.num) : (uint16_t)fz();
		for (unsigned i = 0; i < vq.num; i++)
			av->ring[i] = (uint16_t)(fz() % 8 ? fz() % vq.num : fz());
		for (int round = 0; round < 4; round++) {
			int r = virtq_pop(&vq, &e);
			if (r < 0) {
				bad++;
				break;
			}
			if (r == 0)
				break;
			ok++;
			assert_true(e.n_out + e.n_in <= VIRTQ_MAX_SEGS);
			uint64_t sum = 0;
			for (unsigned i = 0; i < e.n_out + e.n_in; i++) {
				uint8_t *p = e.iov[i].iov_base;
				assert_true(p >= mem && p + e.iov[i].iov_len <= mem + memsz);
				if (e.iov[i].iov_len) /* touch both ends: ASan checks them */
					p[0] ^= p[e.iov[i].iov_len - 1];
				sum += e.iov[i].iov_len;
			}
			assert_int_equal(sum, e.out_len + e.in_len);
			virtq_push(&vq, e.head, (uint32_t)e.in_len);
		}
	}
	print_message("fuzz: %u iterations, %u chains accepted, %u rejected\n", iters, ok, bad);
	assert_true(ok > 0 && bad > 0); /* both paths exercised */
	free(mem);
}

/* Replays the libFuzzer regression corpus (tests/fuzz/virtqueue_corpus) through
 * the same target the fuzzer runs; under ASan a stray access aborts. */
static void test_fuzz_regression_corpus(void **state)
{
	(void)state;
	int n = fuzz_replay("virtqueue", pv_fuzz_virtqueue, 0, 1);
	if (n < 0)
		fail_msg("tests/fuzz/virtqueue_corpus is missing (run from the repository root)");
	print_message("replayed %d corpus inputs\n", n);
	assert_true(n >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pop_empty_and_simple_chain),
		cmocka_unit_test(test_indirect_chain),
		cmocka_unit_test(test_descriptor_loop),
		cmocka_unit_test(test_self_loop_in_indirect),
		cmocka_unit_test(test_out_of_range_buffers),
		cmocka_unit_test(test_bad_indices_and_shapes),
		cmocka_unit_test(test_chain_byte_limit),
		cmocka_unit_test(test_activate_rejects_bad_rings),
		cmocka_unit_test(test_notification_suppression),
		cmocka_unit_test(test_iov_copy_helpers),
		cmocka_unit_test_setup_teardown(test_registers_identify_device, rng_setup, rng_teardown),
		cmocka_unit_test_setup_teardown(test_feature_negotiation, rng_setup, rng_teardown),
		cmocka_unit_test_setup_teardown(test_rng_fills_buffers_and_interrupts, rng_setup,
						rng_teardown),
		cmocka_unit_test_setup_teardown(test_broken_ring_sets_needs_reset, rng_setup,
						rng_teardown),
		cmocka_unit_test_setup_teardown(test_queue_outside_ram_needs_reset, rng_setup,
						rng_teardown),
		cmocka_unit_test_setup_teardown(test_event_idx_suppresses_interrupts, rng_setup,
						rng_teardown),
		cmocka_unit_test_setup_teardown(test_config_change_and_status_rules, rng_setup,
						rng_teardown),
		cmocka_unit_test_setup_teardown(test_save_load_roundtrip, rng_setup, rng_teardown),
		cmocka_unit_test(test_fuzz_ring_parser),
		cmocka_unit_test(test_fuzz_regression_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
