/* pty.c — commands on a pseudo-terminal: `spawn` with `pty={rows, cols}` gives the
 * child a new session whose controlling terminal is the slave side (stdin, stdout and
 * stderr all on it); the agent keeps the master: its output is the `stdout` stream,
 * proc_write types into it, proc_resize sets its window size (the kernel sends
 * SIGWINCH to the terminal's foreground group). vm:shell() and `provium shell` use
 * this (docs/debugging.md). */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static int dim(struct req *r, const msgpack_object *m, const char *key, unsigned short *out)
{
	int64_t v;
	int rc = pv_map_int(m, key, &v);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0 || v < 1 || v > 4096)
		return invalid(r, "pty.%s must be a number from 1 to 4096", key);
	*out = (unsigned short)v;
	return 0;
}

int pty_parse(struct req *r, struct cmd *cmd)
{
	const msgpack_object *o = pv_map_get(r->args, "pty");
	int rc;

	cmd->rows = 24;
	cmd->cols = 80;
	if (!o || o->type == MSGPACK_OBJECT_NIL ||
	    (o->type == MSGPACK_OBJECT_BOOLEAN && !o->via.boolean))
		return 0;
	if (o->type == MSGPACK_OBJECT_MAP) {
		if ((rc = dim(r, o, "rows", &cmd->rows)) < 0 ||
		    (rc = dim(r, o, "cols", &cmd->cols)) < 0)
			return rc;
	} else if (o->type != MSGPACK_OBJECT_BOOLEAN) {
		return invalid(r, "pty must be true or a map {rows=, cols=}");
	}
	cmd->pty = true;
	return 0;
}

/* A new pty pair from the devpts instance mounted on /dev/pts (the guest's /init and
 * the sandbox mount one with ptmxmode=0666), the window set before the child runs. */
int pty_open(struct cmd *cmd, int *master, int *slave)
{
	struct winsize ws = { .ws_row = cmd->rows, .ws_col = cmd->cols };
	char name[64];
	int m = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (m < 0)
		m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		goto fail;
	ioctl(m, TIOCSWINSZ, &ws);
	*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0)
		goto fail;
	*master = m;
	return 0;
fail: {
	int e = errno;
	close(m);
	return -e;
}
}

/* In the child, after fork: its own session with the slave (already on fds 0-2) as
 * the controlling terminal. Async-signal-safe. */
int pty_child(void)
{
	if (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0)
		return -1;
	return 0;
}

int op_proc_resize(struct req *r)
{
	struct winsize ws = { 0 };
	int64_t rows, cols;
	struct proc *p;
	int rc = 0;

	if (arg_int(r, "rows", &rows) < 0 || arg_int(r, "cols", &cols) < 0)
		return -r->err;
	if (rows < 1 || rows > 4096 || cols < 1 || cols > 4096)
		return invalid(r, "rows and cols must be numbers from 1 to 4096");
	if (!(p = arg_proc(r)))
		return -r->err;
	ws.ws_row = (unsigned short)rows;
	ws.ws_col = (unsigned short)cols;
	if (p->pty_fd < 0)
		rc = fail(r, ENOTTY, "process %d has no terminal (spawn it with pty)", p->pid);
	else if (ioctl(p->pty_fd, TIOCSWINSZ, &ws) < 0)
		rc = fail(r, errno, "resize the terminal of process %d: %s", p->pid, strerror(errno));
	proc_put(p);
	return rc < 0 ? rc : reply_empty(r);
}
