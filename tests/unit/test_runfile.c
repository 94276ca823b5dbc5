/* test_runfile.c — the test-file worker (lua/runfile.c) driven directly: fork
 * worker_main() on a socketpair, act as a minimal parent (claims and barriers granted
 * at once) and check the events it sends. With RUNFILE_DUMP=path.lua it just prints the
 * events of that file (a debugging aid). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "runner/worker.h"

#define MAX_EV 4096

struct run {
	int status;
	int n;
	msgpack_unpacked ev[MAX_EV];   /* the ev maps of {k="event"} packets */
	char *buf[MAX_EV];
};

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
		    !memcmp(k->via.str.ptr, key, k->via.str.size))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

/* static buffer copy of a string field ("" when missing) */
static const char *str(const msgpack_object *m, const char *key)
{
	static char s[8][8192];
	static int slot;
	const msgpack_object *v = get(m, key);
	char *out = s[slot++ & 7];
	out[0] = 0;
	if (v && v->type == MSGPACK_OBJECT_STR) {
		size_t n = v->via.str.size < 8191 ? v->via.str.size : 8191;
		memcpy(out, v->via.str.ptr, n);
		out[n] = 0;
	}
	return out;
}

static int64_t num(const msgpack_object *m, const char *key)
{
	const msgpack_object *v = get(m, key);
	if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)v->via.u64;
	if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return v->via.i64;
	return -1;
}

static void reply(int fd, int64_t id, int64_t index)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "k", 1);
	msgpack_pack_str_with_body(&pk, "reply", 5);
	msgpack_pack_str_with_body(&pk, "id", 2);
	msgpack_pack_int64(&pk, id);
	msgpack_pack_str_with_body(&pk, "ok", 2);
	msgpack_pack_true(&pk);
	msgpack_pack_str_with_body(&pk, "index", 5);
	msgpack_pack_int64(&pk, index);
	send(fd, sb.data, sb.size, 0);
	msgpack_sbuffer_destroy(&sb);
}

static struct run *run_file(const char *path, struct worker_args *extra)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct worker_args a = {0};
	if (extra)
		a = *extra;
	a.file = path;
	a.chan_fd = sv[1];
	if (!a.backend)
		a.backend = "auto";
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(worker_main(&a));
	}
	close(sv[1]);
	struct run *r = calloc(1, sizeof(*r));
	int barrier_arrivals = 0;
	int64_t held[64];
	for (;;) {
		char *buf = malloc(65536);
		ssize_t n = recv(sv[0], buf, 65536, 0);
		if (n <= 0) {
			free(buf);
			break;
		}
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		size_t off = 0;
		assert_int_equal(msgpack_unpack_next(&u, buf, (size_t)n, &off), MSGPACK_UNPACK_SUCCESS);
		const char *k = str(&u.data, "k");
		if (!strcmp(k, "event") && r->n < MAX_EV) {
			r->ev[r->n] = u;
			r->buf[r->n++] = buf;
			if (getenv("RUNFILE_DUMP")) {
				msgpack_object_print(stdout, *get(&u.data, "ev"));
				printf("\n");
			}
			continue;
		}
		if (!strcmp(k, "claim"))
			reply(sv[0], num(&u.data, "id"), 0);
		else if (!strcmp(k, "barrier")) {
			/* a real barrier (one at a time): hold replies until `parties` arrived */
			held[barrier_arrivals++] = num(&u.data, "id");
			if (barrier_arrivals >= num(&u.data, "parties")) {
				for (int i = 0; i < barrier_arrivals; i++)
					reply(sv[0], held[i], i + 1);
				barrier_arrivals = 0;
			}
		}
		msgpack_unpacked_destroy(&u);
		free(buf);
	}
	close(sv[0]);
	int st;
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return r;
}

static void free_run(struct run *r)
{
	for (int i = 0; i < r->n; i++) {
		msgpack_unpacked_destroy(&r->ev[i]);
		free(r->buf[i]);
	}
	free(r);
}

static const msgpack_object *ev(struct run *r, int i) { return get(&r->ev[i].data, "ev"); }

/* the first event of kind `kind` (and test `test` when not NULL) */
static const msgpack_object *find(struct run *r, const char *kind, const char *test)
{
	for (int i = 0; i < r->n; i++) {
		const msgpack_object *e = ev(r, i);
		if (!strcmp(str(e, "ev"), kind) && (!test || !strcmp(str(e, "test"), test)))
			return e;
	}
	return NULL;
}

static char *write_tmp(const char *src)
{
	static char path[64];
	strcpy(path, "/tmp/pv-runfile-XXXXXX.lua");
	int fd = mkstemps(path, 4);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
	close(fd);
	return path;
}

static struct run *run_src(const char *src, struct worker_args *a)
{
	char *p = write_tmp(src);
	struct run *r = run_file(p, a);
	unlink(p);
	return r;
}

static void test_outcomes(void **state)
{
	(void)state;
	struct run *r = run_src(
		"test('passes', function(t) t:eq({1, {a=2}}, {1, {a=2}}) end, {spec='S-1', owner='me'})\n"
		"test('fails', function(t)\n"
		"  t:eq(1, 2)\n"
		"end)\n"
		"test('errors', function(t) error('boom') end)\n"
		"test('skips', function(t) t:skip('nope') end)\n"
		"test('skip meta', function(t) end, {skip='later'})\n"
		"test('slow', function(t) end, {slow=true})\n", NULL);
	assert_int_equal(r->status, 0);
	assert_string_equal(str(ev(r, 0), "ev"), "file_start");
	const msgpack_object *e = find(r, "test_end", "passes");
	assert_non_null(e);
	assert_string_equal(str(e, "outcome"), "pass");
	assert_string_equal(str(get(e, "meta"), "spec"), "S-1");
	assert_string_equal(str(get(e, "meta"), "owner"), "me");
	e = find(r, "test_end", "fails");
	assert_string_equal(str(e, "outcome"), "fail");
	assert_non_null(strstr(str(e, "where"), ".lua:3"));
	assert_non_null(strstr(str(e, "message"), "expected: 2"));
	e = find(r, "test_end", "errors");
	assert_string_equal(str(e, "outcome"), "error");
	assert_non_null(strstr(str(e, "message"), "boom"));
	assert_non_null(strstr(str(e, "where"), ".lua:5"));
	assert_string_equal(str(find(r, "test_end", "skips"), "outcome"), "skip");
	assert_string_equal(str(find(r, "test_end", "skip meta"), "message"), "later");
	assert_string_equal(str(find(r, "test_end", "slow"), "message"), "slow test (use --slow)");
	e = find(r, "file_end", NULL);
	assert_int_equal(num(e, "passed"), 1);
	assert_int_equal(num(e, "failed"), 2);
	assert_int_equal(num(e, "skipped"), 3);
	free_run(r);
}

static void test_syntax_error(void **state)
{
	(void)state;
	struct run *r = run_src("test('x', function(t)\n  t:ok(true\nend)\n", NULL);
	assert_int_equal(r->status, 1);
	const msgpack_object *e = find(r, "file_end", NULL);
	assert_non_null(e);
	assert_non_null(strstr(str(e, "error"), ".lua:3:"));
	free_run(r);
}

static void test_timeout(void **state)
{
	(void)state;
	struct run *r = run_src(
		"test('hangs', function(t)\n"
		"  provium.sleep(100)\n"
		"end, {timeout=0.3})\n"
		"test('after', function(t) t:ok(true) end)\n", NULL);
	assert_int_equal(r->status, 0);
	const msgpack_object *e = find(r, "test_end", "hangs");
	assert_string_equal(str(e, "outcome"), "error");
	assert_non_null(strstr(str(e, "where"), ".lua:2"));
	assert_non_null(strstr(str(e, "message"), "timed out after 0.3 s"));
	assert_string_equal(str(find(r, "test_end", "after"), "outcome"), "pass");
	free_run(r);
}

static void test_list_and_filter(void **state)
{
	(void)state;
	const char *tags[] = {"net", NULL};
	struct worker_args a = {.list_only = true, .tags = tags};
	struct run *r = run_src(
		"test('a', function(t) end, {tags={'net'}})\n"
		"test('b', function(t) end, {tags={'disk'}})\n", &a);
	assert_int_equal(r->status, 0);
	assert_non_null(find(r, "test_listed", "a"));
	assert_null(find(r, "test_listed", "b"));
	assert_null(find(r, "test_start", NULL));
	free_run(r);
	struct worker_args f = {.filter = "^b"};
	r = run_src("test('a', function(t) end)\ntest('b', function(t) end)\n", &f);
	assert_null(find(r, "test_start", "a"));
	assert_non_null(find(r, "test_end", "b"));
	free_run(r);
}

static void test_claim_barrier(void **state)
{
	(void)state;
	struct run *r = run_src(
		"test('cb', function(t)\n"
		"  local c = provium:claim('port-80')\n"
		"  t:eq(provium:barrier('b', 1), 1)\n"
		"  c:release()\n"
		"end)\n", NULL);
	const msgpack_object *e = find(r, "test_end", "cb");
	assert_string_equal(str(e, "outcome"), "pass");
	int claims = 0;
	for (int i = 0; i < r->n; i++)
		if (!strcmp(str(ev(r, i), "ev"), "claim"))
			claims++;
	assert_int_equal(claims, 3);
	assert_non_null(find(r, "barrier", NULL));
	free_run(r);
}

/* Two tasks of one file at one barrier: the reply for the first is read by the second
 * (which wakes right after the runner answered both); the first must still wake. */
static void test_barrier_two_tasks(void **state)
{
	(void)state;
	struct run *r = run_src(
		"test('pair', function(t)\n"
		"  for round = 1, 20 do\n"
		"    local r = provium.all({\n"
		"      function() return provium:barrier('b', 2) end,\n"
		"      function() provium.sleep(0.01); return provium:barrier('b', 2) end,\n"
		"    })\n"
		"    table.sort(r)\n"
		"    t:eq(r, {1, 2})\n"
		"  end\n"
		"end, {timeout=5})\n", NULL);
	const msgpack_object *e = find(r, "test_end", "pair");
	assert_non_null(e);
	assert_string_equal(str(e, "outcome"), "pass");
	free_run(r);
}

int main(void)
{
	const char *dump = getenv("RUNFILE_DUMP");
	if (dump) {
		struct worker_args a = {.slow = getenv("RUNFILE_SLOW") != NULL};
		struct run *r = run_file(dump, &a);
		printf("exit %d\n", r->status);
		free_run(r);
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outcomes),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_list_and_filter),
		cmocka_unit_test(test_claim_barrier),
		cmocka_unit_test(test_barrier_two_tasks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
