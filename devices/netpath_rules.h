/* netpath_rules.h — network faults as netpath rules (devices/netpath.h extension
 * point): partitions, isolation, latency with jitter, drop, duplicate, corrupt,
 * each optionally limited to frames between this NIC and a set of peer MACs.
 *
 * Each frame crossing a bridge from NIC a to NIC b meets a fault once: a unicast
 * frame on a's egress (NETPATH_TO_HOST, matched by destination MAC), a broadcast or
 * multicast frame on each receiver's ingress (NETPATH_TO_GUEST, matched by source
 * MAC). Unicast frames from a source that is no NIC of the bridge (its gateway)
 * meet bridge-wide faults on the receiver's ingress. So a latency of ms on every
 * NIC grows a ping round trip by 2*ms, not 4*ms.
 *
 * Probabilities use the rule's own PRNG (one stream per direction, so broadcast
 * noise on ingress does not shift the draws of unicast egress), seeded from
 * netpath_fault_seed(run seed, NIC name, rule seed): the same seed gives the same
 * drops for the same frames. Rules are thread-safe through netpath's lock. */
#ifndef PROVIUM_NETPATH_RULES_H
#define PROVIUM_NETPATH_RULES_H

#include "devices/netpath.h"

struct netpath_fault {
	enum netpath_action action;   /* DROP, DELAY, DUPLICATE or CORRUPT */
	double rate;                  /* 0 < rate <= 1 (DELAY ignores it: always) */
	uint64_t delay_ns, jitter_ns; /* DELAY */
	bool everything;              /* every frame, both ways (isolate) */
	const uint8_t (*peers)[6];    /* NULL: any peer */
	size_t npeers;
	const uint8_t (*locals)[6];   /* MACs of the bridge's NICs (see top) */
	size_t nlocals;
	uint64_t seed;                /* from netpath_fault_seed() */
	const char *label;
};

/* Adds the fault as a rule; returns its id (netpath_del_rule removes it) or -errno. */
int netpath_fault_add(struct netpath *np, const struct netpath_fault *f);
uint64_t netpath_fault_seed(uint64_t run_seed, const char *nic, uint64_t rule_seed);
/* Parses "aa:bb:cc:dd:ee:ff"; 0 or -EINVAL. */
int netpath_parse_mac(const char *s, uint8_t mac[6]);

#endif
