/* test_agent.c — build/provium-agent natively over sockets (no VM): the handshake
 * and protocol errors, exec and spawn with every option, streams complete and in
 * order, process-tree kill, concurrency across and within connections, poweroff,
 * cleanup when a connection closes, and random frames that must not hurt it.
 * Files, fds, tail, syscalls and clock are in test_agent_files.c; namespaces,
 * privileges, poweroff and transports in test_agent_system.c. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tests/unit/agent_client.h"

static struct ac_unix_agent agent;

static int group_setup(void **state)
{
	(void)state;
	return ac_unix_agent_up(&agent, "agent-test");
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

static void assert_err(struct ac_rep *r, int err, const char *code)
{
	ac_assert_err(r, err, code);
	assert_true(r->f->message_len > 0);
}

/* ---- handshake and protocol errors ---- */

static void test_hello_and_ping(void **state)
{
	struct ac a;
	struct ac_rep r;
	const msgpack_object *feat;

	(void)state;
	connect_agent(&a);
	assert_string_equal(a.hello->role, "agent");
	assert_int_equal(a.hello->version, PROTOCOL_VERSION);
	feat = a.hello->features;
	assert_non_null(feat);
	assert_true(feat->via.array.size >= 5);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PING, ""), 0);
	assert_true(r.f->ok);
	assert_true(ac_res(&r, "pong")->via.boolean);
	ac_rep_free(&r);
	ac_close(&a);
}

static void test_version_mismatch_names_both(void **state)
{
	struct ac a;
	struct pv_frame *f;
	char msg[256];

	(void)state;
	assert_int_equal(ac_connect_unix(&a, agent.sock), 0);
	assert_int_equal(ac_hello_v(&a, PROTOCOL_VERSION + 1), 0);
	f = ac_read_frame(&a, 5000);
	assert_non_null(f);
	assert_int_equal(f->kind, PV_FRAME_REPLY);
	assert_false(f->ok);
	assert_int_equal(f->id, 0);
	assert_int_equal(f->err, EPROTO);
	assert_string_equal(f->code, "protocol");
	snprintf(msg, sizeof(msg), "%.*s", (int)f->message_len, f->message);
	char want[128];
	snprintf(want, sizeof(want), "host speaks %d, agent speaks %d", PROTOCOL_VERSION + 1,
		 PROTOCOL_VERSION);
	assert_non_null(strstr(msg, want));
	ac_frame_free(f);
	/* and the agent closed the connection */
	assert_null(ac_read_frame(&a, 5000));
	assert_int_equal(a.last_rc, -EPIPE);
	ac_close(&a);

	/* the host side check produces the same wording */
	struct pv_frame h = { .kind = PV_FRAME_HELLO, .version = PROTOCOL_VERSION + 1 };
	strcpy(h.role, "agent");
	assert_int_equal(pv_hello_check(&h, PV_ROLE_AGENT, msg, sizeof(msg)), -EPROTO);
	snprintf(want, sizeof(want), "agent speaks %d, host speaks %d", PROTOCOL_VERSION + 1,
		 PROTOCOL_VERSION);
	assert_non_null(strstr(msg, want));
}

static void test_first_frame_must_be_hello(void **state)
{
	struct ac a;
	struct pv_frame *f;

	(void)state;
	assert_int_equal(ac_connect_unix(&a, agent.sock), 0);
	assert_int_not_equal(ac_sendf(&a, PV_OP_PING, ""), 0);
	f = ac_read_frame(&a, 5000); /* the agent's hello */
	assert_non_null(f);
	assert_int_equal(f->kind, PV_FRAME_HELLO);
	ac_frame_free(f);
	f = ac_read_frame(&a, 5000);
	assert_non_null(f);
	assert_int_equal(f->err, EPROTO);
	ac_frame_free(f);
	assert_null(ac_read_frame(&a, 5000));
	ac_close(&a);
}

static void test_unknown_op_and_bad_requests(void **state)
{
	static const uint8_t garbage[] = { 0, 0, 0, 3, 0xc1, 0xc1, 0xc1 };
	static const uint8_t not_map[] = { 0, 0, 0, 1, 0x93 };
	static const uint8_t no_op[] = { 0, 0, 0, 5, 0x81, 0xa2, 'i', 'd', 0x05 };
	struct ac a;
	struct ac_rep r;
	struct pv_frame *f;

	(void)state;
	connect_agent(&a);
	assert_int_equal(ac_callf(&a, &r, "frobnicate", ""), 0);
	assert_err(&r, ENOSYS, "invalid");
	assert_non_null(strstr(r.f->message, "frobnicate"));
	ac_rep_free(&r);

	/* a missing required arg */
	assert_int_equal(ac_callf(&a, &r, PV_OP_STAT, ""), 0);
	assert_err(&r, EINVAL, "invalid");
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_STAT, "path=I", 5LL), 0);
	assert_err(&r, EINVAL, "invalid");
	ac_rep_free(&r);

	/* malformed payloads: error frames with id 0, the connection survives */
	assert_int_equal(ac_send_raw(&a, garbage, sizeof(garbage)), 0);
	f = ac_next_for(&a, 0, 5000);
	assert_non_null(f);
	assert_int_equal(f->err, EBADMSG);
	assert_string_equal(f->code, "protocol");
	ac_frame_free(f);
	assert_int_equal(ac_send_raw(&a, not_map, sizeof(not_map)), 0);
	f = ac_next_for(&a, 0, 5000);
	assert_non_null(f);
	assert_int_equal(f->err, EBADMSG);
	ac_frame_free(f);
	assert_int_equal(ac_send_raw(&a, no_op, sizeof(no_op)), 0);
	f = ac_next_for(&a, 5, 5000);
	assert_non_null(f);
	assert_int_equal(f->err, EINVAL);
	ac_frame_free(f);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PING, ""), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	ac_close(&a);
}

static void test_oversized_frame_closes_with_reason(void **state)
{
	static const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, 0x80 };
	struct ac a;
	struct pv_frame *f;

	(void)state;
	connect_agent(&a);
	assert_int_equal(ac_send_raw(&a, huge, sizeof(huge)), 0);
	f = ac_next_for(&a, 0, 5000);
	assert_non_null(f);
	assert_int_equal(f->err, EMSGSIZE);
	assert_non_null(strstr(f->message, "exceeds"));
	ac_frame_free(f);
	assert_null(ac_read_frame(&a, 5000));
	assert_int_equal(a.last_rc, -EPIPE);
	ac_close(&a);
}

/* Random and mutated frames: the agent answers or closes, never dies or hangs. */
static void test_random_frames_do_not_hurt(void **state)
{
	unsigned seed = 12345;
	struct ac_rep r;

	(void)state;
	for (int round = 0; round < 40; round++) {
		struct ac a;
		uint8_t buf[512];
		size_t n = 4 + (size_t)(rand_r(&seed) % 200);

		connect_agent(&a);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		if (round % 2 == 0) { /* a sane length so the payload is what is tested */
			buf[0] = buf[1] = 0;
			buf[2] = (uint8_t)((n - 4) >> 8);
			buf[3] = (uint8_t)(n - 4);
		}
		if (round % 4 == 1) { /* a valid request with random args bytes */
			uint64_t id;
			struct pv_fbuf *b = ac_req(&a, PV_OP_STAT, &id);

			pv_pack_map(b, 1);
			pv_pack_str(b, "path");
			pv_pack_bin(b, buf, n);
			ac_send(&a);
			pv_fbuf_finish(b);
			memcpy(buf, b->sb.data, b->sb.size < sizeof(buf) ? b->sb.size : sizeof(buf));
			n = b->sb.size < sizeof(buf) ? b->sb.size : sizeof(buf);
			buf[4 + (size_t)rand_r(&seed) % (n - 4)] ^= (uint8_t)(1 + rand_r(&seed) % 255);
		}
		ac_send_raw(&a, buf, n);
		ac_close(&a);
	}
	/* still serving */
	struct ac a;
	connect_agent(&a);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PING, ""), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	ac_close(&a);
	assert_int_equal(waitpid(agent.pid, NULL, WNOHANG), 0);
}

/* ---- exec ---- */

static void test_exec_shell_result(void **state)
{
	struct ac a;
	struct ac_rep r;
	char *out, *err;

	(void)state;
	connect_agent(&a);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s",
				  "echo hello; echo oops >&2; exit 3"), 0);
	assert_true(r.f->ok);
	assert_int_equal(ac_res_int(&r, "code"), 3);
	assert_int_equal(ac_res_int(&r, "signal"), 0);
	out = ac_res_str(&r, "stdout");
	err = ac_res_str(&r, "stderr");
	assert_string_equal(out, "hello\n");
	assert_string_equal(err, "oops\n");
	assert_true(ac_res_int(&r, "duration_ns") > 0);
	assert_true(ac_res_int(&r, "pid") > 0);
	assert_false(ac_res(&r, "timed_out")->via.boolean);
	free(out);
	free(err);
	ac_rep_free(&r);

	/* a shell string naming a missing program: a result with 127 */
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s", "no-such-program-xyz"), 0);
	assert_int_equal(ac_res_int(&r, "code"), 127);
	ac_rep_free(&r);
	ac_close(&a);
}

static void test_exec_argv_env_cwd_stdin(void **state)
{
	const char *argv[] = { "sh", "-c", "printf '%s|%s|' \"$FOO\" \"$(pwd)\"; cat", NULL };
	const char *env[] = { "FOO", "bar baz", NULL };
	const char *argv2[] = { "printf", "%s;", "a b", "c", NULL };
	struct ac a;
	struct ac_rep r;
	char *out;

	(void)state;
	connect_agent(&a);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "argv=a env=m cwd=s stdin=y", argv, env,
				  "/tmp", "from stdin", (size_t)10), 0);
	assert_true(r.f->ok);
	out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "bar baz|/tmp|from stdin");
	free(out);
	ac_rep_free(&r);

	/* argv is exec'd directly: no shell word splitting */
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "argv=a", argv2), 0);
	out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "a b;c;");
	free(out);
	ac_rep_free(&r);

	/* clear_env leaves only what we pass (plus a default PATH) */
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s clear_env=b env=m",
				  "echo \"[$HOME][$FOO]\"", 1, env), 0);
	out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "[][bar baz]\n");
	free(out);
	ac_rep_free(&r);
	ac_close(&a);
}

static void test_exec_errors(void **state)
{
	const char *missing[] = { "/no/such/binary", NULL };
	const char *bare[] = { "no-such-program-xyz", NULL };
	struct ac a;
	struct ac_rep r;

	(void)state;
	connect_agent(&a);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "argv=a", missing), 0);
	assert_err(&r, ENOENT, NULL);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "argv=a", bare), 0);
	assert_err(&r, ENOENT, NULL);
	assert_non_null(strstr(r.f->message, "not found"));
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s cwd=s", "true", "/no/such/dir"), 0);
	assert_err(&r, ENOENT, NULL);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s user=s", "true", "no-such-user-x"), 0);
	assert_err(&r, EINVAL, "invalid");
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, ""), 0);
	assert_err(&r, EINVAL, "invalid");
	ac_rep_free(&r);
	ac_close(&a);
}

static void test_exec_timeout_kills_group(void **state)
{
	struct ac a;
	struct ac_rep r;
	uint64_t t0 = ac_now_ns();
	char *out;
	int pid;

	(void)state;
	connect_agent(&a);
	/* the background sleep is in the same group: it must die too */
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s timeout_ns=I",
				  "sleep 30 & echo $!; sleep 30", 300000000LL), 0);
	assert_true(r.f->ok);
	assert_true(ac_res(&r, "timed_out")->via.boolean);
	assert_int_equal(ac_res_int(&r, "signal"), SIGKILL);
	assert_int_equal(ac_res_int(&r, "code"), -1);
	assert_true(ac_now_ns() - t0 < 10000000000ull);
	out = ac_res_str(&r, "stdout");
	pid = atoi(out);
	assert_true(pid > 0);
	for (int i = 0; i < 200 && kill(pid, 0) == 0; i++)
		usleep(10000);
	assert_int_equal(kill(pid, 0), -1);
	free(out);
	ac_rep_free(&r);
	ac_close(&a);
}

/* The expected output of `seq 1 N`. */
static char *seq_text(int n, size_t *len)
{
	struct ac_buf b = { 0 };
	char line[16];

	for (int i = 1; i <= n; i++)
		ac_buf_add(&b, line, (size_t)snprintf(line, sizeof(line), "%d\n", i));
	*len = b.len;
	return (char *)b.d;
}

static void test_exec_large_output_complete_in_order(void **state)
{
	struct ac a;
	struct ac_rep r;
	size_t want_len, tail_len;
	char *want = seq_text(200000, &want_len), *tail;

	(void)state;
	assert_true(want_len > 1024 * 1024);
	connect_agent(&a);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s", "seq 1 200000; seq 1 1000 >&2"), 0);
	assert_true(r.f->ok);
	/* stdout = stream frames .. result.stdout */
	tail = ac_res_str(&r, "stdout");
	tail_len = strlen(tail);
	ac_buf_add(&r.out, tail, tail_len);
	assert_int_equal(r.out.len, want_len);
	assert_memory_equal(r.out.d, want, want_len);
	free(tail);
	tail = ac_res_str(&r, "stderr");
	assert_int_equal(strlen(tail), 3893);
	free(tail);
	free(want);
	ac_rep_free(&r);
	ac_close(&a);
}

static void test_exec_as_unprivileged_user(void **state)
{
	struct ac a;
	struct ac_rep r;
	char *out;

	(void)state;
	if (getuid() != 0)
		skip();
	connect_agent(&a);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s user=i", "id -u; id -g", 65534), 0);
	out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "65534\n65534\n");
	free(out);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s uid=i gid=i", "id -u; id -g", 1234,
				  4321), 0);
	out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "1234\n4321\n");
	free(out);
	ac_rep_free(&r);
	/* the unprivileged user meets EACCES */
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s user=i",
				  "cat /etc/shadow >/dev/null 2>&1; echo $?", 65534), 0);
	out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "1\n");
	free(out);
	ac_rep_free(&r);
	ac_close(&a);
}

/* ---- spawn ---- */

static void test_spawn_streams_stdin_wait(void **state)
{
	const char *argv[] = { "cat", NULL };
	struct ac a;
	struct ac_rep r, s = { 0 };
	uint64_t id;
	int64_t pid;

	(void)state;
	connect_agent(&a);
	id = ac_sendf(&a, PV_OP_SPAWN, "argv=a stdin=y", argv, "first ", (size_t)6);
	assert_int_equal(ac_wait(&a, id, &s, 5000), 0);
	assert_true(s.f->ok);
	pid = ac_res_int(&s, "pid");
	assert_true(pid > 0);

	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_STATUS, "pid=I", (long long)pid), 0);
	assert_true(pv_obj_streq(ac_res(&r, "state"), "running"));
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WRITE, "pid=I data=y", (long long)pid,
				  "second", (size_t)6), 0);
	assert_int_equal(ac_res_int(&r, "n"), 6);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_CLOSE_STDIN, "pid=I", (long long)pid), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_collect(&a, id, &s, true, false, 5000), 0);
	assert_int_equal(s.out.len, 12);
	assert_memory_equal(s.out.d, "first second", 12);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I", (long long)pid), 0);
	assert_true(pv_obj_streq(ac_res(&r, "state"), "exited"));
	assert_int_equal(ac_res_int(&r, "code"), 0);
	ac_rep_free(&r);
	/* writing to a closed stdin */
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WRITE, "pid=I data=y", (long long)pid,
				  "x", (size_t)1), 0);
	assert_err(&r, EPIPE, NULL);
	ac_rep_free(&r);
	ac_rep_free(&s);
	ac_close(&a);
}

/* Initial stdin larger than the pipes: cat echoes it while we are still writing. */
static void test_spawn_large_stdin_echo(void **state)
{
	const char *argv[] = { "cat", NULL };
	size_t len = 1 << 20;
	char *data = malloc(len);
	struct ac a;
	struct ac_rep s = { 0 }, r;
	uint64_t id;

	(void)state;
	for (size_t i = 0; i < len; i++)
		data[i] = (char)('a' + i % 26);
	connect_agent(&a);
	id = ac_sendf(&a, PV_OP_SPAWN, "argv=a stdin=y", argv, data, len);
	assert_int_equal(ac_wait(&a, id, &s, 10000), 0);
	assert_true(s.f->ok);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_CLOSE_STDIN, "pid=I",
				  (long long)ac_res_int(&s, "pid")), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_collect(&a, id, &s, true, false, 20000), 0);
	assert_int_equal(s.out.len, len);
	assert_memory_equal(s.out.d, data, len);
	free(data);
	ac_rep_free(&s);
	ac_close(&a);
}

static void test_spawn_1mib_stdout_in_order(void **state)
{
	struct ac a;
	struct ac_rep s = { 0 }, r;
	size_t want_len;
	char *want = seq_text(200000, &want_len);
	uint64_t id;

	(void)state;
	connect_agent(&a);
	id = ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "seq 1 200000; echo done >&2; exit 7");
	assert_int_equal(ac_wait(&a, id, &s, 5000), 0);
	assert_true(s.f->ok);
	assert_int_equal(ac_collect(&a, id, &s, true, false, 20000), 0);
	assert_int_equal(s.out.len, want_len);
	assert_memory_equal(s.out.d, want, want_len);
	assert_string_equal((char *)s.err.d, "done\n");
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I timeout_ns=I",
				  (long long)ac_res_int(&s, "pid"), 5000000000LL), 0);
	if (!r.f->ok)
		fprintf(stderr, "# proc_wait: %.*s\n", (int)r.f->message_len, r.f->message);
	assert_int_equal(ac_res_int(&r, "code"), 7);
	ac_rep_free(&r);
	free(want);
	ac_rep_free(&s);
	ac_close(&a);
}

static void test_spawn_signal_kill_tree_wait_timeout(void **state)
{
	struct ac a;
	struct ac_rep s = { 0 }, r;
	uint64_t id;
	int64_t pid;
	int child;

	(void)state;
	connect_agent(&a);
	id = ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "sleep 100");
	assert_int_equal(ac_wait(&a, id, &s, 5000), 0);
	pid = ac_res_int(&s, "pid");
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I timeout_ns=I", (long long)pid,
				  100000000LL), 0);
	assert_err(&r, ETIMEDOUT, "timeout");
	ac_rep_free(&r);
	{
		/* A timed wait really waits: a process that exits within the timeout is
		 * reported with its code (the deadline and the condition variable must use
		 * the same clock), and the wait took about as long as the process ran. */
		struct ac_rep s2 = { 0 };
		uint64_t id2 = ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "sleep 0.3; exit 5");
		struct timespec t0, t1;

		assert_int_equal(ac_wait(&a, id2, &s2, 5000), 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I timeout_ns=I",
					  (long long)ac_res_int(&s2, "pid"), 10000000000LL), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_true(r.f->ok);
		assert_int_equal(ac_res_int(&r, "code"), 5);
		assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 200);
		ac_rep_free(&r);
		ac_rep_free(&s2);
	}
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_SIGNAL, "pid=I signal=s", (long long)pid,
				  "TERM"), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I", (long long)pid), 0);
	assert_true(pv_obj_streq(ac_res(&r, "state"), "signaled"));
	assert_int_equal(ac_res_int(&r, "signal"), SIGTERM);
	assert_int_equal(ac_res_int(&r, "code"), -1);
	ac_rep_free(&r);
	ac_rep_free(&s);

	/* kill takes the children too */
	id = ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "sleep 100 & echo $!; sh -c 'sleep 100'");
	memset(&s, 0, sizeof(s));
	assert_int_equal(ac_wait(&a, id, &s, 5000), 0);
	pid = ac_res_int(&s, "pid");
	while (!strchr(s.out.d ? (char *)s.out.d : "", '\n')) {
		struct pv_frame *f = ac_next_for(&a, id, 5000);

		assert_non_null(f);
		ac_rep_stream(&s, f);
		ac_frame_free(f);
	}
	child = atoi((char *)s.out.d);
	assert_true(child > 0);
	assert_int_equal(kill(child, 0), 0);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_KILL, "pid=I", (long long)pid), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I", (long long)pid), 0);
	assert_int_equal(ac_res_int(&r, "signal"), SIGKILL);
	ac_rep_free(&r);
	for (int i = 0; i < 300 && kill(child, 0) == 0; i++)
		usleep(10000);
	assert_int_equal(kill(child, 0), -1); /* killed and reaped */
	assert_int_equal(ac_collect(&a, id, &s, true, false, 5000), 0);
	ac_rep_free(&s);

	/* unknown pids */
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_STATUS, "pid=i", 1), 0);
	assert_err(&r, ESRCH, NULL);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_SIGNAL, "pid=I signal=s", (long long)pid,
				  "NOPE"), 0);
	assert_err(&r, EINVAL, "invalid");
	ac_rep_free(&r);
	ac_close(&a);
}

static void test_closing_connection_kills_its_processes(void **state)
{
	struct ac a;
	struct ac_rep s = { 0 };
	int64_t pid;

	(void)state;
	connect_agent(&a);
	assert_int_equal(ac_wait(&a, ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "sleep 100"), &s, 5000), 0);
	pid = ac_res_int(&s, "pid");
	assert_int_equal(kill((pid_t)pid, 0), 0);
	ac_rep_free(&s);
	ac_close(&a);
	for (int i = 0; i < 300 && kill((pid_t)pid, 0) == 0; i++)
		usleep(10000);
	assert_int_equal(kill((pid_t)pid, 0), -1);
}

static int thread_count(pid_t pid)
{
	char p[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "/proc/%d/task", pid);
	if (!(d = opendir(p)))
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A grandchild that leaves the process group and keeps the output pipes open must
 * hold neither an exec reply nor a closed connection's threads. */
static void test_escaped_grandchild_holds_nothing(void **state)
{
	struct ac a;
	struct ac_rep r, s = { 0 };
	uint64_t t0;
	int base;

	(void)state;
	connect_agent(&a);
	t0 = ac_now_ns();
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s", "setsid sleep 8 & echo hi"), 0);
	assert_true(ac_now_ns() - t0 < 5000000000ull);
	char *out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "hi\n");
	free(out);
	ac_rep_free(&r);
	ac_close(&a);

	/* Idle, the agent has 3 threads (accept loop, reaper, signals); earlier tests'
	 * connections may take a moment to wind down. */
	for (int i = 0; i < 300 && thread_count(agent.pid) > 3; i++)
		usleep(10000);
	base = thread_count(agent.pid);
	assert_int_equal(base, 3);
	connect_agent(&a);
	assert_int_equal(ac_wait(&a, ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "setsid sleep 8 & echo hi"),
				 &s, 5000), 0);
	assert_true(s.f->ok);
	ac_rep_free(&s);
	assert_true(thread_count(agent.pid) > base);
	ac_close(&a);
	for (int i = 0; i < 500 && thread_count(agent.pid) > base; i++)
		usleep(10000);
	assert_int_equal(thread_count(agent.pid), base); /* long before the sleep ends */
}

/* ---- concurrency ---- */

static void test_slow_exec_does_not_block_other_connection(void **state)
{
	struct ac a, b;
	struct ac_rep r;
	uint64_t id, t0;

	(void)state;
	connect_agent(&a);
	connect_agent(&b);
	id = ac_sendf(&a, PV_OP_EXEC, "cmd=s", "sleep 2");
	usleep(100000);
	t0 = ac_now_ns();
	assert_int_equal(ac_callf(&b, &r, PV_OP_PING, ""), 0);
	assert_true(r.f->ok);
	assert_true(ac_now_ns() - t0 < 1500000000ull); /* the sleep takes 2 s */
	ac_rep_free(&r);
	/* within one connection too: a ping after the sleep overtakes it */
	t0 = ac_now_ns();
	assert_int_equal(ac_callf(&a, &r, PV_OP_PING, ""), 0);
	assert_true(r.f->ok);
	assert_true(ac_now_ns() - t0 < 1500000000ull); /* the sleep takes 2 s */
	ac_rep_free(&r);
	memset(&r, 0, sizeof(r));
	assert_int_equal(ac_wait(&a, id, &r, 10000), 0);
	assert_int_equal(ac_res_int(&r, "code"), 0);
	assert_true(ac_res_int(&r, "duration_ns") >= 1900000000LL);
	ac_rep_free(&r);
	ac_close(&a);
	ac_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_and_ping),
		cmocka_unit_test(test_version_mismatch_names_both),
		cmocka_unit_test(test_first_frame_must_be_hello),
		cmocka_unit_test(test_unknown_op_and_bad_requests),
		cmocka_unit_test(test_oversized_frame_closes_with_reason),
		cmocka_unit_test(test_random_frames_do_not_hurt),
		cmocka_unit_test(test_exec_shell_result),
		cmocka_unit_test(test_exec_argv_env_cwd_stdin),
		cmocka_unit_test(test_exec_errors),
		cmocka_unit_test(test_exec_timeout_kills_group),
		cmocka_unit_test(test_exec_large_output_complete_in_order),
		cmocka_unit_test(test_exec_as_unprivileged_user),
		cmocka_unit_test(test_spawn_streams_stdin_wait),
		cmocka_unit_test(test_spawn_large_stdin_echo),
		cmocka_unit_test(test_spawn_1mib_stdout_in_order),
		cmocka_unit_test(test_spawn_signal_kill_tree_wait_timeout),
		cmocka_unit_test(test_closing_connection_kills_its_processes),
		cmocka_unit_test(test_escaped_grandchild_holds_nothing),
		cmocka_unit_test(test_slow_exec_does_not_block_other_connection),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
