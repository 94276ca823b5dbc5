/* test_agent_shapes.c — ties the real agent to the pinned protocol: for every reply
 * kind in tests/golden/proto/v<PROTOCOL_VERSION>/, the frame the agent actually
 * sends has the same shape (same keys, same msgpack types, recursively) as the
 * golden. So renaming or retyping a result field in the agent fails here even though
 * test_proto_pin only encodes the documented instances. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>

#include "tests/unit/agent_client.h"
#include "tests/unit/src_root.h"

static struct ac A;
static char dir[] = "/tmp/provium-agent-shapes.XXXXXX";

/* Loads a golden frame. */
static struct pv_frame *golden(const char *name)
{
	char p[PATH_MAX];
	uint8_t buf[4096];
	struct pv_frame *f = calloc(1, sizeof(*f));
	char err[160];
	size_t n;
	FILE *fp;

	snprintf(p, sizeof(p), "%s/tests/golden/proto/v%d/%s.bin", src_root(), PROTOCOL_VERSION,
		 name);
	fp = fopen(p, "rb");
	if (!fp)
		fail_msg("missing golden %s", p);
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_true(n > 4);
	assert_int_equal(pv_frame_decode(buf + 4, n - 4, f, err, sizeof(err)), 0);
	return f;
}

static int type_class(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return 1;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return 2;
	default:
		return 10 + (int)o->type;
	}
}

/* Same keys and types, recursively; arrays compare their first elements. */
static bool same_shape(const msgpack_object *g, const msgpack_object *a, char *why,
		       size_t whylen, const char *where)
{
	if (type_class(g) != type_class(a)) {
		snprintf(why, whylen, "%s: type %d, golden %d", where, a->type, g->type);
		return false;
	}
	if (g->type == MSGPACK_OBJECT_MAP) {
		if (g->via.map.size != a->via.map.size) {
			snprintf(why, whylen, "%s: %u keys, golden %u", where, a->via.map.size,
				 g->via.map.size);
			return false;
		}
		for (uint32_t i = 0; i < g->via.map.size; i++) {
			const msgpack_object *k = &g->via.map.ptr[i].key;
			char key[64], sub[256];
			const msgpack_object *av;

			if (pv_obj_strcpy(k, key, sizeof(key)) < 0)
				return false;
			av = pv_map_get(a, key);
			snprintf(sub, sizeof(sub), "%s.%s", where, key);
			if (!av) {
				snprintf(why, whylen, "%s missing", sub);
				return false;
			}
			if (!same_shape(&g->via.map.ptr[i].val, av, why, whylen, sub))
				return false;
		}
	}
	if (g->type == MSGPACK_OBJECT_ARRAY && g->via.array.size && a->via.array.size)
		return same_shape(&g->via.array.ptr[0], &a->via.array.ptr[0], why, whylen, where);
	return true;
}

static void check(const char *golden_name, const struct pv_frame *actual)
{
	struct pv_frame *g = golden(golden_name);
	char why[300] = "";

	assert_non_null(actual);
	if (!same_shape(g->root, actual->root, why, sizeof(why), golden_name))
		fail_msg("agent frame differs from golden %s: %s", golden_name, why);
	pv_frame_destroy(g);
	free(g);
}

/* Calls op and checks the reply against a golden. */
static struct ac_rep call_check(const char *golden_name, const char *op, const char *fmt, ...)
{
	struct ac_rep r = { 0 };
	uint64_t id;
	va_list ap;

	va_start(ap, fmt);
	ac_pack_args(ac_req(&A, op, &id), fmt, ap);
	va_end(ap);
	assert_int_equal(ac_send(&A), 0);
	assert_int_equal(ac_wait(&A, id, &r, 10000), 0);
	check(golden_name, r.f);
	return r;
}

#define CHECK(...) do { struct ac_rep r_ = call_check(__VA_ARGS__); ac_rep_free(&r_); } while (0)

static void test_hello_shape(void **state)
{
	(void)state;
	check("hello_agent", A.hello);
}

static void test_basic_reply_shapes(void **state)
{
	const char *argv_getpid[] = { NULL };
	const char *argv_uname[] = { NULL };

	(void)state;
	CHECK("rep_ping", PV_OP_PING, "");
	CHECK("rep_uname", PV_OP_UNAME, "");
	CHECK("rep_clock_get", PV_OP_CLOCK_GET, "clock=s", "monotonic");
	CHECK("rep_empty", PV_OP_SLEEP, "ns=i", 1000);
	CHECK("rep_syscall", PV_OP_SYSCALL, "name=s args=a", "getpid", argv_getpid);
	CHECK("rep_syscall_uname", PV_OP_SYSCALL, "name=s args=a", "uname", argv_uname);
	CHECK("err_invalid", "no_such_op", "");
	CHECK("err_invalid", PV_OP_SYSCALL, "name=s", "no_such_syscall");
	CHECK("err_guest", PV_OP_STAT, "path=s", "/no/such/path");
}

static void test_process_shapes(void **state)
{
	const char *cat[] = { "cat", NULL };
	struct ac_rep r;
	struct pv_frame *f;
	int64_t pid;

	(void)state;
	CHECK("rep_exec", PV_OP_EXEC, "cmd=s", "echo hi");
	r = call_check("rep_spawn", PV_OP_SPAWN, "argv=a", cat);
	pid = ac_res_int(&r, "pid");
	CHECK("rep_proc_write", PV_OP_PROC_WRITE, "pid=I data=s", (long long)pid, "hi");
	CHECK("rep_proc_status", PV_OP_PROC_STATUS, "pid=I", (long long)pid);
	CHECK("err_timeout", PV_OP_PROC_WAIT, "pid=I timeout_ns=i", (long long)pid, 1000);
	CHECK("rep_empty", PV_OP_PROC_CLOSE_STDIN, "pid=I", (long long)pid);
	f = ac_next_for(&A, r.f->id, 5000);
	check("stream_stdout", f);
	ac_frame_free(f);
	f = ac_next_for(&A, r.f->id, 5000);
	check(f->eof ? "eof_stdout" : "stream_stdout", f);
	ac_frame_free(f);
	CHECK("rep_proc_status", PV_OP_PROC_WAIT, "pid=I", (long long)pid);
	CHECK("rep_empty", PV_OP_PROC_KILL, "pid=I", (long long)pid);
	/* it is gone: signalling it is a guest error (ESRCH) */
	CHECK("err_guest", PV_OP_PROC_SIGNAL, "pid=I signal=i", (long long)pid, 0);
	ac_rep_free(&r);
}

static void test_file_shapes(void **state)
{
	char p[128], q[128];
	struct ac_rep r;
	int64_t fd;
	uint64_t id;
	struct pv_frame *f;

	(void)state;
	snprintf(p, sizeof(p), "%s/f", dir);
	snprintf(q, sizeof(q), "%s/g", dir);
	CHECK("rep_write_file", PV_OP_WRITE_FILE, "path=s data=s", p, "hello");
	CHECK("rep_read_file", PV_OP_READ_FILE, "path=s", p);
	CHECK("rep_stat", PV_OP_STAT, "path=s", p);
	CHECK("rep_exists", PV_OP_EXISTS, "path=s", p);
	CHECK("rep_ls", PV_OP_LS, "path=s", dir);
	CHECK("rep_empty", PV_OP_CHMOD, "path=s mode=i", p, 0600);
	CHECK("rep_empty", PV_OP_TRUNCATE, "path=s size=i", p, 3);
	CHECK("rep_empty", PV_OP_RENAME, "from=s to=s", p, q);
	CHECK("rep_empty", PV_OP_MKDIR, "path=s", p);
	CHECK("rep_empty", PV_OP_RM, "path=s", p);
	r = call_check("rep_open", PV_OP_OPEN, "path=s mode=s", q, "r+");
	fd = ac_res_int(&r, "fd");
	ac_rep_free(&r);
	CHECK("rep_read", PV_OP_READ, "fd=I n=i", (long long)fd, 2);
	CHECK("rep_write", PV_OP_WRITE, "fd=I data=s", (long long)fd, "zz");
	CHECK("rep_seek", PV_OP_SEEK, "fd=I whence=s offset=i", (long long)fd, "set", 0);
	CHECK("rep_seek", PV_OP_TELL, "fd=I", (long long)fd);
	CHECK("rep_empty", PV_OP_FSYNC, "fd=I", (long long)fd);
	r = call_check("rep_empty", PV_OP_TAIL_FD, "fd=I poll_ms=i", (long long)fd, 10);
	id = r.f->id;
	ac_rep_free(&r);
	f = ac_next_for(&A, id, 5000);
	check("stream_tail", f);
	ac_frame_free(f);
	CHECK("rep_cancel", PV_OP_CANCEL, "target=I", (long long)id);
	f = ac_next_for(&A, id, 5000);
	check("eof_tail", f);
	ac_frame_free(f);
	CHECK("rep_empty", PV_OP_CLOSE, "fd=I", (long long)fd);
	r = call_check("rep_empty", PV_OP_TAIL, "path=s", q);
	id = r.f->id;
	ac_rep_free(&r);
	f = ac_next_for(&A, id, 5000);
	check("stream_tail", f);
	ac_frame_free(f);
	CHECK("rep_cancel", PV_OP_CANCEL, "target=I", (long long)id);
	ac_frame_free(ac_next_for(&A, id, 5000));
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	return ac_start(&A, NULL) == 0 && ac_hello(&A) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	ac_stop(&A);
	return ac_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_shape),
		cmocka_unit_test(test_basic_reply_shapes),
		cmocka_unit_test(test_process_shapes),
		cmocka_unit_test(test_file_shapes),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
