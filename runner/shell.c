/* shell.c — an interactive shell in a VM on this terminal: a fresh agent connection,
 * /bin/sh spawned on a pty the agent allocates (agent/pty.c), this terminal in raw
 * mode, window size changes passed on (proc_resize), the escape key (Ctrl-]) to leave.
 * With stdin not a terminal, /bin/sh reads it through a pipe instead: its end is the
 * end of the shell's input (an EOF character on a pty races the shell's line editor
 * switching the terminal's mode, and is lost now and then).
 * vm:shell() and `provium shell NAME` both end up here (docs/debugging.md). */
#include "runner/shell.h"

#include "agent/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

struct sh {
	int fd;                  /* the agent connection */
	struct pv_frame_reader rd;
	struct pv_fbuf b;
	uint64_t next_id;
	int64_t pid;             /* the shell's, once spawned */
	uint64_t wait_id;        /* the proc_wait sent after the output ended */
	bool pty;                /* this terminal is one: so is the shell's */
	int open_streams;        /* of stdout and stderr, not yet at their end */
	int status;              /* the shell's exit status, once known; else -1 */
	char *err;
	size_t errlen;
};

static int wakeup[2] = { -1, -1 };

static void on_winch(int sig)
{
	int saved = errno;

	(void)sig;
	if (write(wakeup[1], "w", 1) < 0) {
		/* the pipe is full: a resize is pending anyway */
	}
	errno = saved;
}

static int seterr(struct sh *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int seterr(struct sh *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, s->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_frame(struct sh *s)
{
	if (pv_fbuf_finish(&s->b) < 0 || write_all(s->fd, s->b.sb.data, s->b.sb.size) < 0)
		return seterr(s, "the agent connection broke: %s", strerror(errno));
	pv_fbuf_reset(&s->b);
	return 0;
}

static void window(int rows_cols[2])
{
	struct winsize ws;

	rows_cols[0] = 24;
	rows_cols[1] = 80;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		rows_cols[0] = ws.ws_row;
		rows_cols[1] = ws.ws_col;
	}
}

static int send_spawn(struct sh *s)
{
	const char *term = getenv("TERM");
	int rc[2];

	window(rc);
	pv_enc_request(&s->b, s->next_id++, PV_OP_SPAWN);
	pv_pack_map(&s->b, s->pty ? 3 : 2);
	pv_pack_str(&s->b, "argv");
	pv_pack_array(&s->b, 1);
	pv_pack_str(&s->b, "/bin/sh");
	pv_pack_str(&s->b, "env");
	pv_pack_map(&s->b, 2);
	pv_pack_kv_str(&s->b, "TERM", term && *term ? term : "xterm");
	pv_pack_kv_str(&s->b, "PS1", "\\h:\\w\\$ ");
	if (!s->pty)
		return send_frame(s);
	pv_pack_str(&s->b, "pty");
	pv_pack_map(&s->b, 2);
	pv_pack_kv_int(&s->b, "rows", rc[0]);
	pv_pack_kv_int(&s->b, "cols", rc[1]);
	return send_frame(s);
}

static int send_resize(struct sh *s)
{
	int rc[2];

	window(rc);
	pv_enc_request(&s->b, s->next_id++, PV_OP_PROC_RESIZE);
	pv_pack_map(&s->b, 3);
	pv_pack_kv_int(&s->b, "pid", s->pid);
	pv_pack_kv_int(&s->b, "rows", rc[0]);
	pv_pack_kv_int(&s->b, "cols", rc[1]);
	return send_frame(s);
}

static int send_input(struct sh *s, const char *data, size_t n)
{
	pv_enc_request(&s->b, s->next_id++, PV_OP_PROC_WRITE);
	pv_pack_map(&s->b, 2);
	pv_pack_kv_int(&s->b, "pid", s->pid);
	pv_pack_kv_bin(&s->b, "data", data, n);
	return send_frame(s);
}

static int send_close_stdin(struct sh *s)
{
	pv_enc_request(&s->b, s->next_id++, PV_OP_PROC_CLOSE_STDIN);
	pv_pack_map(&s->b, 1);
	pv_pack_kv_int(&s->b, "pid", s->pid);
	return send_frame(s);
}

static int send_wait(struct sh *s)
{
	s->wait_id = s->next_id++;
	pv_enc_request(&s->b, s->wait_id, PV_OP_PROC_WAIT);
	pv_pack_map(&s->b, 1);
	pv_pack_kv_int(&s->b, "pid", s->pid);
	return send_frame(s);
}

/* The exit status of a proc_wait result: the code, or 128 + the signal. */
static int status_of(const msgpack_object *res)
{
	int64_t code = 0, sig = 0;

	pv_map_int(res, "signal", &sig);
	pv_map_int(res, "code", &code);
	return sig > 0 ? 128 + (int)sig : (int)code;
}

enum { GO_ON = -2 };

static bool has_feature(const msgpack_object *features, const char *name)
{
	size_t len = strlen(name);

	if (!features || features->type != MSGPACK_OBJECT_ARRAY)
		return false;
	for (uint32_t i = 0; i < features->via.array.size; i++) {
		const msgpack_object *o = &features->via.array.ptr[i];

		if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == len &&
		    !memcmp(o->via.str.ptr, name, len))
			return true;
	}
	return false;
}

/* One frame from the agent: GO_ON, the shell's exit status, or -1 (s->err). */
static int on_frame(struct sh *s, struct pv_frame *f)
{
	switch (f->kind) {
	case PV_FRAME_HELLO:
		if (pv_hello_check(f, PV_ROLE_AGENT, s->err, s->errlen) < 0)
			return -1;
		if (!has_feature(f->features, "pty"))
			return seterr(s, "the agent has no pty feature (an older initramfs?): "
				      "no terminal to open a shell on");
		return send_spawn(s) < 0 ? -1 : GO_ON;
	case PV_FRAME_REPLY:
		if (f->id == 1 && !f->ok)
			return seterr(s, "cannot start /bin/sh on a terminal: %.*s",
				      (int)f->message_len, f->message);
		if (f->id == 1) {
			if (pv_map_int(f->result, "pid", &s->pid) < 0)
				return seterr(s, "the agent's spawn reply has no pid");
			if (s->pty)
				send_resize(s); /* a resize between connect and now */
			return GO_ON;
		}
		if (f->id == s->wait_id) {
			s->status = f->ok ? status_of(f->result) : 0;
			return s->open_streams ? GO_ON : s->status;
		}
		if (f->id == 0 && !f->ok)
			return seterr(s, "the agent refused the connection: %.*s",
				      (int)f->message_len, f->message);
		return GO_ON; /* proc_write, proc_resize: a failure shows as the end */
	case PV_FRAME_STREAM:
		if (f->id != 1)
			return GO_ON;
		if (!f->eof && write_all(strcmp(f->stream, PV_STREAM_STDERR) ? 1 : 2,
					 f->data, f->data_len) < 0)
			return seterr(s, "cannot write the shell's output: %s", strerror(errno));
		if (!f->eof)
			return GO_ON;
		s->open_streams--;
		if (!strcmp(f->stream, PV_STREAM_STDOUT) && send_wait(s) < 0)
			return -1;
		return !s->open_streams && s->status >= 0 ? s->status : GO_ON;
	default:
		return GO_ON;
	}
}

/* Bytes typed on this terminal: the escape byte ends the session (returns 1). */
static int on_input(struct sh *s, const char *buf, size_t n, int esc)
{
	const char *cut = s->pty && esc >= 0 ? memchr(buf, esc, n) : NULL;
	size_t len = cut ? (size_t)(cut - buf) : n;

	if (len && s->pid > 0 && send_input(s, buf, len) < 0)
		return -1;
	return cut ? 1 : 0;
}

static int session(struct sh *s, int esc)
{
	bool in_open = true;
	char buf[4096];

	pv_enc_hello(&s->b, PV_ROLE_HOST, NULL, 0);
	if (send_frame(s) < 0)
		return -1;
	for (;;) {
		struct pollfd pf[3] = {
			{ .fd = s->fd, .events = POLLIN },
			{ .fd = wakeup[0], .events = POLLIN },
			{ .fd = in_open && s->pid > 0 ? 0 : -1, .events = POLLIN },
		};

		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return seterr(s, "poll: %s", strerror(errno));
		}
		if (pf[1].revents) {
			while (read(wakeup[0], buf, sizeof(buf)) > 0)
				;
			if (s->pid > 0 && s->pty && send_resize(s) < 0)
				return -1;
		}
		if (pf[2].revents) {
			ssize_t n = read(0, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && s->pty)
				return seterr(s, "cannot read this terminal: %s", strerror(errno));
			if (n <= 0) {
				/* the end of the input: the end of the shell's (on a pty,
				 * an EOF character, as typed) */
				in_open = false;
				if ((s->pty ? send_input(s, "\004", 1) : send_close_stdin(s)) < 0)
					return -1;
			} else {
				int r = on_input(s, buf, (size_t)n, esc);

				if (r != 0)
					return r < 0 ? -1 : 0;
			}
		}
		if (pf[0].revents) {
			size_t room;
			void *p = pv_frame_reader_reserve(&s->rd, 65536, &room);
			ssize_t n;
			struct pv_frame f;
			int rc;

			if (!p)
				return seterr(s, "out of memory");
			n = read(s->fd, p, room);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return seterr(s, "the agent closed the connection%s%s",
					      n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			pv_frame_reader_commit(&s->rd, (size_t)n);
			while ((rc = pv_frame_reader_next(&s->rd, &f)) == 1) {
				int r = on_frame(s, &f);

				pv_frame_destroy(&f);
				if (r != GO_ON)
					return r;
			}
			if (rc == -EMSGSIZE)
				return seterr(s, "%s", s->rd.err);
		}
	}
}

/* A test's worker runs in a process group of its own, in the background of this
 * terminal: it must be the foreground group to read the keyboard. Returns the group
 * to give the terminal back to, or 0. */
pid_t pv_take_terminal(void)
{
	pid_t fg = tcgetpgrp(0);
	sigset_t ttou, old;

	if (fg < 0 || fg == getpgrp())
		return 0;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	if (tcsetpgrp(0, getpgrp()) < 0)
		fg = 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return fg;
}

void pv_give_terminal(pid_t fg)
{
	sigset_t ttou, old;

	if (!fg)
		return;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	tcsetpgrp(0, fg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int pv_shell_ex(int fd, const char *vm, int esc, char *err, size_t errlen)
{
	pid_t fg = 0;
	struct sh s = { .fd = fd, .next_id = 1, .err = err, .errlen = errlen,
			.open_streams = 2, .status = -1 };
	struct sigaction sa = { .sa_handler = on_winch, .sa_flags = SA_RESTART }, old_sa;
	struct termios saved, raw;
	bool tty = isatty(0) && tcgetattr(0, &saved) == 0;
	int rc;

	s.pty = tty;
	err[0] = 0;
	if (pipe2(wakeup, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pv_frame_reader_init(&s.rd, 0);
	pv_fbuf_init(&s.b);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, &old_sa);
	if (tty) {
		fg = pv_take_terminal();
		fprintf(stderr, "%sprovium: a shell in VM %s; Ctrl-] leaves it\r\n",
			isatty(2) ? "\r\033[K" : "", vm);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSAFLUSH, &raw);
	}
	rc = session(&s, esc);
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &saved);
		fprintf(stderr, "\nprovium: left the shell of VM %s\n", vm);
		pv_give_terminal(fg);
	}
	sigaction(SIGWINCH, &old_sa, NULL);
	close(wakeup[0]);
	close(wakeup[1]);
	wakeup[0] = wakeup[1] = -1;
	pv_fbuf_destroy(&s.b);
	pv_frame_reader_free(&s.rd);
	return rc;
}

int pv_shell(int fd, const char *vm, int esc)
{
	char err[512];
	int rc = pv_shell_ex(fd, vm, esc, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "provium: shell in VM %s: %s\n", vm, err);
	return rc;
}
