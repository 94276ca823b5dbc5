/* test_runner_sched.c — the parent side of runner/worker.h with fake workers (the
 * scheduler's worker entry is swapped for scripted functions): events forwarded in
 * order with the parent's file_start, crashes reported as file errors while the run
 * goes on, -j respected, claims serialise, barriers release together, per-file temp
 * dirs removed, SIGINT tears every worker's process group down, --fail-fast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "runner/events.h"
#include "runner/sched.h"
#include "vmm/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Memory shared between the test and its forked fake workers. */
struct shared {
	int running, max_running;
	int in_claim, claim_overlap, claims_done;
	uint64_t barrier_index[8];
	char barrier_msg[8][128];
	char tmp[8][256];
	pid_t grandchild[8];
	int started[8];
};
static struct shared *sh;

/* ---- what the fake workers use ---- */

static void send_map(int fd, msgpack_sbuffer *sb)
{
	assert_true(send(fd, sb->data, sb->size, 0) == (ssize_t)sb->size);
	msgpack_sbuffer_clear(sb);
}

static void w_event(int fd, const char *kind, const char *file, const char *test,
		    const char *outcome)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	ev_pack_str(&pk, "k");
	ev_pack_str(&pk, "event");
	ev_pack_str(&pk, "ev");
	msgpack_pack_map(&pk, 3 + (test != NULL) + (outcome != NULL));
	ev_pack_str(&pk, "ev");
	ev_pack_str(&pk, kind);
	ev_pack_str(&pk, "t");
	msgpack_pack_uint64(&pk, pv_wall_ns());
	ev_pack_str(&pk, "file");
	ev_pack_str(&pk, file);
	if (test) {
		ev_pack_str(&pk, "test");
		ev_pack_str(&pk, test);
	}
	if (outcome) {
		ev_pack_str(&pk, "outcome");
		ev_pack_str(&pk, outcome);
	}
	send_map(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
}

/* Sends {k, id, key=name, n=v} and waits for the reply; returns ok, *index. */
static bool w_request(int fd, const char *k, const char *key, const char *name, const char *nkey,
		      uint64_t n, uint64_t *index, char *msg, size_t cap)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	bool claim = !strcmp(k, "claim");
	msgpack_pack_map(&pk, claim ? 5 : 4);
	ev_pack_str(&pk, "k");
	ev_pack_str(&pk, k);
	ev_pack_str(&pk, "id");
	msgpack_pack_uint64(&pk, 17);
	ev_pack_str(&pk, key);
	ev_pack_str(&pk, name);
	ev_pack_str(&pk, nkey);
	msgpack_pack_uint64(&pk, n);
	if (claim) {
		ev_pack_str(&pk, "capacity");
		msgpack_pack_uint64(&pk, 1);
	}
	send_map(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	char buf[4096];
	ssize_t got = recv(fd, buf, sizeof(buf), 0);
	if (got <= 0)
		return false;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	bool ok = false;
	if (msgpack_unpack_next(&u, buf, (size_t)got, NULL) == MSGPACK_UNPACK_SUCCESS) {
		ok = ev_bool(&u.data, "ok", false) && ev_int(&u.data, "id", 0) == 17;
		if (index)
			*index = (uint64_t)ev_int(&u.data, "index", 0);
		if (msg && !ev_str(&u.data, "message", msg, cap))
			msg[0] = 0;
	}
	msgpack_unpacked_destroy(&u);
	return ok;
}

static void w_release(int fd, const char *res)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	ev_pack_str(&pk, "k");
	ev_pack_str(&pk, "release");
	ev_pack_str(&pk, "resource");
	ev_pack_str(&pk, res);
	ev_pack_str(&pk, "count");
	msgpack_pack_uint64(&pk, 1);
	send_map(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
}

static int file_no(const char *file)
{
	return file[strlen(file) - 1] - '0'; /* files are named f0..f7 */
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A well-behaved file: two tests (one fails in f1), a file_end. */
static int fake_normal(const struct worker_args *a)
{
	int i = file_no(a->file);
	snprintf(sh->tmp[i], sizeof(sh->tmp[i]), "%s", a->tmp_dir);
	struct stat st;
	if (stat(a->tmp_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 3;
	int now = __atomic_add_fetch(&sh->running, 1, __ATOMIC_SEQ_CST);
	for (int m = sh->max_running; now > m; m = sh->max_running)
		__atomic_compare_exchange_n(&sh->max_running, &m, now, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST);
	w_event(a->chan_fd, "file_start", a->file, NULL, NULL); /* dropped: the parent sent one */
	w_event(a->chan_fd, "test_start", a->file, "one", NULL);
	sleep_ms(250);
	w_event(a->chan_fd, "test_end", a->file, "one", i == 1 ? "fail" : "pass");
	w_event(a->chan_fd, "test_start", a->file, "two", NULL);
	w_event(a->chan_fd, "test_end", a->file, "two", "pass");
	w_event(a->chan_fd, "file_end", a->file, NULL, NULL);
	__atomic_sub_fetch(&sh->running, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* f1 crashes in the middle of a test; f2 exits 1 without a word; the rest behave. */
static int fake_crashy(const struct worker_args *a)
{
	int i = file_no(a->file);
	if (i == 1) {
		w_event(a->chan_fd, "test_start", a->file, "doomed", NULL);
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
	}
	if (i == 2)
		return 1;
	return fake_normal(a);
}

static int fake_claimer(const struct worker_args *a)
{
	int i = file_no(a->file);
	if (!w_request(a->chan_fd, "claim", "resource", "db", "count", 1, NULL, NULL, 0))
		return 5;
	if (__atomic_add_fetch(&sh->in_claim, 1, __ATOMIC_SEQ_CST) > 1)
		sh->claim_overlap = 1;
	sleep_ms(100);
	__atomic_sub_fetch(&sh->in_claim, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sh->claims_done, 1, __ATOMIC_SEQ_CST);
	if (i % 2)
		w_release(a->chan_fd, "db"); /* the others release by exiting */
	w_event(a->chan_fd, "file_end", a->file, NULL, NULL);
	return 0;
}

static int fake_barrier(const struct worker_args *a)
{
	int i = file_no(a->file);
	if (i == 1)
		sleep_ms(100); /* f0 waits for f1 */
	bool ok = w_request(a->chan_fd, "barrier", "name", "meet", "parties", 2,
			    &sh->barrier_index[i], sh->barrier_msg[i], sizeof(sh->barrier_msg[i]));
	w_event(a->chan_fd, "file_end", a->file, NULL, NULL);
	return ok ? 0 : 6;
}

/* Notes the worker's tmp dir and starts a grandchild in its process group that
 * waits forever (sh->grandchild). Returns the file's number. */
static int leave_grandchild(const struct worker_args *a)
{
	int i = file_no(a->file);
	snprintf(sh->tmp[i], sizeof(sh->tmp[i]), "%s", a->tmp_dir);
	pid_t g = fork();
	if (g == 0) {
		for (;;)
			pause();
	}
	sh->grandchild[i] = g;
	return i;
}

/* Starts a grandchild in its group, asks the parent to stop, then waits forever. */
static int fake_sleeper(const struct worker_args *a)
{
	int i = leave_grandchild(a);
	w_event(a->chan_fd, "test_start", a->file, "forever", NULL);
	if (i == 1)
		signal(SIGTERM, SIG_IGN); /* must be SIGKILLed after the grace */
	__atomic_add_fetch(&sh->started[0], 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&sh->started[0], __ATOMIC_SEQ_CST) == 2)
		kill(getppid(), SIGINT);
	for (;;)
		pause();
	return 0;
}

/* ---- collecting what the parent emits ---- */

struct seen {
	char kind[64][16];
	char file[64][8];
	char test[64][16];
	char outcome[64][8];
	char error[64][160];
	int n;
};

static void collect(void *ctx, const msgpack_object *ev)
{
	struct seen *s = ctx;
	if (s->n >= 64)
		return;
	ev_kind(ev, s->kind[s->n], sizeof(s->kind[0]));
	if (!ev_str(ev, "file", s->file[s->n], sizeof(s->file[0])))
		s->file[s->n][0] = 0;
	if (!ev_str(ev, "test", s->test[s->n], sizeof(s->test[0])))
		s->test[s->n][0] = 0;
	if (!ev_str(ev, "outcome", s->outcome[s->n], sizeof(s->outcome[0])))
		s->outcome[s->n][0] = 0;
	if (!ev_str(ev, "error", s->error[s->n], sizeof(s->error[0])))
		s->error[s->n][0] = 0;
	s->n++;
}

static int count(const struct seen *s, const char *kind, const char *file)
{
	int c = 0;
	for (int i = 0; i < s->n; i++)
		c += !strcmp(s->kind[i], kind) && (!file || !strcmp(s->file[i], file));
	return c;
}

static int find(const struct seen *s, const char *kind, const char *file)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->kind[i], kind) && !strcmp(s->file[i], file))
			return i;
	return -1;
}

static char *files8[] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"};

static int setup(void **state)
{
	(void)state;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return sh == MAP_FAILED ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	munmap(sh, sizeof(*sh));
	sched_worker_entry = worker_main;
	return 0;
}

static struct sched_cfg cfg_for(int nfiles, int jobs, struct seen *seen)
{
	struct sched_cfg c = {.files = files8, .nfiles = (size_t)nfiles, .jobs = jobs,
			      .on_event = collect, .ctx = seen, .kill_grace = 0.3};
	c.base.timeout = 60;
	return c;
}

/* A run of nfiles fake files (fake is every worker) with nothing shared or seen yet. */
static struct sched_cfg fresh_run(int (*fake)(const struct worker_args *), int nfiles, int jobs,
				  struct seen *seen)
{
	memset(sh, 0, sizeof(*sh));
	sched_worker_entry = fake;
	memset(seen, 0, sizeof(*seen));
	return cfg_for(nfiles, jobs, seen);
}

static bool gone(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 && errno == ENOENT;
}

static bool alive(pid_t p)
{
	char path[64], st = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", p);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fscanf(f, "%*d %*s %c", &st) == 1 && st != 'Z' && st != 'X';
	fclose(f);
	return ok;
}

/* Polls (tries times, ms apart) until p is gone or a zombie: whether it died. */
static bool dies_within(pid_t p, int tries, int ms)
{
	for (int i = 0; i < tries && alive(p); i++)
		sleep_ms(ms);
	return !alive(p);
}

static void test_events_forwarded_in_order_and_tmp_dirs_removed(void **state)
{
	(void)state;
	struct seen seen;
	struct sched_cfg c = fresh_run(fake_normal, 3, 2, &seen);
	struct sched_result res;
	assert_int_equal(sched_run(&c, &res), 0);
	assert_int_equal(res.files_started, 3);
	assert_int_equal(res.file_errors, 0);
	assert_int_equal(res.failures, 1);
	assert_false(res.interrupted);
	for (int f = 0; f < 3; f++) {
		const char *file = files8[f];
		assert_int_equal(count(&seen, "file_start", file), 1); /* the worker's is dropped */
		assert_int_equal(count(&seen, "test_end", file), 2);
		assert_int_equal(count(&seen, "file_end", file), 1);
		int a = find(&seen, "file_start", file), b = find(&seen, "test_start", file),
		    e = find(&seen, "file_end", file);
		assert_true(a < b && b < e);
		assert_string_equal(seen.error[e], "");
		assert_true(sh->tmp[f][0] != 0);
		assert_true(strstr(sh->tmp[f], "/provium-") != NULL);
		assert_true(gone(sh->tmp[f]));
	}
	assert_string_equal(seen.outcome[find(&seen, "test_end", "f1")], "fail");
}

static void test_jobs_bound_parallelism(void **state)
{
	(void)state;
	for (int jobs = 1; jobs <= 2; jobs++) {
		struct seen seen;
		struct sched_cfg c = fresh_run(fake_normal, 6, jobs, &seen);
		struct sched_result res;
		assert_int_equal(sched_run(&c, &res), 0);
		assert_int_equal(res.files_started, 6);
		/* each file holds a slot for 250 ms: with -j2 two overlap, never three */
		assert_int_equal(sh->max_running, jobs);
	}
}

static void test_crash_is_a_file_error_and_the_run_goes_on(void **state)
{
	(void)state;
	struct seen seen;
	struct sched_cfg c = fresh_run(fake_crashy, 4, 2, &seen);
	struct sched_result res;
	assert_int_equal(sched_run(&c, &res), 0);
	assert_int_equal(res.files_started, 4);
	assert_int_equal(res.file_errors, 2);
	/* f1: its running test ends as error, then a file_end naming the signal */
	int te = find(&seen, "test_end", "f1"), fe = find(&seen, "file_end", "f1");
	assert_true(te >= 0 && fe > te);
	assert_string_equal(seen.test[te], "doomed");
	assert_string_equal(seen.outcome[te], "error");
	assert_non_null(strstr(seen.error[fe], "signal 11"));
	/* f2 exited 1 without saying why */
	fe = find(&seen, "file_end", "f2");
	assert_true(fe >= 0);
	assert_non_null(strstr(seen.error[fe], "failed to load"));
	/* f0 and f3 ran normally */
	assert_int_equal(count(&seen, "test_end", "f0"), 2);
	assert_int_equal(count(&seen, "test_end", "f3"), 2);
}

static void test_claims_serialise_files(void **state)
{
	(void)state;
	struct seen seen;
	struct sched_cfg c = fresh_run(fake_claimer, 4, 4, &seen);
	struct sched_result res;
	assert_int_equal(sched_run(&c, &res), 0);
	assert_int_equal(res.file_errors, 0);
	assert_int_equal(sh->claims_done, 4);
	assert_int_equal(sh->claim_overlap, 0);
}

static void test_barrier_releases_all_parties(void **state)
{
	(void)state;
	struct seen seen;
	struct sched_cfg c = fresh_run(fake_barrier, 2, 2, &seen);
	struct sched_result res;
	assert_int_equal(sched_run(&c, &res), 0);
	assert_int_equal(res.file_errors, 0);
	/* f0 arrived first (index 1) and waited until f1 arrived (index 2) */
	assert_int_equal(sh->barrier_index[0], 1);
	assert_int_equal(sh->barrier_index[1], 2);
}

static void test_sigint_tears_everything_down(void **state)
{
	(void)state;
	struct seen seen;
	struct sched_cfg c = fresh_run(fake_sleeper, 4, 2, &seen);
	struct sched_result res;
	uint64_t t0 = pv_now_ns();
	assert_int_equal(sched_run(&c, &res), 0);
	uint64_t took = pv_now_ns() - t0;
	assert_true(res.interrupted);
	assert_int_equal(res.files_started, 2); /* no file started after the interrupt */
	assert_true(took < 10ull * 1000000000ull);
	for (int f = 0; f < 2; f++) {
		int fe = find(&seen, "file_end", files8[f]);
		assert_true(fe >= 0);
		assert_string_equal(seen.error[fe], "interrupted");
		assert_true(gone(sh->tmp[f]));
		/* the worker's own child died with its process group */
		pid_t g = sh->grandchild[f];
		assert_true(g > 0);
		assert_true(dies_within(g, 100, 20));
	}
}

static int fake_fail_first(const struct worker_args *a)
{
	w_event(a->chan_fd, "test_start", a->file, "t", NULL);
	w_event(a->chan_fd, "test_end", a->file, "t", "fail");
	w_event(a->chan_fd, "file_end", a->file, NULL, NULL);
	return 0;
}

static void test_fail_fast_stops_scheduling(void **state)
{
	(void)state;
	sched_worker_entry = fake_fail_first;
	struct seen seen = {0};
	struct sched_cfg c = cfg_for(3, 1, &seen);
	c.fail_fast = true;
	struct sched_result res;
	assert_int_equal(sched_run(&c, &res), 0);
	assert_int_equal(res.files_started, 1);
	assert_true(res.stopped);
	c.fail_fast = false;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(sched_run(&c, &res), 0);
	assert_int_equal(res.files_started, 3);
}

/* Starts a test with meta timeout 0.2 and never ends it, deaf to SIGTERM. */
static int fake_stuck(const struct worker_args *a)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	ev_pack_str(&pk, "k");
	ev_pack_str(&pk, "event");
	ev_pack_str(&pk, "ev");
	msgpack_pack_map(&pk, 4);
	ev_pack_str(&pk, "ev");
	ev_pack_str(&pk, "test_start");
	ev_pack_str(&pk, "file");
	ev_pack_str(&pk, a->file);
	ev_pack_str(&pk, "test");
	ev_pack_str(&pk, "stuck");
	ev_pack_str(&pk, "meta");
	msgpack_pack_map(&pk, 1);
	ev_pack_str(&pk, "timeout");
	msgpack_pack_double(&pk, 0.2);
	send_map(a->chan_fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	signal(SIGTERM, SIG_IGN);
	for (;;)
		pause();
	return 0;
}

static void test_stuck_worker_is_killed_after_timeout_and_grace(void **state)
{
	(void)state;
	sched_worker_entry = fake_stuck;
	struct seen seen = {0};
	struct sched_cfg c = cfg_for(1, 1, &seen);
	c.hang_grace = 0.3;
	struct sched_result res;
	uint64_t t0 = pv_now_ns();
	assert_int_equal(sched_run(&c, &res), 0);
	uint64_t took = pv_now_ns() - t0;
	assert_true(took >= 400000000ull && took < 5000000000ull);
	int te = find(&seen, "test_end", "f0");
	assert_true(te >= 0);
	assert_string_equal(seen.outcome[te], "error");
	int fe = find(&seen, "file_end", "f0");
	assert_non_null(strstr(seen.error[fe], "did not end within its timeout of 0.2 s"));
	assert_int_equal(res.file_errors, 1);
}

/* Leaves a child behind after a failed test, then exits normally. */
static int fake_leaver(const struct worker_args *a)
{
	leave_grandchild(a);
	w_event(a->chan_fd, "test_start", a->file, "t", NULL);
	w_event(a->chan_fd, "test_end", a->file, "t", "fail");
	w_event(a->chan_fd, "file_end", a->file, NULL, NULL);
	return 0;
}

static void test_keep_leaves_failed_files_processes_and_tmp(void **state)
{
	(void)state;
	for (int keep = 0; keep <= 1; keep++) {
		struct seen seen;
		struct sched_cfg c = fresh_run(fake_leaver, 1, 1, &seen);
		c.base.keep = keep;
		struct sched_result res;
		assert_int_equal(sched_run(&c, &res), 0);
		pid_t g = sh->grandchild[0];
		assert_true(g > 0);
		if (keep) {
			assert_true(alive(g));
			assert_false(gone(sh->tmp[0]));
			kill(g, SIGKILL);
			sched_rmtree(sh->tmp[0]);
		} else {
			assert_true(dies_within(g, 100, 10));
			assert_true(gone(sh->tmp[0]));
		}
	}
}

static void test_worker_that_cannot_start_is_a_file_error(void **state)
{
	(void)state;
	struct seen seen;
	struct sched_cfg c = fresh_run(fake_normal, 2, 2, &seen);
	setenv("TMPDIR", "/nonexistent/provium-tmp", 1);
	struct sched_result res;
	int r = sched_run(&c, &res);
	unsetenv("TMPDIR");
	assert_int_equal(r, 0);
	assert_int_equal(res.files_started, 2);
	assert_int_equal(res.file_errors, 2);
	for (int f = 0; f < 2; f++) {
		int fe = find(&seen, "file_end", files8[f]);
		assert_true(fe > find(&seen, "file_start", files8[f]));
		assert_non_null(strstr(seen.error[fe], "could not start a worker"));
	}
	assert_int_equal(count(&seen, "test_start", NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_forwarded_in_order_and_tmp_dirs_removed),
		cmocka_unit_test(test_jobs_bound_parallelism),
		cmocka_unit_test(test_crash_is_a_file_error_and_the_run_goes_on),
		cmocka_unit_test(test_claims_serialise_files),
		cmocka_unit_test(test_barrier_releases_all_parties),
		cmocka_unit_test(test_sigint_tears_everything_down),
		cmocka_unit_test(test_fail_fast_stops_scheduling),
		cmocka_unit_test(test_stuck_worker_is_killed_after_timeout_and_grace),
		cmocka_unit_test(test_keep_leaves_failed_files_processes_and_tmp),
		cmocka_unit_test(test_worker_that_cannot_start_is_a_file_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
