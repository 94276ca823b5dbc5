/* util.c — per-thread error messages, logging, clocks and full read/write. */
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char errbuf[1024];

int pv_error(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return err > 0 ? -err : (err < 0 ? err : -EIO);
}

int pv_error_prefix(int err, const char *fmt, ...)
{
	char prefix[512], old[sizeof(errbuf)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, errbuf, sizeof(old));
	const char *rest = old[0] ? old : strerror(err > 0 ? err : -err);
	size_t pl = strnlen(prefix, sizeof(errbuf) - 3);
	memcpy(errbuf, prefix, pl);
	memcpy(errbuf + pl, ": ", 2);
	size_t rl = strnlen(rest, sizeof(errbuf) - pl - 3);
	memcpy(errbuf + pl + 2, rest, rl);
	errbuf[pl + 2 + rl] = 0;
	return err > 0 ? -err : (err < 0 ? err : -EIO);
}

const char *pv_errmsg(void) { return errbuf; }
void pv_error_clear(void) { errbuf[0] = 0; }

static void vlog(const char *fmt, va_list ap)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "provium: ");
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	size_t l = strlen(line);
	if (l == 0 || line[l - 1] != '\n') {
		line[l++] = '\n';
		line[l] = 0;
	}
	/* One write so lines from threads do not interleave. */
	ssize_t r = write(2, line, l);
	(void)r;
}

void pv_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void pv_debug(const char *fmt, ...)
{
	static int on = -1;
	if (on < 0)
		on = getenv("PROVIUM_DEBUG") != NULL;
	if (!on)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

uint64_t pv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t pv_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int pv_read_file(const char *path, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pv_error(errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return pv_error(e, "%s: %s", path, strerror(e));
	}
	size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return pv_error(ENOMEM, "%s: out of memory", path);
	}
	for (;;) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				return pv_error(ENOMEM, "%s: out of memory", path);
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return pv_error(e, "%s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	buf[n] = 0;
	*data = buf;
	if (len)
		*len = n;
	return 0;
}

int pv_map_file(const char *path, const unsigned char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pv_error(errno, "%s: %s", path, strerror(errno));
	struct stat st;
	int e = 0;
	void *p = NULL;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if (st.st_size > 0 &&
		 (p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
		e = errno;
	close(fd);
	if (e)
		return pv_error(e, "%s: %s", path, e == EINVAL ? "not a regular file" : strerror(e));
	if (p)
		madvise(p, (size_t)st.st_size, MADV_WILLNEED);
	*data = p;
	*len = (size_t)st.st_size;
	return 0;
}

void pv_unmap_file(const unsigned char *data, size_t len)
{
	if (data && len)
		munmap((void *)data, len);
}

int pv_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		len -= r;
	}
	return 0;
}

int pv_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		p += r;
		len -= r;
	}
	return 0;
}
