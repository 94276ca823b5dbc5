/* netpath_capture.c — BPF-filtered packet capture to a pcap file and a queue
 * (devices/netpath_capture.h). */
#include "devices/netpath_capture.h"
#include "vmm/util.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SNAPLEN 65535

struct np_capture {
	atomic_int refs;
	pthread_mutex_t lock;
	pcap_t *dead;              /* for compiling the filter and the dump header */
	pcap_dumper_t *dump;
	struct bpf_program prog;
	bool has_prog, closed;
	int efd;
	struct np_packet *head, *tail;
	size_t queued;
	uint64_t matched, overflow;
};

int np_capture_open(const char *filter, const char *path, struct np_capture **out)
{
	struct np_capture *c = calloc(1, sizeof(*c));
	if (!c)
		return pv_error(ENOMEM, "capture: out of memory");
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	c->efd = -1;
	int ret;
	c->dead = pcap_open_dead(DLT_EN10MB, SNAPLEN);
	if (!c->dead) {
		ret = pv_error(ENOMEM, "capture: pcap_open_dead failed");
		goto fail;
	}
	if (filter && *filter) {
		if (pcap_compile(c->dead, &c->prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
			ret = pv_error(EINVAL, "capture filter \"%s\": %s", filter, pcap_geterr(c->dead));
			goto fail;
		}
		c->has_prog = true;
	}
	if (path && *path) {
		c->dump = pcap_dump_open(c->dead, path);
		if (!c->dump) {
			ret = pv_error(EIO, "capture file %s: %s", path, pcap_geterr(c->dead));
			goto fail;
		}
	}
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		ret = pv_error(errno, "capture: eventfd: %s", strerror(errno));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	np_capture_unref(c);
	return ret;
}

void np_capture_ref(struct np_capture *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void np_capture_close(struct np_capture *c)
{
	pthread_mutex_lock(&c->lock);
	c->closed = true;
	if (c->dump) {
		pcap_dump_close(c->dump);
		c->dump = NULL;
	}
	pthread_mutex_unlock(&c->lock);
}

void np_capture_unref(struct np_capture *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	np_capture_close(c);
	while (c->head) {
		struct np_packet *n = c->head->next;
		free(c->head);
		c->head = n;
	}
	if (c->has_prog)
		pcap_freecode(&c->prog);
	if (c->dead)
		pcap_close(c->dead);
	if (c->efd >= 0)
		close(c->efd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void np_capture_frame(struct np_capture *c, uint64_t time_ns, int dir, const uint8_t *frame,
		      size_t len)
{
	struct pcap_pkthdr h = {
		.ts = {.tv_sec = (time_t)(time_ns / 1000000000u),
		       .tv_usec = (suseconds_t)(time_ns % 1000000000u / 1000)},
		.caplen = (bpf_u_int32)(len > SNAPLEN ? SNAPLEN : len),
		.len = (bpf_u_int32)len,
	};
	pthread_mutex_lock(&c->lock);
	if (c->closed || (c->has_prog && !pcap_offline_filter(&c->prog, &h, frame))) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->matched++;
	if (c->dump)
		pcap_dump((u_char *)c->dump, &h, frame);
	struct np_packet *p = NULL;
	if (c->queued < NP_CAPTURE_MAX_QUEUED)
		p = malloc(sizeof(*p) + h.caplen);
	if (!p) {
		c->overflow++;
	} else {
		p->time_ns = time_ns;
		p->dir = dir;
		p->len = h.caplen;
		p->next = NULL;
		memcpy(p->data, frame, h.caplen);
		if (c->tail)
			c->tail->next = p;
		else
			c->head = p;
		c->tail = p;
		c->queued++;
		uint64_t one = 1;
		if (write(c->efd, &one, sizeof(one)) < 0) {
			/* the counter saturating only means "readable" already */
		}
	}
	pthread_mutex_unlock(&c->lock);
}

struct np_packet *np_capture_pop(struct np_capture *c)
{
	pthread_mutex_lock(&c->lock);
	struct np_packet *p = c->head;
	if (p) {
		c->head = p->next;
		if (!c->head)
			c->tail = NULL;
		c->queued--;
	}
	if (!c->head) {
		uint64_t v;
		if (read(c->efd, &v, sizeof(v)) < 0) {
			/* EAGAIN: already clear */
		}
	}
	pthread_mutex_unlock(&c->lock);
	return p;
}

int np_capture_fd(struct np_capture *c)
{
	return c->efd;
}

void np_capture_stats(struct np_capture *c, uint64_t *matched, uint64_t *overflow)
{
	pthread_mutex_lock(&c->lock);
	*matched = c->matched;
	*overflow = c->overflow;
	pthread_mutex_unlock(&c->lock);
}
