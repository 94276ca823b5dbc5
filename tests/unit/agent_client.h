/* agent_client.h — a small blocking client for build/provium-agent used by the agent
 * tests and the agent benchmark: start the agent (over an inherited socketpair,
 * optionally in new namespaces or as another uid) or connect to its unix socket,
 * send requests built with agent/proto.h, and collect stream frames and replies by
 * id. Header-only because every unit test is one source file. */
#ifndef PROVIUM_TEST_AGENT_CLIENT_H
#define PROVIUM_TEST_AGENT_CLIENT_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/proto.h"

struct ac_buf {
	uint8_t *d;
	size_t len, cap;
};

struct ac {
	int fd;
	pid_t pid;                    /* the agent (or its namespace parent), or 0 */
	struct pv_frame_reader rd;
	struct pv_fbuf fb;
	uint64_t next_id;
	struct pv_frame *q[256];      /* frames read while waiting for another id */
	int nq;
	struct pv_frame *hello;       /* the agent's hello */
	int last_rc;                  /* reader error that ended the stream */
};

/* What ac_call collected: the reply and the stream frames of its id. */
struct ac_rep {
	struct pv_frame *f;
	struct ac_buf out, err, data, tail;
	bool eof_out, eof_err, eof_tail;
};

static inline uint64_t ac_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void ac_buf_add(struct ac_buf *b, const void *d, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->d = realloc(b->d, b->cap);
		if (!b->d)
			abort();
	}
	if (n)
		memcpy(b->d + b->len, d, n);
	b->len += n;
	b->d[b->len] = 0;
}

static inline void ac_buf_free(struct ac_buf *b)
{
	free(b->d);
	memset(b, 0, sizeof(*b));
}

static inline const char *ac_agent_path(void)
{
	static char path[4096];
	const char *b = getenv("PROVIUM_BUILD");

	snprintf(path, sizeof(path), "%s/provium-agent", b ? b : "build");
	return path;
}

/* How to start an agent. */
struct ac_opts {
	int unshare_flags;            /* CLONE_NEWUTS, CLONE_NEWNS, CLONE_NEWPID... */
	uid_t uid;                    /* run as this uid/gid when set_uid */
	bool set_uid;
	bool allow_reboot;
	const char *chroot_dir;       /* chroot here first; the agent is /bin/provium-agent */
};

static inline void ac_init(struct ac *a, int fd, pid_t pid)
{
	memset(a, 0, sizeof(*a));
	a->fd = fd;
	a->pid = pid;
	a->next_id = 1;
	pv_frame_reader_init(&a->rd, 0);
	pv_fbuf_init(&a->fb);
}

/* Starts the agent with --fd 3 on one end of a socketpair. 0 or -errno. */
static inline int ac_start(struct ac *a, const struct ac_opts *o)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		const char *argv[5] = { ac_agent_path(), "--fd", "3", NULL, NULL };

		if (o && o->allow_reboot)
			argv[3] = "--allow-reboot";
		if (o && o->unshare_flags) {
			if (unshare(o->unshare_flags) < 0)
				_exit(120);
			if ((o->unshare_flags & CLONE_NEWNS) &&
			    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
				_exit(121);
			if (o->unshare_flags & CLONE_NEWPID) {
				/* The agent becomes PID 1 of the new namespace; we mirror its
				 * end as our exit status. */
				pid_t init = fork();
				int st;

				if (init < 0)
					_exit(122);
				if (init > 0) {
					close(sv[1]);
					while (waitpid(init, &st, 0) < 0 && errno == EINTR)
						;
					_exit(WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
				}
			}
		}
		if (o && o->chroot_dir) {
			if (chroot(o->chroot_dir) < 0 || chdir("/") < 0)
				_exit(126);
			argv[0] = "/bin/provium-agent";
		}
		if (o && o->set_uid && (setresgid(o->uid, o->uid, o->uid) < 0 ||
					setresuid(o->uid, o->uid, o->uid) < 0))
			_exit(123);
		if (dup2(sv[1], 3) < 0)
			_exit(124);
		execv(argv[0], (char **)argv);
		_exit(125);
	}
	close(sv[1]);
	ac_init(a, sv[0], pid);
	return 0;
}

static inline int ac_connect_unix(struct ac *a, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	size_t n = strlen(path);

	if (n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* The listener may still be starting. */
	for (int i = 0; i < 500; i++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			ac_init(a, fd, 0);
			return 0;
		}
		usleep(10000);
	}
	close(fd);
	return -errno;
}

static inline int ac_send_raw(struct ac *a, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(a->fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the next frame (any id), waiting up to timeout_ms. NULL on timeout/EOF. */
static inline struct pv_frame *ac_read_frame(struct ac *a, int timeout_ms)
{
	uint64_t deadline = ac_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		struct pv_frame *f = calloc(1, sizeof(*f));
		struct pollfd pf = { .fd = a->fd, .events = POLLIN };
		int64_t left;
		size_t room;
		ssize_t n;
		void *p;
		int rc = pv_frame_reader_next(&a->rd, f);

		if (rc == 1)
			return f;
		free(f);
		if (rc < 0) {
			a->last_rc = rc;
			if (rc == -EMSGSIZE)
				return NULL;
			continue;
		}
		left = (int64_t)(deadline - ac_now_ns()) / 1000000;
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return NULL;
		p = pv_frame_reader_reserve(&a->rd, 65536, &room);
		n = recv(a->fd, p, room, 0);
		if (n <= 0) {
			a->last_rc = -EPIPE;
			return NULL;
		}
		pv_frame_reader_commit(&a->rd, (size_t)n);
	}
}

static inline void ac_frame_free(struct pv_frame *f)
{
	if (f) {
		pv_frame_destroy(f);
		free(f);
	}
}

/* The next frame carrying id (queued frames first). */
static inline struct pv_frame *ac_next_for(struct ac *a, uint64_t id, int timeout_ms)
{
	uint64_t deadline = ac_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (int i = 0; i < a->nq; i++) {
		if (a->q[i]->has_id && a->q[i]->id == id) {
			struct pv_frame *f = a->q[i];

			memmove(&a->q[i], &a->q[i + 1], (size_t)(a->nq - i - 1) * sizeof(a->q[0]));
			a->nq--;
			return f;
		}
	}
	for (;;) {
		int64_t left = (int64_t)(deadline - ac_now_ns()) / 1000000;
		struct pv_frame *f;

		if (left <= 0)
			return NULL;
		f = ac_read_frame(a, (int)left);
		if (!f)
			return NULL;
		if (f->has_id && f->id == id)
			return f;
		if (a->nq == (int)(sizeof(a->q) / sizeof(a->q[0])))
			abort();
		a->q[a->nq++] = f;
	}
}

/* Sends the host hello (version v) and reads the agent's hello. 0 or -errno. */
static inline int ac_hello_v(struct ac *a, int64_t v)
{
	struct pv_fbuf b;
	int rc;

	pv_fbuf_init(&b);
	pv_pack_map(&b, 3);
	pv_pack_kv_str(&b, "hello", PV_ROLE_HOST);
	pv_pack_kv_int(&b, "v", v);
	pv_pack_str(&b, "features");
	pv_pack_array(&b, 0);
	pv_fbuf_finish(&b);
	rc = ac_send_raw(a, b.sb.data, b.sb.size);
	pv_fbuf_destroy(&b);
	if (rc < 0)
		return rc;
	a->hello = ac_read_frame(a, 5000);
	return a->hello && a->hello->kind == PV_FRAME_HELLO ? 0 : -EPROTO;
}

static inline int ac_hello(struct ac *a)
{
	return ac_hello_v(a, PROTOCOL_VERSION);
}

/* Starts a request: pack exactly one args map into the returned buffer, then
 * ac_send(). *id gets the request id. */
static inline struct pv_fbuf *ac_req(struct ac *a, const char *op, uint64_t *id)
{
	*id = a->next_id++;
	pv_fbuf_reset(&a->fb);
	pv_enc_request(&a->fb, *id, op);
	return &a->fb;
}

static inline int ac_send(struct ac *a)
{
	int rc = pv_fbuf_finish(&a->fb);

	return rc < 0 ? rc : ac_send_raw(a, a->fb.sb.data, a->fb.sb.size);
}

static inline void ac_rep_free(struct ac_rep *r)
{
	ac_frame_free(r->f);
	ac_buf_free(&r->out);
	ac_buf_free(&r->err);
	ac_buf_free(&r->data);
	ac_buf_free(&r->tail);
	memset(r, 0, sizeof(*r));
}

/* Adds a stream frame to rep. */
static inline void ac_rep_stream(struct ac_rep *rep, const struct pv_frame *f)
{
	struct ac_buf *b = NULL;
	bool *eof = NULL;

	if (!strcmp(f->stream, PV_STREAM_STDOUT))
		b = &rep->out, eof = &rep->eof_out;
	else if (!strcmp(f->stream, PV_STREAM_STDERR))
		b = &rep->err, eof = &rep->eof_err;
	else if (!strcmp(f->stream, PV_STREAM_TAIL))
		b = &rep->tail, eof = &rep->eof_tail;
	else
		b = &rep->data;
	if (f->eof) {
		if (eof)
			*eof = true;
	} else {
		ac_buf_add(b, f->data, f->data_len);
	}
}

/* Waits for the reply to id, collecting its stream frames. 0, or -ETIMEDOUT. */
static inline int ac_wait(struct ac *a, uint64_t id, struct ac_rep *rep, int timeout_ms)
{
	uint64_t deadline = ac_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		int64_t left = (int64_t)(deadline - ac_now_ns()) / 1000000;
		struct pv_frame *f = left > 0 ? ac_next_for(a, id, (int)left) : NULL;

		if (!f)
			return -ETIMEDOUT;
		if (f->kind == PV_FRAME_REPLY) {
			rep->f = f;
			return 0;
		}
		if (f->kind == PV_FRAME_STREAM)
			ac_rep_stream(rep, f);
		ac_frame_free(f);
	}
}

/* Collects stream frames of id until the named eofs arrived. */
static inline int ac_collect(struct ac *a, uint64_t id, struct ac_rep *rep,
			     bool want_out_err, bool want_tail, int timeout_ms)
{
	uint64_t deadline = ac_now_ns() + (uint64_t)timeout_ms * 1000000u;

	while ((want_out_err && (!rep->eof_out || !rep->eof_err)) ||
	       (want_tail && !rep->eof_tail)) {
		int64_t left = (int64_t)(deadline - ac_now_ns()) / 1000000;
		struct pv_frame *f = left > 0 ? ac_next_for(a, id, (int)left) : NULL;

		if (!f)
			return -ETIMEDOUT;
		if (f->kind == PV_FRAME_STREAM)
			ac_rep_stream(rep, f);
		ac_frame_free(f);
	}
	return 0;
}

/* Result field accessors (abort the test on absence via the caller's asserts). */
static inline const msgpack_object *ac_res(const struct ac_rep *r, const char *key)
{
	return r->f && r->f->ok ? pv_map_get(r->f->result, key) : NULL;
}

static inline int64_t ac_res_int(const struct ac_rep *r, const char *key)
{
	int64_t v = -999999;

	if (r->f && r->f->ok)
		pv_map_int(r->f->result, key, &v);
	return v;
}

/* Result field as a malloc'd, NUL-terminated string (bin or str); "" if absent. */
static inline char *ac_res_str(const struct ac_rep *r, const char *key)
{
	char *s = r->f && r->f->ok ? pv_map_strdup(r->f->result, key) : NULL;

	return s ? s : strdup("");
}

static inline void ac_close(struct ac *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	for (int i = 0; i < a->nq; i++)
		ac_frame_free(a->q[i]);
	a->nq = 0;
	ac_frame_free(a->hello);
	a->hello = NULL;
	pv_frame_reader_free(&a->rd);
	pv_fbuf_destroy(&a->fb);
}

/* Closes the connection and waits (up to 10 s, then SIGKILL) for a started agent;
 * returns its wait status. */
static inline int ac_stop(struct ac *a)
{
	int st = -1;
	pid_t pid = a->pid;

	ac_close(a);
	for (int i = 0; pid > 0 && i < 1000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		usleep(10000);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return -1;
	}
	return st;
}

/* Starts an agent listening on the unix socket sock_path (connect with
 * ac_connect_unix). Its pid, or -1. */
static inline pid_t ac_spawn_unix(const char *sock_path)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl(ac_agent_path(), ac_agent_path(), "--unix", sock_path, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Ends an agent from ac_spawn_unix (SIGTERM) and reaps it. */
static inline void ac_kill_unix(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* An agent listening on DIR/agent.sock in a fresh temp dir /tmp/provium-TAG.XXXXXX:
 * the group fixture of the native agent tests (connect with ac_connect_unix(a,
 * u->sock)). */
struct ac_unix_agent {
	char dir[96];
	char sock[128];
	pid_t pid;
};

static inline int ac_unix_agent_up(struct ac_unix_agent *u, const char *tag)
{
	if (access(ac_agent_path(), X_OK) < 0) {
		fprintf(stderr, "# %s missing: run `make build/provium-agent`\n", ac_agent_path());
		return -1;
	}
	snprintf(u->dir, sizeof(u->dir), "/tmp/provium-%s.XXXXXX", tag);
	if (!mkdtemp(u->dir))
		return -1;
	snprintf(u->sock, sizeof(u->sock), "%s/agent.sock", u->dir);
	u->pid = ac_spawn_unix(u->sock);
	return u->pid > 0 ? 0 : -1;
}

static inline void ac_unix_agent_down(struct ac_unix_agent *u)
{
	if (u->pid > 0)
		ac_kill_unix(u->pid);
	unlink(u->sock);
	rmdir(u->dir);
}

/* Removes a test's temp dir and all below it: 0, or -1. */
static inline int ac_rm_rf(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* dir/name in one of four rotating static buffers (so a call may take two). */
static inline char *ac_path_in(const char *dir, const char *name)
{
	static char p[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

#ifdef CMOCKA_H_
/* cmocka checks, for tests that include <cmocka.h> first. */

/* r is an error reply with this errno and code (NULL: no code). */
static inline void ac_assert_err(const struct ac_rep *r, int err, const char *code)
{
	assert_non_null(r->f);
	assert_false(r->f->ok);
	assert_int_equal(r->f->err, err);
	assert_string_equal(r->f->code, code ? code : "");
}

/* Writes s to the host file p (replacing it). */
static inline void ac_write_host(const char *p, const char *s)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}
#endif

#include <stdarg.h>

/* Packs an args map from a format like "cmd=s timeout_ns=I": s const char*,
 * i int, I long long, b int (bool), y (const void*, size_t) bytes,
 * a NULL-terminated const char** array, m NULL-terminated name,value,... map. */
static inline void ac_pack_args(struct pv_fbuf *b, const char *fmt, va_list ap)
{
	uint32_t n = 0;

	for (const char *p = fmt; *p; p++)
		n += *p == '=';
	pv_pack_map(b, n);
	while (*fmt) {
		const char *eq = strchr(fmt, '=');
		char t = eq[1];

		pv_pack_strn(b, fmt, (size_t)(eq - fmt));
		switch (t) {
		case 's': pv_pack_str(b, va_arg(ap, const char *)); break;
		case 'i': pv_pack_int(b, va_arg(ap, int)); break;
		case 'I': pv_pack_int(b, va_arg(ap, long long)); break;
		case 'b': pv_pack_bool(b, va_arg(ap, int)); break;
		case 'y': {
			const void *d = va_arg(ap, const void *);
			size_t len = va_arg(ap, size_t);

			pv_pack_bin(b, d, len);
			break;
		}
		case 'a': case 'm': {
			const char **v = va_arg(ap, const char **);
			uint32_t k = 0;

			while (v[k])
				k++;
			if (t == 'a') {
				pv_pack_array(b, k);
			} else {
				pv_pack_map(b, k / 2);
			}
			for (uint32_t i = 0; i < k; i++)
				pv_pack_str(b, v[i]);
			break;
		}
		default: abort();
		}
		fmt = eq + 2;
		while (*fmt == ' ')
			fmt++;
	}
}

/* Sends op with args from fmt; returns the id. */
static inline uint64_t ac_sendf(struct ac *a, const char *op, const char *fmt, ...)
{
	uint64_t id;
	va_list ap;

	va_start(ap, fmt);
	ac_pack_args(ac_req(a, op, &id), fmt, ap);
	va_end(ap);
	if (ac_send(a) < 0)
		return 0;
	return id;
}

/* Sends op and waits (30 s) for its reply into *rep. 0 or -errno. */
static inline int ac_callf(struct ac *a, struct ac_rep *rep, const char *op,
			   const char *fmt, ...)
{
	uint64_t id;
	va_list ap;

	memset(rep, 0, sizeof(*rep));
	va_start(ap, fmt);
	ac_pack_args(ac_req(a, op, &id), fmt, ap);
	va_end(ap);
	if (ac_send(a) < 0)
		return -EPIPE;
	return ac_wait(a, id, rep, 30000);
}

#endif
