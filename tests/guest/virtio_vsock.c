/* virtio_vsock.c — a vsock stream driver in the test guest (polling): an echo
 * service on port 1234 that sends every byte back on the same stream, honouring
 * the host's credit and granting its own (buf_alloc/fwd_cnt, CREDIT_UPDATE and
 * CREDIT_REQUEST); it runs until the host resets the stream. Then the guest opens
 * a stream to host port 5000, sends a line, shuts down both directions and waits
 * for the RST that closes it, and finally waits for a transport-reset event and
 * re-reads its CID. Echo is zero-copy: the receive buffer itself is transmitted.
 * Host side: host_virtio_vsock.c. */
#include "guest.h"
#include "virtio.h"

#define HDR 44
#define NRX 16
#define RXDATA 32768u
/* The credit we grant: a quarter of the receive buffers, so buffers whose echo
 * waits for the host's credit never take the last ones (a CREDIT_UPDATE from the
 * host needs a free receive buffer to arrive in). */
#define BUF_ALLOC (NRX * RXDATA / 4)
#define TXQ 64
#define NCTL 16
#define ECHO_PORT 1234
#define HOST_PORT 5000
#define MY_PORT 7000

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE,
       OP_CREDIT_REQUEST };

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct conn {
	bool open;
	uint32_t lport, pport;
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt; /* our sending credit */
	uint32_t fwd_cnt;                              /* bytes we consumed */
	uint64_t echoed;
};

static struct vdev d;
static struct vq rxq, txq, evq;
static uint64_t cid;
static uint8_t rxbuf[NRX][HDR + RXDATA] __attribute__((aligned(64)));
static int rx_of_head[256];            /* RX descriptor head -> buffer */
static struct hdr echo_hdr[NRX];       /* TX header for an echo of buffer i */
static struct hdr ctl_hdr[NCTL];
static char msgbuf[64];
static unsigned ctl_next, tx_inflight;
static uint8_t tx_ndesc[TXQ];          /* descriptors of each in-flight TX head */
static int tx_rxbuf[TXQ];              /* RX buffer to re-post when TX head completes */
static struct conn echo, out;
static int pending[NRX], npending;     /* RX buffers waiting for credit to echo */
static int max_pending;
static uint32_t pending_len[NRX];
static bool out_rst, echo_rst;
static uint32_t event_id = 0xffffffff;
static uint32_t evbuf;

static void post_rx(int i)
{
	struct vbuf b = {rxbuf[i], HDR + RXDATA, true};
	rx_of_head[vq_add(&rxq, &b, 1)] = i;
	vq_kick(&rxq);
}

static void fill(struct hdr *h, struct conn *c, uint16_t op, uint32_t len, uint32_t flags)
{
	*h = (struct hdr){.src_cid = cid, .dst_cid = 2, .src_port = c->lport,
			  .dst_port = c->pport, .len = len, .type = 1, .op = op,
			  .flags = flags, .buf_alloc = BUF_ALLOC, .fwd_cnt = c->fwd_cnt};
}

static void tx_reap(void)
{
	uint32_t id, len;
	while (vq_poll(&txq, &id, &len)) {
		tx_inflight -= tx_ndesc[id % TXQ];
		int i = tx_rxbuf[id % TXQ];
		tx_rxbuf[id % TXQ] = -1;
		if (i >= 0)
			post_rx(i);
	}
}

static void tx_submit(struct vbuf *b, unsigned n, int rx_index)
{
	while (tx_inflight + n > TXQ)
		tx_reap();
	uint16_t head = vq_add(&txq, b, n);
	tx_ndesc[head % TXQ] = (uint8_t)n;
	tx_rxbuf[head % TXQ] = rx_index;
	tx_inflight += n;
	vq_kick(&txq);
}

static void send_ctl(struct conn *c, uint16_t op, uint32_t flags)
{
	struct hdr *h = &ctl_hdr[ctl_next++ % NCTL];
	fill(h, c, op, 0, flags);
	struct vbuf b = {h, HDR, false};
	tx_submit(&b, 1, -1);
}

static void send_rst_to(const struct hdr *in)
{
	struct conn tmp = {.lport = in->dst_port, .pport = in->src_port};
	send_ctl(&tmp, OP_RST, 0);
}

static uint32_t credit(const struct conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;
	return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

/* Echoes buffer i's payload if the host has room; else it waits in `pending`. */
static bool try_echo(int i, uint32_t len)
{
	if (credit(&echo) < len)
		return false;
	echo.tx_cnt += len;
	echo.fwd_cnt += len;   /* consumed: it leaves with this packet */
	echo.echoed += len;
	fill(&echo_hdr[i], &echo, OP_RW, len, 0);
	struct vbuf b[2] = {{&echo_hdr[i], HDR, false}, {rxbuf[i] + HDR, len, false}};
	tx_submit(b, 2, i);
	return true;
}

static void flush_pending(void)
{
	while (npending && try_echo(pending[0], pending_len[0])) {
		for (int k = 1; k < npending; k++) {
			pending[k - 1] = pending[k];
			pending_len[k - 1] = pending_len[k];
		}
		npending--;
	}
}

static void handle(int i, uint32_t used)
{
	struct hdr h;
	memcpy(&h, rxbuf[i], HDR);
	bool repost = true;
	struct conn *c = NULL;
	if (used < HDR || h.type != 1 || h.dst_cid != cid) {
		report(false, "well-formed packet from the device (used %u)", used);
	} else if (echo.open && h.dst_port == echo.lport && h.src_port == echo.pport) {
		c = &echo;
	} else if (out.lport && h.dst_port == out.lport && h.src_port == out.pport) {
		c = &out;
	} else if (h.op == OP_REQUEST && h.dst_port == ECHO_PORT && !echo.open) {
		echo = (struct conn){.open = true, .lport = ECHO_PORT, .pport = h.src_port,
				     .peer_buf_alloc = h.buf_alloc, .peer_fwd_cnt = h.fwd_cnt};
		send_ctl(&echo, OP_RESPONSE, 0);
		printf("VSOCK: echo stream from host port %u\n", h.src_port);
	} else if (h.op != OP_RST) {
		send_rst_to(&h);
	}
	if (c) {
		c->peer_buf_alloc = h.buf_alloc;
		c->peer_fwd_cnt = h.fwd_cnt;
		switch (h.op) {
		case OP_RW:
			if (c == &echo && h.len) {
				if (npending || !try_echo(i, h.len)) {
					pending[npending] = i;
					pending_len[npending++] = h.len;
					if (npending > max_pending)
						max_pending = npending;
				}
				repost = false;
			}
			break;
		case OP_CREDIT_REQUEST:
			send_ctl(c, OP_CREDIT_UPDATE, 0);
			break;
		case OP_RST:
			c->open = false;
			if (c == &echo)
				echo_rst = true;
			else
				out_rst = true;
			break;
		case OP_RESPONSE:
			c->open = true;
			break;
		default:
			break;
		}
	}
	if (repost)
		post_rx(i);
	flush_pending();
}

static void poll_once(void)
{
	uint32_t id, len;
	while (vq_poll(&rxq, &id, &len))
		handle(rx_of_head[id], len);
	tx_reap();
	if (vq_poll(&evq, &id, &len))
		event_id = evbuf;
}

static bool wait_for(bool *flag, unsigned timeout_s)
{
	uint64_t end = now_us() + timeout_s * 1000000ull;
	while (!*flag && now_us() < end)
		poll_once();
	return *flag;
}

int main(void)
{
	if (!virtio_find(19, 0, &d)) {
		report(false, "virtio-vsock found on the command line (%s)", bp_cmdline());
		return report_summary();
	}
	report(virtio_init(&d, VF_EVENT_IDX), "features negotiated");
	report(vq_setup(&d, &rxq, 0, NRX) && vq_setup(&d, &txq, 1, TXQ) &&
	       vq_setup(&d, &evq, 2, 4), "rx, tx and event queues ready");
	cid = virtio_cfg64(&d, 0);
	printf("VSOCK: cid %lu\n", (unsigned long)cid);
	virtio_driver_ok(&d);
	for (int i = 0; i < TXQ; i++)
		tx_rxbuf[i] = -1;
	for (int i = 0; i < NRX; i++)
		post_rx(i);
	struct vbuf eb = {&evbuf, sizeof(evbuf), true};
	vq_add(&evq, &eb, 1);
	vq_kick(&evq);
	puts("VSOCK: listening\n");

	/* 1. Echo until the host resets the stream. */
	bool ok = wait_for(&echo_rst, 600);
	report(ok, "echo stream reset by the host after echoing %lu bytes",
	       (unsigned long)echo.echoed);
	printf("VSOCK: echoed %lu, at most %d buffers waited for host credit\n",
	       (unsigned long)echo.echoed, max_pending);

	/* 2. A stream the guest opens: send a line, shut down both ways, get RST. */
	out = (struct conn){.lport = MY_PORT, .pport = HOST_PORT};
	send_ctl(&out, OP_REQUEST, 0);
	uint64_t end = now_us() + 60000000ull;
	while (!out.open && !out_rst && now_us() < end)
		poll_once();
	report(out.open, "host accepted the guest's stream on port %u", HOST_PORT);
	const char *msg = "hello from the guest\n";
	size_t n = strlen(msg);
	memcpy(msgbuf, msg, n);
	struct hdr mh;
	fill(&mh, &out, OP_RW, (uint32_t)n, 0);
	struct vbuf mb[2] = {{&mh, HDR, false}, {msgbuf, (uint32_t)n, false}};
	tx_submit(mb, 2, -1);
	send_ctl(&out, OP_SHUTDOWN, 3);
	report(wait_for(&out_rst, 60), "guest shutdown answered with RST");

	/* 3. The host's transport reset arrives on the event queue. */
	end = now_us() + 120000000ull;
	while (event_id == 0xffffffff && now_us() < end)
		poll_once();
	report(event_id == 0, "transport-reset event (id %u)", event_id);
	printf("VSOCK: cid after reset %lu\n", (unsigned long)virtio_cfg64(&d, 0));
	report(!(virtio_status(&d) & VSTAT_NEEDS_RESET), "device healthy");
	return report_summary();
}
