/* fuzz_blk.h — virtio-blk as a fuzz target: requests of every type (in, out,
 * flush, get-id, discard, write-zeroes, unknown) written by a hostile fake guest
 * (fuzz_guest.h) under fault rules the input picks (fail, slow, drop, corrupt),
 * with the writeback cache on or off, guest RAM rewritten while slow requests wait,
 * and host actions in between: crash, detach, insert of a smaller image under
 * waiting requests, host sector access, rule changes, save + load of the state.
 * Input: [0] flags (bit 0 writeback, bit 1 read-only, bits 2-3 how many rules),
 * then 8 bytes per rule, then the guest script.
 * Aborts when an image file changed size or the cache grew past its cap. Shared by
 * the libFuzzer harness (tests/fuzz/fuzz_blk.c) and the corpus replay in
 * tests/unit/test_fuzz_corpora.c. */
#ifndef PROVIUM_FUZZ_BLK_H
#define PROVIUM_FUZZ_BLK_H

#include "devices/blk_store.h"
#include "devices/virtio_blk.h"
#include "tests/fuzz/fuzz_guest.h"
#include "vmm/util.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define FZB_SECTORS 64u
#define FZB_SMALL 16u

struct fzb {
	struct virtio_blk *b;
	char small[64];
	struct fguest_fuzz g;
};

static void fzb_host(void *opaque, struct fz *a)
{
	struct fzb *x = opaque;
	uint8_t op = fz_u8(a), buf[4 * 512] = {0};
	uint64_t lba = fz_u8(a), n = fz_u8(a) % 5;
	switch (op % 8) {
	case 0:
		virtio_blk_set_cache(x->b, fz_u8(a) & 1 ? VIRTIO_BLK_CACHE_WRITEBACK :
							  VIRTIO_BLK_CACHE_NONE);
		break;
	case 1:
		virtio_blk_crash(x->b);
		break;
	case 2:
		virtio_blk_detach(x->b);
		break;
	case 3: /* a smaller disk under whatever is waiting */
		virtio_blk_insert(x->b, x->small, FZB_SMALL * 512ull, "small");
		break;
	case 4:
		virtio_blk_read_sectors(x->b, lba, n, buf);
		break;
	case 5:
		virtio_blk_write_sectors(x->b, lba, buf, n);
		break;
	case 6: {
		struct virtio_blk_fault f;
		virtio_blk_fault_init(&f, (enum virtio_blk_fault_kind)(fz_u8(a) % 5));
		f.from = lba;
		f.to = lba + fz_u8(a);
		f.delay_ms = 1;
		if (virtio_blk_fault_add(x->b, &f) < 0 && (lba & 1))
			virtio_blk_faults_clear(x->b);
		break;
	}
	case 7:
		fgz_save_load(&virtio_blk_vdev(x->b)->dev);
		break;
	}
}

static void fzb_check_size(const char *path, uint64_t bytes)
{
	struct stat st;
	if (stat(path, &st) == 0 && (uint64_t)st.st_size != bytes) {
		fprintf(stderr, "fuzz_blk: %s is %lld bytes, was %llu\n", path,
			(long long)st.st_size, (unsigned long long)bytes);
		abort();
	}
}

static inline int pv_fuzz_blk(const uint8_t *data, size_t size)
{
	struct fz z = {data, size, 0};
	struct fzb x = {0};
	struct evloop *loop = NULL;
	char path[64];
	snprintf(path, sizeof(path), "%s/provium-fuzz-blk-%d.img", fgz_tmp(), (int)getpid());
	snprintf(x.small, sizeof(x.small), "%s/provium-fuzz-blk-%d-small.img", fgz_tmp(),
		 (int)getpid());
	unlink(path);
	unlink(x.small);
	uint8_t flags = fz_u8(&z);
	struct virtio_blk_opts o = {.path = path, .size = FZB_SECTORS * 512ull,
				    .readonly = flags & 2};
	if (o.readonly) { /* a read-only image must exist first */
		FILE *fp = fopen(path, "w");
		if (fp) {
			if (ftruncate(fileno(fp), (off_t)o.size) < 0)
				abort();
			fclose(fp);
		}
	}
	if (evloop_create(&loop) < 0 || virtio_blk_create(&o, &x.b) < 0)
		abort();
	virtio_blk_set_evloop(x.b, loop);
	if (flags & 1)
		virtio_blk_set_cache(x.b, VIRTIO_BLK_CACHE_WRITEBACK);
	for (unsigned i = 0; i < ((flags >> 2) & 3); i++) {
		struct virtio_blk_fault f;
		virtio_blk_fault_init(&f, (enum virtio_blk_fault_kind)(fz_u8(&z) % 5));
		f.from = fz_u8(&z) % (FZB_SECTORS + 8);
		f.to = f.from + fz_u8(&z);
		if (fz_u8(&z) & 1)
			f.to = UINT64_MAX; /* the C default that once hung corrupt rules */
		f.count = fz_u8(&z) % 4;
		f.probability = (fz_u8(&z) % 5) / 4.0;
		f.seed = 1;
		f.delay_ms = 1 + fz_u8(&z) % 3;
		f.offset = fz_u8(&z) * 2u;
		virtio_blk_fault_add(x.b, &f);
	}
	x.g.host = fzb_host;
	x.g.opaque = &x;
	if (fgz_init(&x.g, virtio_blk_vdev(x.b), 1, loop) < 0)
		abort();
	fgz_run(&x.g, z.p + z.off, z.n - z.off);
	evloop_fire_timers(loop); /* whatever still waits completes now */
	if (virtio_blk_dirty_bytes(x.b) > (uint64_t)BLK_CACHE_MAX_SECTORS * 512)
		abort();
	virtio_blk_destroy(x.b); /* writes the cache out, like a clean shutdown */
	evloop_destroy(loop);
	fzb_check_size(path, FZB_SECTORS * 512ull);
	fzb_check_size(x.small, FZB_SMALL * 512ull);
	fgz_fini(&x.g);
	unlink(path);
	unlink(x.small);
	return 0;
}

#endif
