/* fds.c — agent-held file descriptors (the guest side of a Lua File): open, read,
 * write, seek, tell, fsync, close. Only fds opened here are usable, so a request
 * cannot touch the agent's own sockets; they close with the owning connection. */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hfd {
	int fd;
	struct conn *owner;
	int refs;          /* in-flight ops; the fd closes when the last one ends */
	bool closing;
	struct hfd *next;
};

static pthread_mutex_t fds_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hfd *fds;

static struct hfd *hfd_get(int fd)
{
	struct hfd *h;

	pthread_mutex_lock(&fds_lock);
	for (h = fds; h; h = h->next)
		if (h->fd == fd && !h->closing)
			break;
	if (h)
		h->refs++;
	pthread_mutex_unlock(&fds_lock);
	return h;
}

static void hfd_put(struct hfd *h)
{
	bool last;

	pthread_mutex_lock(&fds_lock);
	last = --h->refs == 0;
	pthread_mutex_unlock(&fds_lock);
	if (last) {
		close(h->fd);
		free(h);
	}
}

/* Unlists h (lookups miss it) and drops the table's reference. */
static void hfd_unlist_locked(struct hfd *h)
{
	for (struct hfd **pp = &fds; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	h->closing = true;
}

void fds_close_owned(struct conn *c)
{
	struct hfd *drop = NULL;

	pthread_mutex_lock(&fds_lock);
	for (struct hfd *h = fds, *next; h; h = next) {
		next = h->next;
		if (h->owner != c)
			continue;
		hfd_unlist_locked(h);
		h->next = drop;
		drop = h;
	}
	pthread_mutex_unlock(&fds_lock);
	while (drop) {
		struct hfd *h = drop;

		drop = h->next;
		hfd_put(h);
	}
}

int fds_dup(int fd)
{
	struct hfd *h = hfd_get(fd);
	int d;

	if (!h)
		return -EBADF;
	d = fcntl(h->fd, F_DUPFD_CLOEXEC, 3);
	hfd_put(h);
	return d < 0 ? -errno : d;
}

static struct hfd *arg_fd(struct req *r)
{
	int64_t fd;
	struct hfd *h;

	if (arg_int(r, "fd", &fd) < 0)
		return NULL;
	h = (fd >= 0 && fd < INT32_MAX) ? hfd_get((int)fd) : NULL;
	if (!h)
		fail(r, EBADF, "fd %lld is not open in the agent", (long long)fd);
	return h;
}

int op_open(struct req *r)
{
	static const struct { const char *mode; int flags; } modes[] = {
		{ "r", O_RDONLY }, { "w", O_WRONLY | O_CREAT | O_TRUNC },
		{ "a", O_WRONLY | O_CREAT | O_APPEND }, { "r+", O_RDWR },
		{ "w+", O_RDWR | O_CREAT | O_TRUNC }, { "a+", O_RDWR | O_CREAT | O_APPEND },
	};
	char path[PATH_MAX], mode[8] = "r";
	int64_t perm;
	int flags = -1, fd, rc;
	struct hfd *h;

	if ((rc = arg_path(r, "path", path)) < 0 ||
	    (rc = arg_int_opt(r, "perm", &perm, 0644)) < 0)
		return rc;
	rc = pv_map_strcpy(r->args, "mode", mode, sizeof(mode));
	if (rc < 0 && rc != -ENOENT)
		return invalid(r, "mode must be one of r w a r+ w+ a+");
	/* "rb" etc. are accepted like fopen */
	for (char *b = strchr(mode, 'b'); b; b = strchr(mode, 'b'))
		memmove(b, b + 1, strlen(b));
	for (size_t i = 0; i < PV_ARRAY_COUNT(modes); i++)
		if (strcmp(modes[i].mode, mode) == 0)
			flags = modes[i].flags;
	if (flags < 0)
		return invalid(r, "mode must be one of r w a r+ w+ a+");
	fd = open(path, flags | O_CLOEXEC, (mode_t)(perm & 07777));
	if (fd < 0)
		return fail(r, errno, "open %s: %s", path, strerror(errno));
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return fail(r, ENOMEM, "out of memory");
	}
	h->fd = fd;
	h->owner = r->c;
	h->refs = 1;
	pthread_mutex_lock(&fds_lock);
	h->next = fds;
	fds = h;
	pthread_mutex_unlock(&fds_lock);
	pv_pack_map(reply_ok(r), 1);
	pv_pack_kv_int(&r->fb, "fd", fd);
	return reply_send(r);
}

int op_read(struct req *r)
{
	struct hfd *h = arg_fd(r);
	int64_t want;
	uint8_t *buf;
	ssize_t n;
	int rc;

	if (!h)
		return -r->err;
	if ((rc = arg_int_opt(r, "n", &want, PV_PROTO_MAX_DATA)) < 0)
		goto out;
	if (want < 0 || want > PV_PROTO_MAX_DATA)
		want = PV_PROTO_MAX_DATA;
	if (!(buf = malloc(want ? (size_t)want : 1))) {
		rc = fail(r, ENOMEM, "out of memory");
		goto out;
	}
	do
		n = read(h->fd, buf, (size_t)want);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rc = fail(r, errno, "read fd %d: %s", h->fd, strerror(errno));
	} else {
		pv_pack_map(reply_ok(r), 2);
		pv_pack_kv_bin(&r->fb, "data", buf, (size_t)n);
		pv_pack_kv_bool(&r->fb, "eof", n == 0 && want > 0);
		rc = reply_send(r);
	}
	free(buf);
out:
	hfd_put(h);
	return rc;
}

int op_write(struct req *r)
{
	struct hfd *h = arg_fd(r);
	const uint8_t *data;
	size_t len;
	int rc;

	if (!h)
		return -r->err;
	if (pv_map_bytes(r->args, "data", &data, &len) < 0) {
		rc = invalid(r, "missing argument 'data'");
	} else if ((rc = write_all(h->fd, data, len)) < 0) {
		rc = fail(r, -rc, "write fd %d: %s", h->fd, strerror(-rc));
	} else {
		pv_pack_map(reply_ok(r), 1);
		pv_pack_kv_uint(&r->fb, "n", len);
		rc = reply_send(r);
	}
	hfd_put(h);
	return rc;
}

static int reply_pos(struct req *r, struct hfd *h, off_t pos)
{
	int rc;

	if (pos < 0) {
		rc = fail(r, errno, "seek fd %d: %s", h->fd, strerror(errno));
	} else {
		pv_pack_map(reply_ok(r), 1);
		pv_pack_kv_int(&r->fb, "pos", pos);
		rc = reply_send(r);
	}
	hfd_put(h);
	return rc;
}

int op_seek(struct req *r)
{
	struct hfd *h = arg_fd(r);
	char whence[8] = "cur";
	int64_t off;
	int w, rc;

	if (!h)
		return -r->err;
	rc = pv_map_strcpy(r->args, "whence", whence, sizeof(whence));
	if ((rc < 0 && rc != -ENOENT) || arg_int_opt(r, "offset", &off, 0) < 0) {
		hfd_put(h);
		return invalid(r, "seek takes whence (set/cur/end) and an integer offset");
	}
	if (!strcmp(whence, "set"))
		w = SEEK_SET;
	else if (!strcmp(whence, "cur"))
		w = SEEK_CUR;
	else if (!strcmp(whence, "end"))
		w = SEEK_END;
	else {
		hfd_put(h);
		return invalid(r, "whence must be set, cur or end");
	}
	return reply_pos(r, h, lseek(h->fd, off, w));
}

int op_tell(struct req *r)
{
	struct hfd *h = arg_fd(r);

	if (!h)
		return -r->err;
	return reply_pos(r, h, lseek(h->fd, 0, SEEK_CUR));
}

int op_fsync(struct req *r)
{
	struct hfd *h = arg_fd(r);
	int rc;

	if (!h)
		return -r->err;
	rc = fsync(h->fd) < 0 ? fail(r, errno, "fsync fd %d: %s", h->fd, strerror(errno))
			      : reply_empty(r);
	hfd_put(h);
	return rc;
}

int op_close(struct req *r)
{
	struct hfd *h = arg_fd(r);

	if (!h)
		return -r->err;
	pthread_mutex_lock(&fds_lock);
	if (!h->closing) {
		hfd_unlist_locked(h);
		h->refs--; /* the table's reference; ours is still held */
	}
	pthread_mutex_unlock(&fds_lock);
	hfd_put(h);
	return reply_empty(r);
}
