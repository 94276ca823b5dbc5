/* snapshot_devices.c — virtio devices across a snapshot (host_snapshot_devices.c).
 * Before: reads 64 bytes from virtio-rng, reads the host's pattern from sector 1
 * of virtio-blk and writes its own to sector 3 (flushed) and to sector 6 (not
 * flushed: on a writeback disk it stays in the device's cache), then prints "ready" and
 * waits for "SALT" on the serial port. After a restore the same rings must go on:
 * a second rng read, sector 3 read back, and sector 4 written with a pattern from
 * the salt (flushed); the host then looks at the disk images. */
#include "guest.h"
#include "virtio.h"

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4

struct hdr { uint32_t type, reserved; uint64_t sector; };

static struct vdev rd, bd;
static struct vq rq, bq;
static struct hdr h;
static volatile uint8_t status;
static uint8_t buf[512], r1[64], r2[64];

static int rw(uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	h.type = type;
	h.sector = sector;
	status = 0xee;
	struct vbuf b[3] = {{&h, sizeof(h), false}};
	unsigned n = 1;
	if (len)
		b[n++] = (struct vbuf){data, len, type == T_IN};
	b[n++] = (struct vbuf){(void *)&status, 1, true};
	vq_add(&bq, b, n);
	vq_kick(&bq);
	if (!vq_wait(&bq, NULL, NULL, 20000))
		return -1;
	return status;
}

static uint8_t pat(unsigned i, unsigned seed) { return (uint8_t)(i * seed + 1); }

static bool is_pattern(const uint8_t *p, unsigned seed)
{
	for (unsigned i = 0; i < 512; i++)
		if (p[i] != pat(i, seed))
			return false;
	return true;
}

static void fill(uint8_t *p, unsigned seed)
{
	for (unsigned i = 0; i < 512; i++)
		p[i] = pat(i, seed);
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
	report(virtio_init(&bd, VF_EVENT_IDX | VF_INDIRECT | (1ull << 9)) &&
	       vq_setup(&bd, &bq, 0, 8), "blk set up");
	virtio_driver_ok(&bd);
	report(rng_read(r1), "rng read before the snapshot");
	report(rw(T_IN, 1, buf, 512) == 0 && is_pattern(buf, 7), "host pattern in sector 1");
	fill(buf, 11);
	report(rw(T_OUT, 3, buf, 512) == 0 && rw(T_FLUSH, 0, NULL, 0) == 0,
	       "sector 3 written and flushed");
	fill(buf, 13);
	report(rw(T_OUT, 6, buf, 512) == 0, "sector 6 written, not flushed");
	printf("ready\n");
	if (serial_readline(line, sizeof(line), 600000) < 0)
		abort_test("no salt arrived");
	unsigned salt = (unsigned)strtou64(line, NULL);
	printf("resumed with salt %u\n", salt);
	report(rng_read(r2), "rng read after the restore");
	report(memcmp(r1, r2, 64) != 0, "rng bytes differ");
	memset(buf, 0, sizeof(buf));
	report(rw(T_IN, 3, buf, 512) == 0 && is_pattern(buf, 11), "sector 3 read back");
	fill(buf, salt);
	report(rw(T_OUT, 4, buf, 512) == 0 && rw(T_FLUSH, 0, NULL, 0) == 0,
	       "sector 4 written with the salt pattern and flushed");
	report(!(virtio_status(&rd) & VSTAT_NEEDS_RESET) &&
	       !(virtio_status(&bd) & VSTAT_NEEDS_RESET), "devices healthy");
	return report_summary();
}
