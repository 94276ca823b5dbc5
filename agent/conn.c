/* conn.c — one agent connection: the hello handshake, the frame reader loop, op
 * dispatch (inline or on a thread per long op), replies, and teardown that stops
 * everything the connection started. */
#include "agent/agent.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct op ops[] = {
	{ PV_OP_PING, op_ping, false },
	{ PV_OP_SLEEP, op_sleep, true },
	{ PV_OP_UNAME, op_uname, false },
	{ PV_OP_SETHOSTNAME, op_sethostname, false },
	{ PV_OP_CLOCK_GET, op_clock_get, false },
	{ PV_OP_CLOCK_SET, op_clock_set, false },
	{ PV_OP_POWEROFF, op_poweroff, false },
	{ PV_OP_REBOOT, op_reboot, false },
	{ PV_OP_EXEC, op_exec, true },
	{ PV_OP_SPAWN, op_spawn, false },
	{ PV_OP_PROC_WRITE, op_proc_write, false },
	{ PV_OP_PROC_CLOSE_STDIN, op_proc_close_stdin, false },
	{ PV_OP_PROC_SIGNAL, op_proc_signal, false },
	{ PV_OP_PROC_KILL, op_proc_kill, false },
	{ PV_OP_PROC_WAIT, op_proc_wait, true },
	{ PV_OP_PROC_STATUS, op_proc_status, false },
	{ PV_OP_PROC_RESIZE, op_proc_resize, false },
	{ PV_OP_READ_FILE, op_read_file, true },
	{ PV_OP_WRITE_FILE, op_write_file, false },
	{ PV_OP_OPEN, op_open, false },
	{ PV_OP_READ, op_read, false },
	{ PV_OP_WRITE, op_write, false },
	{ PV_OP_SEEK, op_seek, false },
	{ PV_OP_TELL, op_tell, false },
	{ PV_OP_FSYNC, op_fsync, false },
	{ PV_OP_CLOSE, op_close, false },
	{ PV_OP_STAT, op_stat, false },
	{ PV_OP_EXISTS, op_exists, false },
	{ PV_OP_LS, op_ls, false },
	{ PV_OP_MKDIR, op_mkdir, false },
	{ PV_OP_RM, op_rm, false },
	{ PV_OP_RENAME, op_rename, false },
	{ PV_OP_CHMOD, op_chmod, false },
	{ PV_OP_TRUNCATE, op_truncate, false },
	{ PV_OP_TAIL, op_tail, false },
	{ PV_OP_TAIL_FD, op_tail_fd, false },
	{ PV_OP_CANCEL, op_cancel, true },
	{ PV_OP_SYSCALL, op_syscall, false },
};

static const char *const features[] = { "exec", "spawn", "files", "write_stream",
					"fds", "tail", "syscalls", "clock", "pty" };

/* ---- connections ---- */

void conn_get(struct conn *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void conn_put(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	close(c->fd);
	if (c->dead_fd >= 0)
		close(c->dead_fd);
	pthread_mutex_destroy(&c->wlock);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

int conn_send(struct conn *c, struct pv_fbuf *b)
{
	const char *p = b->sb.data;
	size_t left = b->sb.size;
	int rc = pv_fbuf_finish(b);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->wlock);
	if (atomic_load(&c->dead))
		rc = -EPIPE;
	while (!rc && left) {
		ssize_t n = send(c->fd, p, left, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EPIPE;
			atomic_store(&c->dead, true);
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	pthread_mutex_unlock(&c->wlock);
	return rc;
}

int conn_send_stream(struct conn *c, uint64_t id, const char *stream,
		     const void *data, size_t len)
{
	struct pv_fbuf b;
	int rc;

	pv_fbuf_init(&b);
	pv_enc_stream(&b, id, stream, data, len);
	rc = conn_send(c, &b);
	pv_fbuf_destroy(&b);
	return rc;
}

int conn_send_eof(struct conn *c, uint64_t id, const char *stream)
{
	struct pv_fbuf b;
	int rc;

	pv_fbuf_init(&b);
	pv_enc_eof(&b, id, stream);
	rc = conn_send(c, &b);
	pv_fbuf_destroy(&b);
	return rc;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pf = { .fd = fd, .events = POLLOUT };

			poll(&pf, 1, -1);
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct task *task_add(struct conn *c, uint64_t id)
{
	struct task *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->id = id;
	t->sink_fd = -1;
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->wake_fd < 0) {
		free(t);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	t->next = c->tasks;
	c->tasks = t;
	pthread_mutex_unlock(&c->lock);
	return t;
}

void task_remove(struct conn *c, struct task *t)
{
	pthread_mutex_lock(&c->lock);
	for (struct task **pp = &c->tasks; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	close(t->wake_fd);
	if (t->sink_fd >= 0)
		close(t->sink_fd);
	free(t);
}

/* ---- requests and replies ---- */

struct req *req_new(struct conn *c)
{
	struct req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->c = c;
	conn_get(c);
	msgpack_unpacked_init(&r->frame.up);
	return r;
}

void req_free(struct req *r)
{
	if (!r)
		return;
	pv_frame_destroy(&r->frame);
	if (r->fb_init)
		pv_fbuf_destroy(&r->fb);
	conn_put(r->c);
	free(r);
}

struct pv_fbuf *reply_ok(struct req *r)
{
	if (!r->fb_init) {
		pv_fbuf_init(&r->fb);
		r->fb_init = true;
	}
	pv_fbuf_reset(&r->fb);
	pv_enc_reply_ok(&r->fb, r->id);
	return &r->fb;
}

int reply_send(struct req *r)
{
	int rc = conn_send(r->c, &r->fb);

	if (rc == -EMSGSIZE)
		return fail(r, EMSGSIZE, "reply larger than the frame limit");
	return 0;
}

int reply_empty(struct req *r)
{
	pv_pack_map(reply_ok(r), 0);
	return reply_send(r);
}

int reply_error(struct req *r, int err)
{
	if (!r->fb_init) {
		pv_fbuf_init(&r->fb);
		r->fb_init = true;
	}
	pv_fbuf_reset(&r->fb);
	pv_enc_reply_err(&r->fb, r->id, err, r->code, r->msg[0] ? r->msg : strerror(err));
	conn_send(r->c, &r->fb);
	return 0;
}

static int vfail(struct req *r, const char *code, int err, const char *fmt, va_list ap)
{
	r->code = code;
	r->err = err;
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	return -err;
}

int fail(struct req *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(r, NULL, err, fmt, ap);
	va_end(ap);
	return -err;
}

int invalid(struct req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(r, PV_ERRCODE_INVALID, EINVAL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int arg_str(struct req *r, const char *key, char *buf, size_t size)
{
	int rc = pv_map_strcpy(r->args, key, buf, size);

	if (rc == -ENOENT)
		return invalid(r, "missing argument '%s'", key);
	if (rc == -ENAMETOOLONG)
		return fail(r, ENAMETOOLONG, "argument '%s' is too long", key);
	if (rc < 0)
		return invalid(r, "argument '%s' must be a string without NUL bytes", key);
	return 0;
}

int arg_path(struct req *r, const char *key, char *buf)
{
	return arg_str(r, key, buf, PATH_MAX);
}

int arg_int(struct req *r, const char *key, int64_t *v)
{
	int rc = pv_map_int(r->args, key, v);

	if (rc == -ENOENT)
		return invalid(r, "missing argument '%s'", key);
	if (rc < 0)
		return invalid(r, "argument '%s' must be an integer", key);
	return 0;
}

int arg_int_opt(struct req *r, const char *key, int64_t *v, int64_t def)
{
	int rc = pv_map_int(r->args, key, v);

	if (rc == -ENOENT) {
		*v = def;
		return 0;
	}
	if (rc < 0)
		return invalid(r, "argument '%s' must be an integer", key);
	return 0;
}

int arg_bool_opt(struct req *r, const char *key, bool *v, bool def)
{
	int rc = pv_map_bool(r->args, key, v);

	if (rc == -ENOENT) {
		*v = def;
		return 0;
	}
	if (rc < 0)
		return invalid(r, "argument '%s' must be a boolean", key);
	return 0;
}

/* ---- dispatch ---- */

static void run_op(struct req *r, const struct op *op)
{
	int rc = op->fn(r);

	if (rc < 0)
		reply_error(r, -rc);
	if (!r->deferred)
		req_free(r);
}

struct op_thread {
	struct req *r;
	const struct op *op;
};

static void *op_thread_main(void *arg)
{
	struct op_thread *t = arg;

	run_op(t->r, t->op);
	free(t);
	return NULL;
}

static void send_conn_error(struct conn *c, uint64_t id, int err, const char *code,
			    const char *msg)
{
	struct pv_fbuf b;

	pv_fbuf_init(&b);
	pv_enc_reply_err(&b, id, err, code, msg);
	conn_send(c, &b);
	pv_fbuf_destroy(&b);
}

/* Routes a host stream frame to the task waiting for it; unknown ids are dropped
 * (e.g. chunks of a write_file that already failed). */
static void route_stream(struct conn *c, const struct pv_frame *f)
{
	struct task *t;

	pthread_mutex_lock(&c->lock);
	for (t = c->tasks; t; t = t->next)
		if (t->id == f->id && t->req)
			break;
	pthread_mutex_unlock(&c->lock);
	if (t)
		write_file_stream(c, t, f);
}

static void dispatch(struct conn *c, struct req *r)
{
	struct pv_frame *f = &r->frame;
	const struct op *op = NULL;

	if (f->kind == PV_FRAME_STREAM) {
		route_stream(c, f);
		req_free(r);
		return;
	}
	if (f->kind != PV_FRAME_REQUEST || !f->has_id) {
		send_conn_error(c, f->has_id ? f->id : 0, EINVAL, PV_ERRCODE_INVALID,
				"expected a request {id, op, args}");
		req_free(r);
		return;
	}
	r->id = f->id;
	r->args = f->args;
	for (size_t i = 0; i < PV_ARRAY_COUNT(ops); i++)
		if (strcmp(ops[i].name, f->op) == 0)
			op = &ops[i];
	if (!op) {
		r->code = PV_ERRCODE_INVALID;
		snprintf(r->msg, sizeof(r->msg), "unknown op '%s'", f->op);
		reply_error(r, ENOSYS);
		req_free(r);
		return;
	}
	if (op->threaded) {
		struct op_thread *t = malloc(sizeof(*t));
		pthread_t th;
		pthread_attr_t attr;

		if (t) {
			t->r = r;
			t->op = op;
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			pthread_attr_setstacksize(&attr, 256 * 1024);
			if (pthread_create(&th, &attr, op_thread_main, t) == 0) {
				pthread_attr_destroy(&attr);
				return;
			}
			pthread_attr_destroy(&attr);
			free(t);
		}
		fail(r, EAGAIN, "cannot start a thread for %s", op->name);
		reply_error(r, EAGAIN);
		req_free(r);
		return;
	}
	run_op(r, op);
}

/* Stops everything that belongs to c: tails end, sinks close, fds close, process
 * groups get SIGKILL. */
static void conn_teardown(struct conn *c)
{
	struct task *t, *sinks = NULL;

	uint64_t one = 1;

	atomic_store(&c->dead, true);
	shutdown(c->fd, SHUT_RDWR);
	if (c->dead_fd >= 0 && write(c->dead_fd, &one, sizeof(one)) < 0) {
		/* cannot fail for one write */
	}
	pthread_mutex_lock(&c->lock);
	for (t = c->tasks; t; t = t->next) {
		atomic_store(&t->cancel, true);
		if (write(t->wake_fd, &one, sizeof(one)) < 0) {
			/* already signalled */
		}
	}
	/* write_file sinks are driven by this reader thread: end them here */
	for (struct task **pp = &c->tasks; *pp;) {
		t = *pp;
		if (t->req) {
			*pp = t->next;
			t->next = sinks;
			sinks = t;
		} else {
			pp = &t->next;
		}
	}
	pthread_mutex_unlock(&c->lock);
	while ((t = sinks)) {
		sinks = t->next;
		req_free(t->req);
		close(t->wake_fd);
		if (t->sink_fd >= 0)
			close(t->sink_fd);
		free(t);
	}
	fds_close_owned(c);
	procs_kill_owned(c);
}

static int handshake(struct conn *c, struct pv_frame_reader *rd)
{
	struct pv_fbuf b;
	struct pv_frame f;
	char err[200];
	int rc;

	pv_fbuf_init(&b);
	pv_enc_hello(&b, PV_ROLE_AGENT, features, PV_ARRAY_COUNT(features));
	rc = conn_send(c, &b);
	pv_fbuf_destroy(&b);
	if (rc < 0)
		return rc;
	for (;;) {
		size_t room;
		void *p;
		ssize_t n;

		rc = pv_frame_reader_next(rd, &f);
		if (rc == 1)
			break;
		if (rc < 0) {
			send_conn_error(c, 0, -rc, PV_ERRCODE_PROTOCOL, rd->err);
			return rc;
		}
		p = pv_frame_reader_reserve(rd, 4096, &room);
		if (!p)
			return -ENOMEM;
		n = recv(c->fd, p, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		pv_frame_reader_commit(rd, (size_t)n);
	}
	rc = pv_hello_check(&f, PV_ROLE_HOST, err, sizeof(err));
	pv_frame_destroy(&f);
	if (rc < 0) {
		send_conn_error(c, 0, EPROTO, PV_ERRCODE_PROTOCOL, err);
		fprintf(stderr, "provium-agent: %s\n", err);
	}
	return rc;
}

void conn_serve(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct pv_frame_reader rd;

	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->dead_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->wlock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pv_frame_reader_init(&rd, 0);
	if (handshake(c, &rd) < 0)
		goto out;
	for (;;) {
		struct req *r;
		size_t room;
		void *p;
		ssize_t n;
		int rc;

		r = req_new(c);
		if (!r)
			break;
		rc = pv_frame_reader_next(&rd, &r->frame);
		if (rc == 1) {
			dispatch(c, r);
			continue;
		}
		req_free(r);
		if (rc == -EBADMSG) {
			send_conn_error(c, 0, EBADMSG, PV_ERRCODE_PROTOCOL, rd.err);
			continue;
		}
		if (rc < 0) {
			send_conn_error(c, 0, -rc, PV_ERRCODE_PROTOCOL, rd.err);
			fprintf(stderr, "provium-agent: closing connection: %s\n", rd.err);
			break;
		}
		p = pv_frame_reader_reserve(&rd, 65536, &room);
		if (!p)
			break;
		n = recv(fd, p, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pv_frame_reader_commit(&rd, (size_t)n);
	}
out:
	pv_frame_reader_free(&rd);
	conn_teardown(c);
	conn_put(c);
}
