/* virtio_blk.c — drives virtio-blk the way Linux's virtio_blk does (header,
 * data, status byte in one chain; flush; get-id) in one of several modes chosen
 * on the command line; host_virtio_blk.c sets the disk up and checks the result:
 *   blk=basic   read the pattern the host wrote to sector 1, write one to sector
 *               2, flush, read the serial
 *   blk=fail    write sectors 96..107 one by one, print each status
 *   blk=slow    a read with a slow rule: still pending right after the kick,
 *               completes later
 *   blk=crash   write sector 10, flush, write sector 11, no flush
 *   blk=detach  wait for the host to detach the disk, then see IOERR + NEEDS_RESET
 *   blk=faults  read sector 5 twice (a count=1 fail-reads rule), read sector 6
 *               (a corrupt rule) and print what came back */
#include "guest.h"
#include "virtio.h"
#include "vblk.h"

static struct vdev d;
static struct vq q;
static uint8_t buf[512];

static int rw(uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	return vblk_rw(&q, type, sector, data, len);
}

static void mode_basic(void)
{
	report(rw(VBLK_T_IN, 1, buf, 512) == 0, "read sector 1");
	report(vblk_is_pattern(buf, 13), "sector 1 holds the host's pattern");
	vblk_fill(buf, 31);
	report(rw(VBLK_T_OUT, 2, buf, 512) == 0, "write sector 2");
	report(rw(VBLK_T_FLUSH, 0, NULL, 0) == 0, "flush");
	char id[21] = {0};
	report(rw(VBLK_T_GET_ID, 0, id, 20) == 0, "get-id");
	report_info("serial: %s", id);
}

static void mode_fail(void)
{
	vblk_fill(buf, 5);
	for (unsigned lba = 96; lba < 108; lba++)
		printf("write lba=%u status=%d\n", lba, rw(VBLK_T_OUT, lba, buf, 512));
	report(rw(VBLK_T_IN, 100, buf, 512) == 0, "reads are not affected by a fail-writes rule");
}

static void mode_slow(void)
{
	puts("slow: kick\n");
	vblk_submit(&q, VBLK_T_IN, 0, buf, 512);
	uint64_t t0 = now_us();
	vq_kick(&q);
	bool early = vq_poll(&q, NULL, NULL);
	report(!early, "request still pending right after the kick (the vCPU runs on)");
	bool done = early || vq_wait(&q, NULL, NULL, 20000);
	uint64_t us = now_us() - t0;
	puts("slow: done\n");
	report(done && vblk_status == 0, "slow read completed, status %d", vblk_status);
	report_info("slow read took %lu us (guest clock)", (unsigned long)us);
}

static void mode_crash(void)
{
	vblk_fill(buf, 3);
	report(rw(VBLK_T_OUT, 10, buf, 512) == 0, "write sector 10");
	report(rw(VBLK_T_FLUSH, 0, NULL, 0) == 0, "flush");
	vblk_fill(buf, 7);
	report(rw(VBLK_T_OUT, 11, buf, 512) == 0, "write sector 11 (not flushed)");
}

static void mode_detach(void)
{
	char line[16];
	vblk_fill(buf, 9);
	report(rw(VBLK_T_OUT, 20, buf, 512) == 0, "write sector 20 before the detach");
	puts("detach: ready\n");
	if (serial_readline(line, sizeof(line), 30000) < 0) {
		report(false, "host said go");
		return;
	}
	report(rw(VBLK_T_IN, 20, buf, 512) == 1, "read after detach fails with IOERR");
	report(virtio_status(&d) & VSTAT_NEEDS_RESET, "device signals DEVICE_NEEDS_RESET");
}

static void mode_faults(void)
{
	int first = rw(VBLK_T_IN, 5, buf, 512), second = rw(VBLK_T_IN, 5, buf, 512);
	printf("read 5: first status=%d second status=%d\n", first, second);
	report(rw(VBLK_T_IN, 6, buf, 512) == 0, "read sector 6");
	printf("sector 6 bytes 2..4: %02x %02x %02x\n", buf[2], buf[3], buf[4]);
}

int main(void)
{
	if (!virtio_find(2, 0, &d)) {
		report(false, "virtio-blk found on the command line (%s)", bp_cmdline());
		return report_summary();
	}
	report(virtio_init(&d, VF_EVENT_IDX | VF_INDIRECT | VBLK_F_FLUSH), "features negotiated");
	report(d.features & VBLK_F_FLUSH, "flush offered");
	report(vq_setup(&d, &q, 0, 16), "request queue ready");
	virtio_driver_ok(&d);
	report_info("capacity %lu sectors", (unsigned long)virtio_cfg64(&d, 0));
	if (cmdline_has("blk=basic"))
		mode_basic();
	else if (cmdline_has("blk=fail"))
		mode_fail();
	else if (cmdline_has("blk=slow"))
		mode_slow();
	else if (cmdline_has("blk=crash"))
		mode_crash();
	else if (cmdline_has("blk=detach"))
		mode_detach();
	else if (cmdline_has("blk=faults"))
		mode_faults();
	else
		report(false, "a blk= mode on the command line");
	return report_summary();
}
