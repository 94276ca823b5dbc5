/* files.c — whole-file transfer in chunks (read_file streams out, write_file takes
 * a stream in, so a 100 MiB file never sits in agent memory) and path operations:
 * stat, exists, ls, mkdir -p, rm -r, rename, chmod, truncate. */
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int sys_fail(struct req *r, const char *what, const char *path)
{
	int e = errno;

	return fail(r, e, "%s %s: %s", what, path, strerror(e));
}

static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int op_read_file(struct req *r)
{
	char path[PATH_MAX];
	uint8_t *cur = NULL, *next = NULL;
	ssize_t ncur, nnext;
	uint64_t total = 0;
	int fd = -1, rc;
	struct stat st;

	if ((rc = arg_path(r, "path", path)) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sys_fail(r, "open", path);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return fail(r, EISDIR, "read %s: is a directory", path);
	}
	cur = malloc(PV_PROTO_CHUNK);
	next = malloc(PV_PROTO_CHUNK);
	if (!cur || !next) {
		rc = fail(r, ENOMEM, "out of memory");
		goto out;
	}
	/* Read one chunk ahead so the last chunk travels in the reply. */
	ncur = read_full(fd, cur, PV_PROTO_CHUNK);
	while (ncur == PV_PROTO_CHUNK) {
		uint8_t *t;

		nnext = read_full(fd, next, PV_PROTO_CHUNK);
		if (nnext <= 0) {
			ncur = nnext < 0 ? -1 : ncur;
			break;
		}
		if (conn_send_stream(r->c, r->id, PV_STREAM_DATA, cur, (size_t)ncur) < 0) {
			rc = fail(r, EPIPE, "connection closed");
			goto out;
		}
		total += (uint64_t)ncur;
		t = cur, cur = next, next = t;
		ncur = nnext;
	}
	if (ncur < 0) {
		rc = sys_fail(r, "read", path);
		goto out;
	}
	total += (uint64_t)ncur;
	pv_pack_map(reply_ok(r), 2);
	pv_pack_kv_uint(&r->fb, "size", total);
	pv_pack_kv_bin(&r->fb, "data", cur, (size_t)ncur);
	rc = reply_send(r);
out:
	free(cur);
	free(next);
	close(fd);
	return rc;
}

static int reply_size(struct req *r, uint64_t size)
{
	pv_pack_map(reply_ok(r), 1);
	pv_pack_kv_uint(&r->fb, "size", size);
	return reply_send(r);
}

int op_write_file(struct req *r)
{
	char path[PATH_MAX];
	const uint8_t *data = NULL;
	size_t len = 0;
	int64_t mode;
	bool append, stream;
	struct task *t;
	int fd, rc;

	if ((rc = arg_path(r, "path", path)) < 0 ||
	    (rc = arg_int_opt(r, "mode", &mode, 0644)) < 0 ||
	    (rc = arg_bool_opt(r, "append", &append, false)) < 0 ||
	    (rc = arg_bool_opt(r, "stream", &stream, false)) < 0)
		return rc;
	rc = pv_map_bytes(r->args, "data", &data, &len);
	if (rc < 0 && rc != -ENOENT)
		return invalid(r, "data must be bytes");
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
		  (mode_t)(mode & 07777));
	if (fd < 0)
		return sys_fail(r, "open", path);
	if (len && (rc = write_all(fd, data, len)) < 0) {
		close(fd);
		errno = -rc;
		return sys_fail(r, "write", path);
	}
	if (!stream) {
		close(fd);
		return reply_size(r, len);
	}
	/* The rest arrives as host stream frames, routed by conn.c to
	 * write_file_stream() on this reader thread. */
	t = task_add(r->c, r->id);
	if (!t) {
		close(fd);
		return fail(r, ENOMEM, "out of memory");
	}
	t->sink_fd = fd;
	t->written = len;
	t->req = r;
	r->deferred = true;
	return 0;
}

void write_file_stream(struct conn *c, struct task *t, const struct pv_frame *f)
{
	struct req *r = t->req;
	int rc;

	if (f->eof) {
		rc = close(t->sink_fd) < 0 ? -errno : 0;
		t->sink_fd = -1;
		if (rc < 0) {
			fail(r, -rc, "close: %s", strerror(-rc));
			reply_error(r, -rc);
		} else {
			reply_size(r, t->written);
		}
	} else if ((rc = write_all(t->sink_fd, f->data, f->data_len)) == 0) {
		t->written += f->data_len;
		return;
	} else {
		fail(r, -rc, "write after %llu bytes: %s", (unsigned long long)t->written,
		     strerror(-rc));
		reply_error(r, -rc);
	}
	/* Done either way; later frames for this id are dropped. */
	task_remove(c, t);
	req_free(r);
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "link";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "char";
	case S_IFBLK: return "block";
	default: return "unknown";
	}
}

static int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int op_stat(struct req *r)
{
	char path[PATH_MAX];
	struct stat st;
	bool nofollow;
	struct pv_fbuf *b;
	int rc;

	if ((rc = arg_path(r, "path", path)) < 0 ||
	    (rc = arg_bool_opt(r, "nofollow", &nofollow, false)) < 0)
		return rc;
	if ((nofollow ? lstat(path, &st) : stat(path, &st)) < 0)
		return sys_fail(r, "stat", path);
	b = reply_ok(r);
	pv_pack_map(b, 10);
	pv_pack_kv_str(b, "type", type_name(st.st_mode));
	pv_pack_kv_uint(b, "mode", st.st_mode & 07777);
	pv_pack_kv_uint(b, "size", (uint64_t)st.st_size);
	pv_pack_kv_uint(b, "uid", st.st_uid);
	pv_pack_kv_uint(b, "gid", st.st_gid);
	pv_pack_kv_int(b, "mtime_ns", ts_ns(st.st_mtim));
	pv_pack_kv_int(b, "atime_ns", ts_ns(st.st_atim));
	pv_pack_kv_int(b, "ctime_ns", ts_ns(st.st_ctim));
	pv_pack_kv_uint(b, "ino", st.st_ino);
	pv_pack_kv_uint(b, "nlink", st.st_nlink);
	return reply_send(r);
}

int op_exists(struct req *r)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = arg_path(r, "path", path)) < 0)
		return rc;
	pv_pack_map(reply_ok(r), 1);
	pv_pack_kv_bool(&r->fb, "exists", stat(path, &st) == 0);
	return reply_send(r);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int op_ls(struct req *r)
{
	char path[PATH_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc;

	if ((rc = arg_path(r, "path", path)) < 0)
		return rc;
	if (!(d = opendir(path)))
		return sys_fail(r, "ls", path);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));

			if (!nn)
				goto nomem;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto nomem;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	pv_pack_map(reply_ok(r), 1);
	pv_pack_str(&r->fb, "names");
	pv_pack_array(&r->fb, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		pv_pack_str(&r->fb, names[i]);
		free(names[i]);
	}
	free(names);
	return reply_send(r);
nomem:
	/* a partial listing would look like a complete one */
	closedir(d);
	while (n)
		free(names[--n]);
	free(names);
	return fail(r, ENOMEM, "ls %s: out of memory", path);
}

int op_mkdir(struct req *r)
{
	char path[PATH_MAX];
	int64_t mode;
	bool parents;
	int rc;

	if ((rc = arg_path(r, "path", path)) < 0 ||
	    (rc = arg_int_opt(r, "mode", &mode, 0755)) < 0 ||
	    (rc = arg_bool_opt(r, "parents", &parents, false)) < 0)
		return rc;
	if (parents) {
		struct stat st;

		/* Create each missing prefix; existing directories are fine. */
		for (char *p = path + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = 0;
			if (mkdir(path, (mode_t)(mode & 07777)) < 0 && errno != EEXIST)
				return sys_fail(r, "mkdir", path);
			*p = '/';
		}
		if (mkdir(path, (mode_t)(mode & 07777)) < 0 &&
		    !(errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
			return sys_fail(r, "mkdir", path);
	} else if (mkdir(path, (mode_t)(mode & 07777)) < 0) {
		return sys_fail(r, "mkdir", path);
	}
	return reply_empty(r);
}

/* Removes path and everything under it, without following symlinks. */
static int rm_tree(int at, const char *name, char *errpath, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (unlinkat(at, name, 0) == 0)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		goto err;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto err;
	if (!(d = fdopendir(fd))) {
		close(fd);
		goto err;
	}
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = rm_tree(dirfd(d), de->d_name, errpath, errlen);
	}
	closedir(d);
	if (rc < 0)
		return rc;
	if (unlinkat(at, name, AT_REMOVEDIR) == 0)
		return 0;
err:
	rc = -errno;
	snprintf(errpath, errlen, "%s", name);
	return rc;
}

int op_rm(struct req *r)
{
	char path[PATH_MAX], where[256] = "";
	bool recursive, force;
	struct stat st;
	int rc;

	if ((rc = arg_path(r, "path", path)) < 0 ||
	    (rc = arg_bool_opt(r, "recursive", &recursive, false)) < 0 ||
	    (rc = arg_bool_opt(r, "force", &force, false)) < 0)
		return rc;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT && force)
			return reply_empty(r);
		return sys_fail(r, "rm", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0)
			return sys_fail(r, "rm", path);
	} else if (!recursive) {
		if (rmdir(path) < 0)
			return sys_fail(r, "rm", path);
	} else if ((rc = rm_tree(AT_FDCWD, path, where, sizeof(where))) < 0) {
		return fail(r, -rc, "rm -r %s: %s: %s", path, where, strerror(-rc));
	}
	return reply_empty(r);
}

int op_rename(struct req *r)
{
	char from[PATH_MAX], to[PATH_MAX];
	int rc;

	if ((rc = arg_path(r, "from", from)) < 0 || (rc = arg_path(r, "to", to)) < 0)
		return rc;
	if (rename(from, to) < 0)
		return sys_fail(r, "rename", from);
	return reply_empty(r);
}

int op_chmod(struct req *r)
{
	char path[PATH_MAX];
	int64_t mode;
	int rc;

	if ((rc = arg_path(r, "path", path)) < 0 || (rc = arg_int(r, "mode", &mode)) < 0)
		return rc;
	if (chmod(path, (mode_t)(mode & 07777)) < 0)
		return sys_fail(r, "chmod", path);
	return reply_empty(r);
}

int op_truncate(struct req *r)
{
	char path[PATH_MAX];
	int64_t size;
	int rc;

	if ((rc = arg_path(r, "path", path)) < 0 || (rc = arg_int(r, "size", &size)) < 0)
		return rc;
	if (truncate(path, size) < 0)
		return sys_fail(r, "truncate", path);
	return reply_empty(r);
}
