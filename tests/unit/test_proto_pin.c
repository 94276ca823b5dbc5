/* test_proto_pin.c — conformance pins for the host–agent protocol: the exact bytes
 * of one instance of every request (every op), every reply, the error reply, the
 * stream and eof frames and the hello, compared with the goldens checked in under
 * tests/golden/proto/v<PROTOCOL_VERSION>/. An encoding that changes while
 * PROTOCOL_VERSION did not fails here (docs/protocol.md says when to bump).
 * PROVIUM_UPDATE_GOLDEN=1 writes missing goldens and refuses to overwrite one of
 * the same version with different bytes. Event-stream pins live elsewhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/proto.h"
#include "tests/unit/src_root.h"

typedef void (*build_fn)(struct pv_fbuf *b);

/* ---- instances: requests (args as docs/protocol.md lists them) ---- */

#define REQ(name, op, n) static void req_##name(struct pv_fbuf *b) { \
	pv_enc_request(b, 42, op); pv_pack_map(b, n);
#define END }

REQ(ping, PV_OP_PING, 0) END
REQ(sleep, PV_OP_SLEEP, 1) pv_pack_kv_int(b, "ns", 1000000); END
REQ(uname, PV_OP_UNAME, 0) END
REQ(sethostname, PV_OP_SETHOSTNAME, 1) pv_pack_kv_str(b, "name", "web"); END
REQ(clock_get, PV_OP_CLOCK_GET, 1) pv_pack_kv_str(b, "clock", "monotonic"); END
REQ(clock_set, PV_OP_CLOCK_SET, 1) pv_pack_kv_int(b, "ns", 1700000000000000000LL); END
REQ(poweroff, PV_OP_POWEROFF, 0) END
REQ(reboot, PV_OP_REBOOT, 0) END
REQ(exec, PV_OP_EXEC, 9)
	pv_pack_kv_str(b, "cmd", "echo hi");
	pv_pack_str(b, "env"); pv_pack_map(b, 1); pv_pack_kv_str(b, "A", "1");
	pv_pack_kv_bool(b, "clear_env", false);
	pv_pack_kv_str(b, "cwd", "/tmp");
	pv_pack_kv_bin(b, "stdin", "in", 2);
	pv_pack_kv_str(b, "user", "nobody");
	pv_pack_kv_int(b, "uid", 65534);
	pv_pack_kv_int(b, "gid", 65534);
	pv_pack_kv_int(b, "timeout_ns", 5000000000LL);
END
REQ(exec_argv, PV_OP_EXEC, 1)
	pv_pack_str(b, "argv"); pv_pack_array(b, 2); pv_pack_str(b, "ls"); pv_pack_str(b, "/");
END
REQ(spawn, PV_OP_SPAWN, 3)
	pv_pack_kv_str(b, "cmd", "cat");
	pv_pack_kv_bin(b, "stdin", "x", 1);
	pv_pack_kv_int(b, "user", 0);
END
REQ(spawn_pty, PV_OP_SPAWN, 2)
	pv_pack_kv_str(b, "cmd", "/bin/sh");
	pv_pack_str(b, "pty"); pv_pack_map(b, 2);
	pv_pack_kv_int(b, "rows", 24); pv_pack_kv_int(b, "cols", 80);
END
REQ(proc_resize, PV_OP_PROC_RESIZE, 3)
	pv_pack_kv_int(b, "pid", 99); pv_pack_kv_int(b, "rows", 50); pv_pack_kv_int(b, "cols", 132);
END
REQ(proc_write, PV_OP_PROC_WRITE, 2) pv_pack_kv_int(b, "pid", 99); pv_pack_kv_bin(b, "data", "ab", 2); END
REQ(proc_close_stdin, PV_OP_PROC_CLOSE_STDIN, 1) pv_pack_kv_int(b, "pid", 99); END
REQ(proc_signal, PV_OP_PROC_SIGNAL, 3)
	pv_pack_kv_int(b, "pid", 99); pv_pack_kv_str(b, "signal", "TERM"); pv_pack_kv_bool(b, "group", true);
END
REQ(proc_kill, PV_OP_PROC_KILL, 1) pv_pack_kv_int(b, "pid", 99); END
REQ(proc_wait, PV_OP_PROC_WAIT, 2) pv_pack_kv_int(b, "pid", 99); pv_pack_kv_int(b, "timeout_ns", 1000000000); END
REQ(proc_status, PV_OP_PROC_STATUS, 1) pv_pack_kv_int(b, "pid", 99); END
REQ(read_file, PV_OP_READ_FILE, 1) pv_pack_kv_str(b, "path", "/etc/hostname"); END
REQ(write_file, PV_OP_WRITE_FILE, 5)
	pv_pack_kv_str(b, "path", "/tmp/f"); pv_pack_kv_bin(b, "data", "hello", 5);
	pv_pack_kv_int(b, "mode", 0644); pv_pack_kv_bool(b, "append", false);
	pv_pack_kv_bool(b, "stream", true);
END
REQ(open, PV_OP_OPEN, 3) pv_pack_kv_str(b, "path", "/tmp/f"); pv_pack_kv_str(b, "mode", "r+"); pv_pack_kv_int(b, "perm", 0600); END
REQ(read, PV_OP_READ, 2) pv_pack_kv_int(b, "fd", 5); pv_pack_kv_int(b, "n", 4096); END
REQ(write, PV_OP_WRITE, 2) pv_pack_kv_int(b, "fd", 5); pv_pack_kv_bin(b, "data", "xyz", 3); END
REQ(seek, PV_OP_SEEK, 3) pv_pack_kv_int(b, "fd", 5); pv_pack_kv_str(b, "whence", "end"); pv_pack_kv_int(b, "offset", -2); END
REQ(tell, PV_OP_TELL, 1) pv_pack_kv_int(b, "fd", 5); END
REQ(fsync, PV_OP_FSYNC, 1) pv_pack_kv_int(b, "fd", 5); END
REQ(close, PV_OP_CLOSE, 1) pv_pack_kv_int(b, "fd", 5); END
REQ(stat, PV_OP_STAT, 2) pv_pack_kv_str(b, "path", "/etc"); pv_pack_kv_bool(b, "nofollow", true); END
REQ(exists, PV_OP_EXISTS, 1) pv_pack_kv_str(b, "path", "/etc"); END
REQ(ls, PV_OP_LS, 1) pv_pack_kv_str(b, "path", "/"); END
REQ(mkdir, PV_OP_MKDIR, 3) pv_pack_kv_str(b, "path", "/a/b"); pv_pack_kv_int(b, "mode", 0755); pv_pack_kv_bool(b, "parents", true); END
REQ(rm, PV_OP_RM, 3) pv_pack_kv_str(b, "path", "/a"); pv_pack_kv_bool(b, "recursive", true); pv_pack_kv_bool(b, "force", false); END
REQ(rename, PV_OP_RENAME, 2) pv_pack_kv_str(b, "from", "/a"); pv_pack_kv_str(b, "to", "/b"); END
REQ(chmod, PV_OP_CHMOD, 2) pv_pack_kv_str(b, "path", "/a"); pv_pack_kv_int(b, "mode", 0700); END
REQ(truncate, PV_OP_TRUNCATE, 2) pv_pack_kv_str(b, "path", "/a"); pv_pack_kv_int(b, "size", 10); END
REQ(tail, PV_OP_TAIL, 3) pv_pack_kv_str(b, "path", "/var/log/x"); pv_pack_kv_str(b, "from", "end"); pv_pack_kv_int(b, "poll_ms", 50); END
REQ(tail_fd, PV_OP_TAIL_FD, 2) pv_pack_kv_int(b, "fd", 5); pv_pack_kv_int(b, "poll_ms", 50); END
REQ(cancel, PV_OP_CANCEL, 1) pv_pack_kv_uint(b, "target", 41); END
REQ(syscall, PV_OP_SYSCALL, 2)
	pv_pack_kv_str(b, "name", "mount");
	pv_pack_str(b, "args"); pv_pack_array(b, 5);
	pv_pack_str(b, "none"); pv_pack_str(b, "/mnt"); pv_pack_str(b, "tmpfs");
	pv_pack_str(b, "nosuid,nodev"); pv_pack_str(b, "size=1m");
END

/* ---- instances: replies (results as docs/protocol.md lists them) ---- */

#define REP(name, n) static void rep_##name(struct pv_fbuf *b) { \
	pv_enc_reply_ok(b, 42); pv_pack_map(b, n);

REP(empty, 0) END
REP(ping, 1) pv_pack_kv_bool(b, "pong", true); END
REP(uname, 6)
	pv_pack_kv_str(b, "sysname", "Linux"); pv_pack_kv_str(b, "nodename", "web");
	pv_pack_kv_str(b, "release", "6.1.0"); pv_pack_kv_str(b, "version", "#1");
	pv_pack_kv_str(b, "machine", "x86_64"); pv_pack_kv_str(b, "domainname", "(none)");
END
REP(clock_get, 1) pv_pack_kv_int(b, "ns", 1700000000123456789LL); END
REP(exec, 7)
	pv_pack_kv_int(b, "pid", 123); pv_pack_kv_int(b, "code", 0); pv_pack_kv_int(b, "signal", 0);
	pv_pack_kv_bin(b, "stdout", "hi\n", 3); pv_pack_kv_bin(b, "stderr", "", 0);
	pv_pack_kv_uint(b, "duration_ns", 1500000); pv_pack_kv_bool(b, "timed_out", false);
END
REP(spawn, 1) pv_pack_kv_int(b, "pid", 123); END
REP(proc_write, 1) pv_pack_kv_uint(b, "n", 2); END
REP(proc_status, 3) pv_pack_kv_str(b, "state", "signaled"); pv_pack_kv_int(b, "code", -1); pv_pack_kv_int(b, "signal", 9); END
REP(read_file, 2) pv_pack_kv_uint(b, "size", 5); pv_pack_kv_bin(b, "data", "hello", 5); END
REP(write_file, 1) pv_pack_kv_uint(b, "size", 5); END
REP(open, 1) pv_pack_kv_int(b, "fd", 5); END
REP(read, 2) pv_pack_kv_bin(b, "data", "abc", 3); pv_pack_kv_bool(b, "eof", false); END
REP(write, 1) pv_pack_kv_uint(b, "n", 3); END
REP(seek, 1) pv_pack_kv_int(b, "pos", 8); END
REP(stat, 10)
	pv_pack_kv_str(b, "type", "file"); pv_pack_kv_uint(b, "mode", 0644);
	pv_pack_kv_uint(b, "size", 5); pv_pack_kv_uint(b, "uid", 0); pv_pack_kv_uint(b, "gid", 0);
	pv_pack_kv_int(b, "mtime_ns", 1700000000000000000LL);
	pv_pack_kv_int(b, "atime_ns", 1700000000000000000LL);
	pv_pack_kv_int(b, "ctime_ns", 1700000000000000000LL);
	pv_pack_kv_uint(b, "ino", 12345); pv_pack_kv_uint(b, "nlink", 1);
END
REP(exists, 1) pv_pack_kv_bool(b, "exists", true); END
REP(ls, 1) pv_pack_str(b, "names"); pv_pack_array(b, 2); pv_pack_str(b, "a"); pv_pack_str(b, "b"); END
REP(cancel, 1) pv_pack_kv_bool(b, "cancelled", true); END
REP(syscall, 1) pv_pack_kv_int(b, "ret", 0); END
REP(syscall_uname, 1)
	pv_pack_str(b, "ret"); pv_pack_map(b, 6);
	pv_pack_kv_str(b, "sysname", "Linux"); pv_pack_kv_str(b, "nodename", "web");
	pv_pack_kv_str(b, "release", "6.1.0"); pv_pack_kv_str(b, "version", "#1");
	pv_pack_kv_str(b, "machine", "x86_64"); pv_pack_kv_str(b, "domainname", "(none)");
END

/* ---- other frames ---- */

static void hello_agent(struct pv_fbuf *b)
{
	static const char *const f[] = { "exec", "spawn" };

	pv_enc_hello(b, PV_ROLE_AGENT, f, 2);
}
static void hello_host(struct pv_fbuf *b) { pv_enc_hello(b, PV_ROLE_HOST, NULL, 0); }
static void err_guest(struct pv_fbuf *b)
{
	pv_enc_reply_err(b, 42, ENOENT, NULL, "open /x: No such file or directory");
}
static void err_invalid(struct pv_fbuf *b)
{
	pv_enc_reply_err(b, 42, ENOSYS, PV_ERRCODE_INVALID, "unknown op 'x'");
}
static void err_protocol(struct pv_fbuf *b)
{
	pv_enc_reply_err(b, 0, EPROTO, PV_ERRCODE_PROTOCOL,
			 "protocol version mismatch: host speaks 2, agent speaks 1");
}
static void err_timeout(struct pv_fbuf *b)
{
	pv_enc_reply_err(b, 42, ETIMEDOUT, PV_ERRCODE_TIMEOUT, "process 9 still running");
}
static void stream_stdout(struct pv_fbuf *b) { pv_enc_stream(b, 42, PV_STREAM_STDOUT, "out", 3); }
static void stream_stderr(struct pv_fbuf *b) { pv_enc_stream(b, 42, PV_STREAM_STDERR, "err", 3); }
static void stream_tail(struct pv_fbuf *b) { pv_enc_stream(b, 42, PV_STREAM_TAIL, "line\n", 5); }
static void stream_data(struct pv_fbuf *b) { pv_enc_stream(b, 42, PV_STREAM_DATA, "\0\1\2", 3); }
static void eof_stdout(struct pv_fbuf *b) { pv_enc_eof(b, 42, PV_STREAM_STDOUT); }
static void eof_tail(struct pv_fbuf *b) { pv_enc_eof(b, 42, PV_STREAM_TAIL); }
static void eof_data(struct pv_fbuf *b) { pv_enc_eof(b, 42, PV_STREAM_DATA); }

#define R(n) { "req_" #n, req_##n }
#define P(n) { "rep_" #n, rep_##n }
static const struct { const char *name; build_fn fn; } pins[] = {
	{ "hello_agent", hello_agent }, { "hello_host", hello_host },
	R(ping), R(sleep), R(uname), R(sethostname), R(clock_get), R(clock_set),
	R(poweroff), R(reboot), R(exec), R(exec_argv), R(spawn), R(spawn_pty), R(proc_write),
	R(proc_close_stdin), R(proc_signal), R(proc_kill), R(proc_wait), R(proc_status),
	R(proc_resize), R(read_file), R(write_file), R(open), R(read), R(write), R(seek), R(tell),
	R(fsync), R(close), R(stat), R(exists), R(ls), R(mkdir), R(rm), R(rename),
	R(chmod), R(truncate), R(tail), R(tail_fd), R(cancel), R(syscall),
	P(empty), P(ping), P(uname), P(clock_get), P(exec), P(spawn), P(proc_write),
	P(proc_status), P(read_file), P(write_file), P(open), P(read), P(write), P(seek),
	P(stat), P(exists), P(ls), P(cancel), P(syscall), P(syscall_uname),
	{ "err_guest", err_guest }, { "err_invalid", err_invalid },
	{ "err_protocol", err_protocol }, { "err_timeout", err_timeout },
	{ "stream_stdout", stream_stdout }, { "stream_stderr", stream_stderr },
	{ "stream_tail", stream_tail }, { "stream_data", stream_data },
	{ "eof_stdout", eof_stdout }, { "eof_tail", eof_tail }, { "eof_data", eof_data },
};

static char golden_dir[PATH_MAX];  /* root is at most 2 KiB */

static int setup(void **state)
{
	(void)state;
	snprintf(golden_dir, sizeof(golden_dir), "%s/tests/golden/proto/v%d", src_root(),
		 PROTOCOL_VERSION);
	return 0;
}

static int read_all(const char *p, uint8_t **data, size_t *len)
{
	FILE *f = fopen(p, "rb");
	long n;

	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	*data = malloc((size_t)n + 1);
	*len = fread(*data, 1, (size_t)n, f);
	fclose(f);
	return 0;
}

static void test_encodings_match_goldens(void **state)
{
	bool update = getenv("PROVIUM_UPDATE_GOLDEN") && *getenv("PROVIUM_UPDATE_GOLDEN") == '1';
	int bad = 0, written = 0;

	(void)state;
	if (update) {
		/* mkdir -p */
		for (char *c = golden_dir + 1; *c; c++) {
			if (*c != '/')
				continue;
			*c = 0;
			mkdir(golden_dir, 0755);
			*c = '/';
		}
		mkdir(golden_dir, 0755);
	}
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		char p[PATH_MAX + 64];
		struct pv_fbuf b;
		uint8_t *g = NULL;
		size_t glen = 0;

		snprintf(p, sizeof(p), "%s/%s.bin", golden_dir, pins[i].name);
		pv_fbuf_init(&b);
		pins[i].fn(&b);
		assert_int_equal(pv_fbuf_finish(&b), 0);
		if (read_all(p, &g, &glen) < 0) {
			if (update) {
				FILE *f = fopen(p, "wb");

				assert_non_null(f);
				assert_int_equal(fwrite(b.sb.data, 1, b.sb.size, f), b.sb.size);
				fclose(f);
				written++;
			} else {
				fprintf(stderr, "# missing golden %s (PROVIUM_UPDATE_GOLDEN=1 writes it)\n", p);
				bad++;
			}
		} else if (glen != b.sb.size || memcmp(g, b.sb.data, glen) != 0) {
			fprintf(stderr,
				"# %s: the encoding changed while PROTOCOL_VERSION is still %d: bump it "
				"(docs/protocol.md) and re-pin%s\n",
				pins[i].name, PROTOCOL_VERSION,
				update ? "; refusing to overwrite a golden of the same version" : "");
			bad++;
		}
		free(g);
		pv_fbuf_destroy(&b);
	}
	if (written)
		fprintf(stderr, "# wrote %d goldens under %s\n", written, golden_dir);
	assert_int_equal(bad, 0);
}

/* Every op name in agent/proto.h has a pinned request. */
static void test_every_op_is_pinned(void **state)
{
	char p[PATH_MAX + 32], line[256];
	FILE *f;
	int ops = 0, missing = 0;

	(void)state;
	snprintf(p, sizeof(p), "%s/agent/proto.h", src_root());
	f = fopen(p, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char name[64], val[64];
		bool found = false;

		if (sscanf(line, "#define PV_OP_%63s \"%63[^\"]\"", name, val) != 2)
			continue;
		ops++;
		for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
			struct pv_fbuf b;
			struct pv_frame fr;
			char err[128];

			if (strncmp(pins[i].name, "req_", 4))
				continue;
			pv_fbuf_init(&b);
			pins[i].fn(&b);
			if (pv_frame_decode(b.sb.data + 4, b.sb.size - 4, &fr, err, sizeof(err)) == 0 &&
			    !strcmp(fr.op, val))
				found = true;
			pv_frame_destroy(&fr);
			pv_fbuf_destroy(&b);
		}
		if (!found) {
			fprintf(stderr, "# op %s has no pinned request\n", val);
			missing++;
		}
	}
	fclose(f);
	assert_true(ops >= 37);
	assert_int_equal(missing, 0);
}

/* The goldens decode to what they claim: a reader sees the right kinds. */
static void test_goldens_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		struct pv_frame_reader r;
		struct pv_frame f;
		struct pv_fbuf b;
		enum pv_frame_kind want;
		const char *n = pins[i].name;

		want = !strncmp(n, "req_", 4) ? PV_FRAME_REQUEST
		     : !strncmp(n, "hello", 5) ? PV_FRAME_HELLO
		     : (!strncmp(n, "rep_", 4) || !strncmp(n, "err_", 4)) ? PV_FRAME_REPLY
		     : PV_FRAME_STREAM;
		pv_fbuf_init(&b);
		pins[i].fn(&b);
		pv_fbuf_finish(&b);
		pv_frame_reader_init(&r, 0);
		assert_int_equal(pv_frame_reader_feed(&r, b.sb.data, b.sb.size), 0);
		assert_int_equal(pv_frame_reader_next(&r, &f), 1);
		assert_int_equal(f.kind, want);
		assert_int_equal(pv_frame_reader_pending(&r), 0);
		pv_frame_destroy(&f);
		pv_frame_reader_free(&r);
		pv_fbuf_destroy(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encodings_match_goldens),
		cmocka_unit_test(test_every_op_is_pinned),
		cmocka_unit_test(test_goldens_decode),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
