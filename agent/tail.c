/* tail.c — following files: `tail` follows a path like `tail -F` (reads from the
 * start again after truncation, reopens after replacement, waits for a missing
 * file), `tail_fd` streams an agent-held fd; `cancel` stops either. Poll-based. */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tailer {
	struct conn *c;
	struct task *t;
	uint64_t id;
	char path[PATH_MAX];   /* "" for tail_fd */
	int fd;
	bool from_end;
	int poll_ms;
	struct stat st;        /* of the file op_tail opened */
};

/* Sleeps up to ms or until the task is woken; true when it must stop. */
static bool tail_wait(struct tailer *tl, int ms, int fd)
{
	struct pollfd pf[2] = { { .fd = tl->t->wake_fd, .events = POLLIN },
				{ .fd = fd, .events = POLLIN } };

	if (atomic_load(&tl->t->cancel) || atomic_load(&tl->c->dead))
		return true;
	poll(pf, fd >= 0 ? 2 : 1, ms);
	return atomic_load(&tl->t->cancel) || atomic_load(&tl->c->dead);
}

/* Sends what the fd has now. Returns bytes sent, 0 at EOF, -1 on error. */
static ssize_t pump(struct tailer *tl, uint8_t *buf)
{
	ssize_t total = 0;

	for (;;) {
		ssize_t n = read(tl->fd, buf, 65536);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN && total == 0 ? -2 : (total ? total : -1);
		if (n == 0)
			return total;
		if (conn_send_stream(tl->c, tl->id, PV_STREAM_TAIL, buf, (size_t)n) < 0)
			return -1;
		total += n;
		if (total >= 1 << 20)
			return total; /* let the checks run now and then */
	}
}

/* Opens the path (if it exists) and takes the starting position: the end with
 * from_end, else 0. -1 when there is no such file (yet). */
static off_t open_at_start(struct tailer *tl, struct stat *st)
{
	off_t pos;

	tl->fd = open(tl->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (tl->fd < 0)
		return -1;
	fstat(tl->fd, st);
	pos = tl->from_end ? lseek(tl->fd, 0, SEEK_END) : 0;
	return pos;
}

/* tl->fd is the file opened by op_tail before it replied, or -1 when it did not
 * exist then (it is waited for). */
static void follow_path(struct tailer *tl, uint8_t *buf)
{
	struct stat st = tl->st, cur;
	off_t pos = tl->fd >= 0 ? lseek(tl->fd, 0, SEEK_CUR) : 0;

	for (;;) {
		ssize_t n;

		if (tl->fd < 0) {
			off_t p = open_at_start(tl, &st);

			if (p >= 0)
				pos = p;
		}
		if (tl->fd < 0) {
			if (tail_wait(tl, tl->poll_ms, -1))
				return;
			continue;
		}
		n = pump(tl, buf);
		if (n == -1)
			return;
		if (n > 0) {
			pos = lseek(tl->fd, 0, SEEK_CUR);
			continue;
		}
		/* At EOF: was the file truncated or replaced? */
		if (fstat(tl->fd, &cur) == 0 && cur.st_size < pos) {
			lseek(tl->fd, 0, SEEK_SET);
			pos = 0;
			continue;
		}
		if (stat(tl->path, &cur) == 0 &&
		    (cur.st_ino != st.st_ino || cur.st_dev != st.st_dev)) {
			/* Replaced: the old file was drained above; follow the new one. */
			close(tl->fd);
			tl->fd = -1;
			continue;
		}
		if (tail_wait(tl, tl->poll_ms, -1))
			return;
	}
}

static void follow_fd(struct tailer *tl, uint8_t *buf)
{
	struct stat st;
	bool regular = fstat(tl->fd, &st) == 0 && S_ISREG(st.st_mode);

	/* A pipe or socket is waited on; a regular file is polled at EOF. */
	if (!regular)
		fcntl(tl->fd, F_SETFL, fcntl(tl->fd, F_GETFL) | O_NONBLOCK);
	for (;;) {
		ssize_t n = pump(tl, buf);

		if (n == -1 || (n == 0 && !regular))
			return;
		if (n > 0)
			continue;
		if (tail_wait(tl, regular ? tl->poll_ms : -1, regular ? -1 : tl->fd))
			return;
	}
}

static void *tail_main(void *arg)
{
	struct tailer *tl = arg;
	uint8_t *buf = malloc(65536);

	if (buf) {
		if (tl->path[0])
			follow_path(tl, buf);
		else
			follow_fd(tl, buf);
	}
	if (tl->fd >= 0)
		close(tl->fd);
	free(buf);
	conn_send_eof(tl->c, tl->id, PV_STREAM_TAIL);
	task_remove(tl->c, tl->t);
	conn_put(tl->c);
	free(tl);
	return NULL;
}

static int start_tail(struct req *r, struct tailer *tl)
{
	pthread_attr_t attr;
	pthread_t th;
	int64_t poll_ms;
	int rc;

	if ((rc = arg_int_opt(r, "poll_ms", &poll_ms, 50)) < 0)
		goto err;
	tl->poll_ms = poll_ms < 1 ? 1 : poll_ms > 10000 ? 10000 : (int)poll_ms;
	tl->c = r->c;
	tl->id = r->id;
	tl->t = task_add(r->c, r->id);
	if (!tl->t) {
		rc = fail(r, ENOMEM, "out of memory");
		goto err;
	}
	/* The reply goes first so it precedes every tail frame. */
	reply_empty(r);
	conn_get(r->c);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&th, &attr, tail_main, tl);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		return 0;
	conn_put(r->c);
	conn_send_eof(r->c, r->id, PV_STREAM_TAIL);
	task_remove(r->c, tl->t);
	rc = 0;
err:
	if (tl->fd >= 0)
		close(tl->fd);
	free(tl);
	return rc;
}

int op_tail(struct req *r)
{
	struct tailer *tl = calloc(1, sizeof(*tl));
	char from[8] = "start";
	int rc;

	if (!tl)
		return fail(r, ENOMEM, "out of memory");
	tl->fd = -1;
	if ((rc = arg_path(r, "path", tl->path)) < 0) {
		free(tl);
		return rc;
	}
	rc = pv_map_strcpy(r->args, "from", from, sizeof(from));
	if ((rc < 0 && rc != -ENOENT) || (strcmp(from, "start") && strcmp(from, "end"))) {
		free(tl);
		return invalid(r, "from must be start or end");
	}
	tl->from_end = !strcmp(from, "end");
	/* The position is taken now, before the reply: whatever the file gets after the
	 * host's call returns is delivered (opening it in the follower thread raced
	 * with writes right after the call). A file that does not exist yet is read
	 * from its start once it appears. */
	open_at_start(tl, &tl->st);
	tl->from_end = false;
	return start_tail(r, tl);
}

int op_tail_fd(struct req *r)
{
	struct tailer *tl = calloc(1, sizeof(*tl));
	int64_t fd;
	int rc;

	if (!tl)
		return fail(r, ENOMEM, "out of memory");
	tl->fd = -1;
	if ((rc = arg_int(r, "fd", &fd)) < 0) {
		free(tl);
		return rc;
	}
	tl->fd = fd >= 0 && fd < INT32_MAX ? fds_dup((int)fd) : -EBADF;
	if (tl->fd < 0) {
		free(tl);
		return fail(r, EBADF, "fd %lld is not open in the agent", (long long)fd);
	}
	return start_tail(r, tl);
}

int op_cancel(struct req *r)
{
	struct conn *c = r->c;
	struct task *t;
	int64_t target;
	bool found = false;
	int rc;

	if ((rc = arg_int(r, "target", &target)) < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	for (t = c->tasks; t; t = t->next) {
		uint64_t one = 1;

		if (t->id != (uint64_t)target || t->req)
			continue;
		found = true;
		atomic_store(&t->cancel, true);
		if (write(t->wake_fd, &one, sizeof(one)) < 0) {
			/* already woken */
		}
		break;
	}
	/* Wait until the tail has sent its eof and gone, so eof precedes our reply. */
	while (found) {
		for (t = c->tasks; t; t = t->next)
			if (t->id == (uint64_t)target && !t->req)
				break;
		if (!t)
			break;
		pthread_cond_wait(&c->cond, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	pv_pack_map(reply_ok(r), 1);
	pv_pack_kv_bool(&r->fb, "cancelled", found);
	return reply_send(r);
}
