/* test_capture.c — devices/netpath_capture.c: BPF filtering with pcap_offline_filter,
 * a pcap file that libpcap (and so tcpdump -r) reads back frame for frame, the
 * packet queue with its eventfd, references, and bad filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/netpath_capture.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An Ethernet + IPv4 frame of `len` bytes with protocol `proto` (1 icmp, 17 udp). */
static void ip_frame(uint8_t *f, size_t len, uint8_t proto, uint16_t dport)
{
	memset(f, 0, len);
	memcpy(f, "\x02\x00\x00\x00\x00\x0b\x02\x00\x00\x00\x00\x0a\x08\x00", 14);
	f[14] = 0x45;
	f[16] = (uint8_t)((len - 14) >> 8);
	f[17] = (uint8_t)(len - 14);
	f[22] = 64;
	f[23] = proto;
	memcpy(f + 26, "\x0a\xd5\x00\x02\x0a\xd5\x00\x03", 8);
	f[36] = (uint8_t)(dport >> 8);
	f[37] = (uint8_t)dport;
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1;
}

static void filter_queue_and_eventfd(void **state)
{
	(void)state;
	struct np_capture *c;
	assert_int_equal(np_capture_open("udp port 53", NULL, &c), 0);
	uint8_t f[98];
	assert_false(readable(np_capture_fd(c)));
	ip_frame(f, 98, 1, 0);
	np_capture_frame(c, 1000, 0, f, sizeof(f));
	assert_false(readable(np_capture_fd(c)));
	ip_frame(f, 98, 17, 53);
	np_capture_frame(c, 2000, 1, f, sizeof(f));
	ip_frame(f, 98, 17, 54);
	np_capture_frame(c, 3000, 1, f, sizeof(f));
	assert_true(readable(np_capture_fd(c)));
	struct np_packet *p = np_capture_pop(c);
	assert_non_null(p);
	assert_int_equal(p->time_ns, 2000);
	assert_int_equal(p->dir, 1);
	assert_int_equal(p->len, 98);
	assert_int_equal(p->data[37], 53);
	free(p);
	assert_null(np_capture_pop(c));
	assert_false(readable(np_capture_fd(c)));
	uint64_t m, o;
	np_capture_stats(c, &m, &o);
	assert_int_equal(m, 1);
	assert_int_equal(o, 0);
	np_capture_close(c);
	np_capture_frame(c, 4000, 1, f, sizeof(f)); /* closed: ignored */
	assert_null(np_capture_pop(c));
	np_capture_unref(c);
}

static void pcap_file_reads_back(void **state)
{
	(void)state;
	char path[] = "/tmp/test_capture.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct np_capture *c;
	assert_int_equal(np_capture_open("icmp", path, &c), 0);
	np_capture_ref(c); /* a second holder (another NIC) */
	uint8_t f[98];
	for (int i = 0; i < 5; i++) {
		ip_frame(f, 98, i % 2 ? 17 : 1, 7);
		f[40] = (uint8_t)i;
		np_capture_frame(c, 1700000000000000000ull + (uint64_t)i * 1000000, 0, f, sizeof(f));
	}
	np_capture_unref(c);
	np_capture_close(c);
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, err);
	assert_non_null(p);
	assert_int_equal(pcap_datalink(p), DLT_EN10MB);
	struct pcap_pkthdr *h;
	const u_char *data;
	int n = 0;
	while (pcap_next_ex(p, &h, &data) == 1) {
		assert_int_equal(h->len, 98);
		assert_int_equal(data[23], 1);
		assert_int_equal(data[40], n * 2);
		assert_int_equal(h->ts.tv_sec, 1700000000);
		assert_int_equal(h->ts.tv_usec, n * 2 * 1000);
		n++;
	}
	assert_int_equal(n, 3);
	pcap_close(p);
	np_capture_unref(c);
	unlink(path);
}

static void bad_filter_and_path(void **state)
{
	(void)state;
	struct np_capture *c = NULL;
	assert_int_equal(np_capture_open("no such filter (", NULL, &c), -EINVAL);
	assert_int_equal(np_capture_open(NULL, "/nonexistent/dir/x.pcap", &c), -EIO);
	assert_int_equal(np_capture_open(NULL, NULL, &c), 0);
	uint8_t f[14] = {0};
	np_capture_frame(c, 1, 0, f, sizeof(f)); /* no filter: everything */
	struct np_packet *p = np_capture_pop(c);
	assert_non_null(p);
	free(p);
	np_capture_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(filter_queue_and_eventfd),
		cmocka_unit_test(pcap_file_reads_back),
		cmocka_unit_test(bad_filter_and_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
