/* test_agent_fuzz.c — type confusion against the running agent: thousands of
 * well-framed requests for every (harmless) op whose args have random types and
 * values. Every request must get exactly a reply (ok or an error), the agent must
 * stay up and answer a ping afterwards. Ops that could hurt the host (poweroff,
 * reboot, clock_set, sethostname, kill/mount syscalls) are left out; paths stay
 * inside a temp dir that is also the agent's cwd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>

#include "tests/unit/agent_client.h"

static char dir[] = "/tmp/provium-agent-fuzz.XXXXXX";
static unsigned seed = 424242;
static struct ac A;

static uint32_t rnd(uint32_t n)
{
	return n ? (uint32_t)rand_r(&seed) % n : 0;
}

static const char *safe_str(void)
{
	static char p[4][160];
	static int k;
	static const char *const words[] = { "", "TERM", "end", "start", "set", "cur", "r+",
					     "w", "monotonic", "nobody", "true", "9", "data" };

	if (rnd(2)) {
		k = (k + 1) % 4;
		snprintf(p[k], sizeof(p[k]), "%s/%s", dir, rnd(2) ? "f" : "d/e");
		return p[k];
	}
	return words[rnd(sizeof(words) / sizeof(words[0]))];
}

static void pack_random(struct pv_fbuf *b, int depth, bool small_ints)
{
	switch (rnd(depth > 1 ? 6 : 8)) {
	case 0: pv_pack_nil(b); break;
	case 1: pv_pack_bool(b, rnd(2)); break;
	case 2: {
		static const int64_t ints[] = { 0, 1, -1, 3, 7, 511, 4096, INT32_MAX, INT32_MIN,
						INT64_MAX, INT64_MIN, 1 << 20, 65534 };
		int64_t v = ints[rnd(sizeof(ints) / sizeof(ints[0]))];

		if (small_ints && (v > 1000000 || v < -1))
			v = 1000;
		pv_pack_int(b, v);
		break;
	}
	case 3: pv_pack_str(b, safe_str()); break;
	case 4: pv_pack_bin(b, "\0\1\2xyz", rnd(7)); break;
	case 5: pv_pack_double(b, rnd(2) ? 2.0 : 0.5); break;
	case 6: {
		uint32_t n = rnd(4);

		pv_pack_array(b, n);
		for (uint32_t i = 0; i < n; i++)
			pack_random(b, depth + 1, small_ints);
		break;
	}
	default: {
		uint32_t n = rnd(3);

		pv_pack_map(b, n);
		for (uint32_t i = 0; i < n; i++) {
			if (rnd(4))
				pv_pack_str(b, safe_str());
			else
				pv_pack_int(b, 5);
			pack_random(b, depth + 1, small_ints);
		}
	}
	}
}

struct fop {
	const char *op;
	const char *keys[9];
};

static const struct fop fops[] = {
	{ PV_OP_PING, { NULL } },
	{ PV_OP_SLEEP, { "ns" } },
	{ PV_OP_UNAME, { NULL } },
	{ PV_OP_CLOCK_GET, { "clock" } },
	{ PV_OP_EXEC, { "cmd", "argv", "env", "clear_env", "cwd", "stdin", "user", "uid", "timeout_ns" } },
	{ PV_OP_SPAWN, { "cmd", "argv", "env", "cwd", "stdin", "gid" } },
	{ PV_OP_PROC_WRITE, { "pid", "data" } },
	{ PV_OP_PROC_CLOSE_STDIN, { "pid" } },
	{ PV_OP_PROC_SIGNAL, { "pid", "signal", "group" } },
	{ PV_OP_PROC_KILL, { "pid" } },
	{ PV_OP_PROC_WAIT, { "pid", "timeout_ns" } },
	{ PV_OP_PROC_STATUS, { "pid" } },
	{ PV_OP_READ_FILE, { "path" } },
	{ PV_OP_WRITE_FILE, { "path", "data", "mode", "append" } },
	{ PV_OP_OPEN, { "path", "mode", "perm" } },
	{ PV_OP_READ, { "fd", "n" } },
	{ PV_OP_WRITE, { "fd", "data" } },
	{ PV_OP_SEEK, { "fd", "whence", "offset" } },
	{ PV_OP_TELL, { "fd" } },
	{ PV_OP_FSYNC, { "fd" } },
	{ PV_OP_CLOSE, { "fd" } },
	{ PV_OP_STAT, { "path", "nofollow" } },
	{ PV_OP_EXISTS, { "path" } },
	{ PV_OP_LS, { "path" } },
	{ PV_OP_MKDIR, { "path", "mode", "parents" } },
	{ PV_OP_RM, { "path", "recursive", "force" } },
	{ PV_OP_RENAME, { "from", "to" } },
	{ PV_OP_CHMOD, { "path", "mode" } },
	{ PV_OP_TRUNCATE, { "path", "size" } },
	{ PV_OP_TAIL, { "path", "from", "poll_ms" } },
	{ PV_OP_TAIL_FD, { "fd", "poll_ms" } },
	{ PV_OP_CANCEL, { "target" } },
	{ PV_OP_SYSCALL, { "name", "args" } },
};

static const char *const syscalls[] = { "getpid", "uname", "sync", "fsync", "unlink",
					"rename", "truncate", "chmod", "nosuch", "" };

/* Waits for the reply to id, dropping every other frame (tails keep talking). */
static struct pv_frame *reply_to(uint64_t id)
{
	uint64_t deadline = ac_now_ns() + 20000000000ull;

	while (ac_now_ns() < deadline) {
		struct pv_frame *f = ac_read_frame(&A, 1000);

		if (!f) {
			if (A.last_rc == -EPIPE)
				return NULL;
			continue;
		}
		if (f->kind == PV_FRAME_REPLY && f->id == id)
			return f;
		ac_frame_free(f);
	}
	return NULL;
}

static void test_random_args_every_op(void **state)
{
	int oks = 0, errs = 0;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		const struct fop *o = &fops[rnd(sizeof(fops) / sizeof(fops[0]))];
		struct pv_fbuf *b;
		struct pv_frame *f;
		uint32_t nkeys = 0, n = 0;
		uint64_t id;

		while (nkeys < 9 && o->keys[nkeys])
			nkeys++;
		b = ac_req(&A, o->op, &id);
		if (rnd(20) == 0) {
			pv_pack_nil(b); /* args nil: "no args" */
		} else {
			n = nkeys ? rnd(nkeys + 1) : 0;
			pv_pack_map(b, n + (rnd(8) == 0));
			for (uint32_t i = 0; i < n; i++) {
				const char *k = o->keys[rnd(nkeys)];
				bool risky_cmd = !strcmp(k, "cmd") || !strcmp(k, "argv");

				pv_pack_str(b, k);
				if (!strcmp(o->op, PV_OP_SYSCALL) && !strcmp(k, "name"))
					pv_pack_str(b, syscalls[rnd(sizeof(syscalls) / sizeof(syscalls[0]))]);
				else if (risky_cmd && rnd(2))
					/* only harmless commands run: `true` or non-strings */
					!strcmp(k, "cmd") ? pv_pack_str(b, "true")
							  : (pv_pack_array(b, 1), pv_pack_str(b, "true"));
				else if (risky_cmd)
					pv_pack_int(b, 5);
				else
					pack_random(b, 0, !strcmp(k, "ns") || !strcmp(k, "timeout_ns") ||
							  !strcmp(k, "size") || !strcmp(k, "poll_ms") ||
							  !strcmp(k, "n"));
			}
		}
		/* the map may announce one extra entry: an unknown key, to be ignored */
		{
			struct pv_frame probe;
			char err[160];

			pv_fbuf_finish(b);
			if (pv_frame_decode(b->sb.data + 4, b->sb.size - 4, &probe, err, sizeof(err)) < 0) {
				pv_pack_str(b, "zz_unknown");
				pv_pack_int(b, 1);
			}
			pv_frame_destroy(&probe);
		}
		assert_int_equal(ac_send(&A), 0);
		f = reply_to(id);
		if (!f)
			fail_msg("no reply to %s (iteration %d)", o->op, iter);
		if (f->ok)
			oks++;
		else
			errs++;
		ac_frame_free(f);
	}
	fprintf(stderr, "# %d ok replies, %d error replies\n", oks, errs);
	assert_true(oks > 100 && errs > 100);
	struct ac_rep r;
	assert_int_equal(ac_callf(&A, &r, PV_OP_PING, ""), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(waitpid(A.pid, NULL, WNOHANG), 0);
}

static int setup(void **state)
{
	char agent[PATH_MAX], *bdir;

	(void)state;
	if (getenv("PROVIUM_FUZZ_SEED")) /* explore other sequences by hand */
		seed = (unsigned)atoi(getenv("PROVIUM_FUZZ_SEED"));
	if (!realpath(ac_agent_path(), agent) || !mkdtemp(dir))
		return -1;
	bdir = strdup(agent);
	*strrchr(bdir, '/') = 0;
	setenv("PROVIUM_BUILD", bdir, 1);
	free(bdir);
	/* the agent inherits this cwd: relative paths land in the temp dir */
	if (chdir(dir) < 0 || ac_start(&A, NULL) < 0 || ac_hello(&A) < 0)
		return -1;
	return 0;
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
		cmocka_unit_test(test_random_args_every_op),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
