/* virtio_blk_faults.c — virtio-blk's fault rules (virtio_blk.h): adding, listing
 * and removing them, and judging each request against them. A rule hits a request
 * whose sectors overlap its range, while its count lasts, with its probability
 * drawn from its own seeded PRNG (splitmix64), so seeded rules repeat exactly. */
#include "devices/virtio_blk_int.h"
#include "vmm/util.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/random.h>

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Whether rule r hits this request; consumes one count and one PRNG draw. */
static bool rule_hits(struct blk_rule *r, uint64_t lo, uint64_t hi)
{
	if (hi < r->f.from || lo > r->f.to)
		return false;
	if (r->f.count && !r->remaining)
		return false;
	if (r->f.probability < 1.0) {
		double x = (double)(rng_next(&r->rng) >> 11) / 9007199254740992.0;
		if (x >= r->f.probability)
			return false;
	}
	if (r->f.count)
		r->remaining--;
	r->f.hits++;
	return true;
}

/* Evaluates the rules for a request covering [lo, hi] (b->lock held). Flushes
 * (is_flush) are only affected by SLOW rules. */
struct blk_verdict blk_judge(struct virtio_blk *b, bool is_read, bool is_flush,
			     uint64_t lo, uint64_t hi)
{
	struct blk_verdict v = {0};
	for (size_t i = 0; i < b->nrules; i++) {
		struct blk_rule *r = &b->rules[i];
		switch (r->f.kind) {
		case VIRTIO_BLK_FAIL_READS:
			if (is_read && !v.fail && rule_hits(r, lo, hi))
				v.fail = true;
			break;
		case VIRTIO_BLK_FAIL_WRITES:
			if (!is_read && !is_flush && !v.fail && rule_hits(r, lo, hi))
				v.fail = true;
			break;
		case VIRTIO_BLK_DROP_WRITES:
			if (!is_read && !is_flush && !v.drop && rule_hits(r, lo, hi))
				v.drop = true;
			break;
		case VIRTIO_BLK_SLOW:
			if ((is_read && r->f.writes_only) || (!is_read && r->f.reads_only))
				break;
			if ((is_flush ? rule_hits(r, 0, UINT64_MAX) : rule_hits(r, lo, hi)) &&
			    r->f.delay_ms > v.delay_ms)
				v.delay_ms = r->f.delay_ms;
			break;
		case VIRTIO_BLK_CORRUPT:
			break; /* applied to the data, per sector, after the read */
		}
	}
	return v;
}

void blk_apply_corrupt(struct virtio_blk *b, struct blk_req *q, const struct iovec *iov,
		       unsigned n)
{
	for (size_t i = 0; i < b->nrules; i++) {
		struct blk_rule *r = &b->rules[i];
		if (r->f.kind != VIRTIO_BLK_CORRUPT || !q->nsect)
			continue; /* a zero-length read covers no sector */
		uint64_t lo = PV_MAX(q->sector, r->f.from);
		uint64_t hi = PV_MIN(q->sector + q->nsect - 1, r->f.to);
		if (lo > hi || !rule_hits(r, lo, hi))
			continue;
		for (uint64_t s = lo; s <= hi; s++) {
			size_t off = (s - q->sector) * SECT + r->f.offset;
			uint8_t byte;
			if (iov_to_buf(iov, n, off, &byte, 1) == 1) {
				byte ^= r->f.xor;
				buf_to_iov(iov, n, off, &byte, 1);
			}
		}
	}
}

/* Data segments of a request: for IN, the writable ones minus the status byte;
 * for OUT, the readable ones after the 16-byte header. */

static const char *const kind_names[] = {
	[VIRTIO_BLK_FAIL_READS] = "fail_reads", [VIRTIO_BLK_FAIL_WRITES] = "fail_writes",
	[VIRTIO_BLK_SLOW] = "slow", [VIRTIO_BLK_DROP_WRITES] = "drop_writes",
	[VIRTIO_BLK_CORRUPT] = "corrupt",
};

const char *virtio_blk_fault_kind_name(enum virtio_blk_fault_kind k)
{
	return (unsigned)k < PV_ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

void virtio_blk_fault_init(struct virtio_blk_fault *f, enum virtio_blk_fault_kind kind)
{
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->to = UINT64_MAX;
	f->probability = 1.0;
	f->xor = 0xff;
}

int virtio_blk_fault_add(struct virtio_blk *b, const struct virtio_blk_fault *f)
{
	const char *id = b->vdev.dev.id;
	if ((unsigned)f->kind >= PV_ARRAY_SIZE(kind_names))
		return pv_error(EINVAL, "%s: unknown fault kind %d", id, (int)f->kind);
	if (f->from > f->to)
		return pv_error(EINVAL, "%s: fault range from %" PRIu64 " > to %" PRIu64, id,
				f->from, f->to);
	if (!(f->probability >= 0.0 && f->probability <= 1.0))
		return pv_error(EINVAL, "%s: fault probability %g is not within 0..1", id,
				f->probability);
	if (f->kind == VIRTIO_BLK_CORRUPT && f->offset >= SECT)
		return pv_error(EINVAL, "%s: corrupt offset %u is not within a sector", id,
				f->offset);
	if (f->kind == VIRTIO_BLK_SLOW && f->reads_only && f->writes_only)
		return pv_error(EINVAL, "%s: slow: reads_only and writes_only together", id);
	pthread_mutex_lock(&b->lock);
	if (b->nrules == MAX_FAULTS) {
		pthread_mutex_unlock(&b->lock);
		return pv_error(ENOSPC, "%s: at most %d fault rules", id, MAX_FAULTS);
	}
	struct blk_rule *r = &b->rules[b->nrules++];
	r->f = *f;
	r->f.id = b->next_rule_id++;
	r->f.hits = 0;
	r->remaining = f->count;
	r->rng = f->seed;
	if (!r->rng && getrandom(&r->rng, sizeof(r->rng), 0) != sizeof(r->rng))
		r->rng = pv_now_ns();
	int ret = r->f.id;
	pthread_mutex_unlock(&b->lock);
	return ret;
}

int virtio_blk_fault_remove(struct virtio_blk *b, int id)
{
	int ret = pv_error(ENOENT, "%s: no fault rule %d", b->vdev.dev.id, id);
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->nrules; i++)
		if (b->rules[i].f.id == id) {
			memmove(&b->rules[i], &b->rules[i + 1],
				(b->nrules - i - 1) * sizeof(b->rules[0]));
			b->nrules--;
			ret = 0;
			break;
		}
	pthread_mutex_unlock(&b->lock);
	if (!ret)
		pv_error_clear();
	return ret;
}

void virtio_blk_faults_clear(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	b->nrules = 0;
	pthread_mutex_unlock(&b->lock);
}

size_t virtio_blk_faults_list(struct virtio_blk *b, struct virtio_blk_fault *out, size_t max)
{
	pthread_mutex_lock(&b->lock);
	size_t n = b->nrules;
	for (size_t i = 0; i < n && i < max; i++) {
		out[i] = b->rules[i].f;
		if (out[i].count)
			out[i].count = b->rules[i].remaining;
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}
