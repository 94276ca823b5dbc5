/* test_runner_claims.c — claims and barriers arbitration (runner/claims.c): capacity
 * is counted, waiters are granted in FIFO order, an exiting worker releases what it
 * held and drops its waits, barriers release every party with 1-based arrival
 * indices and start over, and a party-count mismatch is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "runner/claims.h"

#include <string.h>

struct rep {
	int worker;
	uint64_t id, index;
	bool ok;
	char msg[128];
};
static struct rep reps[32];
static int nrep;

static void on_reply(void *ctx, int worker, uint64_t id, bool ok, uint64_t index,
		     const char *message)
{
	(void)ctx;
	reps[nrep] = (struct rep){.worker = worker, .id = id, .ok = ok, .index = index};
	if (message)
		strncpy(reps[nrep].msg, message, sizeof(reps[nrep].msg) - 1);
	nrep++;
}

static void test_capacity_and_fifo(void **state)
{
	(void)state;
	nrep = 0;
	struct claims *c = claims_new(on_reply, NULL);
	claims_acquire(c, 1, 10, "db", 1, 2);
	claims_acquire(c, 2, 20, "db", 1, 2);
	assert_int_equal(nrep, 2); /* both fit in capacity 2 */
	assert_int_equal(claims_in_use(c, "db"), 2);
	claims_acquire(c, 3, 30, "db", 2, 2); /* waits for both units */
	claims_acquire(c, 4, 40, "db", 1, 2); /* would fit after one release, but FIFO */
	assert_int_equal(nrep, 2);
	claims_release(c, 1, "db", 1);
	assert_int_equal(nrep, 2); /* head needs 2 units: nobody overtakes it */
	claims_release(c, 2, "db", 1);
	assert_int_equal(nrep, 3);
	assert_int_equal(reps[2].worker, 3);
	assert_int_equal(reps[2].id, 30);
	assert_true(reps[2].ok);
	claims_worker_exit(c, 3); /* releases its 2 units */
	assert_int_equal(nrep, 4);
	assert_int_equal(reps[3].worker, 4);
	assert_int_equal(claims_in_use(c, "db"), 1);
	claims_free(c);
}

static void test_too_big_is_refused_and_exit_drops_waits(void **state)
{
	(void)state;
	nrep = 0;
	struct claims *c = claims_new(on_reply, NULL);
	claims_acquire(c, 1, 1, "big", 3, 2);
	assert_int_equal(nrep, 1);
	assert_false(reps[0].ok);
	assert_non_null(strstr(reps[0].msg, "capacity"));
	claims_acquire(c, 1, 2, "port", 1, 1);
	claims_acquire(c, 2, 3, "port", 1, 1); /* waits */
	claims_acquire(c, 3, 4, "port", 1, 1); /* waits */
	claims_worker_exit(c, 2);              /* its wait is dropped */
	claims_release(c, 1, "port", 1);
	assert_int_equal(nrep, 3);
	assert_int_equal(reps[2].worker, 3);
	claims_free(c);
}

static void test_barrier_indices_and_reuse(void **state)
{
	(void)state;
	nrep = 0;
	struct claims *c = claims_new(on_reply, NULL);
	claims_barrier(c, 1, 7, "up", 3);
	claims_barrier(c, 2, 8, "up", 3);
	assert_int_equal(nrep, 0);
	claims_barrier(c, 5, 9, "up", 2); /* disagrees on the party count */
	assert_int_equal(nrep, 1);
	assert_false(reps[0].ok);
	claims_barrier(c, 3, 9, "up", 3);
	assert_int_equal(nrep, 4);
	for (int i = 1; i < 4; i++) {
		assert_true(reps[i].ok);
		assert_int_equal(reps[i].index, (uint64_t)reps[i].worker); /* arrival order */
	}
	/* the barrier starts over; an exited worker's arrival no longer counts */
	claims_barrier(c, 1, 11, "up", 2);
	claims_worker_exit(c, 1);
	claims_barrier(c, 2, 12, "up", 2);
	assert_int_equal(nrep, 4);
	claims_barrier(c, 3, 13, "up", 2);
	assert_int_equal(nrep, 6);
	assert_int_equal(reps[4].index, 1);
	assert_int_equal(reps[5].index, 2);
	claims_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity_and_fifo),
		cmocka_unit_test(test_too_big_is_refused_and_exit_drops_waits),
		cmocka_unit_test(test_barrier_indices_and_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
