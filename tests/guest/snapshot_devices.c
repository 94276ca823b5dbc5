/* snapshot_devices.c — virtio devices across a snapshot (host_snapshot_devices.c).
 * Before: reads 64 bytes from virtio-rng, reads the host's pattern from sector 1
 * of virtio-blk and writes its own to sector 3 (flushed) and to sector 6 (not
 * flushed: on a writeback disk it stays in the device's cache), then prints "ready" and
 * waits for "SALT" on the serial port. After a restore the same rings must go on:
 * a second rng read, sector 3 read back, and sector 4 written with a pattern from
 * the salt (flushed); the host then looks at the disk images. */
#include "guest.h"
#include "virtio.h"
#include "vblk.h"

static struct vdev rd, bd;
static struct vq rq, bq;
static uint8_t buf[512], r1[64], r2[64];

static int rw(uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	return vblk_rw(&bq, type, sector, data, len);
}

static bool rng_read(uint8_t *p)
{
	uint32_t id, len = 0;
	struct vbuf b = {p, 64, true};
	vq_add(&rq, &b, 1);
	vq_kick(&rq);
	return vq_wait(&rq, &id, &len, 10000) && len == 64;
}

int main(void)
{
	char line[32];

	if (!virtio_find(4, 0, &rd) || !virtio_find(2, 0, &bd)) {
		report(false, "virtio-rng and virtio-blk on the command line (%s)", bp_cmdline());
		return report_summary();
	}
	report(virtio_init(&rd, VF_EVENT_IDX | VF_INDIRECT) && vq_setup(&rd, &rq, 0, 8),
	       "rng set up");
	virtio_driver_ok(&rd);
	report(virtio_init(&bd, VF_EVENT_IDX | VF_INDIRECT | VBLK_F_FLUSH) &&
	       vq_setup(&bd, &bq, 0, 8), "blk set up");
	virtio_driver_ok(&bd);
	report(rng_read(r1), "rng read before the snapshot");
	report(rw(VBLK_T_IN, 1, buf, 512) == 0 && vblk_is_pattern(buf, 7),
	       "host pattern in sector 1");
	vblk_fill(buf, 11);
	report(rw(VBLK_T_OUT, 3, buf, 512) == 0 && rw(VBLK_T_FLUSH, 0, NULL, 0) == 0,
	       "sector 3 written and flushed");
	vblk_fill(buf, 13);
	report(rw(VBLK_T_OUT, 6, buf, 512) == 0, "sector 6 written, not flushed");
	printf("ready\n");
	if (serial_readline(line, sizeof(line), 600000) < 0)
		abort_test("no salt arrived");
	unsigned salt = (unsigned)strtou64(line, NULL);
	printf("resumed with salt %u\n", salt);
	report(rng_read(r2), "rng read after the restore");
	report(memcmp(r1, r2, 64) != 0, "rng bytes differ");
	memset(buf, 0, sizeof(buf));
	report(rw(VBLK_T_IN, 3, buf, 512) == 0 && vblk_is_pattern(buf, 11),
	       "sector 3 read back");
	vblk_fill(buf, salt);
	report(rw(VBLK_T_OUT, 4, buf, 512) == 0 && rw(VBLK_T_FLUSH, 0, NULL, 0) == 0,
	       "sector 4 written with the salt pattern and flushed");
	report(!(virtio_status(&rd) & VSTAT_NEEDS_RESET) &&
	       !(virtio_status(&bd) & VSTAT_NEEDS_RESET), "devices healthy");
	return report_summary();
}
