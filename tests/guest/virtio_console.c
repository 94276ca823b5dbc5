/* virtio_console.c — drives virtio-console port 0 (Linux's hvc0) without
 * MULTIPORT: writes a greeting on the transmit queue, posts a receive buffer,
 * waits for the host's input on it and echoes it back on hvc0. */
#include "guest.h"
#include "virtio.h"

static struct vdev d;
static struct vq rx, tx;
static char inbuf[64];
static char outbuf[128];

static bool hvc_write(const char *s)
{
	size_t n = strlen(s);
	memcpy(outbuf, s, n);
	struct vbuf b = {outbuf, (uint32_t)n, false};
	vq_add(&tx, &b, 1);
	vq_kick(&tx);
	return vq_wait(&tx, NULL, NULL, 10000);
}

int main(void)
{
	uint32_t len = 0;
	if (!virtio_find(3, 0, &d)) {
		report(false, "virtio-console found on the command line (%s)", bp_cmdline());
		return report_summary();
	}
	report(virtio_init(&d, VF_EVENT_IDX | VF_INDIRECT), "features negotiated");
	report(vq_setup(&d, &rx, 0, 8) && vq_setup(&d, &tx, 1, 8), "receive and transmit queues ready");
	virtio_driver_ok(&d);
	struct vbuf b = {inbuf, sizeof(inbuf) - 1, true};
	vq_add(&rx, &b, 1);
	vq_kick(&rx);
	report(hvc_write("hello from hvc0\n"), "greeting transmitted");
	puts("hvc: ready\n");
	bool got = vq_wait(&rx, NULL, &len, 30000);
	report(got && len > 0, "host input arrived (%u bytes)", len);
	if (got) {
		inbuf[len] = 0;
		if (len && inbuf[len - 1] == '\n')
			inbuf[len - 1] = 0;
		char line[100];
		snprintf(line, sizeof(line), "HVC-ECHO: %s\n", inbuf);
		report(hvc_write(line), "echo transmitted");
	}
	return report_summary();
}
