/* virtio_net.c — drives virtio-net like Linux's driver would (no offloads): reads
 * the MAC and link status from config space, transmits a frame the host reads
 * from the TAP, receives one the host injects, then follows the host taking the
 * link down (status bit cleared, config interrupt, new generation) and up again.
 * Frames use the local experimental EtherType 0x88b5; others (the kernel's own
 * IPv6 chatter on the TAP) are skipped. Host side: host_virtio_net.c. */
#include "guest.h"
#include "virtio.h"
#include "vnet.h"

#define VEC 0x41
#define F_MAC (1ull << 5)
#define F_STATUS (1ull << 16)
#define HDR 12
#define NRX 4
#define BUFSZ 2048

static struct vdev d;
static struct vq rx, tx;
static uint8_t rxbuf[NRX][BUFSZ] __attribute__((aligned(64)));
static uint8_t txbuf[BUFSZ] __attribute__((aligned(64)));
static uint8_t mac[6];

static uint16_t link_status(void)
{
	return (uint16_t)(virtio_cfg32(&d, 4) >> 16);
}

static void post_rx(unsigned i)
{
	struct vbuf b = {rxbuf[i], BUFSZ, true};
	vq_add(&rx, &b, 1);
	vq_kick(&rx);
}

static bool send_frame(const char *payload)
{
	static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	return vnet_send(&tx, txbuf, broadcast, mac, payload);
}

/* Waits for a 0x88b5 frame; returns its payload buffer (NUL-terminated) or NULL. */
static const char *recv_frame(unsigned timeout_ms)
{
	uint64_t end = now_us() + (uint64_t)timeout_ms * 1000;
	uint32_t id, len;
	while (now_us() < end) {
		if (!vq_poll(&rx, &id, &len)) {
			cpu_relax();
			continue;
		}
		/* One-descriptor chains posted in order: the head is the slot. */
		unsigned i = id % NRX;
		uint8_t *f = rxbuf[i] + HDR;
		bool ours = len > HDR + 14 && f[12] == 0x88 && f[13] == 0xb5;
		static char payload[BUFSZ];
		if (ours) {
			size_t n = len - HDR - 14;
			memcpy(payload, f + 14, n);
			payload[n] = 0;
			report_info("rx frame: %u bytes, num_buffers %u", len,
				    (unsigned)(rxbuf[i][10] | rxbuf[i][11] << 8));
		}
		post_rx(i);
		if (ours)
			return payload;
	}
	return NULL;
}

int main(void)
{
	if (!virtio_find(1, 0, &d)) {
		report(false, "virtio-net found on the command line (%s)", bp_cmdline());
		return report_summary();
	}
	report(virtio_init(&d, F_MAC | F_STATUS | VF_EVENT_IDX), "features negotiated");
	report((d.features & F_MAC) && (d.features & F_STATUS), "MAC and STATUS offered");
	report(vq_setup(&d, &rx, 0, NRX) && vq_setup(&d, &tx, 1, 8), "queues ready");
	uint32_t m0 = virtio_cfg32(&d, 0), m1 = virtio_cfg32(&d, 4);
	for (int i = 0; i < 4; i++)
		mac[i] = (uint8_t)(m0 >> (8 * i));
	mac[4] = (uint8_t)m1;
	mac[5] = (uint8_t)(m1 >> 8);
	printf("NET: mac %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3],
	       mac[4], mac[5]);
	virtio_driver_ok(&d);
	report(link_status() & 1, "link is up at start");
	for (unsigned i = 0; i < NRX; i++) {
		struct vbuf b = {rxbuf[i], BUFSZ, true};
		vq_add(&rx, &b, 1);
	}
	vq_kick(&rx);

	/* Interrupts on from here (used-buffer ones are counted and ACKed too), so the
	 * config-change interrupt for the host's link change cannot be missed. */
	idt_init();
	pic_disable();
	lapic_enable();
	virtio_irq_enable(&d, VEC);
	sti();
	report(send_frame("guest->host"), "frame transmitted");
	puts("NET: sent\n");
	const char *p = recv_frame(60000);
	report(p && !strcmp(p, "host->guest"), "frame from the host received (%s)", p ? p : "none");
	/* Read before telling the host, which then takes the link down. */
	uint32_t gen = readl(d.base + VMMIO_CONFIG_GEN);
	report(!(virtio_irq_isr & 2), "no config interrupt yet");
	puts("NET: got host frame\n");

	/* The host takes the link down: status bit, generation and config interrupt. */
	uint64_t end = now_us() + 60000000ull;
	while ((link_status() & 1) && now_us() < end)
		cpu_relax();
	uint64_t end2 = now_us() + 5000000ull;
	while (!(virtio_irq_isr & 2) && now_us() < end2)
		cpu_relax();
	cli();
	report(!(link_status() & 1), "link status bit cleared");
	report(virtio_irq_isr & 2, "config-change interrupt (isr %#x)", virtio_irq_isr);
	report(readl(d.base + VMMIO_CONFIG_GEN) != gen, "config generation changed");
	report(send_frame("while-down"), "transmit while down completes (frame dropped)");
	puts("NET: down-sent\n");
	char line[32];
	int n = serial_readline(line, sizeof(line), 60000);
	report(n > 0 && !strcmp(line, "checked"), "host checked the link-down path");
	uint32_t id, len;
	report(!vq_poll(&rx, &id, &len), "no frame received while the link was down");

	end = now_us() + 60000000ull;
	while (!(link_status() & 1) && now_us() < end)
		cpu_relax();
	report(link_status() & 1, "link status bit set again");
	report(send_frame("guest->host again"), "frame transmitted after link up");
	report(!(virtio_status(&d) & VSTAT_NEEDS_RESET), "device healthy");
	return report_summary();
}
