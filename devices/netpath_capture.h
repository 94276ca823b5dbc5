/* netpath_capture.h — packet capture for NIC datapaths (libpcap): each Capture
 * filters frames with a BPF program (pcap_compile + pcap_offline_filter), writes
 * them to a pcap file `tcpdump -r` reads (pcap_open_dead + pcap_dump) when given a
 * path, and queues them for a reader (the Lua packet stream), with an eventfd that
 * is readable while packets are queued. Frames come from any thread (the relay's
 * sinks, netpath's capture hook); captures are reference counted so one capture can
 * listen on many NICs (a bridge capture). */
#ifndef PROVIUM_NETPATH_CAPTURE_H
#define PROVIUM_NETPATH_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

struct np_capture;

struct np_packet {
	uint64_t time_ns;       /* wall clock */
	int dir;                /* enum netpath_dir */
	size_t len;
	struct np_packet *next;
	uint8_t data[];
};

#define NP_CAPTURE_MAX_QUEUED 100000  /* older packets stay in the file only */

/* filter and path may be NULL. -errno with pv_error() (a bad filter: EINVAL with
 * pcap's message). The caller holds one reference. */
int np_capture_open(const char *filter, const char *path, struct np_capture **out);
void np_capture_ref(struct np_capture *c);
void np_capture_unref(struct np_capture *c);
/* Stops taking frames and flushes and closes the file; the queue stays readable. */
void np_capture_close(struct np_capture *c);
void np_capture_frame(struct np_capture *c, uint64_t time_ns, int dir, const uint8_t *frame,
		      size_t len);
/* Next queued packet (free() it) or NULL. Clears the eventfd when the queue empties. */
struct np_packet *np_capture_pop(struct np_capture *c);
int np_capture_fd(struct np_capture *c);
/* Frames that passed the filter, and those the full queue could not keep. */
void np_capture_stats(struct np_capture *c, uint64_t *matched, uint64_t *overflow);

#endif
