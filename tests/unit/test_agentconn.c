/* test_agentconn.c — the host side of the agent protocol (lua/agentconn.c): against
 * the real build/provium-agent over a socketpair (hello, requests, stream frames,
 * replies out of order), and against a fake peer for the version mismatch and EOF. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lua/agentconn.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char agent_path[PATH_MAX];

static int group_setup(void **state)
{
	(void)state;
	const char *b = getenv("PROVIUM_BUILD");
	if (b && *b) {
		snprintf(agent_path, sizeof(agent_path), "%s/provium-agent", b);
	} else {
		char exe[PATH_MAX - 64];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
		char *s = strrchr(exe, '/');
		if (s)
			*s = 0;
		snprintf(agent_path, sizeof(agent_path), "%s/../../provium-agent", exe);
	}
	return 0;
}

/* Starts the agent serving one end of a socketpair; returns the host end. */
static int start_agent(pid_t *pid)
{
	if (access(agent_path, X_OK) < 0)
		return -1;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		dup2(sv[1], 3);
		char *argv[] = {agent_path, "--fd", "3", NULL};
		execv(agent_path, argv);
		_exit(127);
	}
	close(sv[1]);
	return sv[0];
}

struct seen {
	int replies, frames;
	uint64_t ids[16];
	bool ok[16];
	char stdout_data[1 << 20];
	size_t result_stdout_len;
	size_t stdout_len;
	bool stdout_eof;
	char result_stdout[256];
};

static void on_frame(void *ud, const struct pv_frame *f)
{
	struct seen *s = ud;
	s->frames++;
	if (f->kind == PV_FRAME_REPLY) {
		if (s->replies < 16) {
			s->ids[s->replies] = f->id;
			s->ok[s->replies] = f->ok;
		}
		s->replies++;
		const uint8_t *d;
		size_t n;
		if (f->ok && pv_map_bytes(f->result, "stdout", &d, &n) == 0)
			s->result_stdout_len = n;
		if (f->ok && pv_map_bytes(f->result, "stdout", &d, &n) == 0 && n < sizeof(s->result_stdout)) {
			memcpy(s->result_stdout, d, n);
			s->result_stdout[n] = 0;
		}
	} else if (f->kind == PV_FRAME_STREAM && !strcmp(f->stream, "stdout")) {
		if (f->eof)
			s->stdout_eof = true;
		else if (s->stdout_len + f->data_len <= sizeof(s->stdout_data)) {
			memcpy(s->stdout_data + s->stdout_len, f->data, f->data_len);
			s->stdout_len += f->data_len;
		}
	}
}

/* Pumps until cond() holds or 5 s pass. */
static void pump_until(struct agentconn *c, struct seen *s, bool (*cond)(struct agentconn *, struct seen *))
{
	uint64_t deadline = pv_now_ns() + 5000000000ull;
	while (!cond(c, s) && pv_now_ns() < deadline) {
		struct pollfd p = {.fd = agentconn_fd(c), .events = POLLIN};
		if (agentconn_want_write(c))
			p.events |= POLLOUT;
		poll(&p, 1, 50);
		if (agentconn_pump(c, on_frame, s) < 0)
			break;
	}
}

static bool is_ready(struct agentconn *c, struct seen *s) { (void)s; return agentconn_ready(c); }
static bool two_replies(struct agentconn *c, struct seen *s) { (void)c; return s->replies >= 2; }
static bool one_reply(struct agentconn *c, struct seen *s) { (void)c; return s->replies >= 1; }
static bool closed(struct agentconn *c, struct seen *s) { (void)s; return agentconn_closed(c); }

static void send_req(struct agentconn *c, uint64_t id, const char *op, const char *cmd)
{
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	pv_enc_request(&b, id, op);
	if (cmd) {
		pv_pack_map(&b, 1);
		pv_pack_kv_str(&b, "cmd", cmd);
	} else {
		pv_pack_map(&b, 0);
	}
	assert_int_equal(pv_fbuf_finish(&b), 0);
	assert_int_equal(agentconn_queue(c, b.sb.data, b.sb.size), 0);
	pv_fbuf_destroy(&b);
}

static void test_handshake_and_requests(void **state)
{
	(void)state;
	pid_t pid = -1;
	int fd = start_agent(&pid);
	if (fd < 0) {
		fprintf(stderr, "# no agent at %s (make build/provium-agent)\n", agent_path);
		skip();
	}
	struct agentconn *c;
	assert_int_equal(agentconn_new(fd, "unit", &c), 0);
	struct seen *s = calloc(1, sizeof(*s));
	pump_until(c, s, is_ready);
	assert_true(agentconn_ready(c));
	/* a slow exec, then a ping: the ping's reply overtakes it */
	uint64_t slow = agentconn_next_id(c), fast = agentconn_next_id(c);
	assert_int_equal(slow, 1);
	assert_int_equal(fast, 2);
	send_req(c, slow, "exec", "sleep 0.3; echo done");
	send_req(c, fast, "ping", NULL);
	pump_until(c, s, two_replies);
	assert_int_equal(s->replies, 2);
	assert_int_equal(s->ids[0], fast);
	assert_int_equal(s->ids[1], slow);
	assert_true(s->ok[0] && s->ok[1]);
	assert_string_equal(s->result_stdout, "done\n");
	/* a big output arrives as stdout stream frames before the reply */
	memset(s, 0, sizeof(*s));
	send_req(c, agentconn_next_id(c), "exec", "head -c 600000 /dev/zero | tr '\\0' y");
	pump_until(c, s, one_reply);
	assert_true(s->stdout_len >= 256 * 1024);
	assert_int_equal(s->stdout_len + s->result_stdout_len, 600000);
	assert_int_equal(s->stdout_data[0], 'y');
	/* the agent going away closes the connection with a reason */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	pump_until(c, s, closed);
	assert_true(agentconn_closed(c));
	assert_non_null(strstr(agentconn_error(c), "closed"));
	assert_true(agentconn_pump(c, on_frame, s) < 0);
	agentconn_free(c);
	free(s);
}

static void test_version_mismatch(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct agentconn *c;
	assert_int_equal(agentconn_new(sv[0], "unit", &c), 0);
	/* a fake agent speaking a future version */
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	pv_pack_map(&b, 3);
	pv_pack_kv_str(&b, "hello", "agent");
	pv_pack_kv_int(&b, "v", PROTOCOL_VERSION + 1);
	pv_pack_str(&b, "features");
	pv_pack_array(&b, 0);
	pv_fbuf_finish(&b);
	assert_int_equal(pv_write_full(sv[1], b.sb.data, b.sb.size), 0);
	pv_fbuf_destroy(&b);
	struct seen *s = calloc(1, sizeof(*s));
	assert_true(agentconn_pump(c, on_frame, s) < 0);
	free(s);
	assert_true(agentconn_protocol_error(c));
	assert_false(agentconn_ready(c));
	char want[64];
	snprintf(want, sizeof(want), "speaks %d", PROTOCOL_VERSION + 1);
	assert_non_null(strstr(agentconn_error(c), want));
	agentconn_free(c);
	close(sv[1]);
}

static void test_queue_survives_a_full_socket(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct agentconn *c;
	assert_int_equal(agentconn_new(sv[0], "unit", &c), 0);
	/* 8 MiB queued without a reader: nothing blocks, everything arrives in order */
	static char chunk[65536];
	for (int i = 0; i < 128; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		assert_int_equal(agentconn_queue(c, chunk, sizeof(chunk)), 0);
	}
	assert_true(agentconn_want_write(c));
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	size_t total = 0;
	/* skip the hello frame first */
	uint8_t hdr[4];
	struct pollfd p = {.fd = sv[1], .events = POLLIN};
	poll(&p, 1, 1000);
	assert_int_equal(read(sv[1], hdr, 4), 4);
	size_t hello = (size_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
	static char buf[1 << 20];
	assert_int_equal(pv_read_full(sv[1], buf, hello), 0);
	bool in_order = true;
	while (total < sizeof(chunk) * 128) {
		agentconn_flush(c);
		ssize_t n = read(sv[1], buf, sizeof(buf));
		if (n <= 0) {
			poll(&p, 1, 100);
			continue;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != 'a' + (int)((total + (size_t)i) / sizeof(chunk)) % 26)
				in_order = false;
		total += (size_t)n;
	}
	assert_true(in_order);
	assert_int_equal(agentconn_flush(c), 0);
	assert_false(agentconn_want_write(c));
	agentconn_free(c);
	close(sv[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_requests),
		cmocka_unit_test(test_version_mismatch),
		cmocka_unit_test(test_queue_survives_a_full_socket),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
