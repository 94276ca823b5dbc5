/* bench_virtio_blk.c — virtio-blk device-side throughput, no guest: the host-side
 * fake driver (tests/unit/virtio_fake_driver.h) submits batches of requests into
 * a buffer standing for guest RAM and kicks the device through its mmio ops, for
 * 4 KiB random and 1 MiB sequential reads and writes against a tmpfs image
 * (/dev/shm). The same offsets are then done with plain pread/pwrite on the same
 * file; the table prints requests/s, MB/s and device/plain ratios.
 * Usage: bench_virtio_blk [BUILD_DIR]   (tests/bench/run.sh passes it) */
#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "tests/unit/virtio_fake_driver.h"
#include "vmm/util.h"

#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMG_MIB 128
#define BATCH 32
#define QSIZE 128
#define MIN_NS 700000000ull /* run each case at least this long */

struct slot {
	uint64_t hdr, data, status;
};

static struct fake_drv f;
static struct slot slots[BATCH];
static uint64_t rng_state = 88172645463325252ull;

static uint64_t xorshift(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t next_off(bool random, uint32_t bs, uint64_t i)
{
	uint64_t nblk = ((uint64_t)IMG_MIB << 20) / bs;
	return (random ? xorshift() % nblk : i % nblk) * bs;
}

/* Runs requests in batches of BATCH until MIN_NS passed; returns requests done. */
static uint64_t run_device(bool write, bool random, uint32_t bs, double *secs)
{
	uint64_t done = 0, t0 = pv_now_ns(), errors = 0;
	rng_state = 88172645463325252ull;
	do {
		for (unsigned s = 0; s < BATCH; s++) {
			struct virtio_blk_outhdr h = {
				.type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
				.sector = next_off(random, bs, done + s) / 512};
			memcpy(fake_ptr(&f, slots[s].hdr), &h, sizeof(h));
			struct fake_buf b[3] = {{slots[s].hdr, 16, false},
						{slots[s].data, bs, !write},
						{slots[s].status, 1, true}};
			fake_submit(&f, 0, b, 3, false);
		}
		fake_kick(&f, 0);
		for (unsigned s = 0; s < BATCH; s++) {
			if (!fake_get_used(&f, 0, NULL, NULL)) {
				fprintf(stderr, "bench: request not completed\n");
				exit(1);
			}
			errors += *(uint8_t *)fake_ptr(&f, slots[s].status) != 0;
		}
		done += BATCH;
	} while (pv_now_ns() - t0 < MIN_NS);
	*secs = (double)(pv_now_ns() - t0) / 1e9;
	if (errors) {
		fprintf(stderr, "bench: %lu requests failed\n", (unsigned long)errors);
		exit(1);
	}
	return done;
}

static uint64_t run_plain(int fd, bool write, bool random, uint32_t bs, double *secs, void *buf)
{
	uint64_t done = 0, t0 = pv_now_ns();
	rng_state = 88172645463325252ull;
	do {
		for (unsigned s = 0; s < BATCH; s++) {
			off_t off = (off_t)next_off(random, bs, done + s);
			ssize_t r = write ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
			if (r != (ssize_t)bs) {
				perror("bench: pread/pwrite");
				exit(1);
			}
		}
		done += BATCH;
	} while (pv_now_ns() - t0 < MIN_NS);
	*secs = (double)(pv_now_ns() - t0) / 1e9;
	return done;
}

int main(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/provium-bench-blk-%d.img", getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	/* Fill the image so reads hit real pages, not holes. */
	char *chunk = malloc(1 << 20);
	memset(chunk, 0x5a, 1 << 20);
	for (int i = 0; i < IMG_MIB; i++)
		if (pwrite(fd, chunk, 1 << 20, (off_t)i << 20) != 1 << 20) {
			perror("bench: fill");
			return 1;
		}
	struct virtio_blk *b;
	struct virtio_blk_opts o = {.path = path};
	if (virtio_blk_create(&o, &b) < 0) {
		fprintf(stderr, "bench: %s\n", pv_errmsg());
		return 1;
	}
	if (fake_init(&f, virtio_blk_vdev(b), (BATCH + 2ull) << 20) < 0 ||
	    !fake_negotiate(&f, ~0ull)) {
		fprintf(stderr, "bench: device setup failed\n");
		return 1;
	}
	fake_setup_queue(&f, 0, QSIZE);
	fake_driver_ok(&f);
	for (unsigned s = 0; s < BATCH; s++) {
		slots[s].hdr = fake_alloc(&f, 16, 16);
		slots[s].status = fake_alloc(&f, 1, 1);
		slots[s].data = fake_alloc(&f, 1 << 20, 4096);
	}
	static const struct { const char *name; bool write, random; uint32_t bs; } cases[] = {
		{"4 KiB random read", false, true, 4096},
		{"4 KiB random write", true, true, 4096},
		{"1 MiB sequential read", false, false, 1 << 20},
		{"1 MiB sequential write", true, false, 1 << 20},
	};
	printf("virtio-blk device path (fake driver, batches of %d, %d MiB tmpfs image)\n"
	       "vs plain pread/pwrite on the same file:\n", BATCH, IMG_MIB);
	printf("%-24s %12s %10s %12s %10s %7s\n", "case", "dev req/s", "dev MB/s",
	       "plain req/s", "plain MB/s", "ratio");
	for (size_t i = 0; i < PV_ARRAY_SIZE(cases); i++) {
		double ds, ps;
		uint64_t dn = run_device(cases[i].write, cases[i].random, cases[i].bs, &ds);
		uint64_t pn = run_plain(fd, cases[i].write, cases[i].random, cases[i].bs, &ps, chunk);
		double dr = dn / ds, pr = pn / ps;
		printf("%-24s %12.0f %10.1f %12.0f %10.1f %7.2f\n", cases[i].name, dr,
		       dr * cases[i].bs / 1e6, pr, pr * cases[i].bs / 1e6, dr / pr);
	}
	struct virtio_blk_stats st;
	virtio_blk_get_stats(b, &st);
	printf("device stats: %lu reads, %lu writes, %lu errors\n", (unsigned long)st.reads,
	       (unsigned long)st.writes, (unsigned long)st.errors);
	virtio_blk_destroy(b);
	fake_fini(&f);
	free(chunk);
	close(fd);
	unlink(path);
	return 0;
}
