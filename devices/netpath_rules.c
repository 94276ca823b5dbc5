/* netpath_rules.c — faults as netpath match predicates (devices/netpath_rules.h). */
#include "devices/netpath_rules.h"
#include "vmm/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fault_match {
	bool everything;
	double rate;
	uint64_t rng[2];          /* per direction */
	size_t npeers, nlocals;
	uint8_t (*peers)[6];      /* NULL: any */
	uint8_t (*locals)[6];
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

uint64_t netpath_fault_seed(uint64_t run_seed, const char *nic, uint64_t rule_seed)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the NIC name */
	for (const char *p = nic ? nic : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	uint64_t s = run_seed ^ h ^ (rule_seed * 0x9E3779B97F4A7C15ull);
	return splitmix(&s);
}

int netpath_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char extra;
	if (!s || sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
			 &extra) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

static bool in_set(uint8_t (*set)[6], size_t n, const uint8_t *mac)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(set[i], mac, 6))
			return true;
	return false;
}

/* Called under the netpath's lock (so the PRNG state needs no lock of its own). */
static bool fault_match(void *opaque, enum netpath_dir dir, const uint8_t *frame, size_t len)
{
	struct fault_match *m = opaque;
	if (!m->everything) {
		if (len < 14)
			return false;
		const uint8_t *dst = frame, *src = frame + 6;
		bool multi = dst[0] & 1;
		if (dir == NETPATH_TO_HOST) {
			if (multi || (m->peers && !in_set(m->peers, m->npeers, dst)))
				return false;
		} else if (multi) {
			if (m->peers && !in_set(m->peers, m->npeers, src))
				return false;
		} else {
			if (in_set(m->locals, m->nlocals, src))
				return false; /* the sender's egress rule handled it */
			if (m->peers && !in_set(m->peers, m->npeers, src))
				return false;
		}
	}
	if (m->rate >= 1)
		return true;
	uint64_t r = splitmix(&m->rng[dir & 1]);
	return (double)(r >> 11) * (1.0 / 9007199254740992.0) < m->rate;
}

static void fault_free(void *opaque)
{
	struct fault_match *m = opaque;
	free(m->peers);
	free(m->locals);
	free(m);
}

static uint8_t (*copy_set(const uint8_t (*set)[6], size_t n))[6]
{
	uint8_t (*c)[6] = malloc(n ? n * 6 : 1);
	if (c && n)
		memcpy(c, set, n * 6);
	return c;
}

int netpath_fault_add(struct netpath *np, const struct netpath_fault *f)
{
	if (f->action == NETPATH_PASS || f->action > NETPATH_CORRUPT ||
	    (f->action != NETPATH_DELAY && !(f->rate > 0 && f->rate <= 1)))
		return pv_error(EINVAL, "netpath %s: bad fault (rate must be in (0, 1])", netpath_name(np));
	struct fault_match *m = calloc(1, sizeof(*m));
	if (!m)
		return pv_error(ENOMEM, "netpath %s: out of memory", netpath_name(np));
	m->everything = f->everything;
	m->rate = f->action == NETPATH_DELAY ? 1 : f->rate;
	m->rng[0] = f->seed;
	m->rng[1] = f->seed ^ 0x5851F42D4C957F2Dull;
	m->npeers = f->npeers;
	m->nlocals = f->nlocals;
	m->locals = copy_set(f->locals, f->nlocals);
	if (f->peers)
		m->peers = copy_set(f->peers, f->npeers);
	if (!m->locals || (f->peers && !m->peers)) {
		fault_free(m);
		return pv_error(ENOMEM, "netpath %s: out of memory", netpath_name(np));
	}
	struct netpath_rule r = {
		.action = f->action, .dirs = NETPATH_BOTH, .probability = 0,
		.delay_ns = f->delay_ns, .jitter_ns = f->jitter_ns,
		.match = fault_match, .match_opaque = m, .free_opaque = fault_free,
		.label = f->label,
	};
	int id = netpath_add_rule(np, &r);
	if (id < 0)
		fault_free(m);
	return id;
}
