/* fuzz_mmio.h — the virtio-mmio transport as a fuzz target: register and config
 * space reads and writes of every width at every offset of the window, in any
 * order (features, status, queue setup, ready, notify, interrupt ACK, reset),
 * on each device type the VMM has (byte 0 picks rng, console, vsock, blk or net;
 * bit 7 starts from a set-up device instead of a fresh one), with guest RAM and
 * rings rewritten in between (fuzz_guest.h). After the script the transport
 * state must make sense: status bits only the driver set or NEEDS_RESET, every
 * ready queue inside guest RAM. Shared by the libFuzzer harness and the replay. */
#ifndef PROVIUM_FUZZ_MMIO_H
#define PROVIUM_FUZZ_MMIO_H

#include "tests/fuzz/fuzz_guest.h"

#include <stdio.h>
#include <unistd.h>

static void fzm_check(const struct virtio_dev *v)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		const struct virtqueue *vq = &v->vq[q];
		if (!vq->ready)
			continue;
		if (q >= v->vops->num_queues || !vq->num || vq->num > VIRTQ_MAX_SIZE ||
		    !gmem_ptr(&v->mem, vq->desc_gpa, 16ull * vq->num) ||
		    !gmem_ptr(&v->mem, vq->used_gpa, 6 + 8ull * vq->num)) {
			fprintf(stderr, "fuzz_mmio: queue %u ready outside the rules\n", q);
			abort();
		}
	}
}

static inline int pv_fuzz_mmio(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t pick = data[0];
	struct evloop *loop = NULL;
	struct virtio_dev *v = NULL;
	struct device *d;
	unsigned nq;
	char path[64] = "";
	int peer = -1;
	if (evloop_create(&loop) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/provium-fuzz-mmio-%d.img", fgz_tmp(), (int)getpid());
	v = fgz_make_device((enum fgz_kind)(pick % FGZ_KINDS), loop, path, &peer, &nq);
	if (!v)
		abort();
	d = &v->dev;
	struct fguest_fuzz g = {0};
	if (fgz_init_raw(&g, v, nq, loop, !(pick & 0x80)) < 0)
		abort();
	fgz_run(&g, data + 1, size - 1);
	fzm_check(v);
	evloop_fire_timers(loop);
	d->ops->destroy(d);
	evloop_destroy(loop);
	if (peer >= 0)
		close(peer);
	unlink(path);
	fgz_fini(&g);
	return 0;
}

#endif
