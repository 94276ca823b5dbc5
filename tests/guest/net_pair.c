/* net_pair.c — one of the two VMs of host_net_pair.c: a virtio-net driver (polled,
 * no offloads) that sends a frame to its peer when the host says so and prints
 * every frame it receives. The peer's MAC is this NIC's MAC with the last byte
 * replaced by `peer=N` from the command line. Frames use the local experimental
 * EtherType 0x88b5 and carry a short text payload.
 * Console protocol: host writes "tx <payload>\n" -> guest sends it and prints
 * "TX <payload>" once the device took it; every received frame prints
 * "RX <payload>"; "quit\n" ends the test (exit code 0 when nothing failed). */
#include "guest.h"
#include "virtio.h"
#include "vnet.h"

#define F_MAC (1ull << 5)
#define HDR 12
#define NRX 8
#define BUFSZ 2048

static struct vdev d;
static struct vq rx, tx;
static uint8_t rxbuf[NRX][BUFSZ] __attribute__((aligned(64)));
static uint8_t txbuf[BUFSZ] __attribute__((aligned(64)));
static uint8_t mac[6], peer[6];

static void post_rx(unsigned i)
{
	struct vbuf b = {rxbuf[i], BUFSZ, true};
	vq_add(&rx, &b, 1);
	vq_kick(&rx);
}

static void send_frame(const char *payload)
{
	report(vnet_send(&tx, txbuf, peer, mac, payload), "tx %s completed", payload);
	printf("TX %s\n", payload);
}

static void poll_rx(void)
{
	uint32_t id, len;
	while (vq_poll(&rx, &id, &len)) {
		unsigned i = id % NRX;  /* one-descriptor chains: the head is the slot */
		uint8_t *f = rxbuf[i] + HDR;
		if (len > HDR + 14 && len < BUFSZ && f[12] == 0x88 && f[13] == 0xb5) {
			char payload[64];
			size_t n = len - HDR - 14 < sizeof(payload) - 1 ? len - HDR - 14
								      : sizeof(payload) - 1;
			memcpy(payload, f + 14, n);
			payload[n] = 0;
			printf("RX %s\n", payload);
		}
		post_rx(i);
	}
}

int main(void)
{
	uint64_t p;
	if (!virtio_find(1, 0, &d) || !cmdline_u64("peer", &p)) {
		report(false, "virtio-net and peer= on the command line (%s)", bp_cmdline());
		return report_summary();
	}
	report(virtio_init(&d, F_MAC) && (d.features & F_MAC), "features negotiated");
	report(vq_setup(&d, &rx, 0, NRX) && vq_setup(&d, &tx, 1, 4), "queues ready");
	uint32_t m0 = virtio_cfg32(&d, 0), m1 = virtio_cfg32(&d, 4);
	for (int i = 0; i < 4; i++)
		mac[i] = (uint8_t)(m0 >> (8 * i));
	mac[4] = (uint8_t)m1;
	mac[5] = (uint8_t)(m1 >> 8);
	memcpy(peer, mac, 6);
	peer[5] = (uint8_t)p;
	virtio_driver_ok(&d);
	for (unsigned i = 0; i < NRX; i++) {
		struct vbuf b = {rxbuf[i], BUFSZ, true};
		vq_add(&rx, &b, 1);
	}
	vq_kick(&rx);
	printf("NET: ready %02x -> %02x\n", mac[5], peer[5]);

	char line[64];
	size_t n = 0;
	for (;;) {
		poll_rx();
		int c = serial_getc(0);
		if (c < 0) {
			udelay(1000);  /* TSC loop: no exits while idle */
			continue;
		}
		if (c != '\n') {
			if (n < sizeof(line) - 1)
				line[n++] = (char)c;
			continue;
		}
		line[n] = 0;
		n = 0;
		if (!strncmp(line, "tx ", 3))
			send_frame(line + 3);
		else if (!strcmp(line, "quit"))
			break;
	}
	poll_rx();
	report(!(virtio_status(&d) & VSTAT_NEEDS_RESET), "device healthy");
	return report_summary();
}
