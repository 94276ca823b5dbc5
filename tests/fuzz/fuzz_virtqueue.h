/* fuzz_virtqueue.h — the split-virtqueue parser as a fuzz target, shared by the
 * libFuzzer harness (tests/fuzz/fuzz_main.c, `make fuzz`) and
 * the regression-corpus replay in tests/unit/test_virtqueue.c.
 * Input layout: [0] log2 queue size, [1] bit 0 = EVENT_IDX, [2..3] last_avail,
 * [4..9] desc/avail/used offsets (u16, scaled into guest RAM), then the bytes of
 * guest RAM itself (FUZZ_VQ_MEM bytes, zero-padded). Guest RAM is its own heap
 * allocation of exactly FUZZ_VQ_MEM bytes so ASan flags any access outside it.
 * Returns 0; aborts when the parser hands out a segment outside guest RAM. */
#ifndef PROVIUM_FUZZ_VIRTQUEUE_H
#define PROVIUM_FUZZ_VIRTQUEUE_H

#include "devices/virtio.h"
#include "vmm/util.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_VQ_MEM 16384u
#define FUZZ_VQ_HDR 10u

static inline int pv_fuzz_virtqueue(const uint8_t *data, size_t size)
{
	static struct virtq_elem e;
	if (size < FUZZ_VQ_HDR)
		return 0;
	uint8_t *mem = calloc(1, FUZZ_VQ_MEM);
	if (!mem)
		return 0;
	memcpy(mem, data + FUZZ_VQ_HDR, PV_MIN(size - FUZZ_VQ_HDR, (size_t)FUZZ_VQ_MEM));
	struct guest_mem gm = {mem, FUZZ_VQ_MEM, 0};
	struct virtqueue vq = {.num = (uint16_t)(1u << (data[0] % 9))};
	uint16_t off[3];
	memcpy(off, data + 4, sizeof(off));
	vq.desc_gpa = off[0] % FUZZ_VQ_MEM;
	vq.avail_gpa = off[1] % FUZZ_VQ_MEM;
	vq.used_gpa = off[2] % FUZZ_VQ_MEM;
	if (virtq_activate(&vq, &gm, data[1] & 1) == 0) {
		memcpy(&vq.last_avail, data + 2, 2);
		for (int i = 0; i < 8; i++) {
			if (virtq_pop(&vq, &e) <= 0)
				break;
			for (unsigned k = 0; k < e.n_out + e.n_in; k++) {
				uint8_t *p = e.iov[k].iov_base;
				if (p < mem || p + e.iov[k].iov_len > mem + FUZZ_VQ_MEM)
					abort();
				if (e.iov[k].iov_len)
					p[0] ^= p[e.iov[k].iov_len - 1];
			}
			virtq_push(&vq, e.head, (uint32_t)e.in_len);
			virtq_enable_notify(&vq, true);
		}
	}
	free(mem);
	return 0;
}

#endif
