/* spawn.c — background processes: `spawn` (pid now, stdout/stderr streamed as
 * frames by a pump thread), and the proc_* ops (stdin, signals, kill of the whole
 * process group, wait with a timeout, status). */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pump {
	struct conn *c;
	uint64_t id;
	int fd[2];
};

static void *pump_main(void *arg)
{
	static const char *const names[2] = { PV_STREAM_STDOUT, PV_STREAM_STDERR };
	struct pump *pm = arg;
	uint8_t *buf = malloc(65536);

	while (buf && (pm->fd[0] >= 0 || pm->fd[1] >= 0)) {
		struct pollfd pf[3];
		int n = 0;

		for (int i = 0; i < 2; i++)
			if (pm->fd[i] >= 0)
				pf[n++] = (struct pollfd){ .fd = pm->fd[i], .events = POLLIN };
		/* A process that escaped its group may keep the pipes open: stop when
		 * the connection goes away. */
		pf[n] = (struct pollfd){ .fd = pm->c->dead_fd, .events = POLLIN };
		if (poll(pf, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[n].revents)
			break;
		for (int j = 0; j < n; j++) {
			int i = pf[j].fd == pm->fd[0] ? 0 : 1;
			ssize_t got;

			if (!pf[j].revents)
				continue;
			got = read(pm->fd[i], buf, 65536);
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got > 0 && conn_send_stream(pm->c, pm->id, names[i], buf,
							(size_t)got) == 0)
				continue;
			/* EOF, an error, or the host went away */
			close(pm->fd[i]);
			pm->fd[i] = -1;
			conn_send_eof(pm->c, pm->id, names[i]);
		}
	}
	for (int i = 0; i < 2; i++)
		if (pm->fd[i] >= 0)
			close(pm->fd[i]);
	free(buf);
	conn_put(pm->c);
	free(pm);
	return NULL;
}

int op_spawn(struct req *r)
{
	struct pump *pm = NULL;
	struct cmd cmd;
	struct proc *p;
	int in = -1, out = -1, err = -1, rc;
	pthread_attr_t attr;
	pthread_t th;
	struct pv_fbuf *b;

	if ((rc = cmd_parse(r, &cmd)) < 0)
		return rc;
	p = cmd_start(r, &cmd, &in, &out, &err);
	if (!p) {
		cmd_free(&cmd);
		return -r->err;
	}
	p->stdin_fd = in;

	b = reply_ok(r);
	pv_pack_map(b, 1);
	pv_pack_kv_int(b, "pid", p->pid);
	reply_send(r);
	if (err < 0) /* a pty: one output, stderr is on the terminal too */
		conn_send_eof(r->c, r->id, PV_STREAM_STDERR);

	pm = calloc(1, sizeof(*pm));
	if (pm) {
		pm->c = r->c;
		pm->id = r->id;
		pm->fd[0] = out;
		pm->fd[1] = err;
		conn_get(r->c);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		rc = pthread_create(&th, &attr, pump_main, pm);
		pthread_attr_destroy(&attr);
		if (rc == 0) {
			/* Initial stdin goes in once the pump drains stdout, or a child
			 * like cat that echoes a large stdin would block us both. Later
			 * data comes with proc_write, after this on the same thread. */
			if (cmd.stdin_len && write_all(in, cmd.stdin_data, cmd.stdin_len) < 0) {
				/* the child closed stdin early: like a shell, not our error */
			}
			cmd_free(&cmd);
			proc_put(p);
			return 0;
		}
		conn_put(r->c);
		free(pm);
	}
	cmd_free(&cmd);
	/* No pump: the output cannot be delivered; stop the process. */
	close(out);
	if (err >= 0)
		close(err);
	kill(-p->pid, SIGKILL);
	conn_send_eof(r->c, r->id, PV_STREAM_STDOUT);
	conn_send_eof(r->c, r->id, PV_STREAM_STDERR);
	proc_put(p);
	return 0;
}

struct proc *arg_proc(struct req *r)
{
	int64_t pid;
	struct proc *p;

	if (arg_int(r, "pid", &pid) < 0)
		return NULL;
	p = (pid > 0 && pid < INT32_MAX) ? proc_find((pid_t)pid) : NULL;
	if (!p)
		fail(r, ESRCH, "no process %lld started by the agent", (long long)pid);
	return p;
}

extern pthread_mutex_t procs_lock;

int op_proc_write(struct req *r)
{
	const uint8_t *data;
	size_t len;
	struct proc *p;
	int rc, fd;

	if (pv_map_bytes(r->args, "data", &data, &len) < 0)
		return invalid(r, "missing argument 'data'");
	if (!(p = arg_proc(r)))
		return -r->err;
	pthread_mutex_lock(&procs_lock);
	fd = p->stdin_fd >= 0 ? dup(p->stdin_fd) : -1;
	pthread_mutex_unlock(&procs_lock);
	if (fd < 0) {
		proc_put(p);
		return fail(r, EPIPE, "stdin of process %d is closed", p->pid);
	}
	rc = write_all(fd, data, len);
	close(fd);
	proc_put(p);
	if (rc < 0)
		return fail(r, -rc, "write to stdin: %s", strerror(-rc));
	pv_pack_map(reply_ok(r), 1);
	pv_pack_kv_uint(&r->fb, "n", len);
	return reply_send(r);
}

int op_proc_close_stdin(struct req *r)
{
	struct proc *p = arg_proc(r);
	int fd;

	if (!p)
		return -r->err;
	pthread_mutex_lock(&procs_lock);
	fd = p->stdin_fd;
	p->stdin_fd = -1;
	pthread_mutex_unlock(&procs_lock);
	if (fd >= 0)
		close(fd);
	proc_put(p);
	return reply_empty(r);
}

int op_proc_signal(struct req *r)
{
	const msgpack_object *o = pv_map_get(r->args, "signal");
	struct proc *p;
	bool group;
	int sig, rc;

	if (!o)
		return invalid(r, "missing argument 'signal'");
	if ((sig = parse_signal(o)) < 0)
		return invalid(r, "unknown signal");
	if ((rc = arg_bool_opt(r, "group", &group, false)) < 0)
		return rc;
	if (!(p = arg_proc(r)))
		return -r->err;
	rc = kill(group ? -p->pid : p->pid, sig);
	if (rc < 0)
		rc = fail(r, errno, "kill %d: %s", p->pid, strerror(errno));
	proc_put(p);
	return rc < 0 ? rc : reply_empty(r);
}

int op_proc_kill(struct req *r)
{
	struct proc *p = arg_proc(r);

	if (!p)
		return -r->err;
	/* The group may already be empty: not an error. */
	kill(-p->pid, SIGKILL);
	proc_put(p);
	return reply_empty(r);
}

int op_proc_wait(struct req *r)
{
	int64_t timeout;
	struct proc *p;
	int rc;

	if ((rc = arg_int_opt(r, "timeout_ns", &timeout, -1)) < 0)
		return rc;
	if (!(p = arg_proc(r)))
		return -r->err;
	rc = proc_wait_exit(p, timeout);
	if (rc == -ETIMEDOUT) {
		fail(r, ETIMEDOUT, "process %d still running after %.3f s", p->pid,
		     (double)timeout / 1e9);
		r->code = PV_ERRCODE_TIMEOUT;
	} else {
		pack_status(reply_ok(r), p);
		rc = reply_send(r);
	}
	proc_put(p);
	return rc;
}

int op_proc_status(struct req *r)
{
	struct proc *p = arg_proc(r);

	if (!p)
		return -r->err;
	pack_status(reply_ok(r), p);
	proc_put(p);
	return reply_send(r);
}
