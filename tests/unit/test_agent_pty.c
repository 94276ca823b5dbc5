/* test_agent_pty.c — build/provium-agent's terminals (agent/pty.c) natively over a
 * unix socket: `spawn` with `pty` gives the command a terminal of the asked size as
 * its controlling tty in a session of its own, stdout and stderr both on it (the
 * stderr stream ends at once), proc_write types, proc_resize changes the size the
 * program sees; and the errors: exec with pty, resize without one, bad sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/agent_client.h"

static struct ac_unix_agent agent;

static int group_setup(void **state)
{
	(void)state;
	return ac_unix_agent_up(&agent, "agent-pty");
}

static int group_teardown(void **state)
{
	(void)state;
	ac_unix_agent_down(&agent);
	return 0;
}

static void connect_agent(struct ac *a)
{
	assert_int_equal(ac_connect_unix(a, agent.sock), 0);
	assert_int_equal(ac_hello(a), 0);
}

/* spawn {argv={"/bin/sh","-c",script}, pty={rows,cols}} (rows 0: pty=true) */
static uint64_t spawn_pty(struct ac *a, const char *script, int rows, int cols)
{
	uint64_t id;
	struct pv_fbuf *b = ac_req(a, PV_OP_SPAWN, &id);

	pv_pack_map(b, 2);
	pv_pack_str(b, "argv");
	pv_pack_array(b, 3);
	pv_pack_str(b, "/bin/sh");
	pv_pack_str(b, "-c");
	pv_pack_str(b, script);
	pv_pack_str(b, "pty");
	if (rows) {
		pv_pack_map(b, 2);
		pv_pack_kv_int(b, "rows", rows);
		pv_pack_kv_int(b, "cols", cols);
	} else {
		pv_pack_bool(b, true);
	}
	assert_int_equal(ac_send(a), 0);
	return id;
}

/* Reads id's stream frames until its stdout holds want. */
static void expect_out(struct ac *a, uint64_t id, struct ac_rep *s, const char *want)
{
	uint64_t deadline = ac_now_ns() + 5000000000ull;

	while (!s->out.d || !memmem(s->out.d, s->out.len, want, strlen(want))) {
		int64_t left = (int64_t)(deadline - ac_now_ns()) / 1000000;
		struct pv_frame *f = left > 0 ? ac_next_for(a, id, (int)left) : NULL;

		if (!f)
			fail_msg("no '%s' in the terminal's output: '%.*s'", want, (int)s->out.len,
				 s->out.d ? (char *)s->out.d : "");
		if (f->kind == PV_FRAME_STREAM)
			ac_rep_stream(s, f);
		ac_frame_free(f);
	}
}

static void test_spawn_on_a_pty(void **state)
{
	struct ac a;
	struct ac_rep r, s = { 0 };
	int64_t pid;
	uint64_t id;

	(void)state;
	connect_agent(&a);
	id = spawn_pty(&a, "tty; stty size; echo to-stderr >&2; "
		       "[ \"$(cut -d' ' -f6 /proc/$$/stat)\" = $$ ] && echo session-leader; "
		       "read x; stty size; echo got-$x; exit 7", 33, 101);
	assert_int_equal(ac_wait(&a, id, &s, 5000), 0);
	assert_true(s.f->ok);
	pid = ac_res_int(&s, "pid");
	assert_true(pid > 0);
	expect_out(&a, id, &s, "33 101");
	expect_out(&a, id, &s, "to-stderr");
	expect_out(&a, id, &s, "session-leader");
	assert_non_null(memmem(s.out.d, s.out.len, "/dev/pts/", 9));
	assert_true(s.eof_err);          /* one output: stderr ended at once, empty */
	assert_int_equal(s.err.len, 0);

	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_RESIZE, "pid=I rows=i cols=i",
				  (long long)pid, 50, 132), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WRITE, "pid=I data=y", (long long)pid,
				  "typed\n", (size_t)6), 0);
	ac_rep_free(&r);
	expect_out(&a, id, &s, "typed\r\n");   /* the terminal echoes, CRLF */
	expect_out(&a, id, &s, "50 132");
	expect_out(&a, id, &s, "got-typed");
	assert_int_equal(ac_collect(&a, id, &s, true, false, 5000), 0);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I", (long long)pid), 0);
	assert_int_equal(ac_res_int(&r, "code"), 7);
	ac_rep_free(&r);
	ac_rep_free(&s);

	/* pty=true: 24x80 */
	memset(&s, 0, sizeof(s));
	id = spawn_pty(&a, "stty size", 0, 0);
	assert_int_equal(ac_wait(&a, id, &s, 5000), 0);
	assert_true(s.f->ok);
	expect_out(&a, id, &s, "24 80");
	assert_int_equal(ac_collect(&a, id, &s, true, false, 5000), 0);
	ac_rep_free(&s);
	ac_close(&a);
}

static void test_pty_errors(void **state)
{
	const char *argv[] = { "sleep", "5", NULL };
	struct ac a;
	struct ac_rep r, s = { 0 };
	uint64_t id;
	int64_t pid;

	(void)state;
	connect_agent(&a);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s pty=b", "true", 1), 0);
	ac_assert_err(&r, EINVAL, PV_ERRCODE_INVALID);
	assert_non_null(strstr(r.f->message, "spawn"));
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_SPAWN, "cmd=s pty=s", "true", "yes"), 0);
	ac_assert_err(&r, EINVAL, PV_ERRCODE_INVALID);
	ac_rep_free(&r);
	id = spawn_pty(&a, "true", 5000, 80);
	assert_int_equal(ac_wait(&a, id, &s, 5000), 0);
	ac_assert_err(&s, EINVAL, PV_ERRCODE_INVALID);
	assert_non_null(strstr(s.f->message, "pty.rows"));
	ac_rep_free(&s);

	/* resize: only a pty process, sizes 1..4096 */
	id = ac_sendf(&a, PV_OP_SPAWN, "argv=a", argv);
	memset(&s, 0, sizeof(s));
	assert_int_equal(ac_wait(&a, id, &s, 5000), 0);
	pid = ac_res_int(&s, "pid");
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_RESIZE, "pid=I rows=i cols=i",
				  (long long)pid, 10, 10), 0);
	ac_assert_err(&r, ENOTTY, NULL);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_RESIZE, "pid=I rows=i cols=i",
				  (long long)pid, 0, 10), 0);
	ac_assert_err(&r, EINVAL, PV_ERRCODE_INVALID);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_RESIZE, "pid=I rows=i cols=i",
				  99999LL, 10, 10), 0);
	ac_assert_err(&r, ESRCH, NULL);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_KILL, "pid=I", (long long)pid), 0);
	ac_rep_free(&r);
	ac_rep_free(&s);
	ac_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_on_a_pty),
		cmocka_unit_test(test_pty_errors),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
